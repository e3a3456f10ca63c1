// Stages as actors: credit bounds what is in flight, order holds, end of
// stream flushes and stops everything, and a throwing logic is a crash that
// stays inside its actor.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/actors/stage.hpp>

#include <atomic>
#include <thread>

using namespace troupe;
using namespace troupe::test;

namespace {

using done_atom = caf::atom_constant<caf::atom("done")>;

// A source of the integers 0..n-1 that counts what it produced.
produce_function counting_source(uint64_t n, std::shared_ptr<std::atomic<uint64_t>> produced) {
  auto next = std::make_shared<uint64_t>(0);
  return [=](emitter& out, size_t max) {
    for (size_t k = 0; k < max && *next < n; ++k) {
      produced->fetch_add(1);
      out.push(caf::make_message((*next)++));
    }
    return *next < n;
  };
}

// A sink that checks order and how far the source got ahead of it, then tells
// `observer` what it saw when its input ends.
class checking_sink final : public stage_logic {
public:
  checking_sink(caf::actor observer, std::shared_ptr<std::atomic<uint64_t>> produced,
                std::chrono::microseconds per_item)
    : observer_(std::move(observer)), produced_(std::move(produced)),
      per_item_(per_item) {
  }

  void on_item(item& x, emitter&) override {
    auto v = x.get_as<uint64_t>(0);
    if (v != expected_)
      ++out_of_order_;
    expected_ = v + 1;
    ++consumed_;
    ahead_ = std::max(ahead_, produced_->load() - consumed_);
    if (per_item_.count() > 0)
      std::this_thread::sleep_for(per_item_); // a slow consumer
  }

  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, done_atom::value, consumed_, out_of_order_, ahead_);
  }

private:
  caf::actor observer_;
  std::shared_ptr<std::atomic<uint64_t>> produced_;
  std::chrono::microseconds per_item_;
  uint64_t expected_ = 0;
  uint64_t consumed_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t ahead_ = 0;
};

struct run_result {
  uint64_t consumed = 0;
  uint64_t out_of_order = 0;
  uint64_t ahead = 0;
};

run_result run_source_to_sink(system_fixture& f, uint64_t n, uint32_t credit,
                              std::chrono::microseconds per_item) {
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  stage_config sink_cfg;
  sink_cfg.credit = credit;
  auto sink = spawn_stage(f.sys, sink_cfg,
                          std::make_unique<checking_sink>(f.self, produced, per_item));
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto source = spawn_source(f.sys, src_cfg, counting_source(n, produced));
  f.self->monitor(source);
  f.self->monitor(sink);
  run_result r;
  f.self->receive(
    [&](done_atom, uint64_t consumed, uint64_t out_of_order, uint64_t ahead) {
      r = run_result{consumed, out_of_order, ahead};
    },
    caf::after(patience) >> [] { BOOST_FAIL("sink never saw end of stream"); });
  // Both ends stop by themselves once the stream ended.
  for (int i = 0; i < 2; ++i)
    f.self->receive([](caf::down_msg& x) { BOOST_CHECK(!x.reason); },
                    caf::after(patience) >> [] { BOOST_FAIL("stage did not stop"); });
  return r;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(stage, system_fixture)

BOOST_AUTO_TEST_CASE(fast_source_slow_sink_stays_within_default_credit) {
  BOOST_REQUIRE_EQUAL(default_credit(sys), 128u);
  auto r = run_source_to_sink(*this, 5000, 0, std::chrono::microseconds(20));
  BOOST_CHECK_EQUAL(r.consumed, 5000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 128u);
  // The slow sink made the source wait at the bound, not below it.
  BOOST_CHECK_GE(r.ahead, 64u);
}

BOOST_AUTO_TEST_CASE(credit_bound_is_configurable_per_link) {
  auto r = run_source_to_sink(*this, 2000, 16, std::chrono::microseconds(20));
  BOOST_CHECK_EQUAL(r.consumed, 2000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 16u);
}

BOOST_AUTO_TEST_CASE(order_holds_at_full_speed) {
  auto r = run_source_to_sink(*this, 200000, 0, std::chrono::microseconds(0));
  BOOST_CHECK_EQUAL(r.consumed, 200000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 128u);
}

BOOST_AUTO_TEST_CASE(stage_flushes_what_it_holds_at_end_of_stream) {
  // A stage that holds everything and emits one sum at the end.
  class summing final : public stage_logic {
  public:
    void on_item(item& x, emitter&) override {
      sum_ += x.get_as<uint64_t>(0);
    }
    void on_end(emitter& out, const caf::error&) override {
      out.push(caf::make_message(sum_));
    }

  private:
    uint64_t sum_ = 0;
  };
  auto sums = std::make_shared<std::vector<uint64_t>>();
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [this](item& x, emitter&) {
    caf::anon_send(self, done_atom::value, x.get_as<uint64_t>(0));
  });
  stage_config mid_cfg;
  mid_cfg.next = {sink};
  auto mid = spawn_stage(sys, mid_cfg, std::make_unique<summing>());
  stage_config src_cfg;
  src_cfg.next = {mid};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(1000, produced));
  self->monitor(mid);
  self->receive([](done_atom, uint64_t sum) { BOOST_CHECK_EQUAL(sum, 499500u); },
                caf::after(patience) >> [] { BOOST_FAIL("no flushed sum"); });
  self->send(mid, status_atom::value);
  auto reason = wait_down(mid);
  BOOST_CHECK(!reason);
}

BOOST_AUTO_TEST_CASE(status_reports_counters_of_a_running_stage) {
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [](item&, emitter&) {});
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(300, produced));
  self->monitor(sink);
  wait_down(sink);
  // The source has stopped too, but a fresh stage answers status.
  auto idle = spawn_stage(sys, sink_cfg, [](item&, emitter&) {});
  auto r = status(idle);
  BOOST_CHECK_EQUAL(r.kind, "sink");
  BOOST_CHECK(r.stopped == stop_reason::running);
  self->send(idle, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(throwing_logic_crashes_only_its_stage) {
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [](item& x, emitter&) {
    if (x.get_as<uint64_t>(0) == 7)
      throw std::runtime_error("bad item 7");
  });
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(100, produced));
  self->monitor(sink);
  auto reason = wait_down(sink);
  BOOST_CHECK(reason == caf::sec::runtime_error);
  BOOST_CHECK_NE(sys.actors().render(reason).find("bad item 7"), std::string::npos);
  // The process and other actors live on: the source still answers.
  auto r = status(src);
  BOOST_CHECK_EQUAL(r.kind, "source");
  self->send(src, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(invalid_stage_config_names_the_field) {
  stage_config cfg; // a source without a downstream
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  try {
    spawn_source(sys, cfg, counting_source(1, produced));
    BOOST_FAIL("expected config_error");
  } catch (const config_error& e) {
    BOOST_CHECK_NE(std::string{e.what()}.find("next"), std::string::npos);
  }
  stage_config zero_inputs;
  zero_inputs.inputs = 0;
  BOOST_CHECK_THROW(spawn_stage(sys, zero_inputs, [](item&, emitter&) {}),
                    config_error);
}

BOOST_AUTO_TEST_SUITE_END()
