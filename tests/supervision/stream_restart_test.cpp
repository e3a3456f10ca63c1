// A stage that crashes mid-stream is restarted and rejoins its links by
// itself; the stream goes on, and every item is accounted for.

#include "supervision/pipeline.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/supervision/shutdown.hpp>

#include <thread>

using namespace troupe;
using namespace troupe::test;

namespace {

constexpr uint64_t items = 100000;
constexpr uint64_t bad_item = 5000;

// Sink that throws on the item with value `throw_at` in its first incarnation.
child_spec throwing_sink_child(caf::actor observer, uint64_t throw_at) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer, throw_at](const spawn_context& ctx) {
    class logic final : public stage_logic {
    public:
      logic(caf::actor observer, bool first, uint64_t throw_at)
        : inner_(std::move(observer), endless), first_(first), throw_at_(throw_at) {
      }
      void on_item(item& x, emitter& out) override {
        if (first_ && x.get_as<uint64_t>(0) == throw_at_)
          throw std::runtime_error("sink fails");
        inner_.on_item(x, out);
      }
      void on_end(emitter& out, const caf::error& reason) override {
        inner_.on_end(out, reason);
      }

    private:
      summing_sink inner_;
      bool first_;
      uint64_t throw_at_;
    };
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<logic>(observer, ctx.restarts() == 0,
                                               throw_at));
  };
  return spec;
}

// A sink that tells `observer` (sink_done_atom, count, end reason) at the end
// of its stream. Its first incarnation throws on the `throw_at`th item.
class reporting_sink final : public stage_logic {
public:
  reporting_sink(caf::actor observer, uint64_t throw_at)
    : observer_(std::move(observer)), throw_at_(throw_at) {
  }
  void on_item(item&, emitter&) override {
    if (++count_ == throw_at_)
      throw std::runtime_error("sink fails");
  }
  void on_end(emitter&, const caf::error& reason) override {
    caf::anon_send(observer_, sink_done_atom::value, count_, reason);
  }

private:
  caf::actor observer_;
  uint64_t throw_at_;
  uint64_t count_ = 0;
};

child_spec reporting_sink_child(caf::actor observer, uint64_t throw_at = endless) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer, throw_at](const spawn_context& ctx) {
    auto first = ctx.restarts() == 0;
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<reporting_sink>(observer,
                                                        first ? throw_at : endless));
  };
  return spec;
}

actor_report run_to_end(system_fixture& f, supervisor_spec spec, uint64_t& count,
                        uint64_t& sum) {
  auto root = spawn_supervisor(f.sys, std::move(spec));
  f.self->receive(
    [&](sink_done_atom, uint64_t c, uint64_t s) {
      count = c;
      sum = s;
    },
    caf::after(patience) >> [] { BOOST_FAIL("stream never ended"); });
  auto report = troupe::shutdown(f.sys, root);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  return *report;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(stream_restart, system_fixture)

BOOST_AUTO_TEST_CASE(stage_crash_mid_stream_loses_only_the_item_that_threw) {
  supervisor_spec spec;
  spec.name = "pipeline";
  spec.children = {counter_source("transform", items),
                   transform_stage("sink", bad_item),
                   summing_sink_child(self, endless)};
  uint64_t count = 0;
  uint64_t sum = 0;
  auto report = run_to_end(*this, spec, count, sum);
  BOOST_CHECK_EQUAL(count, items - 1);
  BOOST_CHECK_EQUAL(sum, transformed_sum(items) - (bad_item * 3 + 1));
  auto source = find_report(report, "source");
  auto transform = find_report(report, "transform");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(source && transform && sink);
  BOOST_CHECK_EQUAL(source->out, items);
  BOOST_CHECK_EQUAL(transform->restarts, 1u);
  BOOST_CHECK_EQUAL(transform->errors, 1u);
  BOOST_CHECK_EQUAL(transform->dropped, 0u);
  BOOST_CHECK_EQUAL(transform->in, items);
  BOOST_CHECK_EQUAL(sink->in, items - 1);
  BOOST_CHECK_EQUAL(totals(report).lost, 0u);
}

BOOST_AUTO_TEST_CASE(restarted_downstream_gets_unacknowledged_items_again) {
  supervisor_spec spec;
  spec.name = "pipeline";
  spec.children = {counter_source("transform", items), transform_stage("sink"),
                   throwing_sink_child(self, bad_item * 3 + 1)};
  uint64_t count = 0;
  uint64_t sum = 0;
  auto report = run_to_end(*this, spec, count, sum);
  auto transform = find_report(report, "transform");
  auto sink = find_report(report, "sink");
  BOOST_REQUIRE(transform && sink);
  BOOST_CHECK_EQUAL(sink->restarts, 1u);
  BOOST_CHECK_EQUAL(sink->errors, 1u);
  // Every item reached the sink once: the one that threw in the first
  // incarnation, the rest in one or the other.
  BOOST_CHECK_EQUAL(sink->in, items);
  BOOST_CHECK_EQUAL(transform->out, items);
  BOOST_CHECK_EQUAL(transform->dropped, 0u);
  BOOST_CHECK_EQUAL(totals(report).lost, 0u);
  // The second incarnation saw everything after the bad item, in order.
  BOOST_CHECK_EQUAL(count, items - bad_item - 1);
  BOOST_CHECK_EQUAL(sum, transformed_sum(items) - transformed_sum(bad_item + 1));
}

BOOST_AUTO_TEST_CASE(upstream_that_fails_for_good_ends_its_downstream_with_an_error) {
  child_spec source;
  source.name = "source";
  source.restart = restart_type::temporary;
  source.start = [](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling("sink")};
    auto n = std::make_shared<uint64_t>(0);
    return spawn_source(ctx, cfg, [n](emitter& out, size_t max) {
      for (size_t k = 0; k < max; ++k) {
        if (*n == 500)
          throw std::runtime_error("source fails");
        out.push(caf::make_message((*n)++));
      }
      return true;
    });
  };
  auto sink = reporting_sink_child(self);
  supervisor_spec spec;
  spec.auto_shutdown = auto_shutdown::all_children_done;
  spec.children = {source, sink};
  auto sup = spawn_supervisor(sys, spec);
  self->monitor(sup);
  self->receive(
    [](sink_done_atom, uint64_t count, const caf::error& reason) {
      // What the source emitted before it failed was delivered.
      BOOST_CHECK_EQUAL(count, 500u);
      BOOST_CHECK(reason == errc::child_unavailable);
    },
    caf::after(patience) >> [] { BOOST_FAIL("sink waits for an end forever"); });
  BOOST_CHECK(!wait_down(sup)); // both children are done
}

BOOST_AUTO_TEST_CASE(drain_brings_back_a_stage_waiting_for_its_restart) {
  supervisor_spec spec;
  spec.name = "pipeline";
  // The transform fails early and would only come back after 10 s.
  spec.backoff = {std::chrono::seconds(10), std::chrono::seconds(10), 2.0};
  spec.children = {counter_source("transform"), transform_stage("sink", bad_item),
                   summing_sink_child(self, endless)};
  auto sup = spawn_supervisor(sys, spec);
  await_child(sup, "transform", stopped, "stopped");
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto [count, sum] = receive_sink_done(*this);
  auto source = find_report(*report, "source");
  auto transform = find_report(*report, "transform");
  BOOST_REQUIRE(source && transform);
  // The drain started the transform again, and it drained what was left.
  BOOST_CHECK_EQUAL(transform->restarts, 1u);
  BOOST_CHECK(transform->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(count, source->out - 1);
  BOOST_CHECK_EQUAL(sum, transformed_sum(source->out) - (bad_item * 3 + 1));
}

BOOST_AUTO_TEST_CASE(restarting_downstream_learns_its_upstream_failed_for_good) {
  auto source = counter_source("sink");
  source.restart = restart_type::temporary;
  supervisor_spec spec;
  spec.backoff = {std::chrono::milliseconds(300), std::chrono::seconds(1), 2.0};
  spec.children = {source, reporting_sink_child(self, 40)};
  auto sup = spawn_supervisor(sys, spec);
  await_child(sup, "sink", stopped, "stopped");
  // While the sink waits for its restart, its upstream goes for good.
  caf::actor source_address;
  self->request(sup, patience, caf::get_atom::value, std::string{"source"})
    .receive([&](caf::actor& a) { source_address = a; },
             fail_on_error());
  self->send(source_address, cancel_atom::value);
  self->receive(
    [](sink_done_atom, uint64_t, const caf::error& reason) {
      BOOST_CHECK(reason == errc::child_unavailable);
    },
    caf::after(patience) >> [] { BOOST_FAIL("restarted sink never ended"); });
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK(find_report(*report, "source")->stopped == stop_reason::cancelled);
  BOOST_CHECK_EQUAL(find_report(*report, "sink")->restarts, 1u);
}

BOOST_AUTO_TEST_CASE(stage_killed_at_its_deadline_ends_its_downstream_link) {
  // The source and the slow stage get 100 ms each to stop, far less than the
  // stage's queued work takes; the sink gets 30 s.
  auto source = counter_source("transform");
  source.shutdown = std::chrono::milliseconds(100);
  child_spec slow;
  slow.name = "transform";
  slow.shutdown = std::chrono::milliseconds(100);
  slow.start = [](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling("sink")};
    return spawn_stage(ctx, cfg, [](item& x, emitter& out) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10)); // slow work
      out.push(x);
    });
  };
  auto sink = reporting_sink_child(self);
  sink.shutdown = std::chrono::seconds(30);
  supervisor_spec spec;
  spec.children = {sink, slow, source};
  auto sup = spawn_supervisor(sys, spec);
  // Shut down once the slow stage has work queued that outlasts its 100 ms.
  await_child(sup, "transform", [](const actor_report& x) { return x.in > 0; },
              "took an item");
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  BOOST_CHECK(find_report(*report, "transform")->stopped == stop_reason::killed);
  // The sink did not wait for its own deadline: the killed stage's link
  // ended with an error, and the sink flushed and stopped.
  BOOST_CHECK(find_report(*report, "sink")->stopped == stop_reason::drained);
  self->receive(
    [](sink_done_atom, uint64_t, const caf::error& reason) {
      BOOST_CHECK(reason == errc::child_unavailable);
    },
    caf::after(patience) >> [] { BOOST_FAIL("sink never ended"); });
}

BOOST_AUTO_TEST_CASE(final_report_counts_even_when_it_arrives_after_the_down) {
  // The factory makes sure the stage has run its start-up (and attached its
  // reporting) before the supervisor monitors it, so the down message is sent
  // before the report when the stage stops.
  auto started_before_monitor = [](child_spec spec) {
    auto start = spec.start;
    spec.start = [start](const spawn_context& ctx) {
      auto handle = start(ctx);
      caf::scoped_actor probe{ctx.system(), true};
      probe->request(handle, patience, status_atom::value)
        .receive([](actor_report&) {}, [](caf::error&) {});
      return handle;
    };
    return spec;
  };
  supervisor_spec spec;
  spec.children = {started_before_monitor(counter_source("sink", 1000)),
                   started_before_monitor(summing_sink_child(self, endless))};
  uint64_t count = 0;
  uint64_t sum = 0;
  auto report = run_to_end(*this, spec, count, sum);
  BOOST_CHECK_EQUAL(count, 1000u);
  BOOST_CHECK_EQUAL(find_report(report, "source")->out, 1000u);
  BOOST_CHECK_EQUAL(find_report(report, "sink")->in, 1000u);
  BOOST_CHECK_EQUAL(find_report(report, "sink")->kind, "sink");
}

BOOST_AUTO_TEST_SUITE_END()
