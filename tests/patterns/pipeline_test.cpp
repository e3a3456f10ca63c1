// The pipeline: order through map, filter and flat-map steps; a step that
// crashes restarted with every item accounted for; drain and cancel; input
// from an outside upstream; a pipeline nested under a supervisor; memory that
// stays flat behind a slow last step; config validation.

#include "streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/patterns/pipeline.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <atomic>
#include <algorithm>
#include <fstream>
#include <stdexcept>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

/// Emits 0 .. limit-1 (`endless`: never ends by itself).
pipeline_step count_step(uint64_t limit = endless) {
  auto n = std::make_shared<uint64_t>(0);
  return source_step("source", [n, limit](emitter& out, size_t max) {
    for (size_t k = 0; k < max && *n < limit; ++k)
      out.push(caf::make_message((*n)++));
    return *n < limit;
  });
}

pipeline_step reporting_sink_step(caf::actor observer) {
  return actor_step("sink", [observer](const spawn_context& ctx, stage_config links) {
    return spawn_stage(ctx, std::move(links), std::make_unique<reporting_sink>(observer));
  });
}

pipeline_step summing_sink_step(caf::actor observer, uint64_t threshold = endless) {
  return actor_step("sink", [observer, threshold](const spawn_context& ctx,
                                                  stage_config links) {
    return spawn_stage(ctx, std::move(links),
                       std::make_unique<summing_sink>(observer, threshold));
  });
}

pipeline_step times_three_plus_one() {
  return function_step("transform", [](item& x, emitter& out) {
    out.push(caf::make_message(x.get_as<uint64_t>(0) * 3 + 1));
  });
}

/// Received items (sink_item_atom) until the sink's end, as integers.
std::vector<uint64_t> receive_all(system_fixture& f) {
  std::vector<uint64_t> result;
  for (bool done = false; !done;) {
    f.self->receive(
      [&](sink_item_atom, item& x, int64_t) { result.push_back(x.get_as<uint64_t>(0)); },
      [&](sink_end_atom, uint64_t) { done = true; },
      caf::after(patience) >> [&] { BOOST_FAIL("the sink never ended"); });
  }
  return result;
}

actor_report receive_report(system_fixture& f) {
  return f.receive_one<actor_report>("the pipeline's final report");
}

/// A size in KiB from /proc/self/status, e.g. the peak resident set (VmHWM).
uint64_t status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0)
      return std::stoull(line.substr(key.size() + 1));
  BOOST_FAIL("no " + key + " in /proc/self/status");
  return 0;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(pipeline, system_fixture)

BOOST_AUTO_TEST_CASE(pipeline_preserves_order_through_filter_map_and_flat_map) {
  pipeline_config cfg;
  cfg.credit = 16; // many small windows: order must hold across chunks
  cfg.steps = {
    count_step(2000),
    function_step("evens", [](item& x, emitter& out) {
      if (x.get_as<uint64_t>(0) % 2 == 0)
        out.push(x);
    }),
    function_step("tenfold", [](item& x, emitter& out) {
      out.push(caf::make_message(x.get_as<uint64_t>(0) * 10));
    }),
    function_step("pairs", [](item& x, emitter& out) {
      auto v = x.get_as<uint64_t>(0);
      out.push(caf::make_message(v));
      out.push(caf::make_message(v + 1));
    }),
    reporting_sink_step(self),
  };
  auto pipe = spawn_pipeline(spawn_context{sys.actors()}.report_to(caf::actor{self}), cfg);
  self->monitor(pipe);
  std::vector<uint64_t> expected;
  for (uint64_t i = 0; i < 2000; i += 2) {
    expected.push_back(i * 10);
    expected.push_back(i * 10 + 1);
  }
  auto got = receive_all(*this);
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
  // The stream ran dry: the pipeline stops by itself and reports.
  BOOST_CHECK(!wait_down(pipe));
  auto report = receive_report(*this);
  BOOST_TEST_MESSAGE(to_text(report));
  BOOST_CHECK(report.stopped == stop_reason::completed);
  auto evens = find_report(report, "evens");
  auto pairs = find_report(report, "pairs");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(evens && pairs && sink);
  BOOST_CHECK_EQUAL(evens->in, 2000u);
  BOOST_CHECK_EQUAL(evens->out, 1000u);
  BOOST_CHECK_EQUAL(pairs->out, 2000u);
  BOOST_CHECK_EQUAL(sink->in, 2000u);
  BOOST_CHECK_EQUAL(totals(report).lost, 0u);
}

BOOST_AUTO_TEST_CASE(pipeline_step_that_crashes_is_restarted_and_every_item_is_accounted_for) {
  constexpr uint64_t items = 50000;
  pipeline_config cfg;
  cfg.intensity = {5, 5s};
  // It fails on two items, whichever incarnation meets them.
  cfg.steps = {
    count_step(items),
    function_step("transform", [](item& x, emitter& out) {
      auto v = x.get_as<uint64_t>(0);
      if (v == 1000 || v == 30000)
        throw std::runtime_error("transform fails on " + std::to_string(v));
      out.push(caf::make_message(v * 3 + 1));
    }),
    summing_sink_step(self),
  };
  auto pipe = spawn_pipeline(spawn_context{sys.actors()}.report_to(caf::actor{self}), cfg);
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK_EQUAL(count, items - 2);
  BOOST_CHECK_EQUAL(sum, transformed_sum(items) - (1000 * 3 + 1) - (30000 * 3 + 1));
  auto report = receive_report(*this);
  BOOST_TEST_MESSAGE(to_text(report));
  auto source = find_report(report, "source");
  auto transform = find_report(report, "transform");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(source && transform && sink);
  BOOST_CHECK_EQUAL(transform->restarts, 2u);
  // Nothing lost silently: what went in came out, or is a counted error.
  BOOST_CHECK_EQUAL(source->out, items);
  BOOST_CHECK_EQUAL(transform->in, items);
  BOOST_CHECK_EQUAL(transform->errors, 2u);
  BOOST_CHECK_EQUAL(transform->dropped, 0u);
  BOOST_CHECK_EQUAL(transform->out, items - 2);
  BOOST_CHECK_EQUAL(sink->in, items - 2);
  BOOST_CHECK_EQUAL(totals(report).lost, 0u);
}

BOOST_AUTO_TEST_CASE(pipeline_drain_delivers_every_item_the_source_emitted) {
  pipeline_config cfg;
  cfg.steps = {count_step(), times_three_plus_one(), summing_sink_step(self, 1000)};
  auto pipe = spawn_pipeline(sys.actors(), cfg);
  await_progress(*this);
  auto report = request_report(pipe, caf::make_message(drain_atom::value));
  BOOST_TEST_MESSAGE(to_text(report));
  auto [count, sum] = receive_sink_done(*this);
  auto source = find_report(report, "source");
  auto transform = find_report(report, "transform");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(source && transform && sink);
  BOOST_CHECK_GE(count, 1000u);
  BOOST_CHECK_EQUAL(source->out, count);
  BOOST_CHECK_EQUAL(transform->in, count);
  BOOST_CHECK_EQUAL(sink->in, count);
  BOOST_CHECK_EQUAL(sum, transformed_sum(count));
  for (auto* r : {source, transform, sink})
    BOOST_CHECK_MESSAGE(!lost_what_it_held(r->stopped),
                        r->name + " stopped " + to_string(r->stopped));
  BOOST_CHECK_EQUAL(totals(report).dropped, 0u);
}

BOOST_AUTO_TEST_CASE(pipeline_cancel_stops_every_step_and_counts_what_was_held) {
  pipeline_config cfg;
  cfg.steps = {count_step(),
               function_step("slow", [](item& x, emitter& out) {
                 auto until = steady::now() + 20us;
                 while (steady::now() < until) {
                   // a slow step keeps items queued upstream of it
                 }
                 out.push(x);
               }),
               summing_sink_step(self, 100)};
  auto pipe = spawn_pipeline(sys.actors(), cfg);
  self->monitor(pipe);
  await_progress(*this);
  auto report = request_report(pipe, caf::make_message(cancel_atom::value));
  BOOST_TEST_MESSAGE(to_text(report));
  wait_down(pipe);
  auto source = find_report(report, "source");
  auto slow = find_report(report, "slow");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(source && slow && sink);
  for (auto* r : {source, slow, sink})
    BOOST_CHECK_MESSAGE(r->stopped == stop_reason::cancelled,
                        r->name + " stopped " + to_string(r->stopped));
  // Every item the source emitted was taken downstream, or is reported as
  // held (dropped or unconfirmed) by whoever had it.
  // (Unconfirmed items may have been consumed: hence <=, not ==.)
  BOOST_CHECK_LE(slow->in, source->out);
  BOOST_CHECK_LE(source->out, slow->in + source->dropped + source->unconfirmed);
  BOOST_CHECK_LE(sink->in, slow->out);
  BOOST_CHECK_LE(slow->out, sink->in + slow->dropped + slow->unconfirmed);
  BOOST_CHECK_GT(source->dropped + source->unconfirmed, 0u);
}

BOOST_AUTO_TEST_CASE(pipeline_takes_input_from_an_outside_upstream_and_sends_to_next) {
  auto sink = spawn_reporting_sink(sys.actors(), self);
  pipeline_config cfg;
  cfg.steps = {times_three_plus_one(),
               function_step("odd_only", [](item& x, emitter& out) {
                 if (x.get_as<uint64_t>(0) % 2 == 1)
                   out.push(x);
               })};
  cfg.next = {sink};
  auto pipe = spawn_pipeline(sys.actors(), cfg);
  self->monitor(pipe);
  manual_upstream up{self, address_of(pipe, "transform")};
  up.push(numbers(0, 10));
  up.end();
  auto got = receive_all(*this);
  std::vector<uint64_t> expected{1, 7, 13, 19, 25};
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
  BOOST_CHECK(!wait_down(pipe)); // the outside stream ended: so did the pipeline
}

BOOST_AUTO_TEST_CASE(pipeline_fed_from_outside_drains_every_step_once_its_upstream_ends) {
  auto sink = spawn_reporting_sink(sys.actors(), self);
  pipeline_config cfg;
  cfg.steps = {times_three_plus_one(),
               function_step("odd_only", [](item& x, emitter& out) {
                 if (x.get_as<uint64_t>(0) % 2 == 1)
                   out.push(x);
               })};
  // Two upstreams expected and one comes: only the drain lets the first step
  // end without the other. Were the last step drained first, it would wait
  // for the first one, which gets the drain only after the others were
  // killed at their shutdown (the bound below keeps that failure short).
  cfg.inputs = 2;
  for (auto& step : cfg.steps)
    step.shutdown = 2s;
  cfg.next = {sink};
  auto pipe = spawn_pipeline(sys.actors(), cfg);
  self->monitor(pipe);
  manual_upstream up{self, address_of(pipe, "transform")};
  up.push(numbers(0, 5));
  auto drained = self->request(pipe, patience, drain_atom::value);
  up.push(numbers(5, 10));
  up.end();
  actor_report report;
  drained.receive([&](actor_report& r) { report = std::move(r); },
                  fail_on_error());
  BOOST_TEST_MESSAGE(to_text(report));
  auto got = receive_all(*this);
  std::vector<uint64_t> expected{1, 7, 13, 19, 25};
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
  for (auto name : {"transform", "odd_only"}) {
    auto r = find_report(report, name);
    BOOST_REQUIRE(r);
    BOOST_CHECK_MESSAGE(r->stopped == stop_reason::drained,
                        r->name + " stopped " + to_string(r->stopped));
    BOOST_CHECK_EQUAL(r->dropped, 0u);
  }
  BOOST_CHECK_EQUAL(find_report(report, "transform")->in, 10u);
  BOOST_CHECK_EQUAL(find_report(report, "odd_only")->out, 5u);
  BOOST_CHECK(!wait_down(pipe));
}

BOOST_AUTO_TEST_CASE(pipeline_nested_under_a_supervisor_feeds_a_sibling) {
  constexpr uint64_t items = 10000;
  pipeline_config inner;
  inner.name = "inner";
  inner.steps = {count_step(items), times_three_plus_one()};
  inner.next_siblings = {"sink"};
  supervisor_spec spec;
  spec.name = "app";
  spec.children = {pipeline_child(inner), summing_sink_child(self, endless)};
  auto root = spawn_supervisor(sys.actors(), spec);
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK_EQUAL(count, items);
  BOOST_CHECK_EQUAL(sum, transformed_sum(items));
  auto report = troupe::shutdown(sys.actors(), root);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto pipe = find_report(*report, "inner");
  BOOST_REQUIRE(pipe);
  BOOST_CHECK_EQUAL(pipe->kind, "supervisor");
  auto transform = find_report(*pipe, "transform");
  BOOST_REQUIRE(transform);
  BOOST_CHECK_EQUAL(transform->out, items);
  BOOST_CHECK_EQUAL(totals(*report).lost, 0u);
}

BOOST_AUTO_TEST_CASE(pipeline_memory_stays_flat_behind_a_slow_last_step) {
  constexpr uint64_t items = 1'000'000;
  // Resets VmHWM to the current RSS, so the peak is this test's own. Where
  // that is not supported VmHWM stays at the process's lifetime peak: then
  // only the sampled VmRSS is judged.
  bool peak_reset = false;
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    peak_reset = clear.good();
  }
  auto baseline = status_kib("VmRSS");
  peak_reset = peak_reset && status_kib("VmHWM") <= baseline + 1024;
  // The kernel updates the recorded peak lazily (when memory is unmapped),
  // so the sink also samples VmRSS as it goes: the larger of both counts.
  auto sampled = std::make_shared<std::atomic<uint64_t>>(baseline);
  pipeline_config cfg;
  cfg.steps = {count_step(items), times_three_plus_one(),
               actor_step("sink", [observer = caf::actor{self}, sampled](
                                    const spawn_context& ctx, stage_config links) {
                 class slow_sink final : public stage_logic {
                 public:
                   slow_sink(caf::actor observer,
                             std::shared_ptr<std::atomic<uint64_t>> sampled)
                     : inner_(std::move(observer), endless), sampled_(std::move(sampled)) {
                   }
                   void on_item(item& x, emitter& out) override {
                     // About a microsecond per item: far slower than the
                     // source, so without credit the mailboxes would fill.
                     auto until = steady::now() + 1us;
                     while (steady::now() < until) {
                     }
                     if (++seen_ % 10000 == 0)
                       *sampled_ = std::max(sampled_->load(), status_kib("VmRSS"));
                     inner_.on_item(x, out);
                   }
                   void on_end(emitter& out, const caf::error& reason) override {
                     inner_.on_end(out, reason);
                   }

                 private:
                   summing_sink inner_;
                   std::shared_ptr<std::atomic<uint64_t>> sampled_;
                   uint64_t seen_ = 0;
                 };
                 return spawn_stage(ctx, std::move(links),
                                    std::make_unique<slow_sink>(observer, sampled));
               })};
  auto pipe = spawn_pipeline(sys.actors(), cfg);
  self->monitor(pipe);
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK(!wait_down(pipe));
  BOOST_CHECK_EQUAL(count, items);
  BOOST_CHECK_EQUAL(sum, transformed_sum(items));
  auto peak = peak_reset ? std::max(status_kib("VmHWM"), sampled->load())
                         : std::max(status_kib("VmRSS"), sampled->load());
  if (!peak_reset)
    BOOST_TEST_MESSAGE("VmHWM could not be reset: judging sampled VmRSS only");
  auto growth_kib = peak > baseline ? peak - baseline : 0;
  BOOST_TEST_MESSAGE("peak RSS grew by " << growth_kib << " KiB for " << items
                                         << " items");
  // Seen: 600-900 KiB. With credit made as large as validation allows (so
  // the source runs ahead freely) the same run grew by 160-170 MiB.
#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed memory in quarantine (256 MiB by default): the peak
  // says nothing about credit there; the plain build checks it.
  BOOST_TEST_MESSAGE("memory bound not checked under AddressSanitizer");
#else
  BOOST_CHECK_LT(growth_kib, 64u * 1024u);
#endif
}

BOOST_AUTO_TEST_CASE(pipeline_config_is_validated) {
  auto reject = [&](pipeline_config cfg) {
    return config_rejection([&] { spawn_pipeline(sys.actors(), cfg); });
  };
  auto valid = [] {
    pipeline_config cfg;
    cfg.steps = {count_step(10), times_three_plus_one()};
    return cfg;
  };
  {
    auto cfg = valid();
    cfg.steps.clear();
    BOOST_CHECK(contains(reject(cfg), "steps is empty"));
  }
  {
    auto cfg = valid();
    cfg.steps[1].function = nullptr;
    BOOST_CHECK(contains(reject(cfg), "exactly one of source, function and actor"));
  }
  {
    auto cfg = valid();
    cfg.steps[1].actor = [](const spawn_context&, stage_config) { return caf::actor{}; };
    BOOST_CHECK(contains(reject(cfg), "it has 2"));
  }
  {
    auto cfg = valid();
    cfg.credit = pipeline_config::max_credit + 1;
    BOOST_CHECK(contains(reject(cfg), "credit is"));
  }
  {
    auto cfg = valid();
    cfg.steps[1].name = "source";
    BOOST_CHECK(contains(reject(cfg), "used twice"));
  }
  {
    auto cfg = valid();
    cfg.steps[1].name.clear();
    BOOST_CHECK(contains(reject(cfg), "steps[1].name is empty"));
  }
  {
    auto cfg = valid();
    std::swap(cfg.steps[0], cfg.steps[1]);
    BOOST_CHECK(contains(reject(cfg), "only the first step may be"));
  }
  {
    auto cfg = valid();
    cfg.next = {caf::actor{}};
    BOOST_CHECK(contains(reject(cfg), "next[0] is not an actor"));
  }
  {
    auto cfg = valid();
    cfg.steps.pop_back();
    BOOST_CHECK(contains(reject(cfg), "its items go nowhere"));
  }
  {
    auto cfg = valid();
    cfg.steps.erase(cfg.steps.begin());
    cfg.inputs = 0;
    BOOST_CHECK(contains(reject(cfg), "inputs is 0"));
  }
  {
    auto cfg = valid();
    cfg.steps[1].restart = restart_type::permanent;
    BOOST_CHECK(contains(reject(cfg), "steps[1].restart ('transform') is permanent"));
    cfg.steps[1].restart = restart_type::temporary;
    BOOST_CHECK(contains(reject(cfg), "is temporary: a step must be transient"));
  }
  {
    // Siblings are the pipeline's: neither a step nor the pipeline itself.
    auto cfg = valid();
    cfg.next_siblings = {"transform"};
    BOOST_CHECK(contains(reject(cfg), "'transform' is a step of the pipeline"));
    cfg.next_siblings = {"pipeline"};
    BOOST_CHECK(contains(reject(cfg), "'pipeline' is the pipeline itself"));
  }
  {
    // Unsupervised, there is nobody to look a sibling up in.
    auto cfg = valid();
    cfg.next_siblings = {"store"};
    BOOST_CHECK(contains(reject(cfg), "'store' is not a sibling of the pipeline"));
  }
  {
    // The supervisor's own fields are checked by validate(), not at start.
    auto cfg = valid();
    cfg.intensity.max_restarts = -1;
    BOOST_CHECK(contains(reject(cfg), "intensity.max_restarts is negative"));
    cfg = valid();
    cfg.intensity.period = caf::timespan{0};
    BOOST_CHECK(contains(config_rejection([&] { pipeline_child(cfg); }),
                         "intensity.period"));
    cfg = valid();
    cfg.backoff.multiplier = 0.5;
    BOOST_CHECK(contains(config_rejection([&] { cfg.validate(); }),
                         "backoff.multiplier"));
  }
  BOOST_CHECK(contains(config_rejection([] { pipeline_child(pipeline_config{}); }),
                       "steps is empty"));
}

BOOST_AUTO_TEST_CASE(pipeline_nested_next_sibling_that_is_missing_fails_its_start) {
  pipeline_config inner;
  inner.name = "inner";
  inner.steps = {count_step(10), times_three_plus_one()};
  inner.next_siblings = {"nowhere"};
  auto spec = pipeline_child(inner);
  spawn_context ctx{sys.actors(), "inner", caf::actor{}, caf::actor{}, 0,
                    [](const std::string&) { return caf::actor{}; }};
  BOOST_CHECK(contains(config_rejection([&] { spec.start(ctx); }),
                       "'nowhere' is not a sibling of the pipeline"));
}

BOOST_AUTO_TEST_SUITE_END()
