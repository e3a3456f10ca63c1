// Timeout: answers in time pass through, a late service's caller gets
// call_timeout and the late answer is discarded and counted, silence past the
// late window is counted, cancel answers what is held, config validation.

#include "flaky_service.hpp"

#include <troupe/patterns/timeout.hpp>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

struct timeout_fixture : flaky_fixture {
  caf::actor make_timeout(timeout_config cfg) {
    auto t = spawn_timeout(sys.actors(), cfg, service);
    started.push_back(t);
    return t;
  }

  /// Asks `t` for its status until `stat` reaches `n`: a bounded number of
  /// round trips, each a point of sync.
  actor_report await_stat(const caf::actor& t, const std::string& stat, int64_t n) {
    for (int i = 0; i < 100000; ++i) {
      auto r = status(t);
      if (r.stats[stat] >= n)
        return r;
    }
    BOOST_FAIL(stat + " never reached " + std::to_string(n));
    return {};
  }
};

timeout_config deadline(caf::timespan t) {
  timeout_config cfg;
  cfg.timeout = t;
  return cfg;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(timeout, timeout_fixture)

BOOST_AUTO_TEST_CASE(answers_in_time_pass_through_unchanged) {
  auto t = make_timeout(deadline(patience));
  BOOST_CHECK_EQUAL(*call(t, 4), answer_to(4));
  fail_next(1, failure_kind::own_error);
  auto failed = call(t, 4);
  BOOST_REQUIRE(!failed);
  BOOST_CHECK(failed.error() == caf::sec::runtime_error);
  auto r = status(t);
  BOOST_CHECK_EQUAL(r.kind, "timeout");
  BOOST_CHECK_EQUAL(r.stats["calls"], 2);
  BOOST_CHECK_EQUAL(r.stats["answered"], 2);
  BOOST_CHECK_EQUAL(r.stats["timed_out"], 0);
}

BOOST_AUTO_TEST_CASE(late_service_answers_call_timeout_and_its_late_answer_is_counted) {
  auto t = make_timeout(deadline(100ms));
  script(caf::make_message(hold_atom::value));
  auto start = steady::now();
  // A plain send: the answer comes as an ordinary message, so a late answer
  // forwarded by mistake would be one too, and the receive below sees it (a
  // blocking receive does not match responses).
  self->send(t, uint64_t{9});
  auto late = receive_one<caf::error>("the call_timeout");
  BOOST_CHECK(late == errc::call_timeout);
  BOOST_CHECK(contains(sys.actors().render(late), "no answer within 100 ms"));
  BOOST_CHECK(steady::now() - start >= 100ms);
  auto before = status(t);
  BOOST_CHECK_EQUAL(before.stats["timed_out"], 1);
  BOOST_CHECK_EQUAL(before.stats["awaiting_late"], 1);
  BOOST_CHECK_EQUAL(before.stats["late_answers"], 0);
  // The held answer goes out now; it reaches the timeout actor before the
  // status request that follows the release.
  script(caf::make_message(release_atom::value));
  auto after = status(t);
  BOOST_CHECK_EQUAL(after.stats["late_answers"], 1);
  BOOST_CHECK_EQUAL(after.stats["awaiting_late"], 0);
  BOOST_CHECK_EQUAL(after.stats["answered"], 0);
  // Nothing reached the caller but the timeout: had the late answer been
  // forwarded, it would be in the mailbox before the status answer.
  self->receive([](uint64_t) { BOOST_ERROR("the late answer reached the caller"); },
                [](caf::error&) { BOOST_ERROR("a second answer reached the caller"); },
                caf::after(0ms) >> [] {});
  BOOST_CHECK_EQUAL(*call(t, 1), answer_to(1));
}

BOOST_AUTO_TEST_CASE(calls_each_time_out_at_their_own_deadline_around_answered_ones) {
  // One timer serves all deadlines: held calls before and after an answered
  // one both time out, the answered one is not disturbed, and a call made
  // after the timer went idle gets a deadline too.
  auto t = make_timeout(deadline(200ms));
  auto silent_next = [this] { script(caf::make_message(silent_atom::value, uint64_t{1})); };
  silent_next();
  auto first = self->request(t, patience, uint64_t{1});
  BOOST_CHECK_EQUAL(status(t).stats["in_flight"], 1);
  BOOST_CHECK_EQUAL(*call(t, 2), answer_to(2));
  silent_next();
  auto third = self->request(t, patience, uint64_t{3});
  first.receive([](uint64_t) { BOOST_ERROR("the first call was answered"); },
                [](caf::error& e) { BOOST_CHECK(e == errc::call_timeout); });
  third.receive([](uint64_t) { BOOST_ERROR("the third call was answered"); },
                [](caf::error& e) { BOOST_CHECK(e == errc::call_timeout); });
  auto r = status(t);
  BOOST_CHECK_EQUAL(r.stats["timed_out"], 2);
  BOOST_CHECK_EQUAL(r.stats["answered"], 1);
  BOOST_CHECK_EQUAL(r.stats["in_flight"], 0);
  // The timer went idle; a new call still times out, not before its deadline.
  silent_next();
  auto start = steady::now();
  BOOST_CHECK(call(t, 4).error() == errc::call_timeout);
  BOOST_CHECK(steady::now() - start >= 200ms);
}

BOOST_AUTO_TEST_CASE(call_silent_past_the_late_window_counts_as_never_answered) {
  timeout_config cfg;
  cfg.timeout = 20ms;
  cfg.late_window = 30ms;
  auto t = make_timeout(cfg);
  script(caf::make_message(silent_atom::value, uint64_t{1}));
  BOOST_CHECK(call(t, 1).error() == errc::call_timeout);
  auto r = await_stat(t, "never_answered", 1);
  BOOST_CHECK_EQUAL(r.stats["late_answers"], 0);
  BOOST_CHECK_EQUAL(r.stats["awaiting_late"], 0);
}

BOOST_AUTO_TEST_CASE(call_in_flight_is_answered_when_the_timeout_is_cancelled) {
  auto t = spawn_timeout(sys.actors(), deadline(patience), service);
  script(caf::make_message(hold_atom::value));
  auto pending = self->request(t, patience, uint64_t{1});
  BOOST_CHECK_EQUAL(status(t).stats["in_flight"], 1);
  self->monitor(t);
  self->send(t, cancel_atom::value);
  pending.receive([](uint64_t) { BOOST_ERROR("answered with a value"); },
                  [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
  BOOST_CHECK(wait_down(t) == errc::cancelled);
  script(caf::make_message(release_atom::value));
}

BOOST_AUTO_TEST_CASE(drain_waits_for_calls_within_their_deadline) {
  auto t = spawn_timeout(sys.actors(), deadline(patience), service);
  script(caf::make_message(hold_atom::value));
  auto pending = self->request(t, patience, uint64_t{2});
  BOOST_CHECK_EQUAL(status(t).stats["in_flight"], 1);
  self->monitor(t);
  self->send(t, drain_atom::value);
  // Still running: the status comes back.
  BOOST_CHECK_EQUAL(status(t).stats["in_flight"], 1);
  script(caf::make_message(release_atom::value));
  pending.receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, answer_to(2)); },
                  [this](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  BOOST_CHECK(!wait_down(t));
}

BOOST_AUTO_TEST_CASE(invalid_timeout_config_names_the_field) {
  auto bad = deadline(caf::timespan{0});
  BOOST_CHECK(contains(config_rejection([&] { spawn_timeout(sys.actors(), bad, service); }),
                       "timeout is not positive"));
  timeout_config negative;
  negative.late_window = -1ms;
  BOOST_CHECK(contains(config_rejection([&] { spawn_timeout(sys.actors(), negative, service); }),
                       "late_window"));
  // Bounded, so that timeout + late_window cannot overflow.
  timeout_config huge;
  huge.late_window = caf::timespan::max();
  BOOST_CHECK(contains(config_rejection([&] { spawn_timeout(sys.actors(), huge, service); }),
                       "late_window is more than 24 h"));
  auto long_deadline = deadline(25h);
  BOOST_CHECK(contains(config_rejection([&] { spawn_timeout(sys.actors(), long_deadline, service); }),
                       "timeout is more than 24 h"));
  BOOST_CHECK(contains(config_rejection([&] {
                         spawn_timeout(sys.actors(), timeout_config{}, caf::actor{});
                       }),
                       "service"));
}

BOOST_AUTO_TEST_SUITE_END()
