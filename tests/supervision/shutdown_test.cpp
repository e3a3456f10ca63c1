// Coordinated shutdown: a supervised pipeline drains with nothing lost, a
// tree stops in reverse start order, a child that ignores the drain is killed
// at its deadline, cancel stops everything, and signals reach the root.

#include "supervision/children.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/supervision/shutdown.hpp>

#include <csignal>

using namespace troupe;
using namespace troupe::test;

namespace {

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
  await_progress(*this);
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  auto [count, sum] = receive_sink_done(*this);
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
  BOOST_CHECK_EQUAL(sum, transformed_sum(source->out));
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
  await_progress(*this);
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

BOOST_AUTO_TEST_CASE(child_stopping_in_time_leaves_no_timer_behind) {
  // "slow" takes 300 ms to drain, within its 5 s; "fast", stopped first,
  // has a 100 ms timeout that must not carry over to "slow".
  child_spec slow;
  slow.name = "slow";
  slow.shutdown = std::chrono::seconds(5);
  slow.start = [](const spawn_context& ctx) {
    ctx.declare(child_protocol{true, false});
    return ctx.system().spawn(
      [](caf::event_based_actor* self, std::string) -> caf::behavior {
        return {
          [self](drain_atom, caf::timespan) {
            self->delayed_send(self, std::chrono::milliseconds(300),
                               finish_atom::value);
          },
          [self](finish_atom) { self->quit(); },
        };
      },
      ctx.name());
  };
  auto fast = observed_child("fast", self);
  fast.shutdown = std::chrono::milliseconds(100);
  supervisor_spec spec;
  spec.children = {slow, fast};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK(find_report(*report, "slow")->stopped == stop_reason::drained);
  BOOST_CHECK(find_report(*report, "fast")->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(totals(*report).killed, 0u);
  next_event();
}

BOOST_AUTO_TEST_CASE(source_restarted_after_intake_stopped_does_not_produce) {
  // The source lives in a nested supervisor; its first incarnation fails as
  // intake stops, and the nested supervisor restarts it while the root is
  // already draining. The restarted source must end at once, or the sink
  // would never see the end of its stream.
  class failing_end final : public source_logic {
  public:
    explicit failing_end(bool first) : first_(first) {
    }
    bool produce(emitter& out, size_t max) override {
      for (size_t k = 0; k < max; ++k)
        out.push(caf::make_message(n_++));
      return true;
    }
    void on_end(emitter&) override {
      if (first_)
        throw std::runtime_error("source fails while ending");
    }

  private:
    bool first_;
    uint64_t n_ = 0;
  };
  child_spec source;
  source.name = "source";
  source.restart = restart_type::transient;
  source.start = [](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling("sink")}; // found in the parent
    return spawn_source(ctx, cfg, std::make_unique<failing_end>(ctx.restarts() == 0));
  };
  supervisor_spec inner;
  inner.name = "inner";
  inner.children = {source};
  supervisor_spec root;
  root.name = "root";
  auto sink = summing_sink_child(self, 1000);
  sink.shutdown = std::chrono::seconds(20);
  root.children = {supervisor_child(inner), sink};
  auto sup = spawn_supervisor(sys, root);
  await_progress(*this);
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto src = find_report(*report, "source");
  auto snk = find_report(*report, "sink");
  BOOST_REQUIRE(src && snk);
  BOOST_CHECK_EQUAL(src->restarts, 1u);
  BOOST_CHECK_EQUAL(src->errors, 1u);
  BOOST_CHECK(snk->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(snk->in, src->out);
  self->receive([](sink_done_atom, uint64_t, uint64_t) {},
                caf::after(patience) >> [] { BOOST_FAIL("sink never ended"); });
}

BOOST_AUTO_TEST_CASE(source_that_drained_is_not_restarted) {
  // A permanent source in a nested supervisor ends normally once intake
  // stops; restarting it would only end it again until the nested
  // supervisor gave up.
  auto source = counter_source("sink");
  source.restart = restart_type::permanent;
  supervisor_spec inner;
  inner.name = "inner";
  inner.children = {source};
  supervisor_spec root;
  root.name = "root";
  root.children = {supervisor_child(inner), summing_sink_child(self, 1000)};
  auto sup = spawn_supervisor(sys, root);
  await_progress(*this);
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  BOOST_CHECK(find_report(*report, "inner")->stopped == stop_reason::drained);
  auto src = find_report(*report, "source");
  BOOST_CHECK_EQUAL(src->restarts, 0u);
  BOOST_CHECK(src->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(find_report(*report, "sink")->in, src->out);
  self->receive([](sink_done_atom, uint64_t, uint64_t) {},
                caf::after(patience) >> [] { BOOST_FAIL("sink never ended"); });
}

BOOST_AUTO_TEST_CASE(sigterm_starts_the_graceful_shutdown) {
  auto root = spawn_supervisor(sys, pipeline_spec(self));
  self->monitor(root);
  await_progress(*this);
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
