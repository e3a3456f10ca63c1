#pragma once

// Bootstrapping a CAF actor system with everything troupe needs registered.

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace troupe {

/// System-wide settings. They live in the CAF config under `troupe.*` (so an
/// INI file or the command line can set them too) and are read back with the
/// accessors below.
struct system_settings {
  /// Scheduler worker threads; 0 means one per core (CAF 0.17 itself would
  /// start at least 4, which costs latency on small machines).
  size_t scheduler_threads = 0;
  /// Window of a stream link when the stage config does not set one.
  uint32_t default_credit = 128;
  /// How long a graceful shutdown may take in all before the rest is killed.
  caf::timespan shutdown_deadline = std::chrono::seconds(10);
  /// Runs troupe's work-stealing scheduler (docs/scheduler.md); false runs
  /// CAF's as it is. A config that picks another `scheduler.policy`
  /// (sharing, testing) gets that one either way.
  bool troupe_scheduler = true;
};

/// Registers troupe's message types and error category in `cfg`, and fills in
/// `settings` for every `troupe.*` / `scheduler.max-threads` key that `cfg`
/// does not set already. Call before the actor_system is constructed.
void register_message_types(caf::actor_system_config& cfg);
void apply_settings(caf::actor_system_config& cfg, const system_settings& settings);

uint32_t default_credit(const caf::actor_system& sys);
caf::timespan shutdown_deadline(const caf::actor_system& sys);

/// A CAF actor system with troupe registered, running troupe's scheduler
/// (docs/scheduler.md). Converts to caf::actor_system&, so it can be passed
/// wherever a spawn function wants the system.
class system {
public:
  explicit system(system_settings settings = {});

  /// Uses a config the program parsed itself (command line, INI file); `cfg`
  /// must outlive the system. Settings it leaves unset get their defaults.
  explicit system(caf::actor_system_config& cfg);

  system(const system&) = delete;
  system& operator=(const system&) = delete;

  caf::actor_system& actors() noexcept {
    return actors_;
  }

  operator caf::actor_system&() noexcept {
    return actors_;
  }

private:
  static caf::actor_system_config& prepare(caf::actor_system_config& cfg,
                                           const system_settings& settings);

  std::unique_ptr<caf::actor_system_config> owned_config_;
  caf::actor_system actors_;
};

} // namespace troupe
