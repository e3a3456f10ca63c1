#include "troupe/topology/topology.hpp"

#include <map>
#include <vector>

namespace troupe {

const actor_decl* topology::find_actor(const std::string& name) const {
  for (auto& a : actors)
    if (a.name == name)
      return &a;
  return nullptr;
}

bool topology::in_stream(const actor_decl& a) const {
  // Everything reachable by `next` from a source.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < actors.size(); ++i)
    index.emplace(actors[i].name, i);
  std::vector<bool> seen(actors.size(), false);
  std::vector<size_t> todo;
  for (size_t i = 0; i < actors.size(); ++i)
    if (actors[i].definition && actors[i].definition->source) {
      seen[i] = true;
      todo.push_back(i);
    }
  while (!todo.empty()) {
    auto& x = actors[todo.back()];
    todo.pop_back();
    if (x.name == a.name)
      return true;
    for (auto& name : x.next)
      if (auto j = index.find(name); j != index.end() && !seen[j->second]) {
        seen[j->second] = true;
        todo.push_back(j->second);
      }
  }
  return false;
}

} // namespace troupe
