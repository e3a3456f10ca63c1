#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

namespace troupe::detail {

/// Makes `cfg`'s actor system run troupe's work-stealing scheduler, unless
/// the config picks another `scheduler.policy` (sharing, testing). See
/// scheduler.cpp and docs/scheduler.md for how it differs from CAF's.
void use_troupe_scheduler(caf::actor_system_config& cfg);

/// Whether `sys` runs troupe's scheduler.
bool runs_troupe_scheduler(caf::actor_system& sys);

} // namespace troupe::detail
