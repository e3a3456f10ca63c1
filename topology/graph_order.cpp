#include "troupe/topology/detail/graph_order.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <queue>
#include <utility>

namespace troupe::detail {

std::vector<size_t> strong_components(const adjacency& edges) {
  // Kosaraju: finishing order on the graph, then the reversed graph in
  // reverse finishing order.
  const size_t n = edges.size();
  std::vector<size_t> finished;
  finished.reserve(n);
  std::vector<bool> seen(n, false);
  std::vector<std::pair<size_t, size_t>> stack; // node, next edge
  for (size_t start = 0; start < n; ++start) {
    if (seen[start])
      continue;
    seen[start] = true;
    stack.emplace_back(start, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < edges[node].size()) {
        auto to = edges[node][next++];
        if (!seen[to]) {
          seen[to] = true;
          stack.emplace_back(to, 0);
        }
      } else {
        finished.push_back(node);
        stack.pop_back();
      }
    }
  }
  adjacency reversed(n);
  for (size_t from = 0; from < n; ++from)
    for (auto to : edges[from])
      reversed[to].push_back(from);
  constexpr auto none = std::numeric_limits<size_t>::max();
  std::vector<size_t> component(n, none);
  size_t count = 0;
  std::vector<size_t> todo;
  for (auto i = finished.rbegin(); i != finished.rend(); ++i) {
    if (component[*i] != none)
      continue;
    component[*i] = count;
    todo.push_back(*i);
    while (!todo.empty()) {
      auto node = todo.back();
      todo.pop_back();
      for (auto from : reversed[node])
        if (component[from] == none) {
          component[from] = count;
          todo.push_back(from);
        }
    }
    ++count;
  }
  return component;
}

std::vector<size_t> cycle_through(const adjacency& edges,
                                  const std::vector<size_t>& component,
                                  size_t from) {
  // Breadth first within the component, back to `from`: the shortest cycle.
  constexpr auto none = std::numeric_limits<size_t>::max();
  std::vector<size_t> parent(edges.size(), none);
  std::queue<size_t> todo;
  todo.push(from);
  while (!todo.empty()) {
    auto node = todo.front();
    todo.pop();
    for (auto to : edges[node]) {
      if (component[to] != component[from])
        continue;
      if (to == from) {
        std::vector<size_t> path;
        for (auto x = node; x != from; x = parent[x])
          path.push_back(x);
        path.push_back(from);
        std::reverse(path.begin(), path.end());
        return path;
      }
      if (parent[to] == none) {
        parent[to] = node;
        todo.push(to);
      }
    }
  }
  return {from};
}

std::vector<size_t> dependencies_first(const adjacency& depends_on,
                                       const std::vector<size_t>& rank) {
  const size_t n = depends_on.size();
  auto component = strong_components(depends_on);
  size_t count = 0;
  for (auto c : component)
    count = std::max(count, c + 1);
  // A component is ready once every component it depends on is placed;
  // among the ready ones, the one holding the lowest rank goes first.
  std::vector<size_t> lowest(count, std::numeric_limits<size_t>::max());
  std::vector<std::vector<size_t>> members(count);
  for (size_t i = 0; i < n; ++i) {
    lowest[component[i]] = std::min(lowest[component[i]], rank[i]);
    members[component[i]].push_back(i);
  }
  std::vector<size_t> waiting_on(count, 0);
  std::vector<std::vector<size_t>> needed_by(count);
  for (size_t from = 0; from < n; ++from)
    for (auto to : depends_on[from])
      if (component[from] != component[to]) {
        ++waiting_on[component[from]];
        needed_by[component[to]].push_back(component[from]);
      }
  using entry = std::pair<size_t, size_t>; // lowest rank, component
  std::priority_queue<entry, std::vector<entry>, std::greater<entry>> ready;
  for (size_t c = 0; c < count; ++c)
    if (waiting_on[c] == 0)
      ready.emplace(lowest[c], c);
  std::vector<size_t> result;
  result.reserve(n);
  while (!ready.empty()) {
    auto c = ready.top().second;
    ready.pop();
    auto& m = members[c];
    std::sort(m.begin(), m.end(),
              [&](size_t a, size_t b) { return rank[a] < rank[b]; });
    result.insert(result.end(), m.begin(), m.end());
    for (auto d : needed_by[c])
      if (--waiting_on[d] == 0)
        ready.emplace(lowest[d], d);
  }
  return result;
}

} // namespace troupe::detail
