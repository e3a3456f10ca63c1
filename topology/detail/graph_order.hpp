#pragma once

// Internal to the topology library (not installed): graph algorithms over
// nodes 0..n-1 given as adjacency lists, iterative so that a file with a
// chain of many thousands of actors cannot exhaust the stack.

#include <cstddef>
#include <vector>

namespace troupe::detail {

using adjacency = std::vector<std::vector<size_t>>;

/// The strongly connected component of each node. Components are numbered
/// so that an edge between two of them always goes from a lower number to a
/// higher one (a topological order of the condensed graph).
std::vector<size_t> strong_components(const adjacency& edges);

/// A path from `from` back to `from` along edges between nodes of the same
/// component `component` (a cycle through it), as node indices; the first
/// node is not repeated at the end.
std::vector<size_t> cycle_through(const adjacency& edges,
                                  const std::vector<size_t>& component,
                                  size_t from);

/// An order of the nodes where every node comes after those it has edges to
/// (what it depends on), nodes of a cycle (and otherwise unrelated nodes)
/// ordered by `rank` (their file order), lowest first.
std::vector<size_t> dependencies_first(const adjacency& depends_on,
                                       const std::vector<size_t>& rank);

} // namespace troupe::detail
