#pragma once

// The data a supervisor is built from, after Erlang/OTP's supervisor: child
// specs, the restart strategy, restart intensity and backoff. The rules that
// apply them are in docs/supervision.md, and supervisor.cpp follows them.

#include "troupe/actors/spawn_context.hpp"

#include <caf/actor.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace troupe {

/// When a child that stopped is started again (as in OTP).
enum class restart_type {
  permanent, ///< always
  transient, ///< only if it failed (exited with an error)
  temporary, ///< never
};

/// Which children restart when one fails (as in OTP).
enum class restart_strategy {
  one_for_one,  ///< only the failed child
  one_for_all,  ///< all children: the others stop, then all start again
  rest_for_one, ///< the failed child and those started after it
};

/// Starts one incarnation of a child. It may throw or return a null actor:
/// both count as a failed start, handled like a crash.
using child_factory = std::function<caf::actor(const spawn_context&)>;

/// What one call of a child_factory gave.
struct child_start {
  /// Null when the start failed.
  caf::actor handle;
  /// Why it failed (what the factory threw, or that it returned no actor);
  /// empty when it started.
  std::string failure;
  /// The factory threw troupe::node_unreachable: the child's node cannot be
  /// reached (a pool parks such a worker rather than restarting it).
  bool unreachable = false;
};

/// Calls `start(ctx)`; a throw or a null actor becomes `failure`, so that
/// whoever starts children (a supervisor, a pool, a node agent) counts a
/// failed start instead of dying of it.
child_start try_start(const child_factory& start, const spawn_context& ctx);

struct child_spec {
  /// Unique among siblings; the child keeps it (and its address) on restart.
  std::string name;
  child_factory start;
  restart_type restart = restart_type::permanent;
  /// How long stopping the child may take before it is killed. For a nested
  /// supervisor it bounds the shutdown of its whole subtree.
  caf::timespan shutdown = std::chrono::seconds(5);
  /// Messages the child's address holds while the child restarts; more are
  /// counted as lost (and requests answered with child_unavailable).
  size_t restart_buffer = 1024;
};

/// At most `max_restarts` restarts within `period`; one more and the
/// supervisor stops its children and fails, for its own parent to handle.
struct restart_intensity {
  int max_restarts = 3;
  caf::timespan period = std::chrono::seconds(5);
};

/// The restarts within the last `period` of a restart_intensity: whoever
/// restarts things (a supervisor, a worker pool) asks it before each one.
class restart_window {
public:
  explicit restart_window(restart_intensity limit) : limit_(limit) {
  }

  /// Records a restart now; false if it goes beyond the intensity.
  bool note_restart() {
    auto now = std::chrono::steady_clock::now();
    times_.push_back(now);
    while (!times_.empty() && now - times_.front() > limit_.period)
      times_.pop_front();
    return times_.size() <= static_cast<size_t>(limit_.max_restarts);
  }

private:
  restart_intensity limit_;
  std::deque<std::chrono::steady_clock::time_point> times_;
};

/// Delay before a restart: `initial`, times `multiplier` for each earlier
/// restart of the same child within the intensity period, at most `max`.
/// An `initial` of zero restarts at once.
struct restart_backoff {
  caf::timespan initial = caf::timespan{0};
  caf::timespan max = std::chrono::seconds(10);
  double multiplier = 2.0;
};

/// What a supervisor does once no child is running and none will restart.
enum class auto_shutdown {
  never,         ///< keep running (OTP's default)
  all_children_done, ///< stop normally, e.g. when a pipeline has drained
};

/// How a supervisor stops its children: on shutdown (drain or cancel), when
/// it escalates, and before a group restart. Either way each child is bounded
/// by its own shutdown timeout and the shutdown deadline, and the report
/// lists every child.
enum class stop_order {
  /// One after another in reverse start order, each waited for before the
  /// next is told (OTP): a child can rely on the siblings started before it
  /// until it has stopped. Costs one round trip per child.
  sequential,
  /// All told at once, then all waited for (as Akka stops children): for
  /// siblings that do not depend on each other while they stop, e.g.
  /// thousands of independent units. Streams still drain by end-of-stream;
  /// what is lost is only the order, so a child that calls a sibling's
  /// service while it drains may find it gone.
  concurrent,
};

struct supervisor_spec {
  std::string name = "supervisor";
  restart_strategy strategy = restart_strategy::one_for_one;
  restart_intensity intensity;
  restart_backoff backoff;
  enum auto_shutdown auto_shutdown = auto_shutdown::never;
  enum stop_order stop_order = stop_order::sequential;
  /// Started in this order; stopped in the reverse order (with
  /// stop_order::sequential).
  std::vector<child_spec> children;
};

/// Throws config_error naming the field if `spec` is invalid: duplicate or
/// empty child names, an empty factory, a non-positive period, negative
/// limits or timeouts, a backoff multiplier below 1.
void validate(const supervisor_spec& spec);

/// Throws config_error(where, ...) naming `field` (e.g. "worker_restarts") if
/// `limit` cannot work: a negative count or a period that is not positive.
void validate(const restart_intensity& limit, const std::string& where,
              const std::string& field);

std::string to_string(restart_type x);
std::string to_string(restart_strategy x);
std::string to_string(stop_order x);

} // namespace troupe
