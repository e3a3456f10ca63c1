#pragma once

// Kinds for the topology tests, in a registry of their own (the built-in
// kinds are tested with their own files):
//   test_source   source of `count` integers 0..count-1 (count 0..1e9,
//                 default 10; rate as a rate, read but unused)
//   test_stage    passes items on; `factor` 1..100 (unused)
//   test_sink     counts items into sink_items; `expect` 0..1e9 (unused)
//   test_service  answers an integer request with the same integer; `delay`
//                 a duration 0..1h (unused)
//   test_front    a stage in front of exactly one service, which it also
//                 answers for; `timeout` 1ms..1h (unused)
//   test_multi    a sink in front of 1 to 3 services
//   test_keyed    a stage in front of exactly one service, a test_service
//   test_gate     a stage that may stand in front of one service, and
//                 answers requests only then (as a limiter)
//   test_loop     a stage that may be part of a cycle
//   test_pool     a service made of `worker = { kind = ... }`

#include <troupe/actors/stage.hpp>
#include <troupe/topology/kind.hpp>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace troupe::test {

struct test_counters {
  std::atomic<uint64_t> sink_items{0};
  std::atomic<uint64_t> service_calls{0};
};

inline actor_starter pass_through() {
  return [](const spawn_context& ctx, const wiring& w) {
    return spawn_stage(ctx, w.links, [](item& x, emitter& out) { out.push(x); });
  };
}

inline kind_registry
test_registry(std::shared_ptr<test_counters> counters
              = std::make_shared<test_counters>()) {
  using namespace std::chrono_literals;
  kind_registry r;
  r.add(source_kind("test_source", "integers", [](kind_config& c) {
    auto count = static_cast<uint64_t>(c.integer("count", 10, 0, 1'000'000'000));
    c.rate("rate", 1000, 0.001, 1e9);
    return actor_starter{[count](const spawn_context& ctx, const wiring& w) {
      auto next = std::make_shared<uint64_t>(0);
      return spawn_source(ctx, w.links, [count, next](emitter& out, size_t max) {
        for (size_t k = 0; k < max && *next < count; ++k)
          out.push(caf::make_message((*next)++));
        return *next < count;
      });
    }};
  }));
  r.add(stage_kind("test_stage", "passes items on", [](kind_config& c) {
    c.integer("factor", 1, 1, 100);
    return pass_through();
  }));
  r.add(sink_kind("test_sink", "counts items", [counters](kind_config& c) {
    c.integer("expect", 0, 0, 1'000'000'000);
    return actor_starter{[counters](const spawn_context& ctx, const wiring& w) {
      return spawn_stage(ctx, w.links, [counters](item&, emitter&) {
        ++counters->sink_items;
      });
    }};
  }));
  r.add(service_kind("test_service", "echoes integers", [counters](kind_config& c) {
    c.duration("delay", 0s, 0s, 1h);
    return actor_starter{[counters](const spawn_context& ctx, const wiring&) {
      // counters as a spawn argument: CAF 0.17 trips UBSan when a spawned
      // function takes none.
      auto echo = [](std::shared_ptr<test_counters> counters) -> caf::behavior {
        return {[counters](uint64_t x) {
          ++counters->service_calls;
          return x;
        }};
      };
      return ctx.system().spawn(echo, counters);
    }};
  }));
  auto front = stage_kind("test_front", "in front of a service", [](kind_config& c) {
    c.duration("timeout", 1s, 1ms, 1h);
    return pass_through();
  });
  front.answers_requests = true;
  front.min_services = 1;
  front.max_services = 1;
  r.add(std::move(front));
  auto multi = sink_kind("test_multi", "in front of services", [](kind_config&) {
    return pass_through();
  });
  multi.min_services = 1;
  multi.max_services = 3;
  r.add(std::move(multi));
  auto keyed = stage_kind("test_keyed", "in front of a test_service", [](kind_config&) {
    return pass_through();
  });
  keyed.min_services = 1;
  keyed.max_services = 1;
  keyed.service_kinds = {"test_service"};
  r.add(std::move(keyed));
  auto gate = stage_kind("test_gate", "maybe in front of a service", [](kind_config&) {
    return pass_through();
  });
  gate.answers_requests = true;
  gate.answers_only_with_service = true;
  gate.min_services = 0;
  gate.max_services = 1;
  r.add(std::move(gate));
  auto loop = stage_kind("test_loop", "may loop", [](kind_config&) {
    return pass_through();
  });
  loop.allows_cycles = true;
  r.add(std::move(loop));
  r.add(service_kind("test_pool", "workers", [](kind_config& c) {
    auto worker = c.service_factory("worker", true);
    return actor_starter{[worker](const spawn_context& ctx, const wiring&) {
      return worker(ctx);
    }};
  }));
  return r;
}

} // namespace troupe::test
