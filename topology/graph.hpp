#pragma once

// `troupe graph`: a topology as Graphviz DOT.

#include "troupe/topology/topology.hpp"

#include <string>

namespace troupe {

/// Data edges (`next`, solid) and service edges (`service`, dashed) between
/// actors drawn by kind, inside one cluster per supervisor.
std::string to_dot(const topology& t);

} // namespace troupe
