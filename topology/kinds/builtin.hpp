#pragma once

// Internal: how kinds() gets the built-in kinds (docs/topology.md lists
// them). Not installed.

#include "troupe/topology/kind.hpp"

namespace troupe {

/// Adds every built-in kind to `registry`.
void register_builtin_kinds(kind_registry& registry);

} // namespace troupe
