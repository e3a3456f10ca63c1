#pragma once

// Internal: how kinds() gets the built-in kinds (docs/topology.md lists
// them, with their keys). Not installed.

#include "troupe/topology/kind.hpp"

namespace troupe {

/// Adds every built-in kind to `registry`.
void register_builtin_kinds(kind_registry& registry);

namespace builtin_kinds {

/// generator, file_lines, stdin_lines
void add_source_kinds(kind_registry& registry);
/// hash, sleep, fail, crash
void add_work_kinds(kind_registry& registry);
/// counter, file, stdout, null
void add_sink_kinds(kind_registry& registry);
/// hash_service, flaky_service, sleep_service
void add_service_kinds(kind_registry& registry);
/// batcher, limiter, breaker, pool, fanout, retry, timeout
void add_pattern_kinds(kind_registry& registry);
/// join, state, state_count, blocking, blocking_hash
void add_composite_kinds(kind_registry& registry);

} // namespace builtin_kinds

} // namespace troupe
