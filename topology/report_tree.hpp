#pragma once

// Reading a report tree the way `troupe run` shows it: the live view, the
// JSON report and the Prometheus endpoint all walk the same flattened rows.

#include "troupe/actors/messages.hpp"
#include "troupe/topology/topology.hpp"

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

/// The row's name qualified by the nodes above it, the root left out:
/// "ingest/batch", "counts/shard-0"; the root's own row is its bare name.
/// Unique in a tree, unlike bare names: two states both have a "shard-0".
std::string qualified_name(const report_row& row);

/// The file's actor that `row` reports on: an actor of that name declared
/// under the supervisor the row sits directly under, whose supervisors
/// above are the row's path. Null for supervisors and for what a pattern
/// supervises itself (a pool's workers), whatever their names.
const actor_decl* declared_actor(const topology& t, const report_row& row);

/// Whether the row carries no report of the actor's own: a supervisor's
/// placeholder (kind "actor") for a child that did not answer a status
/// request, or that is no troupe actor (a plain CAF service). Its counts
/// are those of earlier incarnations only.
bool is_placeholder(const report_row& row);

/// Gives every file actor of the tree the kind its declaration names, so
/// that a placeholder does not show as kind "actor".
void use_declared_kinds(const topology& t, actor_report& root);

/// Orders the children of every node in the tree by `rank` of the child's
/// row (stable: equal ranks keep their order). Reports come in start order,
/// where what an actor sends to comes first; people read a topology in file
/// order.
void order_children(actor_report& root,
                    const std::function<size_t(const report_row&)>& rank);

/// What a run lost, or may have: the `lost` of every node (items missing
/// from a stage's input links, messages that a supervised child's address
/// could not deliver) plus the `unconfirmed` of every node (items sent and
/// never confirmed, which nothing shows to have reached a sink or a counted
/// drop). In a clean drain both are 0; after a cancel or a kill it is an
/// upper bound, since an unconfirmed item may also have been consumed or
/// counted as dropped by the actor that held it.
uint64_t total_lost(const actor_report& root);

/// What a pattern holds waiting, from its stats: "queued" (pool, fan-out),
/// "held" (batcher, limiter) or "waiting_writes" (state); none for others.
std::optional<int64_t> queue_length(const actor_report& r);

/// The report's state in a word: how it stopped ("completed", "crashed",
/// ...) once it stopped, else the pattern's own (a breaker's "open"), else
/// "running".
std::string state_word(const actor_report& r);

} // namespace troupe
