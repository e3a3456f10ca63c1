#pragma once

// Fan-out/fan-in with bounded concurrency, like futures' buffer_unordered(k)
// and buffered(k): each item is sent as a request to a processing actor, at
// most `max_in_flight` at once, and the results are gathered in input order
// or in completion order.
//
// Processing actors are either
//   processors        a fixed set of actors, shared: each call goes to the one
//                     with the fewest calls in flight; or
//   spawn_processor   a factory spawning one actor per item (like
//                     tokio::spawn), killed once it answered (a kill, so
//                     that an actor trapping exits, a supervisor, stops too);
//                     or
//   process           a function (job_function, patterns/function_worker.hpp)
//                     run by `runners` function workers the fan-out spawns,
//                     owns and kills as it stops. The items queued together
//                     (those of one stream round, of one batch request) go
//                     to a runner as one troupe::batch call, spread over the
//                     least-loaded runners (unless a full window's work,
//                     as measured, is too cheap to be worth more than one
//                     call), so that cheap work does not pay a request and
//                     an answer per item. max_in_flight still
//                     counts items. A call's items fail together when it
//                     times out or when the runner dies (it is replaced); an
//                     item whose function returned an error or threw
//                     (errc::job_threw) fails alone. A timed-out call's
//                     runner is killed and replaced, and its items stop
//                     counting, as a per-item actor's do; but a function
//                     cannot be interrupted, so the kill takes effect when
//                     it returns, and until then it keeps a scheduler thread
//                     (blocking work belongs in patterns/blocking.hpp). The
//                     calls queued behind it on that runner are sent again
//                     to others; CAF takes the kill between rounds of a few
//                     messages, so some may run on the old runner too: a
//                     call behind a timed-out one runs at least once, maybe
//                     twice, and is answered once.
// A call fails when the processor answers with an error, dies (its crash
// reason, or caf::sec::request_receiver_down), or does not answer within
// `call_timeout` (errc::call_timeout). A call to a fixed processor that
// timed out, or whose requester stopped, keeps its slot (and counts in
// `in_flight` and `late`) until the processor's late answer comes, ignored:
// the processor still has the call, and max_in_flight bounds what it holds.
// A failed item is never dropped: an
// item_failure{input, reason} (actors/messages.hpp) takes the place of its
// result and counts in the report's `errors`.
//
// Messages it understands, besides those of a stage (actors/stage.hpp:
// status, drain, cancel, the link protocol):
//   (troupe::batch) -> troupe::batch
//       service mode: the batch's items are scattered, and the answer holds
//       one result per item (an item_failure for a failed one), in the
//       configured order. Batches share the `max_in_flight` bound with each
//       other and with stream items.
//   anything else -> the processor's answer, or its error
//       one call, as if through a proxy.
// On a stream, each item is one call; the results (or item_failures) go
// downstream. An item is taken only while the output window has room for
// its result and those of every item held, so results never pile up past
// the downstream's credit. The stage core acknowledges an item when it is
// taken: if the fan-out crashes (in a pipeline: is restarted), its calls in
// flight and results waiting for an earlier one are lost with it, counted
// as `dropped`; the upstream does not send them again.
//
// Cancellation (cancel_atom, the fan-out stopping for any reason, and for a
// service request its requester stopping) stops the work in flight: per-item
// actors are killed, queued items are not started, and what was held counts
// as `dropped` (the requests still open are answered with the reason). A
// fixed processor is shared and is not stopped: the call it is working on
// runs to its end and its answer is ignored, and calls already in its
// mailbox are still processed by it (CAF cannot take a message back).
//
// With `process`, a cancelled item's runner keeps working on its call (the
// call holds other items too): its slot is held until the call answers, as
// for a fixed processor. Runners are killed when the fan-out stops.
//
// Drain waits for every call in flight and every request still open.
//
// Its actor_report (kind "fanout") has `state` "running" and these `stats`:
//   calls             calls made (items started; with `process`, items sent
//                     to a runner)
//   batches           batch calls sent to runners (`process`)
//   largest_batch     the most items in one of them (`process`)
//   runners           runners now (`process`)
//   runner_restarts   runners replaced after dying or timing out
//   succeeded         calls answered with a value
//   failed            calls that failed (each emitted as an item_failure)
//   timeouts          failed calls that timed out
//   in_flight         calls waiting for their answer now (late ones too)
//   late              calls already failed (timeout) or abandoned whose
//                     fixed processor has not answered yet
//   peak_in_flight    the most calls in flight at once (<= max_in_flight)
//   queued            items of requests waiting for a free slot
//   spawned           per-item actors spawned
//   killed            per-item actors killed before they answered
//   requests          service requests taken (batches and single calls)
//   abandoned         items dropped because their requester stopped or the
//                     fan-out was cancelled

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/patterns/function_worker.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace troupe {

/// Spawns the actor that processes one item (it gets the item as a request).
using processor_factory = std::function<caf::actor(caf::actor_system& sys)>;

struct fanout_config {
  enum class order_policy {
    input,      ///< results in the order their items came (buffered(k))
    completion, ///< results as their calls finish (buffer_unordered(k))
  };

  /// Items in flight at most (at least 1): calls, or with `process` items
  /// out at runners. On a stream, with input order, results waiting for an
  /// earlier one count too.
  uint32_t max_in_flight = 16;
  order_policy order = order_policy::input;
  /// Exactly one of the three: a fixed set of processors, a per-item
  /// factory, or a function run on the fan-out's own runners.
  std::vector<caf::actor> processors;
  processor_factory spawn_processor;
  job_function process;
  /// Runners for `process`; 0: one per CAF scheduler thread, so that the
  /// work can use every core (each runner runs one call at a time) and no
  /// more runners than cores are fed with items the bound keeps few. Never
  /// more than max_in_flight (a runner without items is useless).
  uint32_t runners = 0;
  /// A call not answered within this fails with errc::call_timeout (a
  /// per-item actor or a runner is then killed, a runner replaced; a fixed
  /// processor's call keeps its slot until it answers); 0: no limit.
  caf::timespan call_timeout = caf::timespan{0};

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

std::string to_string(fanout_config::order_policy x);

/// Spawns a fan-out (validating `cfg`, throwing config_error). Requests to it
/// are scattered as described above; stream items from the upstreams in
/// `links` are too, and their results go to `links.next`.
caf::actor spawn_fanout(spawn_context ctx, fanout_config cfg,
                        stage_config links = {});

} // namespace troupe
