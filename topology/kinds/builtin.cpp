#include "troupe/topology/kinds/builtin.hpp"

namespace troupe {

void register_builtin_kinds(kind_registry&) {
  // The built-in kinds are added here as they are written.
}

} // namespace troupe
