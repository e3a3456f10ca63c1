#include "troupe/topology/topology.hpp"

#include <deque>
#include <set>

namespace troupe {

const actor_decl* topology::find_actor(const std::string& name) const {
  for (auto& a : actors)
    if (a.name == name)
      return &a;
  return nullptr;
}

bool topology::in_stream(const actor_decl& a) const {
  // Everything reachable by `next` from a source.
  std::set<std::string> seen;
  std::deque<const actor_decl*> todo;
  for (auto& x : actors)
    if (x.definition && x.definition->source) {
      seen.insert(x.name);
      todo.push_back(&x);
    }
  while (!todo.empty()) {
    auto x = todo.front();
    todo.pop_front();
    if (x->name == a.name)
      return true;
    for (auto& name : x->next)
      if (auto y = find_actor(name); y && seen.insert(name).second)
        todo.push_back(y);
  }
  return false;
}

} // namespace troupe
