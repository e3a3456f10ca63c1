// Kinds that call several services or a special one: join, state,
// state_count, blocking, blocking_hash.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"

#include "troupe/actors/request.hpp"
#include "troupe/patterns/blocking.hpp"
#include "troupe/patterns/join.hpp"
#include "troupe/patterns/state.hpp"

#include <caf/duration.hpp>
#include <caf/make_message.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace troupe::builtin_kinds {

namespace {

using namespace std::chrono_literals;

constexpr caf::timespan day = std::chrono::hours(24);

kind_definition stream_kind(std::string name, std::string summary, std::string group,
                            size_t min_services, size_t max_services, kind_parser parse) {
  auto def = stage_kind(std::move(name), std::move(summary), std::move(parse));
  def.min_services = min_services;
  def.max_services = max_services;
  def.graph_group = std::move(group);
  return def;
}

kind_definition front_kind(std::string name, std::string summary, kind_parser parse) {
  auto def = service_kind(std::move(name), std::move(summary), std::move(parse));
  def.graph_group = "pattern";
  return def;
}

/// Sends each item to every service at once and emits a batch of their
/// answers, in service order (a failed branch's slot holds its caf::error in
/// mode all; in mode first_error the item fails, counted as an error).
class join_stage final : public ordered_calls {
public:
  join_stage(std::vector<caf::actor> services, join_mode mode, caf::timespan timeout,
             size_t max_in_flight)
    : ordered_calls(max_in_flight),
      services_(std::move(services)),
      mode_(mode),
      timeout_(timeout) {
  }

protected:
  void call(item x, completion done) override {
    std::vector<join_branch> branches;
    for (auto& s : services_)
      branches.push_back(join_branch{s, x.to_message(), false});
    auto self = control().self();
    if (mode_ == join_mode::all) {
      join_all(self, std::move(branches), timeout_, [done](join_results& results) {
        batch b;
        for (auto& r : results)
          b.items.push_back(r ? std::move(*r) : caf::make_message(std::move(r.error())));
        done(caf::make_message(std::move(b)));
      });
    } else {
      try_join(
        self, std::move(branches), timeout_,
        [done](std::vector<item>& values) {
          done(caf::make_message(batch{std::move(values)}));
        },
        [done](caf::error& e) { done(std::move(e)); });
    }
  }

private:
  std::vector<caf::actor> services_;
  join_mode mode_;
  caf::timespan timeout_;
};

/// Adds 1 to a counter key of a state service per item (an update, atomic
/// on the key's shard), then emits the item unchanged.
class state_count_stage final : public ordered_calls {
public:
  state_count_stage(caf::actor state, std::string key, bool by_item, caf::timespan timeout,
                    size_t max_in_flight)
    : ordered_calls(max_in_flight),
      state_(std::move(state)),
      key_(std::move(key)),
      by_item_(by_item),
      timeout_(timeout) {
  }

protected:
  void call(item x, completion done) override {
    auto key = by_item_ ? key_ + ":" + item_text(x) : key_;
    auto add_one = [](const state_value& current) {
      uint64_t n = 0;
      if (current.found) {
        if (!current.value.match_elements<uint64_t>())
          throw std::runtime_error("state_count: the key holds something else than a count");
        n = current.value.get_as<uint64_t>(0);
      }
      return present(make_item(n + 1));
    };
    request_any(
      control().self(), state_, caf::duration{timeout_},
      state_update(std::move(key), add_one),
      [done, x](caf::message&) { done(x); },
      [done](caf::error& e) { done(std::move(e)); });
  }

private:
  caf::actor state_;
  std::string key_;
  bool by_item_;
  caf::timespan timeout_;
};

/// Hashes each item `rounds` times on a thread of a blocking executor, so
/// that long work holds no scheduler thread; emits the item or its hash.
class blocking_hash_stage final : public ordered_calls {
public:
  blocking_hash_stage(caf::actor executor, uint64_t rounds, bool emit_hash,
                      caf::timespan timeout, size_t max_in_flight)
    : ordered_calls(max_in_flight),
      executor_(std::move(executor)),
      rounds_(rounds),
      emit_hash_(emit_hash),
      timeout_(timeout) {
  }

protected:
  void call(item x, completion done) override {
    auto rounds = rounds_;
    auto emit_hash = emit_hash_;
    run_blocking(
      control().self(), executor_, [x, rounds] { return hash_item(x, rounds); },
      [done, x, emit_hash](uint64_t& h) {
        done(emit_hash ? make_item(h) : x);
      },
      [done](caf::error& e) { done(std::move(e)); }, timeout_);
  }

private:
  caf::actor executor_;
  uint64_t rounds_;
  bool emit_hash_;
  caf::timespan timeout_;
};

size_t read_max_in_flight(kind_config& cfg, int64_t fallback) {
  return static_cast<size_t>(cfg.integer("max_in_flight", fallback, 1, 1'000'000));
}

actor_starter parse_join(kind_config& cfg) {
  join_config x;
  auto mode = cfg.choice("mode", "all", {"all", "first_error"});
  x.mode = mode == "first_error" ? join_mode::first_error : join_mode::all;
  // Every branch is a shared service here: without a deadline, one that
  // dropped a request (restarted while holding it) would hold the item.
  x.timeout = cfg.duration("timeout", 5s, 1us, day);
  auto max_in_flight = read_max_in_flight(cfg, 16);
  check_config(cfg, x);
  return [x, max_in_flight](const spawn_context& ctx, const wiring& w) {
    return spawn_stage(ctx, w.links,
                       std::make_unique<join_stage>(w.services, x.mode, x.timeout,
                                                    max_in_flight));
  };
}

actor_starter parse_state(kind_config& cfg) {
  state_config x;
  x.shards = static_cast<uint32_t>(cfg.integer("shards", x.shards, 1, 1024));
  x.hold_timeout = cfg.duration("hold_timeout", x.hold_timeout, 1us, day);
  x.restart_buffer = static_cast<size_t>(
    cfg.integer("restart_buffer", 1024, 1, 10'000'000));
  x.max_deferred = static_cast<size_t>(cfg.integer("max_deferred", 10'000, 1, 100'000'000));
  x.max_write_wait = cfg.duration("max_write_wait", x.max_write_wait, 1us, day);
  x.shard_restarts = read_intensity(cfg);
  if (cfg.ok())
    check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring&) { return spawn_state(ctx, x); };
}

actor_starter parse_state_count(kind_config& cfg) {
  auto key = cfg.string("key", "count");
  auto by_item = cfg.boolean("by_item", false);
  auto timeout = cfg.duration("timeout", 5s, 1us, day);
  auto max_in_flight = read_max_in_flight(cfg, 16);
  return [=](const spawn_context& ctx, const wiring& w) {
    return spawn_stage(ctx, w.links,
                       std::make_unique<state_count_stage>(w.services.front(), key, by_item,
                                                           timeout, max_in_flight));
  };
}

actor_starter parse_blocking(kind_config& cfg) {
  blocking_config x;
  x.max_threads = static_cast<uint32_t>(cfg.integer("max_threads", x.max_threads, 1, 1024));
  x.queue_capacity = static_cast<size_t>(
    cfg.integer("queue_capacity", 1024, 0, 10'000'000));
  x.job_timeout = cfg.duration("job_timeout", caf::timespan{0}, caf::timespan{0}, day);
  x.worker_restarts = read_intensity(cfg);
  if (cfg.ok())
    check_config(cfg, x);
  return [x](const spawn_context& ctx, const wiring&) {
    return spawn_blocking_executor(ctx, x);
  };
}

actor_starter parse_blocking_hash(kind_config& cfg) {
  auto rounds = static_cast<uint64_t>(cfg.integer("rounds", 100'000, 0, 1'000'000'000'000));
  auto emit_hash = cfg.choice("emit", "item", {"item", "hash"}) == "hash";
  auto timeout = cfg.duration("timeout", caf::timespan{0}, caf::timespan{0}, day);
  auto max_in_flight = read_max_in_flight(cfg, 4);
  return [=](const spawn_context& ctx, const wiring& w) {
    return spawn_stage(ctx, w.links,
                       std::make_unique<blocking_hash_stage>(w.services.front(), rounds,
                                                             emit_hash, timeout,
                                                             max_in_flight));
  };
}

} // namespace

void add_composite_kinds(kind_registry& registry) {
  registry.add(stream_kind("join",
                           "sends each item to every service at once, emits a batch of answers",
                           "pattern", 2, 64, parse_join));
  registry.add(front_kind("state", "a sharded key-value state answering get/set/cas/update",
                          parse_state));
  auto state_count = stream_kind("state_count",
                                 "adds 1 to a counter key of a state service per item, "
                                 "passes it on",
                                 "stage", 1, 1, parse_state_count);
  state_count.service_kinds = {"state"};
  registry.add(std::move(state_count));
  registry.add(front_kind("blocking", "an executor running blocking jobs on threads of its own",
                          parse_blocking));
  auto blocking_hash = stream_kind("blocking_hash",
                                   "hashes each item on a blocking executor's thread, "
                                   "passes it on",
                                   "stage", 1, 1, parse_blocking_hash);
  blocking_hash.service_kinds = {"blocking"};
  registry.add(std::move(blocking_hash));
}

} // namespace troupe::builtin_kinds
