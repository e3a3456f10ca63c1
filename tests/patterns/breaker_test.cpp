// The circuit breaker: every transition and what moves it, probes, call
// timeouts, its own rejection error, open-timeout backoff, state events, config
// validation, and the breaker on a stream (alone and supervised) and restarted
// behind its stable address.

#include "flaky_service.hpp"
#include "streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/breaker.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <cmath>
#include <functional>
#include <limits>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using started_atom = caf::atom_constant<caf::atom("started")>;

int64_t ms(int64_t ns) {
  return ns / 1'000'000;
}

template <class Code>
bool failed_with(const caf::expected<uint64_t>& x, Code code) {
  return !x && x.error() == code;
}

struct breaker_fixture : flaky_fixture {
  /// A breaker named "brk" in front of `service`, cancelled at the end.
  caf::actor make_breaker(breaker_config cfg, stage_config links = {}) {
    spawn_context ctx{sys.actors(), "brk", caf::actor{}, caf::actor{}, 0, {}};
    auto b = spawn_breaker(ctx, std::move(cfg), service, std::move(links));
    started.push_back(b);
    return b;
  }

  /// The next k calls fail with the service's own error, which the breaker
  /// counts as a failure.
  void fail_next(uint64_t k) {
    flaky_fixture::fail_next(k, failure_kind::own_error);
  }

  /// Subscribes the test to `b`; returns the state it is in.
  std::string subscribe(const caf::actor& b) {
    std::string result;
    self->request(b, patience, subscribe_atom::value)
      .receive([&](std::string& x) { result = std::move(x); },
               fail_on_error());
    return result;
  }

  /// The next state_change; checks that it goes from `from` to `to`.
  state_change expect_change(const std::string& from, const std::string& to) {
    auto x = receive_one<state_change>("state change to " + to);
    BOOST_CHECK_EQUAL(x.from, from);
    BOOST_CHECK_EQUAL(x.to, to);
    return x;
  }

  /// Makes `b` (consecutive_failures = 1, closed) trip; returns the event.
  state_change trip(const caf::actor& b) {
    fail_next(1);
    BOOST_CHECK(failed_with(call(b, 0), caf::sec::runtime_error));
    return expect_change("closed", "open");
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(breaker, breaker_fixture)

BOOST_AUTO_TEST_CASE(consecutive_failures_trip_closed_to_open) {
  breaker_config cfg;
  cfg.consecutive_failures = 3;
  cfg.open_timeout = 10s;
  auto b = make_breaker(cfg);
  BOOST_CHECK_EQUAL(subscribe(b), "closed");
  // Two failures, then a success: the run is broken, nothing trips.
  fail_next(2);
  BOOST_CHECK(!call(b, 1));
  BOOST_CHECK(!call(b, 2));
  BOOST_CHECK_EQUAL(*call(b, 3), answer_to(3));
  BOOST_CHECK_EQUAL(status(b).state, "closed");
  fail_next(3);
  BOOST_CHECK(!call(b, 4));
  BOOST_CHECK(!call(b, 5));
  BOOST_CHECK_EQUAL(status(b).state, "closed");
  BOOST_CHECK(!call(b, 6));
  expect_change("closed", "open");
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.state, "open");
  BOOST_CHECK_EQUAL(r.stats["trips"], 1);
  BOOST_CHECK_EQUAL(r.stats["calls"], 6);
  BOOST_CHECK_EQUAL(r.stats["failures"], 5);
  BOOST_CHECK_EQUAL(r.stats["successes"], 1);
}

BOOST_AUTO_TEST_CASE(failure_rate_trips_once_minimum_calls_are_seen_and_not_before) {
  breaker_config cfg;
  cfg.consecutive_failures = 100; // only the rate can trip it
  cfg.failure_rate = 0.5;
  cfg.window_size = 10;
  cfg.minimum_calls = 6;
  cfg.open_timeout = 10s;
  auto b = make_breaker(cfg);
  subscribe(b);
  // Failure, success, ...: after 5 calls 3 failed (60 %), but that is fewer
  // calls than the minimum.
  for (uint64_t i = 0; i < 5; ++i) {
    if (i % 2 == 0)
      fail_next(1);
    BOOST_CHECK_EQUAL(static_cast<bool>(call(b, i)), i % 2 == 1);
  }
  auto before = status(b);
  BOOST_CHECK_EQUAL(before.state, "closed");
  BOOST_CHECK_EQUAL(before.stats["failures"], 3);
  // The 6th call succeeds, yet 3 of 6 is the rate: it trips.
  BOOST_CHECK(call(b, 5));
  expect_change("closed", "open");
  BOOST_CHECK_EQUAL(status(b).stats["trips"], 1);
}

BOOST_AUTO_TEST_CASE(failure_rate_is_taken_over_a_sliding_window) {
  breaker_config cfg;
  cfg.consecutive_failures = 100;
  cfg.failure_rate = 0.5;
  cfg.window_size = 4;
  cfg.minimum_calls = 4;
  cfg.open_timeout = 10s;
  auto b = make_breaker(cfg);
  // F S S S S S F: the first failure leaves the 4-call window before the
  // second one enters it, so no window holds 2 failures of 4.
  fail_next(1);
  BOOST_CHECK(!call(b, 0));
  for (uint64_t i = 1; i < 6; ++i)
    BOOST_CHECK(call(b, i));
  fail_next(1);
  BOOST_CHECK(!call(b, 6));
  BOOST_CHECK_EQUAL(status(b).state, "closed");
  // ... S F: now 2 of the last 4 failed, though only 3 of all 9 did.
  BOOST_CHECK(call(b, 7));
  fail_next(1);
  BOOST_CHECK(!call(b, 8));
  BOOST_CHECK_EQUAL(status(b).state, "open");
}

BOOST_AUTO_TEST_CASE(open_turns_half_open_after_open_timeout_and_not_before) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 300ms;
  auto b = make_breaker(cfg);
  subscribe(b);
  auto opened = trip(b);
  auto calls = service_calls();
  auto early = call(b, 1);
  // A call the breaker let through must have come after the open timeout.
  if (early)
    BOOST_CHECK_GE(ms(now_ns() - opened.at_ns), 300);
  else
    BOOST_CHECK(early.error() == errc::circuit_open);
  BOOST_CHECK_EQUAL(service_calls(), calls + (early ? 1 : 0));
  // The timer moves it without any call.
  auto half = expect_change("open", "half_open");
  BOOST_CHECK_GE(ms(half.at_ns - opened.at_ns), 300);
  BOOST_CHECK_EQUAL(status(b).state, "half_open");
}

BOOST_AUTO_TEST_CASE(half_open_closes_after_all_probes_succeed) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 50ms;
  cfg.half_open_probes = 2;
  auto b = make_breaker(cfg);
  subscribe(b);
  trip(b);
  expect_change("open", "half_open");
  BOOST_CHECK_EQUAL(*call(b, 1), answer_to(1));
  BOOST_CHECK_EQUAL(status(b).state, "half_open");
  BOOST_CHECK_EQUAL(*call(b, 2), answer_to(2));
  expect_change("half_open", "closed");
  BOOST_CHECK_EQUAL(status(b).state, "closed");
  // Closed again: calls pass without limit.
  for (uint64_t i = 0; i < 5; ++i)
    BOOST_CHECK(call(b, i));
}

BOOST_AUTO_TEST_CASE(failed_probe_reopens_with_the_timer_restarted) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 200ms;
  cfg.max_open_timeout = 200ms;
  auto b = make_breaker(cfg);
  subscribe(b);
  trip(b);
  expect_change("open", "half_open");
  fail_next(1);
  BOOST_CHECK(failed_with(call(b, 1), caf::sec::runtime_error));
  auto reopened = expect_change("half_open", "open");
  auto half = expect_change("open", "half_open");
  BOOST_CHECK_GE(ms(half.at_ns - reopened.at_ns), 200);
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["trips"], 2);
  BOOST_CHECK_EQUAL(r.stats["open_timeout_ms"], 200);
}

BOOST_AUTO_TEST_CASE(half_open_lets_only_the_probes_through) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 50ms;
  cfg.half_open_probes = 2;
  auto b = make_breaker(cfg);
  subscribe(b);
  trip(b);
  expect_change("open", "half_open");
  script(caf::make_message(hold_atom::value));
  auto calls = service_calls();
  auto first = self->request(b, patience, uint64_t{1});
  auto second = self->request(b, patience, uint64_t{2});
  auto third = self->request(b, patience, uint64_t{3});
  // Both probes are out and unanswered: the third call is rejected at once.
  third.receive([](uint64_t) { BOOST_ERROR("a third call passed"); },
                [](caf::error& e) { BOOST_CHECK(e == errc::circuit_open); });
  // The breaker forwarded the probes before it answered the third call.
  BOOST_CHECK_EQUAL(script(caf::make_message(release_atom::value, false)),
                    calls + 2);
  for (auto* h : {&first, &second})
    h->receive([](uint64_t x) { BOOST_CHECK(x == answer_to(1) || x == answer_to(2)); },
               [this](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  expect_change("half_open", "closed");
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 1);
  BOOST_CHECK_EQUAL(r.stats["calls"], 3);
}

BOOST_AUTO_TEST_CASE(call_slower_than_call_timeout_fails_with_call_timeout) {
  auto cfg = trips_at_once();
  cfg.call_timeout = 100ms;
  auto b = make_breaker(cfg);
  subscribe(b);
  script(caf::make_message(hold_atom::value));
  auto start = now_ns();
  BOOST_CHECK(failed_with(call(b, 7), errc::call_timeout));
  BOOST_CHECK_GE(ms(now_ns() - start), 100);
  // The timeout is a failure: with consecutive_failures = 1 it trips.
  expect_change("closed", "open");
  // The late answer changes nothing.
  script(caf::make_message(release_atom::value, false));
  auto report = status(b);
  BOOST_CHECK_EQUAL(report.stats["timeouts"], 1);
  BOOST_CHECK_EQUAL(report.stats["failures"], 1);
  BOOST_CHECK_EQUAL(report.stats["successes"], 0);
  BOOST_CHECK_EQUAL(report.stats["in_flight"], 0);
  BOOST_CHECK_EQUAL(report.state, "open");
}

BOOST_AUTO_TEST_CASE(calls_in_flight_time_out_each_at_its_own_deadline) {
  // The breaker keeps one timer for the earliest deadline of its calls: a
  // later call must neither time out with an earlier one nor keep it waiting.
  breaker_config cfg;
  cfg.consecutive_failures = 100;
  cfg.call_timeout = 400ms;
  auto b = make_breaker(cfg);
  script(caf::make_message(silent_atom::value, uint64_t{2}));
  auto first_sent = now_ns();
  auto first = self->request(b, patience, uint64_t{1});
  // Spaces the two calls in time; nothing waits on this.
  self->receive(caf::after(std::chrono::milliseconds(300)) >> [] {});
  auto second_sent = now_ns();
  auto second = self->request(b, patience, uint64_t{2});
  // A call answered in time, made after them.
  BOOST_CHECK_EQUAL(*call(b, 3), answer_to(3));
  int64_t first_failed = 0;
  int64_t second_failed = 0;
  first.receive([](uint64_t) { BOOST_ERROR("the first call passed"); },
                [&](caf::error& e) {
                  first_failed = now_ns();
                  BOOST_CHECK(e == errc::call_timeout);
                });
  second.receive([](uint64_t) { BOOST_ERROR("the second call passed"); },
                 [&](caf::error& e) {
                   second_failed = now_ns();
                   BOOST_CHECK(e == errc::call_timeout);
                 });
  BOOST_CHECK_GE(ms(first_failed - first_sent), 400);
  BOOST_CHECK_GE(ms(second_failed - second_sent), 400);
  // The first did not wait for the second's deadline (300 ms of slack).
  BOOST_CHECK_LT(first_failed, second_sent + 400'000'000);
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["timeouts"], 2);
  BOOST_CHECK_EQUAL(r.stats["successes"], 1);
  BOOST_CHECK_EQUAL(r.stats["in_flight"], 0);
  BOOST_CHECK_EQUAL(r.state, "closed");
}

BOOST_AUTO_TEST_CASE(rejection_is_circuit_open_and_distinct_from_service_errors) {
  breaker_config cfg;
  cfg.consecutive_failures = 2;
  cfg.open_timeout = 10s;
  auto b = make_breaker(cfg);
  fail_next(2);
  auto own = call(b, 1);
  BOOST_REQUIRE(!own);
  // The service's own error reaches the caller unchanged.
  BOOST_CHECK(own.error() == caf::sec::runtime_error);
  BOOST_CHECK(own.error() != errc::circuit_open);
  BOOST_CHECK(contains(sys.actors().render(own.error()), "service fails"));
  BOOST_CHECK(!call(b, 2));
  auto calls = service_calls();
  auto rejected = call(b, 3);
  BOOST_REQUIRE(!rejected);
  BOOST_CHECK(rejected.error() == errc::circuit_open);
  BOOST_CHECK(rejected.error().category() == error_category);
  // A rejected call never reaches the service.
  BOOST_CHECK_EQUAL(service_calls(), calls);
  BOOST_CHECK_EQUAL(status(b).stats["rejected"], 1);
}

BOOST_AUTO_TEST_CASE(answers_of_any_shape_pass_through) {
  auto b = make_breaker(breaker_config{});
  self->request(b, patience, std::string{"abcd"})
    .receive(
      [](const std::string& s, uint64_t n) {
        BOOST_CHECK_EQUAL(s, "abcd");
        BOOST_CHECK_EQUAL(n, 4u);
      },
      [this](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  BOOST_CHECK_EQUAL(status(b).stats["successes"], 1);
}

BOOST_AUTO_TEST_CASE(open_timeout_grows_exponentially_up_to_its_cap) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 50ms;
  cfg.backoff_multiplier = 2;
  cfg.max_open_timeout = 150ms;
  auto b = make_breaker(cfg);
  subscribe(b);
  auto opened = trip(b);
  // Each failed probe trips it straight from half-open: 50, 100, 150 (not
  // 200: capped), 150.
  for (int64_t expected : {50, 100, 150, 150}) {
    BOOST_CHECK_EQUAL(status(b).stats["open_timeout_ms"], expected);
    auto half = expect_change("open", "half_open");
    BOOST_CHECK_GE(ms(half.at_ns - opened.at_ns), expected);
    fail_next(1);
    BOOST_CHECK(!call(b, 1));
    opened = expect_change("half_open", "open");
  }
  BOOST_CHECK_EQUAL(status(b).stats["open_timeout_ms"], 150);
  // A success closes it, which resets the open timeout.
  expect_change("open", "half_open");
  BOOST_CHECK(call(b, 2));
  expect_change("half_open", "closed");
  BOOST_CHECK_EQUAL(status(b).stats["open_timeout_ms"], 50);
  opened = trip(b);
  auto half = expect_change("open", "half_open");
  BOOST_CHECK_GE(ms(half.at_ns - opened.at_ns), 50);
  BOOST_CHECK_EQUAL(status(b).stats["trips"], 6);
}

BOOST_AUTO_TEST_CASE(subscribers_get_every_state_change_in_order_and_status_shows_it) {
  auto cfg = trips_at_once();
  cfg.open_timeout = 50ms;
  cfg.max_open_timeout = 50ms;
  auto b = make_breaker(cfg);
  subscribe(b);
  auto subscribe_other = [&](caf::scoped_actor& other) {
    other->request(b, patience, subscribe_atom::value)
      .receive([](const std::string& state) { BOOST_CHECK_EQUAL(state, "closed"); },
               [](caf::error&) { BOOST_ERROR("subscribe failed"); });
  };
  // A plain send subscribes too, without an answer.
  caf::scoped_actor plain{sys.actors()};
  plain->send(b, subscribe_atom::value);
  caf::scoped_actor quitter{sys.actors()};
  subscribe_other(quitter);
  quitter->request(b, patience, unsubscribe_atom::value)
    .receive([](caf::ok_atom) {}, [](caf::error&) { BOOST_ERROR("unsubscribe failed"); });
  {
    caf::scoped_actor gone{sys.actors()};
    subscribe_other(gone);
    BOOST_CHECK_EQUAL(status(b).stats["subscribers"], 3);
  }
  // A subscriber that stops is dropped by itself.
  for (int i = 0; i < 10000 && status(b).stats["subscribers"] != 2; ++i)
    ; // each status request is a round trip: the down message gets its turn
  BOOST_CHECK_EQUAL(status(b).stats["subscribers"], 2);
  // closed -> open -> half_open -> open -> half_open -> closed
  std::vector<state_change> seen;
  seen.push_back(trip(b));
  seen.push_back(expect_change("open", "half_open"));
  fail_next(1);
  BOOST_CHECK(!call(b, 1));
  seen.push_back(expect_change("half_open", "open"));
  seen.push_back(expect_change("open", "half_open"));
  BOOST_CHECK(call(b, 2));
  seen.push_back(expect_change("half_open", "closed"));
  for (size_t i = 0; i < seen.size(); ++i) {
    BOOST_CHECK_EQUAL(seen[i].name, "brk");
    if (i > 0) {
      BOOST_CHECK_EQUAL(seen[i].from, seen[i - 1].to);
      BOOST_CHECK_LE(seen[i - 1].at_ns, seen[i].at_ns);
    }
  }
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.kind, "breaker");
  BOOST_CHECK_EQUAL(r.state, "closed");
  BOOST_CHECK_EQUAL(r.stats["state_changes"], 5);
  BOOST_CHECK_EQUAL(r.stats["trips"], 2);
  BOOST_CHECK_EQUAL(r.stats["calls"], 3);
  BOOST_CHECK_EQUAL(r.stats["successes"], 1);
  BOOST_CHECK_EQUAL(r.stats["failures"], 2);
  BOOST_CHECK_EQUAL(r.stats["subscribers"], 2);
  plain->receive([](state_change& x) { BOOST_CHECK_EQUAL(x.to, "open"); },
                 [](std::string&) { BOOST_ERROR("a plain subscribe was answered"); },
                 caf::after(patience) >> [] { BOOST_ERROR("plain subscriber not told"); });
  // The one that unsubscribed got nothing.
  quitter->receive([](state_change&) { BOOST_ERROR("unsubscribed, yet told"); },
                   caf::after(0s) >> [] {});
}

BOOST_AUTO_TEST_CASE(invalid_config_throws_config_error_naming_the_field) {
  using change = std::function<void(breaker_config&)>;
  std::vector<std::pair<std::string, change>> cases{
    {"consecutive_failures", [](auto& c) { c.consecutive_failures = 0; }},
    {"failure_rate", [](auto& c) { c.failure_rate = 1.5; }},
    {"failure_rate", [](auto& c) { c.failure_rate = -0.1; }},
    {"failure_rate",
     [](auto& c) { c.failure_rate = std::numeric_limits<double>::quiet_NaN(); }},
    {"window_size", [](auto& c) { c.window_size = 0; }},
    {"minimum_calls", [](auto& c) { c.minimum_calls = 0; }},
    {"minimum_calls", [](auto& c) { c.minimum_calls = c.window_size + 1; }},
    {"call_timeout", [](auto& c) { c.call_timeout = caf::timespan{0}; }},
    {"open_timeout", [](auto& c) { c.open_timeout = -1s; }},
    {"half_open_probes", [](auto& c) { c.half_open_probes = 0; }},
    {"backoff_multiplier", [](auto& c) { c.backoff_multiplier = 0.5; }},
    {"max_open_timeout", [](auto& c) { c.max_open_timeout = c.open_timeout / 2; }},
    {"max_concurrent_calls", [](auto& c) { c.max_concurrent_calls = 0; }},
    {"subscribers", [](auto& c) { c.subscribers.push_back(caf::actor{}); }},
  };
  BOOST_CHECK_NO_THROW(breaker_config{}.validate());
  for (auto& [field, f] : cases) {
    breaker_config cfg;
    f(cfg);
    auto why = config_rejection([&] { cfg.validate(); });
    BOOST_CHECK_MESSAGE(contains(why, "breaker_config: " + field), why);
    BOOST_CHECK_THROW(spawn_breaker(sys, cfg, service), config_error);
  }
  auto why = config_rejection([&] { spawn_breaker(sys, breaker_config{}, caf::actor{}); });
  BOOST_CHECK_MESSAGE(contains(why, "service"), why);
}

BOOST_AUTO_TEST_CASE(stream_answers_reach_the_sink_in_order_and_end_waits_for_calls) {
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  auto b = make_breaker(breaker_config{}, links);
  self->monitor(b);
  script(caf::make_message(hold_atom::value));
  manual_upstream up{self, b};
  for (uint64_t i = 0; i < 10; ++i)
    up.push(i);
  up.end();
  // Its input ended, but ten calls are out: it keeps running. (It takes
  // items once the sink granted credit: each status is a round trip.)
  auto r = status(b);
  for (int i = 0; i < 10000 && r.in < 10; ++i)
    r = status(b);
  BOOST_CHECK(r.stopped == stop_reason::running);
  BOOST_CHECK_EQUAL(r.in, 10u);
  BOOST_CHECK_EQUAL(r.stats["in_flight"], 10);
  // Answered last first, they still go downstream in item order.
  script(caf::make_message(release_atom::value, true));
  for (uint64_t i = 0; i < 10; ++i)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), answer_to(i));
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 10u);
  BOOST_CHECK(!wait_down(b));
}

BOOST_AUTO_TEST_CASE(hold_mode_drops_nothing_while_open_and_flows_once_closed) {
  breaker_config cfg;
  cfg.consecutive_failures = 2;
  cfg.open_timeout = 200ms;
  cfg.max_concurrent_calls = 1;
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  auto b = make_breaker(cfg, links);
  subscribe(b);
  fail_next(2);
  manual_upstream up{self, b};
  for (uint64_t i = 0; i < 10; ++i)
    up.push(i);
  expect_change("closed", "open");
  auto r = status(b);
  if (r.state == "open") // else the open timeout has passed already
    BOOST_CHECK_EQUAL(r.in, 2u);
  BOOST_CHECK_EQUAL(r.dropped, 0u);
  expect_change("open", "half_open");
  expect_change("half_open", "closed");
  // Items 0 and 1 failed; the held ones all went through, in order.
  for (uint64_t i = 2; i < 10; ++i)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), answer_to(i));
  r = status(b);
  BOOST_CHECK_EQUAL(r.in, 10u);
  BOOST_CHECK_EQUAL(r.out, 8u);
  BOOST_CHECK_EQUAL(r.errors, 2u);
  BOOST_CHECK_EQUAL(r.dropped, 0u);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 0);
  up.end();
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 8u);
}

BOOST_AUTO_TEST_CASE(reject_mode_drops_and_counts_items_while_open) {
  breaker_config cfg;
  cfg.consecutive_failures = 2;
  cfg.open_timeout = 10s;
  cfg.max_concurrent_calls = 1;
  cfg.when_open = breaker_config::when_open_policy::reject;
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  auto b = make_breaker(cfg, links);
  self->monitor(b);
  subscribe(b);
  fail_next(2);
  manual_upstream up{self, b};
  for (uint64_t i = 0; i < 10; ++i)
    up.push(i);
  expect_change("closed", "open");
  // The trip and the rejections of the waiting items happen in one step.
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.in, 10u);
  BOOST_CHECK_EQUAL(r.out, 0u);
  BOOST_CHECK_EQUAL(r.errors, 2u);
  BOOST_CHECK_EQUAL(r.dropped, 8u);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 8);
  BOOST_CHECK_EQUAL(r.stats["calls"], 2);
  up.end();
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 0u);
  BOOST_CHECK(!wait_down(b));
}

namespace {

child_spec service_child() {
  child_spec spec;
  spec.name = "service";
  spec.start = [](const spawn_context& ctx) {
    return ctx.system().spawn(flaky_service, ctx.name());
  };
  return spec;
}

/// A breaker in front of the sibling "service", feeding `next` (if any);
/// each incarnation is announced to `observer` as (started_atom, n, handle).
child_spec breaker_child(caf::actor observer, std::string next = "",
                         breaker_config cfg = {}) {
  child_spec spec;
  spec.name = "breaker";
  spec.start = [observer, next, cfg](const spawn_context& ctx) {
    stage_config links;
    if (!next.empty())
      links.next = {ctx.sibling(next)};
    auto b = spawn_breaker(ctx, cfg, ctx.sibling("service"), links);
    caf::anon_send(observer, started_atom::value, ctx.restarts(), b);
    return b;
  };
  return spec;
}

} // namespace

BOOST_AUTO_TEST_CASE(supervised_stream_through_the_breaker_drains_losing_nothing) {
  supervisor_spec spec;
  spec.name = "pipeline";
  // The service starts first so that it stops last, after the drain.
  spec.children = {service_child(), counter_source("breaker"),
                   breaker_child(self, "sink"), summing_sink_child(self, 2000)};
  auto root = spawn_supervisor(sys, spec);
  await_progress(*this);
  // Live, at its stable address, it shows its state and counters.
  auto address = address_of(root, "breaker");
  auto live = status(address);
  BOOST_CHECK_EQUAL(live.kind, "breaker");
  BOOST_CHECK_EQUAL(live.state, "closed");
  BOOST_CHECK_GE(live.stats["calls"], 2000);
  BOOST_CHECK_EQUAL(live.stats["failures"], 0);
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto [count, sum] = receive_sink_done(*this);
  auto source = find_report(*report, "source");
  auto brk = find_report(*report, "breaker");
  auto sink = find_report(*report, "sink");
  BOOST_REQUIRE(source && brk && sink);
  BOOST_CHECK_GE(source->out, 2000u);
  BOOST_CHECK_EQUAL(brk->in, source->out);
  BOOST_CHECK_EQUAL(brk->out, source->out);
  BOOST_CHECK_EQUAL(brk->errors, 0u);
  BOOST_CHECK_EQUAL(brk->kind, "breaker");
  BOOST_CHECK(brk->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(sink->in, source->out);
  BOOST_CHECK_EQUAL(count, source->out);
  BOOST_CHECK_EQUAL(sum, transformed_sum(source->out));
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.errors, 0u);
}

BOOST_AUTO_TEST_CASE(restarted_breaker_keeps_serving_at_its_stable_address) {
  auto cfg = trips_at_once();
  cfg.subscribers = {self};
  supervisor_spec spec;
  spec.name = "guarded";
  spec.children = {service_child(), breaker_child(self, "", cfg)};
  auto root = spawn_supervisor(sys, spec);
  caf::actor first;
  self->receive([&](started_atom, uint32_t n, caf::actor& h) {
                  BOOST_CHECK_EQUAL(n, 0u);
                  first = h;
                },
                caf::after(patience) >> [] { BOOST_FAIL("breaker never started"); });
  expect_change("", "closed");
  auto address = address_of(root, "breaker");
  BOOST_CHECK_EQUAL(*call(address, 1), answer_to(1));
  // Trip it through its address, then crash it.
  auto svc = address_of(root, "service");
  self->request(svc, patience, fail_atom::value, uint64_t{1},
                static_cast<uint8_t>(failure_kind::own_error))
    .receive([](uint64_t) {}, [](caf::error&) { BOOST_ERROR("service not scripted"); });
  BOOST_CHECK(!call(address, 2));
  expect_change("closed", "open");
  BOOST_CHECK(failed_with(call(address, 3), errc::circuit_open));
  self->send_exit(first, caf::make_error(caf::sec::runtime_error, "breaker crash"));
  self->receive([&](started_atom, uint32_t n, caf::actor&) { BOOST_CHECK_EQUAL(n, 1u); },
                caf::after(patience) >> [] { BOOST_FAIL("breaker never restarted"); });
  // The new incarnation starts closed, tells the config's subscribers so,
  // and answers at the same address.
  expect_change("", "closed");
  BOOST_CHECK_EQUAL(*call(address, 4), answer_to(4));
  auto r = status(address);
  BOOST_CHECK_EQUAL(r.restarts, 1u);
  BOOST_CHECK_EQUAL(r.state, "closed");
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  BOOST_CHECK_EQUAL(totals(*report).lost, 0u);
}

BOOST_AUTO_TEST_CASE(call_in_flight_is_answered_when_the_breaker_is_cancelled) {
  // A service that takes calls and never answers them.
  auto silent = sys.actors().spawn(
    [](caf::event_based_actor* self, int) -> caf::behavior {
      return {[self](uint64_t) -> caf::result<uint64_t> {
        return self->make_response_promise<uint64_t>();
      }};
    },
    0);
  spawn_context ctx{sys.actors(), "brk", caf::actor{}, caf::actor{}, 0, {}};
  auto b = spawn_breaker(ctx, breaker_config{}, silent);
  auto pending = self->request(b, patience, uint64_t{1});
  // The call is out once the breaker counts it.
  for (int i = 0; i < 10000; ++i) {
    auto r = status(b);
    if (r.stats["in_flight"] == 1)
      break;
  }
  self->send(b, cancel_atom::value);
  pending.receive([](uint64_t) { BOOST_ERROR("a silent service answered"); },
                  [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
  self->send_exit(silent, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
