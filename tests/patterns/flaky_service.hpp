#pragma once

// A service the request-pattern tests script: it fails, stays silent or holds
// its answers when told to, and tells an observer about every call.

#include "fixture.hpp"
#include "streams.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/breaker.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace troupe::test {

using fail_atom = caf::atom_constant<caf::atom("fail")>;
using silent_atom = caf::atom_constant<caf::atom("silent")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using calls_atom = caf::atom_constant<caf::atom("calls")>;
using attempt_atom = caf::atom_constant<caf::atom("attempt")>;

/// How the flaky service fails a call.
enum class failure_kind : uint8_t {
  timeout,   ///< errc::call_timeout: looks like an overloaded service
  own_error, ///< caf::sec::runtime_error "service fails": its own error
};

/// A breaker (actor or caller-side) that trips at the first failure and
/// stays open for longer than a test waits.
inline breaker_config trips_at_once() {
  breaker_config cfg;
  cfg.consecutive_failures = 1;
  cfg.open_timeout = std::chrono::seconds(10);
  cfg.max_open_timeout = std::chrono::seconds(10);
  return cfg;
}

/// What the flaky service answers to (uint64_t n) when it does not fail.
inline uint64_t answer_to(uint64_t n) {
  return n * 3 + 1;
}

struct flaky_state {
  uint64_t fail_next = 0;
  failure_kind kind = failure_kind::timeout;
  uint64_t silent_next = 0;
  bool holding = false;
  uint64_t calls = 0;
  caf::actor observer;
  std::vector<std::pair<caf::response_promise, uint64_t>> held;
  static inline const char* name = "flaky_service";
};

/// Answers the calls the flaky service holds; returns its count of calls.
inline uint64_t release_held(caf::stateful_actor<flaky_state>* self,
                             bool reverse) {
  auto& st = self->state;
  st.holding = false;
  if (reverse)
    std::reverse(st.held.begin(), st.held.end());
  for (auto& [rp, n] : st.held)
    rp.deliver(answer_to(n));
  st.held.clear();
  return st.calls;
}

/// (uint64_t n) -> 3n+1, unless scripted otherwise; (std::string s) ->
/// (s, s.size()), a call with an answer of two values. Control, each answered
/// with the number of calls so far:
///   (fail_atom, k, failure_kind)  the next k calls fail so
///   (silent_atom, k)              the next k calls are never answered
///   (hold_atom)                   answers wait until released
///   (release_atom [, bool reverse]) answers what waits, in order (last
///                                 first if `reverse`)
///   (watch_atom)                  the sender gets (attempt_atom, n, now_ns)
///                                 for each call from now on
///   (calls_atom)                  nothing else
inline caf::behavior flaky_service(caf::stateful_actor<flaky_state>* self,
                                   std::string) {
  return {
    [self](uint64_t n) -> caf::result<uint64_t> {
      auto& st = self->state;
      ++st.calls;
      if (st.observer)
        caf::anon_send(st.observer, attempt_atom::value, n, now_ns());
      if (st.fail_next > 0) {
        --st.fail_next;
        if (st.kind == failure_kind::timeout)
          return make_error(errc::call_timeout, "overloaded");
        return caf::make_error(caf::sec::runtime_error, "service fails");
      }
      if (st.silent_next > 0) {
        --st.silent_next;
        // A promise dropped unanswered tells the caller nothing.
        return self->make_response_promise();
      }
      if (st.holding) {
        auto rp = self->make_response_promise();
        st.held.emplace_back(rp, n);
        return rp;
      }
      return answer_to(n);
    },
    [self](const std::string& s) {
      ++self->state.calls;
      return std::make_tuple(s, static_cast<uint64_t>(s.size()));
    },
    [self](fail_atom, uint64_t k, uint8_t kind) {
      self->state.fail_next = k;
      self->state.kind = static_cast<failure_kind>(kind);
      return self->state.calls;
    },
    [self](silent_atom, uint64_t k) {
      self->state.silent_next = k;
      return self->state.calls;
    },
    [self](hold_atom) {
      self->state.holding = true;
      return self->state.calls;
    },
    [self](release_atom) { return release_held(self, false); },
    [self](release_atom, bool reverse) { return release_held(self, reverse); },
    [self](watch_atom) {
      self->state.observer = caf::actor_cast<caf::actor>(self->current_sender());
      return self->state.calls;
    },
    [self](calls_atom) { return self->state.calls; },
  };
}

/// A system_fixture with a flaky service, stopped at the end with whatever
/// the test registered in `started`.
struct flaky_fixture : system_fixture {
  caf::actor service = sys.actors().spawn(flaky_service, "service");
  std::vector<caf::actor> started;

  ~flaky_fixture() {
    for (auto& a : started)
      caf::anon_send(a, cancel_atom::value);
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
  }

  /// Tells the service `msg`; returns its count of calls so far.
  uint64_t script(caf::message msg) {
    uint64_t calls = 0;
    self->request(service, patience, std::move(msg))
      .receive([&](uint64_t n) { calls = n; },
               fail_on_error());
    return calls;
  }

  uint64_t service_calls() {
    return script(caf::make_message(calls_atom::value));
  }

  void fail_next(uint64_t k, failure_kind kind = failure_kind::timeout) {
    script(caf::make_message(fail_atom::value, k, static_cast<uint8_t>(kind)));
  }

  caf::expected<uint64_t> call(const caf::actor& dest, uint64_t n) {
    caf::expected<uint64_t> result{uint64_t{0}};
    self->request(dest, patience, n)
      .receive([&](uint64_t x) { result = x; },
               [&](caf::error& e) { result = std::move(e); });
    return result;
  }


  /// The time of the next call the watched service took.
  int64_t next_attempt() {
    int64_t at = 0;
    self->receive([&](attempt_atom, uint64_t, int64_t t) { at = t; },
                  caf::after(patience) >> [] { BOOST_FAIL("no call reached the service"); });
    return at;
  }
};

} // namespace troupe::test
