// Coordinated shutdown: a supervised pipeline drains with nothing lost, a
// tree stops in reverse start order, a child that ignores the drain is killed
// at its deadline, cancel stops everything, and signals reach the root.

#include "supervision/children.hpp"

#include <troupe/actors/stage.hpp>
#include <troupe/supervision/shutdown.hpp>

#include <csignal>

using namespace troupe;
using namespace troupe::test;

namespace {

using progress_atom = caf::atom_constant<caf::atom("progress")>;
using sink_done_atom = caf::atom_constant<caf::atom("sinkdone")>;

// An endless source of 0, 1, 2, ... : only a shutdown ends it.
child_spec counter_source(const std::string& next) {
  child_spec spec;
  spec.name = "source";
  spec.restart = restart_type::transient;
  spec.start = [next](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling(next)};
    auto n = std::make_shared<uint64_t>(0);
    return spawn_source(ctx, cfg, [n](emitter& out, size_t max) {
      for (size_t k = 0; k < max; ++k)
        out.push(caf::make_message((*n)++));
      return true;
    });
  };
  return spec;
}

child_spec transform_stage(const std::string& next) {
  child_spec spec;
  spec.name = "transform";
  spec.restart = restart_type::transient;
  spec.start = [next](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling(next)};
    return spawn_stage(ctx, cfg, [](item& x, emitter& out) {
      out.push(caf::make_message(x.get_as<uint64_t>(0) * 3 + 1));
    });
  };
  return spec;
}

// Counts and sums; tells `observer` once `threshold` items arrived, and the
// final count and sum at end of stream.
class summing_sink final : public stage_logic {
public:
  summing_sink(caf::actor observer, uint64_t threshold)
    : observer_(std::move(observer)), threshold_(threshold) {
  }
  void on_item(item& x, emitter&) override {
    sum_ += x.get_as<uint64_t>(0);
    if (++count_ == threshold_)
      caf::anon_send(observer_, progress_atom::value);
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, sink_done_atom::value, count_, sum_);
  }

private:
  caf::actor observer_;
  uint64_t threshold_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

child_spec summing_sink_child(caf::actor observer, uint64_t threshold) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer, threshold](const spawn_context& ctx) {
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<summing_sink>(observer, threshold));
  };
  return spec;
}

// Sum of 3i+1 for i in 0..n-1, wrapping like the sink's sum.
uint64_t expected_sum(uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i)
    sum += i * 3 + 1;
  return sum;
}

supervisor_spec pipeline_spec(caf::actor observer) {
  supervisor_spec spec;
  spec.name = "pipeline";
  // Started source first, on purpose: draining must not depend on the order.
  spec.children = {counter_source("transform"), transform_stage("sink"),
                   summing_sink_child(observer, 20000)};
  return spec;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(shutdown, event_log)

BOOST_AUTO_TEST_CASE(graceful_shutdown_mid_stream_loses_nothing) {
  auto root = spawn_supervisor(sys, pipeline_spec(self));
  self->receive([](progress_atom) {},
                caf::after(patience) >> [] { BOOST_FAIL("pipeline never ran"); });
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  uint64_t count = 0;
  uint64_t sum = 0;
  self->receive([&](sink_done_atom, uint64_t c, uint64_t s) { count = c; sum = s; },
                caf::after(patience) >> [] { BOOST_FAIL("sink never ended"); });
  auto source = find_report(*report, "source");
  auto transform = find_report(*report, "transform");
  auto sink = find_report(*report, "sink");
  BOOST_REQUIRE(source && transform && sink);
  BOOST_TEST_MESSAGE(to_text(*report));
  BOOST_CHECK_GE(source->out, 20000u);
  BOOST_CHECK_EQUAL(transform->in, source->out);
  BOOST_CHECK_EQUAL(transform->out, source->out);
  BOOST_CHECK_EQUAL(sink->in, source->out);
  BOOST_CHECK_EQUAL(count, source->out);
  BOOST_CHECK_EQUAL(sum, expected_sum(source->out));
  for (auto r : {source, transform, sink}) {
    BOOST_CHECK_MESSAGE(r->stopped == stop_reason::drained,
                        r->name << " stopped " << to_string(r->stopped));
    BOOST_CHECK_EQUAL(r->dropped, 0u);
    BOOST_CHECK_EQUAL(r->lost, 0u);
    BOOST_CHECK_LE(r->max_in_flight, 128u);
  }
  BOOST_CHECK(report->stopped == stop_reason::drained);
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
}

BOOST_AUTO_TEST_CASE(cancel_stops_the_pipeline_now) {
  auto root = spawn_supervisor(sys, pipeline_spec(self));
  self->receive([](progress_atom) {},
                caf::after(patience) >> [] { BOOST_FAIL("pipeline never ran"); });
  auto report = troupe::shutdown(sys, root, shutdown_mode::cancel);
  BOOST_REQUIRE(report);
  BOOST_CHECK(report->stopped == stop_reason::cancelled);
  for (auto name : {"source", "transform", "sink"})
    BOOST_CHECK(find_report(*report, name)->stopped == stop_reason::cancelled);
  // Cancelled stages never see an end of stream.
  self->receive([](sink_done_atom, uint64_t, uint64_t) {
                  BOOST_ERROR("a cancelled sink flushed");
                },
                caf::after(std::chrono::milliseconds(0)) >> [] {});
}

BOOST_AUTO_TEST_CASE(nested_tree_stops_in_reverse_start_order) {
  supervisor_spec inner;
  inner.name = "inner";
  inner.children = {observed_child("x", self), observed_child("y", self)};
  supervisor_spec root;
  root.name = "root";
  root.children = {observed_child("a", self), supervisor_child(inner),
                   observed_child("b", self)};
  auto sup = spawn_supervisor(sys, root);
  next_events(4);
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK((next_events(4) == std::vector<std::string>{"-b", "-y", "-x", "-a"}));
  BOOST_CHECK_EQUAL(report->children.size(), 3u);
  auto in = find_report(*report, "inner");
  BOOST_REQUIRE(in != nullptr);
  BOOST_CHECK_EQUAL(in->kind, "supervisor");
  BOOST_CHECK(in->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(in->children.size(), 2u);
}

BOOST_AUTO_TEST_CASE(child_ignoring_the_drain_is_killed_at_its_deadline) {
  child_spec stubborn;
  stubborn.name = "stubborn";
  stubborn.shutdown = std::chrono::milliseconds(100);
  stubborn.start = [](const spawn_context& ctx) {
    ctx.declare(child_protocol{true, false});
    return ctx.system().spawn(
      [](caf::event_based_actor*, std::string) -> caf::behavior {
        return {[](drain_atom, caf::timespan) { /* ignores it */ }};
      },
      ctx.name());
  };
  supervisor_spec spec;
  spec.children = {observed_child("polite", self), stubborn};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK(find_report(*report, "stubborn")->stopped == stop_reason::killed);
  BOOST_CHECK(find_report(*report, "polite")->stopped != stop_reason::killed);
  BOOST_CHECK_EQUAL(totals(*report).killed, 1u);
}

BOOST_AUTO_TEST_CASE(sigterm_starts_the_graceful_shutdown) {
  auto root = spawn_supervisor(sys, pipeline_spec(self));
  self->monitor(root);
  self->receive([](progress_atom) {},
                caf::after(patience) >> [] { BOOST_FAIL("pipeline never ran"); });
  {
    signal_hook hook{root};
    std::raise(SIGTERM);
    auto reason = wait_down(root);
    BOOST_CHECK(!reason);
    BOOST_CHECK_EQUAL(hook.signals_seen(), 1);
  }
  self->receive([](sink_done_atom, uint64_t, uint64_t) {},
                caf::after(patience) >> [] { BOOST_FAIL("sink never drained"); });
}

BOOST_AUTO_TEST_CASE(auto_shutdown_stops_the_supervisor_when_children_are_done) {
  supervisor_spec spec;
  spec.auto_shutdown = auto_shutdown::all_children_done;
  spec.children = {observed_child("t", self, restart_type::transient)};
  auto sup = spawn_supervisor(sys, spec);
  self->monitor(sup);
  next_event();
  self->send(address_of(sup, "t"), finish_atom::value);
  BOOST_CHECK_EQUAL(next_event(), "-t");
  BOOST_CHECK(!wait_down(sup));
}

BOOST_AUTO_TEST_SUITE_END()
