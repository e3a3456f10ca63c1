#include "troupe/actors/system.hpp"

#include "troupe/actors/detail/scheduler.hpp"
#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"

#include <caf/config_value.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/settings.hpp>

#include <thread>

namespace troupe {

namespace {

constexpr char credit_key[] = "troupe.default-credit";
constexpr char deadline_key[] = "troupe.shutdown-deadline";
constexpr char threads_key[] = "scheduler.max-threads";
constexpr char scheduler_key[] = "troupe.scheduler";

size_t cores() {
  auto n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

} // namespace

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<item>("troupe::item");
  cfg.add_message_type<batch>("troupe::batch");
  cfg.add_message_type<link_open>("troupe::link_open");
  cfg.add_message_type<link_items>("troupe::link_items");
  cfg.add_message_type<demand>("troupe::demand");
  cfg.add_message_type<end_of_stream>("troupe::end_of_stream");
  cfg.add_message_type<state_change>("troupe::state_change");
  cfg.add_message_type<stop_reason>("troupe::stop_reason");
  cfg.add_message_type<actor_report>("troupe::actor_report");
  cfg.add_message_type<std::vector<actor_report>>(
    "std::vector<troupe::actor_report>");
  cfg.add_message_type<state_value>("troupe::state_value");
  cfg.add_message_type<std::vector<state_value>>("std::vector<troupe::state_value>");
  cfg.add_message_type<item_failure>("troupe::item_failure");
  // The templated add_error_category<T> of CAF 0.17.6 does not compile.
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& context) {
    auto result = "troupe::" + to_string(static_cast<errc>(code));
    if (!context.empty())
      result += " (" + caf::deep_to_string(context) + ")";
    return result;
  });
}

void apply_settings(caf::actor_system_config& cfg,
                    const system_settings& settings) {
  // caf::put_missing, not cfg.set: set() rejects keys that no option
  // declares, and troupe's keys are not CAF options.
  auto& xs = cfg.content;
  auto threads = settings.scheduler_threads;
  caf::put_missing(xs, threads_key, threads == 0 ? cores() : threads);
  caf::put_missing(xs, credit_key,
                   static_cast<uint64_t>(settings.default_credit));
  caf::put_missing(xs, deadline_key, settings.shutdown_deadline);
  caf::put_missing(xs, scheduler_key, settings.troupe_scheduler);
}

uint32_t default_credit(const caf::actor_system& sys) {
  return static_cast<uint32_t>(caf::get_or(
    sys.config(), credit_key, uint64_t{system_settings{}.default_credit}));
}

caf::timespan shutdown_deadline(const caf::actor_system& sys) {
  return caf::get_or(sys.config(), deadline_key,
                     system_settings{}.shutdown_deadline);
}

caf::actor_system_config& system::prepare(caf::actor_system_config& cfg,
                                          const system_settings& settings) {
  register_message_types(cfg);
  apply_settings(cfg, settings);
  if (caf::get_or(cfg, scheduler_key, true))
    detail::use_troupe_scheduler(cfg);
  return cfg;
}

system::system(system_settings settings)
  : owned_config_(std::make_unique<caf::actor_system_config>()),
    actors_(prepare(*owned_config_, settings)) {
  // nop
}

system::system(caf::actor_system_config& cfg)
  : actors_(prepare(cfg, system_settings{})) {
  // nop
}

} // namespace troupe
