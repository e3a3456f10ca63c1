// The caller-side circuit breaker: the rules it shares with the breaker actor
// (trips, rate window, probes, backoff, stale outcomes) on a clock the test
// moves, and its request/then from event-based actors: rejection without a
// message to the service, timeouts, sharing between actors, and the handler
// signatures CAF accepts.

#include "flaky_service.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/circuit_breaker.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using shared_atom = caf::atom_constant<caf::atom("shared")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using report_atom = caf::atom_constant<caf::atom("report")>;

/// A clock that moves only when the test says.
struct manual_clock {
  std::shared_ptr<std::atomic<int64_t>> ns = std::make_shared<std::atomic<int64_t>>(0);

  circuit_breaker::clock fn() const {
    return [ns = ns] {
      return std::chrono::steady_clock::time_point{} + 1h
             + std::chrono::nanoseconds{ns->load()};
    };
  }

  void advance(std::chrono::nanoseconds d) {
    *ns += d.count();
  }
};

/// Calls through `b` to `service`, one request of the test each: a number n
/// is a call (n) answered with the service's answer or the error;
/// (shared_atom, n) makes n calls one after the other and answers how many
/// were answered with a value.
caf::behavior breaker_caller(caf::event_based_actor* self, circuit_breaker b,
                             caf::actor service, caf::duration timeout) {
  return {
    [=](uint64_t n) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      b.request(self, service, timeout, n)
        .then([rp](uint64_t x) mutable { rp.deliver(x); },
              [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [=](shared_atom, uint64_t n) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      auto answered = std::make_shared<uint64_t>(0);
      auto next = std::make_shared<std::function<void(uint64_t)>>();
      // The handlers of the call in flight hold the loop; it holds itself
      // weakly, so that it goes once the last call is answered.
      std::weak_ptr<std::function<void(uint64_t)>> weak = next;
      *next = [=](uint64_t i) mutable {
        if (i == n) {
          rp.deliver(*answered);
          return;
        }
        auto again = weak.lock();
        b.request(self, service, timeout, i)
          .then(
            [=](uint64_t) {
              ++*answered;
              (*again)(i + 1);
            },
            [=](caf::error&) { (*again)(i + 1); });
      };
      (*next)(0);
      return rp;
    },
  };
}

/// Answers a string with a state_change naming it, (ping_atom) with
/// nothing, (std::string, uint64_t) with the two swapped, (caf::get_atom)
/// with a message it keeps (an answer the service still shares).
caf::behavior typed_service(caf::event_based_actor*, std::string name) {
  auto kept = caf::make_message(name);
  return {
    [name](const std::string& s) { return state_change{name, s, s, 7}; },
    [](ping_atom) {},
    [kept](caf::get_atom) { return kept; },
    [](const std::string& s, uint64_t n) { return std::make_tuple(n, s); },
  };
}

struct caller_fixture : flaky_fixture {
  /// An event-based actor calling the service through `b`.
  caf::actor make_caller(circuit_breaker b, caf::duration timeout = caf::infinite) {
    auto a = sys.actors().spawn(breaker_caller, std::move(b), service, timeout);
    stopped_at_end.push_back(a);
    return a;
  }

  /// The next k calls fail with the service's own error.
  void fail_next(uint64_t k) {
    flaky_fixture::fail_next(k, failure_kind::own_error);
  }

  /// Spawns an event-based actor that runs `calls(self, service, test)`
  /// once, with a typed_service named `name` as `service`: it reports to the
  /// test with strings, or errors.
  template <class Calls>
  void spawn_typed_calls(const std::string& name, Calls calls) {
    auto svc = sys.actors().spawn(typed_service, name);
    stopped_at_end.push_back(svc);
    stopped_at_end.push_back(sys.actors().spawn(
      [calls](caf::event_based_actor* self, caf::actor svc, caf::actor test) {
        calls(self, svc, test);
      },
      svc, caf::actor{self}));
  }

  /// The next string a caller reported; an error fails the test.
  std::string next_text() {
    std::string result;
    self->receive([&](std::string& x) { result = std::move(x); },
                  [&](caf::error& e) { BOOST_FAIL(sys.actors().render(e)); },
                  caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
    return result;
  }

  ~caller_fixture() {
    for (auto& a : stopped_at_end)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  std::vector<caf::actor> stopped_at_end;
};

circuit_permit acquire(const circuit_breaker& b) {
  auto p = b.try_acquire();
  BOOST_REQUIRE(p);
  return std::move(*p);
}

bool rejected(const circuit_breaker& b) {
  auto p = b.try_acquire();
  return !p && p.error() == errc::circuit_open;
}

/// Calls through `b` with these outcomes: 'F' a failure, else a success.
void outcomes(const circuit_breaker& b, const std::string& xs) {
  for (auto x : xs) {
    if (x == 'F')
      acquire(b).failure();
    else
      acquire(b).success();
  }
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(caller_breaker, caller_fixture)

BOOST_AUTO_TEST_CASE(caller_breaker_trips_after_consecutive_failures) {
  breaker_config cfg;
  cfg.consecutive_failures = 3;
  cfg.open_timeout = 10s;
  circuit_breaker b{cfg};
  // A success breaks the run of failures.
  outcomes(b, "FFSFF");
  BOOST_CHECK_EQUAL(b.state(), "closed");
  outcomes(b, "F");
  BOOST_CHECK_EQUAL(b.state(), "open");
  auto s = b.stats();
  BOOST_CHECK_EQUAL(s.trips, 1u);
  BOOST_CHECK_EQUAL(s.calls, 6u);
  BOOST_CHECK_EQUAL(s.failures, 5u);
  BOOST_CHECK_EQUAL(s.successes, 1u);
  BOOST_CHECK_EQUAL(s.in_flight, 0u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_rejects_without_reaching_service) {
  circuit_breaker b{trips_at_once(), "front"};
  auto caller = make_caller(b);
  fail_next(1);
  BOOST_CHECK(!call(caller, 1));
  BOOST_REQUIRE_EQUAL(b.state(), "open");
  auto calls = service_calls();
  auto r = call(caller, 2);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(r.error() == errc::circuit_open);
  BOOST_CHECK(contains(sys.actors().render(r.error()), "breaker front"));
  BOOST_CHECK_EQUAL(service_calls(), calls);
  BOOST_CHECK(rejected(b));
  BOOST_CHECK_EQUAL(b.stats().rejected, 2u);
  BOOST_CHECK_EQUAL(b.stats().calls, 1u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_rejection_reaches_on_error_after_then_returned) {
  circuit_breaker b{trips_at_once()};
  acquire(b).failure();
  BOOST_REQUIRE_EQUAL(b.state(), "open");
  auto a = sys.actors().spawn(
    [b](caf::event_based_actor* self, caf::actor svc, caf::actor test) {
      auto returned = std::make_shared<bool>(false);
      b.request(self, svc, caf::infinite, uint64_t{1})
        .then([](uint64_t) {},
              [=](caf::error& e) {
                self->send(test, report_atom::value, *returned,
                           e == errc::circuit_open);
              });
      *returned = true;
    },
    service, caf::actor{self});
  stopped_at_end.push_back(a);
  bool after_then = false;
  bool open = false;
  self->receive([&](report_atom, bool x, bool y) { after_then = x; open = y; },
                caf::after(patience) >> [] { BOOST_FAIL("no rejection"); });
  BOOST_CHECK(after_then);
  BOOST_CHECK(open);
}

BOOST_AUTO_TEST_CASE(caller_breaker_half_open_allows_probes_then_closes) {
  manual_clock clock;
  auto cfg = trips_at_once();
  cfg.open_timeout = 1s;
  cfg.half_open_probes = 2;
  circuit_breaker b{cfg, "probed", clock.fn()};
  std::vector<state_change> changes;
  b.on_change([&](const state_change& x) { changes.push_back(x); });
  acquire(b).failure();
  BOOST_CHECK_EQUAL(b.state(), "open");
  clock.advance(999ms);
  BOOST_CHECK(rejected(b));
  clock.advance(1ms);
  // Asked after the open timeout: half-open, two probes and no more.
  auto p1 = acquire(b);
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  auto p2 = acquire(b);
  BOOST_CHECK(rejected(b));
  p1.success();
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  p2.success();
  BOOST_CHECK_EQUAL(b.state(), "closed");
  // Closed again: calls pass without limit.
  for (int i = 0; i < 5; ++i)
    acquire(b).success();
  BOOST_REQUIRE_EQUAL(changes.size(), 3u);
  BOOST_CHECK_EQUAL(changes[0].from, "closed");
  BOOST_CHECK_EQUAL(changes[0].to, "open");
  BOOST_CHECK_EQUAL(changes[1].to, "half_open");
  BOOST_CHECK_EQUAL(changes[1].at_ns - changes[0].at_ns, 1'000'000'000);
  BOOST_CHECK_EQUAL(changes[2].from, "half_open");
  BOOST_CHECK_EQUAL(changes[2].to, "closed");
  BOOST_CHECK_EQUAL(changes[2].name, "probed");
  BOOST_CHECK_EQUAL(b.stats().state_changes, 3u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_probe_failure_reopens_with_backoff) {
  manual_clock clock;
  auto cfg = trips_at_once();
  cfg.open_timeout = 1s;
  cfg.backoff_multiplier = 2;
  cfg.max_open_timeout = 3s;
  circuit_breaker b{cfg, "", clock.fn()};
  acquire(b).failure();
  BOOST_CHECK(b.stats().open_timeout == 1s);
  clock.advance(1s);
  acquire(b).failure();
  BOOST_CHECK_EQUAL(b.state(), "open");
  BOOST_CHECK(b.stats().open_timeout == 2s);
  clock.advance(1999ms);
  BOOST_CHECK(rejected(b));
  clock.advance(1ms);
  // Grown again, but not past max_open_timeout.
  acquire(b).failure();
  BOOST_CHECK(b.stats().open_timeout == 3s);
  clock.advance(3s);
  acquire(b).success();
  BOOST_CHECK_EQUAL(b.state(), "closed");
  // Closing resets the open timeout.
  BOOST_CHECK(b.stats().open_timeout == 1s);
  BOOST_CHECK_EQUAL(b.stats().trips, 3u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_rate_window) {
  breaker_config cfg;
  cfg.consecutive_failures = 100; // only the rate can trip it
  cfg.failure_rate = 0.75;
  cfg.window_size = 4;
  cfg.minimum_calls = 4;
  circuit_breaker b{cfg};
  // All failed, but fewer calls than the minimum.
  outcomes(b, "FF");
  BOOST_CHECK_EQUAL(b.state(), "closed");
  // F F S S: half of the window, less than the rate.
  outcomes(b, "SS");
  BOOST_CHECK_EQUAL(b.state(), "closed");
  outcomes(b, "SSFF");
  BOOST_CHECK_EQUAL(b.state(), "closed");
  // S F F F: 3 of the last 4 trip it, though only 5 of all 9 calls failed.
  outcomes(b, "F");
  BOOST_CHECK_EQUAL(b.state(), "open");
}

BOOST_AUTO_TEST_CASE(caller_breaker_stale_outcome_is_not_a_probe) {
  manual_clock clock;
  auto cfg = trips_at_once();
  cfg.open_timeout = 1s;
  circuit_breaker b{cfg, "", clock.fn()};
  auto late_failure = acquire(b);
  auto late_success = acquire(b);
  acquire(b).failure();
  clock.advance(1s);
  auto probe = acquire(b);
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  // Calls made while closed neither fail nor pass the probe.
  late_failure.failure();
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  late_success.success();
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  BOOST_CHECK(rejected(b));
  probe.success();
  BOOST_CHECK_EQUAL(b.state(), "closed");
  auto s = b.stats();
  BOOST_CHECK_EQUAL(s.failures, 2u);
  BOOST_CHECK_EQUAL(s.successes, 2u);
  BOOST_CHECK_EQUAL(s.trips, 1u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_abandoned_probe_frees_its_place) {
  manual_clock clock;
  auto cfg = trips_at_once();
  cfg.open_timeout = 1s;
  circuit_breaker b{cfg, "", clock.fn()};
  acquire(b).failure();
  clock.advance(1s);
  {
    auto probe = acquire(b);
    BOOST_CHECK(rejected(b));
  }
  BOOST_CHECK_EQUAL(b.state(), "half_open");
  acquire(b).success();
  BOOST_CHECK_EQUAL(b.state(), "closed");
  BOOST_CHECK_EQUAL(b.stats().abandoned, 1u);
  BOOST_CHECK_EQUAL(b.stats().in_flight, 0u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_timeout_counts_as_failure) {
  circuit_breaker b{trips_at_once(), "slow"};
  // The timeout only bounds the wait for an answer that never comes.
  auto caller = make_caller(b, caf::duration{100ms});
  script(caf::make_message(silent_atom::value, uint64_t{1}));
  auto r = call(caller, 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(r.error() == errc::call_timeout);
  BOOST_CHECK(contains(sys.actors().render(r.error()), "breaker slow"));
  BOOST_CHECK_EQUAL(b.state(), "open");
  auto s = b.stats();
  BOOST_CHECK_EQUAL(s.timeouts, 1u);
  BOOST_CHECK_EQUAL(s.failures, 1u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_shared_by_two_actors) {
  breaker_config cfg;
  cfg.consecutive_failures = 2;
  cfg.open_timeout = 10s;
  circuit_breaker b{cfg};
  std::atomic<int> opened{0};
  b.on_change([&](const state_change& x) {
    if (x.to == "open")
      ++opened;
  });
  auto one = make_caller(b);
  auto two = make_caller(b);
  // Both call at once, from two scheduler threads, through one breaker.
  constexpr uint64_t n = 2000;
  auto from_one = self->request(one, patience, shared_atom::value, n);
  auto from_two = self->request(two, patience, shared_atom::value, n);
  uint64_t answered = 0;
  from_one.receive([&](uint64_t x) { answered += x; }, fail_on_error());
  from_two.receive([&](uint64_t x) { answered += x; }, fail_on_error());
  BOOST_CHECK_EQUAL(answered, 2 * n);
  BOOST_CHECK_EQUAL(b.stats().calls, 2 * n);
  BOOST_CHECK_EQUAL(b.stats().in_flight, 0u);
  // A failure seen by each caller makes two in a row: open for both.
  fail_next(2);
  BOOST_CHECK(call(one, 1).error() == caf::sec::runtime_error);
  BOOST_CHECK(call(two, 2).error() == caf::sec::runtime_error);
  BOOST_CHECK(call(one, 3).error() == errc::circuit_open);
  BOOST_CHECK(call(two, 4).error() == errc::circuit_open);
  BOOST_CHECK_EQUAL(opened.load(), 1);
}

BOOST_AUTO_TEST_CASE(caller_breaker_handler_signatures) {
  circuit_breaker b{breaker_config{}};
  spawn_typed_calls("typed", [b](caf::event_based_actor* self, caf::actor svc,
                                 caf::actor test) {
    auto fail = [=](caf::error& e) { self->send(test, e); };
    // A value of a user type, by const reference.
    b.request(self, svc, caf::infinite, std::string{"x"})
      .then([=](const state_change& x) { self->send(test, x.name + x.to); }, fail);
    // Several values, by value and by reference.
    b.request(self, svc, caf::infinite, std::string{"y"}, uint64_t{2})
      .then([=](uint64_t n, std::string& s) { self->send(test, s + std::to_string(n)); },
            fail);
    // A void answer.
    b.request(self, svc, caf::infinite, ping_atom::value)
      .then([=]() { self->send(test, std::string{"void"}); }, fail);
    // An answer of other types than the handler takes.
    b.request(self, svc, caf::infinite, ping_atom::value)
      .then([=](int) { self->send(test, std::string{"int?"}); },
            [=](const caf::error& e) {
              self->send(test, std::string{e == caf::sec::unexpected_response
                                             ? "mismatch"
                                             : "other"});
            });
  });
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i)
    got.push_back(next_text());
  std::sort(got.begin(), got.end());
  BOOST_CHECK_EQUAL(got.size(), 4u);
  BOOST_CHECK_EQUAL(got[0], "mismatch");
  BOOST_CHECK_EQUAL(got[1], "typedx");
  BOOST_CHECK_EQUAL(got[2], "void");
  BOOST_CHECK_EQUAL(got[3], "y2");
  // The service answered all four.
  BOOST_CHECK_EQUAL(b.stats().successes, 4u);
}

BOOST_AUTO_TEST_CASE(caller_breaker_handler_changes_no_shared_answer) {
  circuit_breaker b{breaker_config{}};
  spawn_typed_calls("kept", [b](caf::event_based_actor* self, caf::actor svc,
                                caf::actor test) {
    auto fail = [=](caf::error& e) { self->send(test, e); };
    // A handler taking the answer by reference may change it: it changes
    // its own copy (CAF copies a shared message before it is changed), not
    // the message the service keeps.
    b.request(self, svc, caf::infinite, caf::get_atom::value)
      .then(
        [=](std::string& x) {
          x += " and changed";
          b.request(self, svc, caf::infinite, caf::get_atom::value)
            .then([=](std::string& y) { self->send(test, y); }, fail);
        },
        fail);
  });
  BOOST_CHECK_EQUAL(next_text(), "kept");
}

BOOST_AUTO_TEST_CASE(caller_breaker_rejects_invalid_config) {
  breaker_config cfg;
  cfg.consecutive_failures = 0;
  BOOST_CHECK(contains(config_rejection([&] { circuit_breaker b{cfg}; }),
                       "consecutive_failures is 0"));
}

BOOST_AUTO_TEST_SUITE_END()
