#include "troupe/topology/topology.hpp"

namespace troupe {

const actor_decl* topology::find_actor(const std::string& name) const {
  for (auto& a : actors)
    if (a.name == name)
      return &a;
  return nullptr;
}

const supervisor_decl*
topology::find_supervisor(const std::string& name) const {
  if (name == root.name)
    return &root;
  for (auto& s : supervisors)
    if (s.name == name)
      return &s;
  return nullptr;
}

const node_decl* topology::find_node(const std::string& name) const {
  for (auto& n : nodes)
    if (n.name == name)
      return &n;
  return nullptr;
}

std::string topology::home_node() const {
  if (!root.node.empty())
    return root.node.front();
  return nodes.empty() ? std::string{} : nodes.front().name;
}

std::string topology::first_node_of_supervisor(const supervisor_decl& s) const {
  if (!s.node.empty())
    return s.node.front();
  if (s.parent.empty() || &s == &root)
    return home_node();
  // Validation excludes cycles of parents; the bound keeps a bad file from
  // looping here all the same.
  auto parent = find_supervisor(s.parent);
  for (size_t depth = 0; parent && depth <= supervisors.size(); ++depth) {
    if (!parent->node.empty())
      return parent->node.front();
    if (parent == &root || parent->parent.empty())
      break;
    parent = find_supervisor(parent->parent);
  }
  return home_node();
}

std::string topology::first_node_of_actor(const actor_decl& a) const {
  if (!a.node.empty())
    return a.node.front();
  auto s = find_supervisor(a.supervisor);
  return s ? first_node_of_supervisor(*s) : home_node();
}

placement::~placement() = default;

} // namespace troupe
