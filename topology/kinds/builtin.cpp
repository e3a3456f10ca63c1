#include "troupe/topology/kinds/builtin.hpp"

namespace troupe {

void register_builtin_kinds(kind_registry& registry) {
  kinds::add_source_kinds(registry);
  kinds::add_work_kinds(registry);
  kinds::add_sink_kinds(registry);
  kinds::add_service_kinds(registry);
  kinds::add_pattern_kinds(registry);
  kinds::add_composite_kinds(registry);
}

} // namespace troupe
