#pragma once

// Parallel joins: several requests made at once, answered together, as
// tokio's join! and try_join!.
//
//   all          waits for every branch; the result holds each branch's
//                answer or error, in branch order.
//   first_error  (try-join) the values of all branches in branch order, or
//                the first error as soon as one branch fails: the others are
//                cancelled.
// With a `timeout`, branches still unanswered when it passes fail with
// errc::call_timeout (in `all`, in their slot; in `first_error`, the join).
// Without one, a shared branch whose service drops the request unanswered (a
// supervised service restarted while holding it) holds the join for ever:
// give a timeout whenever a branch is shared.
//
// Cancelling a branch depends on what it is:
//   owned   (join_branch::owned) an actor spawned for this join, and for
//           no other. The join monitors it and kills it (exit `kill`, which
//           trapping exits cannot ignore) when the join ends. One that had
//           not answered counts as cancelled (its work stops at its next
//           message, since no CAF actor is preempted inside a handler); in
//           first_error mode that includes one whose answer was already on
//           its way. An owned branch that stops without answering fails
//           with the reason it stopped.
//   shared  a request to a service that others use too. It cannot be
//           stopped: its answer is abandoned (ignored when it comes) and the
//           service finishes the work.
//
// Two ways in. Inside an event-based actor, join_all() and try_join() call
// back with the result. Or spawn_join() starts a join actor, which starts
// the branches at once and answers (join_atom) requests with the result:
//   all          a troupe::batch with one item per branch: the answer, or a
//                message holding just the branch's caf::error;
//   first_error  a troupe::batch of the answers, or the error.
// Once it has answered, or been cancelled, the join actor stops, and its
// pending requests to branches end with it. The functions use such an actor,
// which also stops the join when the calling actor stops.
//
// A join actor understands drain_atom (it stops once the join is done and
// answered), cancel_atom (cancels the branches, answers errc::cancelled, stops)
// and status_atom; requested, drain and cancel are answered with an empty
// message. Its actor_report (kind "join"; state "running" or "done";
// in = branches, out = answered, errors = failed) has `stats`:
//   branches    branches started
//   answered    branches that answered with a value
//   failed      branches that answered with an error, timed out or stopped
//   timed_out   of these, branches failed by the timeout
//   cancelled   owned branches killed unanswered when the join ended
//   abandoned   shared branches unanswered when the join ended

#include "troupe/actors/item.hpp"
#include "troupe/actors/spawn_context.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>
#include <caf/timespan.hpp>

#include <functional>
#include <vector>

namespace troupe {

/// Asks a join actor for its result.
using join_atom = caf::atom_constant<caf::atom("join")>;

/// One request of a join.
struct join_branch {
  caf::actor target;
  caf::message request;
  /// Whether `target` was spawned for this join, which then stops it when
  /// it ends (see above).
  bool owned = false;
};

enum class join_mode {
  all,         ///< every result or error, in order
  first_error, ///< all values, or the first error (the others cancelled)
};

struct join_config {
  join_mode mode = join_mode::all;
  /// Deadline for all branches, from the start (> 0); zero: none (then a
  /// shared branch that never answers holds the join for ever).
  caf::timespan timeout = caf::timespan{0};

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// Spawns a join actor that starts `branches` at once (validating `cfg` and
/// the branches: a null target throws config_error). Under a supervisor, give
/// it restart_type::temporary: it does one join.
caf::actor spawn_join(spawn_context ctx, join_config cfg,
                      std::vector<join_branch> branches);

/// Each branch's answer or error, in branch order.
using join_results = std::vector<caf::expected<item>>;

/// All-of from inside an event-based actor: `done` gets every result. A zero
/// `timeout` waits as long as the branches take.
void join_all(caf::event_based_actor* self, std::vector<join_branch> branches,
              caf::timespan timeout, std::function<void(join_results&)> done);

/// Try-join from inside an event-based actor: `on_values` gets all answers
/// in branch order, or `on_error` the first error (the others cancelled).
void try_join(caf::event_based_actor* self, std::vector<join_branch> branches,
              caf::timespan timeout,
              std::function<void(std::vector<item>&)> on_values,
              std::function<void(caf::error&)> on_error);

} // namespace troupe
