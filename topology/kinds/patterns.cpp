// The patterns of patterns/ that work on a stream, in front of a service, or
// both: batcher, limiter, breaker, pool, fanout, retry, timeout.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"
#include "troupe/topology/topology.hpp"

#include "troupe/patterns/batcher.hpp"
#include "troupe/patterns/breaker.hpp"
#include "troupe/patterns/fanout.hpp"
#include "troupe/patterns/limiter.hpp"
#include "troupe/patterns/pool.hpp"
#include "troupe/patterns/retry.hpp"
#include "troupe/patterns/timeout.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace troupe::builtin_kinds {

namespace {

using namespace std::chrono_literals;

constexpr caf::timespan day = std::chrono::hours(24);

/// Which of the patterns' shapes a kind has.
enum class shape {
  stream_or_front, ///< a stage in a stream, in front of a service, or both
  front,           ///< in front of a service, answering requests only
};

kind_definition pattern_kind(std::string name, std::string summary, shape s,
                             size_t min_services, size_t max_services,
                             kind_parser parse) {
  kind_definition def;
  def.name = std::move(name);
  def.summary = std::move(summary);
  def.takes_input = s == shape::stream_or_front;
  def.emits = s == shape::stream_or_front;
  def.answers_requests = true;
  def.min_services = min_services;
  def.max_services = max_services;
  def.default_restart = s == shape::front ? restart_type::permanent
                                          : restart_type::transient;
  def.graph_group = "pattern";
  def.parse = std::move(parse);
  return def;
}

/// The service the pattern stands in front of; none if the file names none.
caf::actor service_of(const wiring& w) {
  return w.services.empty() ? caf::actor{} : w.services.front();
}

actor_starter parse_batcher(kind_config& cfg) {
  batcher_config x;
  x.size = static_cast<size_t>(cfg.integer("size", 256, 1, 1'000'000));
  x.timeout = cfg.duration("timeout", x.timeout, 1us, 1h);
  x.max_bytes = static_cast<size_t>(cfg.integer("max_bytes", 0, 0, 1LL << 32));
  check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring& w) {
    return spawn_batcher(ctx, x, w.links);
  };
}

actor_starter parse_limiter(kind_config& cfg) {
  limiter_config x;
  cfg.require("rate");
  x.rate = cfg.rate("rate", x.rate, 0.001, 1e9);
  // A tenth of a second's worth by default: paced, with little burst.
  x.burst = cfg.number("burst", std::max(1.0, x.rate / 10), 1, 1e9);
  auto mode = cfg.choice("mode", "delay", {"delay", "reject"});
  x.mode = mode == "reject" ? limit_mode::reject : limit_mode::delay;
  x.max_queue = static_cast<size_t>(cfg.integer("max_queue", 1024, 1, 10'000'000));
  check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring& w) {
    return spawn_limiter(ctx, x, pattern_links(w), service_of(w));
  };
}

actor_starter parse_breaker(kind_config& cfg) {
  breaker_config x;
  x.consecutive_failures = static_cast<uint32_t>(
    cfg.integer("consecutive_failures", x.consecutive_failures, 1, 1'000'000));
  x.failure_rate = cfg.number("failure_rate", 0, 0, 1);
  x.window_size = static_cast<uint32_t>(
    cfg.integer("window_size", x.window_size, 1, 1'000'000));
  x.minimum_calls = static_cast<uint32_t>(
    cfg.integer("minimum_calls", std::min(x.minimum_calls, x.window_size), 1, 1'000'000));
  if (x.minimum_calls > x.window_size)
    cfg.fail("minimum_calls", "'minimum_calls' (" + std::to_string(x.minimum_calls)
                                + ") must not exceed 'window_size' ("
                                + std::to_string(x.window_size) + ")");
  x.call_timeout = cfg.duration("call_timeout", x.call_timeout, 1us, day);
  x.open_timeout = cfg.duration("open_timeout", x.open_timeout, 1us, day);
  x.half_open_probes = static_cast<uint32_t>(
    cfg.integer("half_open_probes", x.half_open_probes, 1, 1'000'000));
  x.backoff_multiplier = cfg.number("backoff_multiplier", x.backoff_multiplier, 1, 1000);
  x.max_open_timeout = cfg.duration("max_open_timeout",
                                    std::max(x.max_open_timeout, x.open_timeout), 1us, day);
  if (x.max_open_timeout < x.open_timeout)
    cfg.fail("max_open_timeout", "'max_open_timeout' must be at least 'open_timeout'");
  x.max_concurrent_calls = static_cast<uint32_t>(
    cfg.integer("max_concurrent_calls", x.max_concurrent_calls, 1, 1'000'000));
  auto when_open = cfg.choice("when_open", "hold", {"hold", "reject"});
  x.when_open = when_open == "reject" ? breaker_config::when_open_policy::reject
                                      : breaker_config::when_open_policy::hold;
  if (cfg.ok())
    check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring& w) {
    return spawn_breaker(ctx, x, service_of(w), pattern_links(w));
  };
}

actor_starter parse_pool(kind_config& cfg) {
  pool_config x;
  x.worker = cfg.service_factory("worker", true);
  x.workers = static_cast<uint32_t>(cfg.integer("workers", x.workers, 1, 10'000));
  auto policy = cfg.choice("policy", "round_robin", {"round_robin", "least_loaded", "pull"});
  x.policy = policy == "pull"           ? dispatch_policy::pull
             : policy == "least_loaded" ? dispatch_policy::least_loaded
                                        : dispatch_policy::round_robin;
  x.queue_capacity = static_cast<size_t>(
    cfg.integer("queue_capacity", 1024, 1, 10'000'000));
  x.prefetch = static_cast<uint32_t>(cfg.integer("prefetch", x.prefetch, 1, 1'000'000));
  if (cfg.has("prefetch") && x.policy != dispatch_policy::pull)
    cfg.fail("prefetch", "'prefetch' applies to policy \"pull\" only");
  x.max_attempts = static_cast<uint32_t>(cfg.integer("max_attempts", x.max_attempts, 1, 1000));
  x.job_timeout = cfg.duration("job_timeout", caf::timespan{0}, caf::timespan{0}, day);
  x.worker_restarts = read_intensity(cfg);
  auto worker_nodes = cfg.node_names("worker_nodes");
  x.rejoin_interval = cfg.duration("rejoin_interval", x.rejoin_interval, 1ms, day);
  if (cfg.ok())
    check_config(cfg, x);
  return [x, worker_nodes](const spawn_context& ctx, const wiring& w) {
    if (worker_nodes.empty() || !w.placement)
      return spawn_pool(ctx, x, pattern_links(w));
    auto y = x;
    y.worker = w.placement->spread(worker_nodes, ctx.name(), "worker", x.worker);
    return spawn_pool(ctx, y, pattern_links(w));
  };
}

actor_starter parse_fanout(kind_config& cfg) {
  fanout_config x;
  bool fixed = cfg.has("service");
  child_factory processor;
  if (cfg.has("processor"))
    processor = cfg.service_factory("processor", true);
  if (fixed && cfg.has("processor"))
    cfg.fail("processor", "set either 'service' (fixed processors) or 'processor' "
                          "(one per item), not both");
  else if (!fixed && !cfg.has("processor"))
    cfg.fail("a fanout needs 'service' (fixed processors) or 'processor' "
             "(an inline service table, one actor per item)");
  x.max_in_flight = static_cast<uint32_t>(
    cfg.integer("max_in_flight", x.max_in_flight, 1, 1'000'000));
  auto order = cfg.choice("order", "input", {"input", "completion"});
  x.order = order == "completion" ? fanout_config::order_policy::completion
                                  : fanout_config::order_policy::input;
  x.call_timeout = cfg.duration("call_timeout", caf::timespan{0}, caf::timespan{0}, day);
  return [x, processor](const spawn_context& ctx, const wiring& w) {
    auto y = x;
    if (processor) {
      // Per-item actors are not supervised: the fan-out kills each once it
      // answered.
      y.spawn_processor = [processor](caf::actor_system& sys) {
        return processor(spawn_context{sys});
      };
    } else {
      y.processors = w.services;
    }
    return spawn_fanout(ctx, std::move(y), pattern_links(w));
  };
}

actor_starter parse_retry(kind_config& cfg) {
  retry_config x;
  x.max_attempts = static_cast<uint32_t>(cfg.integer("max_attempts", x.max_attempts, 1, 1000));
  x.initial_backoff = cfg.duration("initial_backoff", x.initial_backoff, 1us, day);
  x.multiplier = cfg.number("multiplier", x.multiplier, 1, 1000);
  x.max_backoff = cfg.duration("max_backoff", std::max(x.max_backoff, x.initial_backoff),
                               1us, day);
  if (x.max_backoff < x.initial_backoff)
    cfg.fail("max_backoff", "'max_backoff' must be at least 'initial_backoff'");
  auto jitter = cfg.choice("jitter", "full", {"none", "full", "equal"});
  x.jitter = jitter == "none"    ? jitter_mode::none
             : jitter == "equal" ? jitter_mode::equal
                                 : jitter_mode::full;
  x.seed = static_cast<uint64_t>(cfg.integer("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  x.attempt_timeout = cfg.duration("attempt_timeout", x.attempt_timeout, 1us, day);
  x.use_budget = cfg.boolean("budget", true);
  x.budget.window = cfg.duration("budget_window", x.budget.window, 1ms, day);
  x.budget.min_retries_per_second = cfg.number("min_retries_per_second",
                                               x.budget.min_retries_per_second, 0, 1e9);
  x.budget.retry_ratio = cfg.number("retry_ratio", x.budget.retry_ratio, 0, 1000);
  x.max_concurrent_calls = static_cast<uint32_t>(
    cfg.integer("max_concurrent_calls", x.max_concurrent_calls, 1, 1'000'000));
  if (cfg.ok())
    check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring& w) {
    return spawn_retry(ctx, x, service_of(w), pattern_links(w));
  };
}

actor_starter parse_timeout(kind_config& cfg) {
  timeout_config x;
  x.timeout = cfg.duration("timeout", x.timeout, 1us, day);
  x.late_window = cfg.duration("late_window", x.late_window, caf::timespan{0}, day);
  check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring& w) {
    return spawn_timeout(ctx, x, service_of(w));
  };
}

} // namespace

void add_pattern_kinds(kind_registry& registry) {
  auto batcher = pattern_kind("batcher", "collects items into batches by size or timeout",
                              shape::stream_or_front, 0, 0, parse_batcher);
  // A batcher takes no requests: it is a stream stage only.
  batcher.answers_requests = false;
  registry.add(std::move(batcher));
  auto limiter = pattern_kind("limiter",
                              "lets items or requests through at a rate (token bucket)",
                              shape::stream_or_front, 0, 1, parse_limiter);
  // Without a service it limits a stream; a request would find no one to
  // pass it to.
  limiter.answers_only_with_service = true;
  registry.add(std::move(limiter));
  registry.add(pattern_kind("breaker",
                            "circuit breaker in front of a service (closed, open, half_open)",
                            shape::stream_or_front, 1, 1, parse_breaker));
  registry.add(pattern_kind("pool", "a pool of supervised workers sharing jobs",
                            shape::stream_or_front, 0, 0, parse_pool));
  registry.add(pattern_kind("fanout",
                            "calls processors for items with bounded concurrency, gathers results",
                            shape::stream_or_front, 0, 64, parse_fanout));
  registry.add(pattern_kind("retry",
                            "retries failed calls to a service with backoff and a budget",
                            shape::stream_or_front, 1, 1, parse_retry));
  registry.add(pattern_kind("timeout", "answers call_timeout when a service is late",
                            shape::front, 1, 1, parse_timeout));
}

} // namespace troupe::builtin_kinds
