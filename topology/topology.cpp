#include "troupe/topology/topology.hpp"

namespace troupe {

const actor_decl* topology::find_actor(const std::string& name) const {
  for (auto& a : actors)
    if (a.name == name)
      return &a;
  return nullptr;
}

} // namespace troupe
