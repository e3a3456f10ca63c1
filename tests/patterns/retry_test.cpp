// Retry: transient failures retried to success, giving up after max_attempts
// and when the budget is spent, backoff growth and jitter bounds, errors that
// are not retried, per-attempt timeouts, cancel, config validation.

#include "flaky_service.hpp"

#include <troupe/patterns/retry.hpp>

#include <cmath>
#include <limits>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

struct retry_fixture : flaky_fixture {
  caf::actor make_retry(retry_config cfg) {
    auto r = spawn_retry(sys.actors(), std::move(cfg), service);
    started.push_back(r);
    return r;
  }
};

/// Fast retries without jitter, no budget: only max_attempts limits them.
retry_config quick() {
  retry_config cfg;
  cfg.initial_backoff = 1ms;
  cfg.max_backoff = 1ms;
  cfg.jitter = jitter_mode::none;
  cfg.use_budget = false;
  return cfg;
}

int64_t ms(int64_t ns) {
  return ns / 1'000'000;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(retry, retry_fixture)

BOOST_AUTO_TEST_CASE(retry_succeeds_after_transient_failures) {
  auto cfg = quick();
  cfg.max_attempts = 3;
  auto r = make_retry(cfg);
  fail_next(2);
  BOOST_CHECK_EQUAL(*call(r, 7), answer_to(7));
  BOOST_CHECK_EQUAL(service_calls(), 3u);
  auto report = status(r);
  BOOST_CHECK_EQUAL(report.kind, "retry");
  BOOST_CHECK_EQUAL(report.stats["calls"], 1);
  BOOST_CHECK_EQUAL(report.stats["attempts"], 3);
  BOOST_CHECK_EQUAL(report.stats["retries"], 2);
  BOOST_CHECK_EQUAL(report.stats["succeeded"], 1);
  BOOST_CHECK_EQUAL(report.stats["gave_up"], 0);
  BOOST_CHECK_EQUAL(report.stats["in_progress"], 0);
}

BOOST_AUTO_TEST_CASE(retry_gives_up_after_max_attempts_with_the_last_error) {
  auto cfg = quick();
  cfg.max_attempts = 3;
  auto r = make_retry(cfg);
  fail_next(10);
  auto result = call(r, 1);
  BOOST_REQUIRE(!result);
  // The code is the service's; the context says why retrying stopped.
  BOOST_CHECK(result.error() == errc::call_timeout);
  auto text = sys.actors().render(result.error());
  BOOST_CHECK(contains(text, "gave up after 3 attempts (max_attempts)"));
  BOOST_CHECK(contains(text, "overloaded"));
  BOOST_CHECK_EQUAL(service_calls(), 3u);
  auto report = status(r);
  BOOST_CHECK_EQUAL(report.stats["attempts"], 3);
  BOOST_CHECK_EQUAL(report.stats["gave_up"], 1);
  BOOST_CHECK_EQUAL(report.stats["budget_exhausted"], 0);
}

BOOST_AUTO_TEST_CASE(retry_gives_up_at_once_when_the_budget_is_exhausted) {
  auto cfg = quick();
  cfg.max_attempts = 5;
  cfg.use_budget = true;
  // No share of the calls, and 0.1/s over 10 s: one retry in the window.
  cfg.budget.retry_ratio = 0;
  cfg.budget.min_retries_per_second = 0.1;
  cfg.budget.window = 10s;
  auto r = make_retry(cfg);
  fail_next(100);
  auto first = call(r, 1);
  BOOST_REQUIRE(!first);
  BOOST_CHECK(first.error() == errc::call_timeout);
  BOOST_CHECK(contains(sys.actors().render(first.error()),
                       "budget exhausted after 2 attempts"));
  // The budget is spent: the next call fails after its first attempt.
  auto second = call(r, 2);
  BOOST_REQUIRE(!second);
  BOOST_CHECK(contains(sys.actors().render(second.error()),
                       "budget exhausted after 1 attempt"));
  BOOST_CHECK_EQUAL(service_calls(), 3u);
  auto report = status(r);
  BOOST_CHECK_EQUAL(report.stats["calls"], 2);
  BOOST_CHECK_EQUAL(report.stats["attempts"], 3);
  BOOST_CHECK_EQUAL(report.stats["retries"], 1);
  BOOST_CHECK_EQUAL(report.stats["gave_up"], 2);
  BOOST_CHECK_EQUAL(report.stats["budget_exhausted"], 2);
}

BOOST_AUTO_TEST_CASE(budget_allows_a_ratio_of_the_calls_and_forgets_old_ones) {
  retry_budget_config cfg;
  cfg.window = 1s;
  cfg.min_retries_per_second = 0;
  cfg.retry_ratio = 0.5;
  retry_budget budget{cfg};
  auto t = retry_budget::clock_type::now();
  BOOST_CHECK(!budget.withdraw(t));
  for (int i = 0; i < 4; ++i)
    budget.deposit(t);
  // Half of 4 calls.
  BOOST_CHECK(budget.withdraw(t));
  BOOST_CHECK(budget.withdraw(t + 10ms));
  BOOST_CHECK(!budget.withdraw(t + 20ms));
  // Once the window has passed, deposits and withdrawals are forgotten.
  auto later = t + 1500ms;
  BOOST_CHECK(!budget.withdraw(later));
  budget.deposit(later);
  budget.deposit(later);
  BOOST_CHECK(budget.withdraw(later));
  BOOST_CHECK(!budget.withdraw(later));
}

BOOST_AUTO_TEST_CASE(backoff_delays_grow_exponentially_between_attempts) {
  retry_config cfg;
  cfg.max_attempts = 4;
  cfg.initial_backoff = 20ms;
  cfg.multiplier = 2;
  cfg.max_backoff = 5s;
  cfg.jitter = jitter_mode::none;
  cfg.use_budget = false;
  auto r = make_retry(cfg);
  script(caf::make_message(watch_atom::value));
  fail_next(10);
  self->send(r, uint64_t{1});
  std::vector<int64_t> at;
  for (int i = 0; i < 4; ++i)
    at.push_back(next_attempt());
  // Timers never fire early: each gap is at least its delay. The upper
  // bounds only tell growth from a delay stuck at max_backoff (5 s) and
  // leave 800 ms for a loaded machine.
  BOOST_CHECK_GE(ms(at[1] - at[0]), 20);
  BOOST_CHECK_GE(ms(at[2] - at[1]), 40);
  BOOST_CHECK_GE(ms(at[3] - at[2]), 80);
  BOOST_CHECK_LT(ms(at[1] - at[0]), 20 + 800);
  BOOST_CHECK_LT(ms(at[2] - at[1]), 40 + 800);
  BOOST_CHECK_LT(ms(at[3] - at[2]), 80 + 800);
  self->receive([](caf::error& e) { BOOST_CHECK(e == errc::call_timeout); },
                caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
}

BOOST_AUTO_TEST_CASE(jitter_stays_within_its_bounds_and_a_seed_repeats_it) {
  retry_config cfg;
  cfg.initial_backoff = 100ms;
  cfg.multiplier = 2;
  cfg.max_backoff = 1s;
  std::mt19937_64 rng{42};
  cfg.jitter = jitter_mode::none;
  BOOST_CHECK(backoff_delay(cfg, 1, rng) == 100ms);
  BOOST_CHECK(backoff_delay(cfg, 3, rng) == 400ms);
  BOOST_CHECK(backoff_delay(cfg, 10, rng) == 1s);
  std::vector<caf::timespan> full;
  cfg.jitter = jitter_mode::full;
  for (uint32_t i = 0; i < 200; ++i) {
    auto d = backoff_delay(cfg, 2, rng);
    BOOST_CHECK(d >= caf::timespan{0} && d <= 200ms);
    full.push_back(d);
  }
  // Spread over the range, not stuck at one end.
  auto [lo, hi] = std::minmax_element(full.begin(), full.end());
  BOOST_CHECK(*lo < 50ms);
  BOOST_CHECK(*hi > 150ms);
  cfg.jitter = jitter_mode::equal;
  for (uint32_t i = 0; i < 200; ++i) {
    auto d = backoff_delay(cfg, 2, rng);
    BOOST_CHECK(d >= 100ms && d <= 200ms);
  }
  std::mt19937_64 a{7};
  std::mt19937_64 b{7};
  cfg.jitter = jitter_mode::full;
  for (uint32_t i = 1; i < 10; ++i)
    BOOST_CHECK(backoff_delay(cfg, i, a) == backoff_delay(cfg, i, b));
}

BOOST_AUTO_TEST_CASE(backoff_near_the_duration_limit_stays_within_its_cap) {
  // backoff_delay is public: it must stay defined for caps validate() rejects.
  retry_config cfg;
  cfg.initial_backoff = 1s;
  cfg.multiplier = 1000;
  cfg.max_backoff = caf::timespan::max();
  cfg.jitter = jitter_mode::none;
  std::mt19937_64 rng{1};
  BOOST_CHECK(backoff_delay(cfg, 100, rng) == caf::timespan::max());
  BOOST_CHECK(backoff_delay(cfg, 2, rng) == 1000s);
  for (auto mode : {jitter_mode::full, jitter_mode::equal})
    for (uint32_t retry : {1u, 5u, 100u}) {
      cfg.jitter = mode;
      auto d = backoff_delay(cfg, retry, rng);
      BOOST_CHECK(d >= caf::timespan{0});
    }
}

BOOST_AUTO_TEST_CASE(error_that_is_not_retryable_is_answered_at_once_unchanged) {
  auto cfg = quick();
  cfg.max_attempts = 5;
  auto r = make_retry(cfg);
  fail_next(1, failure_kind::own_error);
  auto result = call(r, 1);
  BOOST_REQUIRE(!result);
  BOOST_CHECK(result.error() == caf::sec::runtime_error);
  auto text = sys.actors().render(result.error());
  BOOST_CHECK(contains(text, "service fails"));
  BOOST_CHECK(!contains(text, "retry"));
  BOOST_CHECK_EQUAL(service_calls(), 1u);
  auto report = status(r);
  BOOST_CHECK_EQUAL(report.stats["not_retryable"], 1);
  BOOST_CHECK_EQUAL(report.stats["retries"], 0);
}

BOOST_AUTO_TEST_CASE(custom_predicate_decides_what_is_retried) {
  auto cfg = quick();
  cfg.retryable = [](const caf::error& e) { return e == caf::sec::runtime_error; };
  auto r = make_retry(cfg);
  fail_next(1, failure_kind::own_error);
  BOOST_CHECK_EQUAL(*call(r, 2), answer_to(2));
  fail_next(1, failure_kind::timeout);
  BOOST_CHECK(call(r, 2).error() == errc::call_timeout);
  BOOST_CHECK_EQUAL(status(r).stats["not_retryable"], 1);
}

BOOST_AUTO_TEST_CASE(silent_attempt_times_out_and_is_retried) {
  auto cfg = quick();
  cfg.attempt_timeout = 1s;
  auto r = make_retry(cfg);
  script(caf::make_message(silent_atom::value, uint64_t{1}));
  // Without the retry, the silent attempt would make this call_timeout. A
  // stall longer than the timeout may add an attempt: not the point here.
  auto answer = call(r, 5);
  BOOST_REQUIRE(answer);
  BOOST_CHECK_EQUAL(*answer, answer_to(5));
  BOOST_CHECK_GE(service_calls(), 2u);
  BOOST_CHECK_GE(status(r).stats["retries"], 1);
}

BOOST_AUTO_TEST_CASE(call_waiting_for_its_backoff_is_answered_on_cancel) {
  retry_config cfg;
  cfg.initial_backoff = 10s;
  cfg.max_backoff = 10s;
  cfg.use_budget = false;
  cfg.jitter = jitter_mode::none;
  auto r = spawn_retry(sys.actors(), cfg, service);
  script(caf::make_message(watch_atom::value));
  fail_next(1);
  auto pending = self->request(r, patience, uint64_t{1});
  next_attempt();
  self->monitor(r);
  // The service's failure reaches the retry actor after the service told
  // us of the attempt: ask until the call is in its backoff (bounded round
  // trips). It waits 10 s there; no second attempt comes meanwhile.
  auto before = status(r);
  for (int i = 0; i < 100000 && before.stats["backing_off"] == 0; ++i)
    before = status(r);
  BOOST_CHECK_EQUAL(before.stats["in_progress"], 1);
  BOOST_CHECK_EQUAL(before.stats["backing_off"], 1);
  BOOST_CHECK_EQUAL(before.stats["attempts"], 1);
  self->send(r, cancel_atom::value);
  pending.receive([](uint64_t) { BOOST_ERROR("answered with a value"); },
                  [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
  BOOST_CHECK(wait_down(r) == errc::cancelled);
}

BOOST_AUTO_TEST_CASE(stream_items_are_retried_and_reach_the_sink_in_item_order) {
  auto sink = spawn_reporting_sink(sys.actors(), self);
  auto cfg = quick();
  cfg.max_attempts = 3;
  stage_config links;
  links.next = {sink};
  spawn_context ctx{sys.actors()};
  ctx.report_to(self);
  auto r = spawn_retry(ctx, cfg, service, links);
  // The first two calls to reach the service fail once each (retried); the
  // next one fails with the service's own error (not retried).
  fail_next(2);
  manual_upstream up{self, r};
  up.push(numbers(0, 2));
  for (uint64_t i = 0; i < 2; ++i)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), answer_to(i));
  fail_next(1, failure_kind::own_error);
  up.push(numbers(2, 10));
  up.end();
  for (uint64_t i = 3; i < 10; ++i)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), answer_to(i));
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 9u);
  auto report = receive_one<actor_report>("the retry actor's final report");
  BOOST_CHECK(report.stopped == stop_reason::completed);
  BOOST_CHECK_EQUAL(report.in, 10u);
  BOOST_CHECK_EQUAL(report.out, 9u);
  BOOST_CHECK_EQUAL(report.errors, 1u);
  BOOST_CHECK_EQUAL(report.stats["retries"], 2);
  BOOST_CHECK_EQUAL(report.stats["not_retryable"], 1);
}

BOOST_AUTO_TEST_CASE(stream_answers_wait_for_downstream_credit) {
  // The test is both ends: upstream of the retry actor, and its downstream,
  // granting a window of 2 and acknowledging nothing until told.
  auto cfg = quick();
  stage_config links;
  links.next = {caf::actor{self}};
  auto r = spawn_retry(sys.actors(), cfg, service, links);
  started.push_back(r);
  link_open opened;
  self->receive([&](link_open& x) { opened = x; },
                caf::after(patience) >> [] { BOOST_FAIL("no link_open from the retry actor"); });
  auto grant = [&](uint64_t acked) {
    self->send(opened.upstream, demand{opened.link, 1, acked, 2});
  };
  grant(0);
  manual_upstream up{self, r};
  up.push(numbers(0, 6));
  // All six calls are answered by the service; only two answers may go out.
  auto r1 = status(r);
  for (int i = 0; i < 100000 && r1.stats["succeeded"] < 6; ++i)
    r1 = status(r);
  BOOST_REQUIRE_EQUAL(r1.stats["succeeded"], 6);
  BOOST_CHECK_EQUAL(r1.out, 2u);
  // Credit for two more: two more answers go out, in item order.
  std::vector<uint64_t> got;
  auto take_items = [&](size_t n) {
    while (got.size() < n)
      self->receive(
        [&](link_items& x) {
          for (auto& i : x.items)
            got.push_back(i.get_as<uint64_t>(0));
        },
        caf::after(patience) >> [] { BOOST_FAIL("no items from the retry actor"); });
  };
  take_items(2);
  grant(2);
  take_items(4);
  BOOST_CHECK_EQUAL(status(r).out, 4u);
  grant(4);
  take_items(6);
  for (uint64_t i = 0; i < 6; ++i)
    BOOST_CHECK_EQUAL(got[i], answer_to(i));
}

BOOST_AUTO_TEST_CASE(stacked_contexts_append_the_text_as_it_is) {
  // As a join over a retry over a service would stack them.
  auto err = make_error(errc::call_timeout, "overloaded");
  auto stacked = with_context(with_context(err, "retry: gave up"), "join: branch 0 failed");
  BOOST_CHECK(stacked == errc::call_timeout);
  BOOST_REQUIRE(stacked.context().match_elements<std::string>());
  BOOST_CHECK_EQUAL(stacked.context().get_as<std::string>(0),
                    "join: branch 0 failed; retry: gave up; overloaded");
  // A context that is not one string is rendered.
  auto other = caf::error{err.code(), err.category(), caf::make_message(int32_t{7})};
  BOOST_CHECK_EQUAL(with_context(other, "retry").context().get_as<std::string>(0),
                    "retry; (7)");
}

BOOST_AUTO_TEST_CASE(invalid_retry_config_names_the_field) {
  auto rejects = [this](auto change, const std::string& field) {
    auto cfg = quick();
    change(cfg);
    auto what = config_rejection([&] { spawn_retry(sys.actors(), cfg, service); });
    BOOST_CHECK_MESSAGE(contains(what, field), field + ": " + what);
  };
  rejects([](retry_config& c) { c.max_attempts = 0; }, "max_attempts");
  rejects([](retry_config& c) { c.initial_backoff = caf::timespan{0}; }, "initial_backoff");
  rejects([](retry_config& c) { c.multiplier = 0.5; }, "multiplier");
  rejects([](retry_config& c) { c.multiplier = std::nan(""); }, "multiplier");
  rejects([](retry_config& c) { c.max_backoff = caf::timespan{1}; }, "max_backoff");
  rejects([](retry_config& c) { c.attempt_timeout = -1ms; }, "attempt_timeout");
  rejects([](retry_config& c) { c.attempt_timeout = caf::timespan{0}; }, "attempt_timeout");
  rejects([](retry_config& c) { c.max_backoff = caf::timespan::max(); }, "max_backoff");
  rejects([](retry_config& c) { c.attempt_timeout = 25h; }, "attempt_timeout");
  rejects(
    [](retry_config& c) {
      c.use_budget = true;
      c.budget.window = 25h;
    },
    "window");
  rejects([](retry_config& c) { c.jitter = static_cast<jitter_mode>(9); }, "jitter");
  rejects([](retry_config& c) { c.max_concurrent_calls = 0; }, "max_concurrent_calls");
  rejects(
    [](retry_config& c) {
      c.use_budget = true;
      c.budget.window = caf::timespan{0};
    },
    "window");
  rejects(
    [](retry_config& c) {
      c.use_budget = true;
      c.budget.retry_ratio = -1;
    },
    "retry_ratio");
  rejects(
    [](retry_config& c) {
      c.use_budget = true;
      c.budget.min_retries_per_second = std::numeric_limits<double>::infinity();
    },
    "min_retries_per_second");
  BOOST_CHECK(contains(config_rejection([&] { spawn_retry(sys.actors(), quick(), caf::actor{}); }),
                       "service"));
}

BOOST_AUTO_TEST_SUITE_END()
