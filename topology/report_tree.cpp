#include "troupe/topology/report_tree.hpp"

#include <algorithm>

namespace troupe {

namespace {

void walk(const actor_report& r, std::vector<std::string>& path,
          std::vector<report_row>& rows) {
  rows.push_back(report_row{&r, path});
  if (r.children.empty())
    return;
  path.push_back(r.name);
  for (auto& child : r.children)
    walk(child, path, rows);
  path.pop_back();
}

} // namespace

std::vector<report_row> flatten(const actor_report& root) {
  std::vector<report_row> rows;
  std::vector<std::string> path;
  walk(root, path, rows);
  return rows;
}

void order_children(actor_report& root,
                    const std::function<size_t(const std::string&)>& rank) {
  std::stable_sort(root.children.begin(), root.children.end(),
                   [&](const actor_report& x, const actor_report& y) {
                     return rank(x.name) < rank(y.name);
                   });
  for (auto& child : root.children)
    order_children(child, rank);
}

uint64_t total_lost(const actor_report& root) {
  uint64_t result = root.lost;
  for (auto& child : root.children)
    result += total_lost(child);
  return result;
}

std::optional<int64_t> queue_length(const actor_report& r) {
  for (auto key : {"queued", "held", "waiting_writes"})
    if (auto i = r.stats.find(key); i != r.stats.end())
      return i->second;
  return std::nullopt;
}

std::string state_word(const actor_report& r) {
  if (r.stopped != stop_reason::running || r.state.empty())
    return to_string(r.stopped);
  return r.state;
}

} // namespace troupe
