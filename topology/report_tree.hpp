#pragma once

// Reading a report tree the way `troupe run` shows it: the live view, the
// JSON report and the Prometheus endpoint all walk the same flattened rows.

#include "troupe/actors/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace troupe {

/// One node of a report tree: an actor or a supervisor.
struct report_row {
  const actor_report* report = nullptr;
  /// The supervisors above it, from the root; empty for the root itself.
  std::vector<std::string> path;
  size_t depth() const noexcept {
    return path.size();
  }
};

/// Every node of the tree, depth first in start order; the rows point into
/// `root`, which must outlive them.
std::vector<report_row> flatten(const actor_report& root);

/// Orders the children of every supervisor in the tree by `rank` (stable:
/// equal ranks keep their order). Reports come in start order, where what
/// an actor sends to comes first; people read a topology in file order.
void order_children(actor_report& root,
                    const std::function<size_t(const std::string&)>& rank);

/// The `lost` of every node summed: items missing from a stage's input links
/// (gaps in their numbering) plus messages that a supervised child's address
/// could not deliver, a nested supervisor's own address included. Each is
/// counted at one node only, so nothing is counted twice.
uint64_t total_lost(const actor_report& root);

/// What a pattern holds waiting, from its stats: "queued" (pool, fan-out),
/// "held" (batcher, limiter) or "waiting_writes" (state); none for others.
std::optional<int64_t> queue_length(const actor_report& r);

/// The report's state in a word: how it stopped ("completed", "crashed",
/// ...) once it stopped, else the pattern's own (a breaker's "open"), else
/// "running".
std::string state_word(const actor_report& r);

} // namespace troupe
