#pragma once

// A stream stage: an actor that takes items from its input links, hands each to
// its logic, and sends what the logic emits down its output links, with credit
// (actors/stream_link.hpp). Patterns supply only the logic.
//
// Messages a stage understands, besides the link protocol:
//   drain_atom       graceful stop. A source stops producing; a stage or sink
//                    ends when its inputs have ended (at once if it has none).
//   stop_intake_atom a source stops producing; others ignore it.
//   cancel_atom      stop now; items held on output links count as dropped.
//   status_atom      -> actor_report with the counters so far.
// When supervised, a stage sends its final actor_report to its supervisor as
// it stops, whatever the reason (crash and kill included).

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"

#include <caf/actor.hpp>
#include <caf/error.hpp>

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

/// The logic of a stage or sink. An exception thrown from it is a crash of the
/// stage: the item counts as an error and is not sent again, and the
/// supervisor decides what happens next.
class stage_logic {
public:
  virtual ~stage_logic();
  /// Called for each input item, in order per link.
  virtual void on_item(item& x, emitter& out) = 0;
  /// Called once after all inputs ended: emit what is still held.
  /// `reason` is the first error an input ended with, if any.
  virtual void on_end(emitter& out, const caf::error& reason);
};

/// The logic of a source: a stage without inputs.
class source_logic {
public:
  virtual ~source_logic();
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
