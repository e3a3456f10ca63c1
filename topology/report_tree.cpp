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

std::string qualified_name(const report_row& row) {
  std::string result;
  for (size_t i = 1; i < row.path.size(); ++i) {
    result += row.path[i];
    result += '/';
  }
  return result + row.report->name;
}

const actor_decl* declared_actor(const topology& t, const report_row& row) {
  auto decl = t.find_actor(row.report->name);
  if (!decl || row.path.empty() || row.path.back() != decl->supervisor)
    return nullptr;
  // The supervisors from the actor's up to the root, against the path.
  auto above = row.path.rbegin();
  auto name = decl->supervisor;
  for (;;) {
    if (above == row.path.rend() || *above != name)
      return nullptr;
    ++above;
    if (name == t.root.name)
      return above == row.path.rend() ? decl : nullptr;
    auto s = std::find_if(t.supervisors.begin(), t.supervisors.end(),
                          [&](const supervisor_decl& x) { return x.name == name; });
    if (s == t.supervisors.end())
      return nullptr;
    name = s->parent.empty() ? t.root.name : s->parent;
  }
}

bool is_placeholder(const report_row& row) {
  auto& kind = row.report->kind;
  return kind.empty() || kind == "actor";
}

namespace {

void declared_kinds(const topology& t, actor_report& r,
                    std::vector<std::string>& path) {
  if (auto decl = declared_actor(t, report_row{&r, path}))
    r.kind = decl->kind;
  if (r.children.empty())
    return;
  path.push_back(r.name);
  for (auto& child : r.children)
    declared_kinds(t, child, path);
  path.pop_back();
}

void order(actor_report& r, std::vector<std::string>& path,
           const std::function<size_t(const report_row&)>& rank) {
  if (r.children.empty())
    return;
  path.push_back(r.name);
  std::vector<std::pair<size_t, actor_report*>> ranked;
  for (auto& child : r.children)
    ranked.emplace_back(rank(report_row{&child, path}), &child);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<actor_report> sorted;
  sorted.reserve(ranked.size());
  for (auto& x : ranked)
    sorted.push_back(std::move(*x.second));
  r.children = std::move(sorted);
  for (auto& child : r.children)
    order(child, path, rank);
  path.pop_back();
}

} // namespace

void use_declared_kinds(const topology& t, actor_report& root) {
  std::vector<std::string> path;
  declared_kinds(t, root, path);
}

void order_children(actor_report& root,
                    const std::function<size_t(const report_row&)>& rank) {
  std::vector<std::string> path;
  order(root, path, rank);
}

uint64_t total_lost(const actor_report& root) {
  uint64_t result = root.lost + root.unconfirmed;
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
