// stop_order::concurrent: every child is told to stop at once and all are
// waited for, each still bounded by its own shutdown timeout and by the
// deadline; the data sent to them drains and the report lists every child.
// stop_order::sequential stays the default, one child after another.

#include "supervision/children.hpp"

#include <troupe/actors/stage.hpp>
#include <troupe/supervision/shutdown.hpp>

#include <algorithm>
#include <future>

using namespace troupe;
using namespace troupe::test;

namespace {

using stopping_atom = caf::atom_constant<caf::atom("stopping")>;
using release_atom = caf::atom_constant<caf::atom("release")>;

/// A unit of work that handles plain messages (uint64_t) sent to it and
/// reports how many it handled and their sum.
class counting_unit final : public stage_logic {
public:
  void on_item(item&, emitter&) override {
    // No stream input: the unit's messages are its requests.
  }
  caf::result<caf::message> on_request(caf::message& x) override {
    if (!x.match_elements<uint64_t>())
      return stage_logic::on_request(x);
    ++handled_;
    sum_ += x.get_as<uint64_t>(0);
    return caf::message{};
  }
  void describe(actor_report& r) const override {
    r.stats["handled"] = static_cast<int64_t>(handled_);
    r.stats["sum"] = static_cast<int64_t>(sum_);
  }

private:
  uint64_t handled_ = 0;
  uint64_t sum_ = 0;
};

child_spec unit_child(const std::string& name) {
  child_spec spec;
  spec.name = name;
  spec.start = [](const spawn_context& ctx) {
    return spawn_stage(ctx, stage_config{}, std::make_unique<counting_unit>());
  };
  return spec;
}

std::string unit_name(size_t i) {
  return "unit-" + std::to_string(i);
}

supervisor_spec units(size_t n) {
  supervisor_spec spec;
  spec.name = "units";
  spec.stop_order = stop_order::concurrent;
  for (size_t i = 0; i < n; ++i)
    spec.children.push_back(unit_child(unit_name(i)));
  return spec;
}

/// A troupe-aware child that, told to drain, tells `observer` and stops only
/// once released; its stop is observed like observed_child's.
child_spec holder_child(const std::string& name, caf::actor observer) {
  child_spec spec;
  spec.name = name;
  // Far beyond the test's patience: only a release (or the deadline) ends it.
  spec.shutdown = std::chrono::minutes(10);
  spec.start = [name, observer](const spawn_context& ctx) {
    ctx.declare(child_protocol{true, false});
    auto handle = ctx.system().spawn(
      [](caf::event_based_actor* self, std::string name,
         caf::actor observer) -> caf::behavior {
        self->attach_functor([name, observer](const caf::error& reason) {
          caf::anon_send(observer, stopped_atom::value, name, reason);
        });
        return {
          [name, observer](drain_atom, caf::timespan) {
            caf::anon_send(observer, stopping_atom::value, name);
          },
          [self](release_atom) { self->quit(); },
        };
      },
      name, observer);
    caf::anon_send(observer, started_atom::value, name, ctx.restarts(), handle);
    return handle;
  };
  return spec;
}

/// A troupe-aware child that ignores the drain: only a kill stops it.
child_spec stubborn_child(caf::timespan shutdown) {
  child_spec spec;
  spec.name = "stubborn";
  spec.shutdown = shutdown;
  spec.start = [](const spawn_context& ctx) {
    ctx.declare(child_protocol{true, false});
    return ctx.system().spawn(
      [](caf::event_based_actor*, std::string) -> caf::behavior {
        return {[](drain_atom, caf::timespan) { /* ignores it */ }};
      },
      ctx.name());
  };
  return spec;
}

struct stop_order_fixture : event_log {
  /// The graceful shutdown of `sup` with `deadline`, from another thread, so
  /// that the test can act while it runs.
  std::future<caf::expected<actor_report>>
  shutdown_async(const caf::actor& sup, caf::timespan deadline) {
    return std::async(std::launch::async, [this, sup, deadline] {
      return troupe::shutdown(sys, sup, shutdown_mode::graceful, deadline);
    });
  }

  /// The report of a shutdown started with shutdown_async; if it does not
  /// come within the test's patience, the supervisor is killed (which
  /// answers at once) and the test fails.
  actor_report await_report(std::future<caf::expected<actor_report>>& f,
                            const caf::actor& sup) {
    if (f.wait_for(patience) != std::future_status::ready) {
      caf::anon_send_exit(sup, caf::exit_reason::kill);
      f.wait();
      BOOST_FAIL("the shutdown did not end within the test's patience");
    }
    auto report = f.get();
    BOOST_REQUIRE(report);
    return std::move(*report);
  }

  void expect_stopping(const std::string& name) {
    self->receive([&](stopping_atom, const std::string& who) {
                    BOOST_CHECK_EQUAL(who, name);
                  },
                  caf::after(patience) >> [&] {
                    BOOST_FAIL(name + " was never told to drain");
                  });
  }

  /// Sends `n` messages to each of the first `units` children of `sup`,
  /// unit i getting i * n + j (j < n); returns their sum.
  uint64_t feed_units(const caf::actor& sup, size_t units, uint64_t n) {
    uint64_t sum = 0;
    for (size_t i = 0; i < units; ++i) {
      auto address = address_of(sup, unit_name(i));
      for (uint64_t j = 0; j < n; ++j) {
        caf::anon_send(address, i * n + j);
        sum += i * n + j;
      }
    }
    return sum;
  }
};

int64_t stat(const actor_report& r, const std::string& key) {
  auto i = r.stats.find(key);
  return i == r.stats.end() ? 0 : i->second;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(concurrent_stop, stop_order_fixture)

BOOST_AUTO_TEST_CASE(sequential_is_the_default) {
  BOOST_CHECK(supervisor_spec{}.stop_order == stop_order::sequential);
  BOOST_CHECK_EQUAL(to_string(stop_order::sequential), "sequential");
  BOOST_CHECK_EQUAL(to_string(stop_order::concurrent), "concurrent");
}

BOOST_AUTO_TEST_CASE(concurrent_stop_drains_every_unit_and_reports_each) {
  constexpr size_t n = 200;
  constexpr uint64_t per_unit = 50;
  auto sup = spawn_supervisor(sys, units(n));
  auto sum = feed_units(sup, n, per_unit);
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK(report->stopped == stop_reason::drained);
  BOOST_REQUIRE_EQUAL(report->children.size(), n);
  uint64_t handled = 0;
  uint64_t handled_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    auto& child = report->children[i];
    BOOST_CHECK_EQUAL(child.name, unit_name(i));
    BOOST_CHECK_MESSAGE(child.stopped == stop_reason::drained,
                        child.name << " stopped " << to_string(child.stopped));
    BOOST_CHECK_EQUAL(stat(child, "handled"), static_cast<int64_t>(per_unit));
    handled += static_cast<uint64_t>(stat(child, "handled"));
    handled_sum += static_cast<uint64_t>(stat(child, "sum"));
  }
  BOOST_CHECK_EQUAL(handled, n * per_unit);
  BOOST_CHECK_EQUAL(handled_sum, sum);
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.actors, n);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.killed, 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_stop_tells_every_child_before_waiting_for_any) {
  // Started last, the holder is the first a sequential stop would wait for,
  // and it stops only when released: a and b stopping meanwhile shows that
  // they were told at once.
  supervisor_spec spec;
  spec.name = "root";
  spec.stop_order = stop_order::concurrent;
  spec.children = {observed_child("a", self), observed_child("b", self),
                   holder_child("holder", self)};
  auto sup = spawn_supervisor(sys, spec);
  auto starts = next_events(3);
  BOOST_CHECK((starts == std::vector<std::string>{"+a0", "+b0", "+holder0"}));
  auto holder = address_of(sup, "holder");
  auto f = shutdown_async(sup, std::chrono::minutes(10));
  expect_stopping("holder");
  auto stops = next_events(2);
  std::sort(stops.begin(), stops.end());
  BOOST_CHECK((stops == std::vector<std::string>{"-a", "-b"}));
  self->send(holder, release_atom::value);
  BOOST_CHECK_EQUAL(next_event(), "-holder");
  auto report = await_report(f, sup);
  BOOST_REQUIRE_EQUAL(report.children.size(), 3u);
  for (auto& child : report.children)
    BOOST_CHECK_MESSAGE(child.stopped == stop_reason::drained,
                        child.name << " stopped " << to_string(child.stopped));
}

BOOST_AUTO_TEST_CASE(sequential_stop_waits_for_each_child_in_reverse_order) {
  supervisor_spec spec;
  spec.name = "root";
  spec.children = {observed_child("a", self), observed_child("b", self),
                   holder_child("holder", self)};
  auto sup = spawn_supervisor(sys, spec);
  next_events(3);
  auto holder = address_of(sup, "holder");
  auto f = shutdown_async(sup, std::chrono::minutes(10));
  expect_stopping("holder");
  expect_quiet(sup);
  self->send(holder, release_atom::value);
  BOOST_CHECK((next_events(3) == std::vector<std::string>{"-holder", "-b", "-a"}));
  auto report = await_report(f, sup);
  BOOST_CHECK_EQUAL(report.children.size(), 3u);
}

BOOST_AUTO_TEST_CASE(concurrent_stop_kills_a_stuck_child_at_its_own_timeout) {
  // The deadline is far beyond the test's patience: only the stubborn
  // child's own 100 ms timeout ends the shutdown in time.
  auto spec = units(20);
  spec.children.push_back(stubborn_child(std::chrono::milliseconds(100)));
  auto sup = spawn_supervisor(sys, spec);
  feed_units(sup, 20, 10);
  auto f = shutdown_async(sup, std::chrono::minutes(10));
  auto report = await_report(f, sup);
  BOOST_TEST_MESSAGE(to_text(report));
  BOOST_REQUIRE_EQUAL(report.children.size(), 21u);
  BOOST_CHECK(find_report(report, "stubborn")->stopped == stop_reason::killed);
  for (size_t i = 0; i < 20; ++i) {
    auto unit = find_report(report, unit_name(i));
    BOOST_REQUIRE(unit != nullptr);
    BOOST_CHECK(unit->stopped == stop_reason::drained);
    BOOST_CHECK_EQUAL(stat(*unit, "handled"), 10);
  }
  auto t = totals(report);
  BOOST_CHECK_EQUAL(t.killed, 1u);
  BOOST_CHECK_EQUAL(t.lost, 0u);
}

BOOST_AUTO_TEST_CASE(concurrent_stop_kills_what_is_left_at_the_deadline) {
  // The stubborn child's own timeout is far beyond the test's patience: the
  // deadline is what ends it.
  auto spec = units(20);
  spec.children.push_back(stubborn_child(std::chrono::minutes(10)));
  auto sup = spawn_supervisor(sys, spec);
  feed_units(sup, 20, 10);
  auto f = shutdown_async(sup, std::chrono::seconds(1));
  auto report = await_report(f, sup);
  BOOST_TEST_MESSAGE(to_text(report));
  BOOST_REQUIRE_EQUAL(report.children.size(), 21u);
  BOOST_CHECK(find_report(report, "stubborn")->stopped == stop_reason::killed);
  auto t = totals(report);
  BOOST_CHECK_EQUAL(t.killed, 1u);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.actors, 21u);
}

BOOST_AUTO_TEST_CASE(concurrent_cancel_cancels_every_child) {
  auto sup = spawn_supervisor(sys, units(50));
  auto report = troupe::shutdown(sys, sup, shutdown_mode::cancel);
  BOOST_REQUIRE(report);
  BOOST_CHECK(report->stopped == stop_reason::cancelled);
  BOOST_REQUIRE_EQUAL(report->children.size(), 50u);
  for (auto& child : report->children)
    BOOST_CHECK_MESSAGE(child.stopped == stop_reason::cancelled,
                        child.name << " stopped " << to_string(child.stopped));
}

BOOST_AUTO_TEST_CASE(one_for_all_with_concurrent_stop_restarts_everyone) {
  supervisor_spec spec;
  spec.name = "root";
  spec.strategy = restart_strategy::one_for_all;
  spec.stop_order = stop_order::concurrent;
  spec.intensity = {10, std::chrono::seconds(10)};
  for (auto name : {"a", "b", "c"})
    spec.children.push_back(observed_child(name, self));
  auto sup = spawn_supervisor(sys, spec);
  next_events(3);
  self->send(address_of(sup, "b"), crash_atom::value);
  BOOST_CHECK_EQUAL(next_event(), "-b");
  auto stops = next_events(2);
  std::sort(stops.begin(), stops.end());
  BOOST_CHECK((stops == std::vector<std::string>{"-a", "-c"}));
  BOOST_CHECK((next_events(3) == std::vector<std::string>{"+a1", "+b1", "+c1"}));
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_CHECK_EQUAL(report->children.size(), 3u);
}

BOOST_AUTO_TEST_SUITE_END()
