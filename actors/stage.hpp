#pragma once

// A stream stage: an actor that takes items from its input links, hands each to
// its logic, and sends what the logic emits down its output links, with credit
// (actors/stream_link.hpp). Patterns supply only the logic.
//
// Messages a stage understands, besides the link protocol:
//   drain_atom       graceful stop. A source stops producing; a stage or sink
//                    ends when its inputs have ended (at once if it has none)
//                    and its logic is no longer busy.
//   stop_intake_atom a source stops producing; others ignore it.
//   cancel_atom      stop now; items held on output links count as dropped.
//   status_atom      -> actor_report with the counters so far.
//   anything else    goes to the logic's on_request (a pattern in front of a
//                    service answers the service's requests).
// When supervised, a stage sends its final actor_report to its supervisor as
// it stops, whatever the reason (crash and kill included).

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace troupe {

/// Where logic puts what it emits. Every output link gets every item.
class emitter {
public:
  virtual ~emitter();
  virtual void push(item x) = 0;
};

/// What a stage's logic may use besides emitting inside on_item: its actor
/// (for requests to services), timers, and a way to wake the stage after
/// emitting or becoming ready from a callback of its own (a response handler).
class stage_control : public emitter {
public:
  ~stage_control() override;
  /// The stage's actor, for requests, monitors and response promises. Its
  /// behavior belongs to the stage: a logic does not call become(),
  /// set_default_handler() or use `after` timeouts (messages for the logic
  /// reach on_request without passing through the behavior; use schedule).
  virtual caf::event_based_actor* self() = 0;
  /// Number of output links (0 for a sink: what it pushes is dropped).
  virtual size_t outputs() const = 0;
  /// Calls the logic's on_timer(token) after `delay`.
  virtual void schedule(caf::timespan delay, uint64_t token) = 0;
  /// Items that may be pushed now without going beyond the credit of an
  /// output link (unbounded for a sink). Logic that emits from its own
  /// timers keeps within it, so that a stalled downstream stalls it too.
  virtual size_t room() const = 0;
  /// Sends what was pushed and takes input again; for callbacks the stage did
  /// not call itself (the stage resumes by itself after on_item, on_timer,
  /// on_request and on_response). Called while the stage handles a message
  /// (a response handler), it takes effect once no other response waits in
  /// the mailbox (at the latest before the next message that is not a
  /// response, or after 64 responses), so that answers arriving together
  /// leave in one link message instead of one message each.
  virtual void resume() = 0;
  /// Sends `msg` to `dest` as a request without a timeout; its response goes
  /// to the logic's on_response with `tag`. For logic with many requests in
  /// flight: no handler object per request, and no search through CAF's
  /// response handlers, which CAF 0.17 keeps in a vector scanned per
  /// response.
  virtual void request(const caf::actor& dest, caf::message msg, uint64_t tag) = 0;
  /// Whether a drain arrived: the stage ends once it is not busy, so logic
  /// that answers requests refuses new work that would keep it busy.
  virtual bool draining() const = 0;
};

/// The logic of a stage or sink. An exception thrown from it is a crash of the
/// stage: the item counts as an error and is not sent again, and the
/// supervisor decides what happens next.
class stage_logic {
public:
  virtual ~stage_logic();
  /// Called once per incarnation, before anything else.
  virtual void on_start(stage_control& ctl);
  /// Called for each input item, in order per link.
  virtual void on_item(item& x, emitter& out) = 0;
  /// Called after the items of one round were given to on_item (at least
  /// one), before what was pushed is sent: logic that gathers items to hand
  /// them on together (a pool sending several jobs in one message) sends
  /// what it gathered. The default does nothing.
  virtual void on_round_end(emitter& out);
  /// Whether the logic takes another item now. Items it does not take stay
  /// unacknowledged, so the upstream runs out of credit: this is how a
  /// pattern pushes back. A logic that answers false must wake the stage
  /// (a timer, or stage_control::resume) once it is ready again.
  virtual bool ready();
  /// Whether the logic still holds work that will emit later (requests in
  /// flight). The stage does not end while it is busy.
  virtual bool busy() const;
  /// A timer set with stage_control::schedule fired.
  virtual void on_timer(uint64_t token, emitter& out);
  /// Called once after all inputs ended (and the logic is not busy): emit
  /// what is still held. `reason` is the first error an input ended with.
  virtual void on_end(emitter& out, const caf::error& reason);
  /// A message that is not part of the stream protocol: a request, when the
  /// pattern also works in front of a service. The default answers
  /// caf::sec::unexpected_message.
  virtual caf::result<caf::message> on_request(caf::message& x);
  /// The response to stage_control::request(..., tag): the answer, or a
  /// message holding just a caf::error (the one answered, or
  /// caf::sec::request_receiver_down when the receiver is gone). Called at
  /// most once per request. The default ignores it.
  virtual void on_response(uint64_t tag, caf::message& answer);
  /// Adds the pattern's own state and stats to a report.
  virtual void describe(actor_report& r) const;
  /// The stage stops, for `reason` (empty: a normal end), and its final
  /// report is taken next. Answer the requests still held here: CAF 0.17
  /// tells a caller nothing when a promise dies unanswered.
  virtual void on_stop(const caf::error& reason);
};

/// The logic of a source: a stage without inputs.
class source_logic {
public:
  virtual ~source_logic();
  /// Called once per incarnation, before anything else. A source that emits
  /// on its own schedule keeps the control and sets timers.
  virtual void on_start(stage_control& ctl);
  /// A timer set with stage_control::schedule fired: emit what is due.
  virtual void on_timer(uint64_t token, emitter& out);
  /// Emit at most `max` items (fewer is fine); return false once exhausted.
  /// Called again as credit comes back. A source with nothing to emit yet
  /// (waiting for outside input) may emit nothing: it is asked again after a
  /// delay that grows from 1 ms to 100 ms while it stays empty.
  virtual bool produce(emitter& out, size_t max) = 0;
  /// Called once when the source ends (exhausted or drained).
  virtual void on_end(emitter& out);
};

struct stage_config {
  /// Downstream addresses; each gets every item. Empty for a sink.
  std::vector<caf::actor> next;
  /// Upstream links to wait for before ending; ignored by sources.
  size_t inputs = 1;
  /// Window of each input link; 0 means the system's troupe.default-credit.
  uint32_t credit = 0;
  /// Label in reports; empty means "source", "stage" or "sink".
  std::string kind;
};

caf::actor spawn_stage(spawn_context ctx, stage_config cfg,
                       std::unique_ptr<stage_logic> logic);

caf::actor spawn_source(spawn_context ctx, stage_config cfg,
                        std::unique_ptr<source_logic> logic);

/// Per-item functions, for stages that need no state of their own.
using item_function = std::function<void(item&, emitter&)>;
using produce_function = std::function<bool(emitter&, size_t)>;

caf::actor spawn_stage(spawn_context ctx, stage_config cfg, item_function f);
caf::actor spawn_source(spawn_context ctx, stage_config cfg, produce_function f);

} // namespace troupe
