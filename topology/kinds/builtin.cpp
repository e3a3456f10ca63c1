#include "troupe/topology/kinds/builtin.hpp"

namespace troupe {

void register_builtin_kinds(kind_registry& registry) {
  builtin_kinds::add_source_kinds(registry);
  builtin_kinds::add_work_kinds(registry);
  builtin_kinds::add_sink_kinds(registry);
  builtin_kinds::add_service_kinds(registry);
  builtin_kinds::add_pattern_kinds(registry);
  builtin_kinds::add_composite_kinds(registry);
}

} // namespace troupe
