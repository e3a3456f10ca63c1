#pragma once

// The batcher: a stream stage that collects items and emits them as one
// `batch` item when `size` items are held, or `timeout` after the batch's
// first item arrived, whichever comes first. The timer belongs to the batch,
// so no item waits longer than `timeout` for its batch to leave. End of
// stream and a graceful shutdown (drain) flush the partial batch; a cancel
// counts it as dropped.
//
// Messages: those of every stage (actors/stage.hpp). A batch is an item
// holding a troupe::batch, so `out` in its report counts batches.
//
// Report stats: "items_out" (items in emitted batches), "held" (items in the
// current batch), "full_batches" (left at `size`), "timed_out" (left at
// `timeout`), "byte_capped" (left at `max_bytes`), "flushed_batches" (left at
// end of stream).

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <functional>

namespace troupe {

struct batcher_config {
  /// Items per batch; a batch leaves as soon as it holds this many.
  size_t size = 256;
  /// Longest time a batch waits for more items after its first one.
  caf::timespan timeout = std::chrono::milliseconds(5);
  /// Cap on the bytes of a batch (0: none). An item that would push the
  /// batch over it starts the next batch; an item larger than the cap
  /// leaves alone.
  size_t max_bytes = 0;
  /// The bytes an item counts for `max_bytes`; empty means its serialized
  /// size.
  std::function<size_t(const item&)> bytes_of;

  /// Throws config_error naming the field if a value is invalid.
  void validate() const;
};

caf::actor spawn_batcher(spawn_context ctx, batcher_config cfg,
                         stage_config links);

} // namespace troupe
