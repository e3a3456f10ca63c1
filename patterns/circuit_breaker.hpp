#pragma once

// A circuit breaker on the caller's side, as akka.pattern.CircuitBreaker and
// resilience4j's are: an object the callers share, not an actor in front of
// the service, so that a call is two messages (caller -> service -> caller)
// instead of the breaker actor's four. It follows the rules of the breaker
// actor (patterns/breaker.hpp; both keep the same state machine,
// patterns/detail/circuit.hpp):
//   closed     calls pass. It trips (to open) after `consecutive_failures`
//              failures in a row, or, with a `failure_rate`, once the last
//              `window_size` calls hold at least `minimum_calls` calls and
//              that share of failures.
//   open       calls are rejected with errc::circuit_open. The first caller
//              that asks after the open timeout finds it half-open (there is
//              no timer: an idle breaker stays open until someone asks).
//   half_open  at most `half_open_probes` calls pass; others are rejected. All
//              of them succeed: closed. One fails: open again (the open
//              timeout grown by `backoff_multiplier`, up to max_open_timeout).
// Only the outcomes of calls made in the current state move it: a permit
// remembers the state (its epoch) it was taken in, so a call made while
// closed that fails after the breaker opened is counted but is not a failed
// probe.
//
// Of breaker_config it uses consecutive_failures, failure_rate, window_size,
// minimum_calls, open_timeout, half_open_probes, backoff_multiplier and
// max_open_timeout. Not call_timeout: each request() gives its own timeout
// (which may be caf::infinite), as a CAF request does. Not the stream fields
// (max_concurrent_calls, when_open) nor subscribers: on_change() tells of
// transitions instead.
//
// Copies share one breaker (a handle, like caf::actor): give each actor that
// calls the service a copy, on any thread. A mutex guards the state; it is
// held for a few counter updates per call and never while user code runs.
//
// When a breaker shared across nodes, on a stream, supervised or with
// subscribing actors is needed, use the actor (spawn_breaker).

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/patterns/breaker.hpp"

#include <caf/actor.hpp>
#include <caf/detail/type_list.hpp>
#include <caf/detail/type_traits.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace troupe {

namespace detail {

class circuit_breaker_core;
enum class call_outcome;

} // namespace detail

/// What a circuit_breaker counted since it was made: a call let through is a
/// permit given, its outcome the one recorded on it.
struct circuit_breaker_stats : breaker_counters {
  uint64_t abandoned = 0; ///< permits dropped without an outcome
  /// How long the current or next open state lasts.
  std::chrono::nanoseconds open_timeout{0};
};

class circuit_breaker;

/// A call let through by a circuit_breaker, waiting for its outcome. Record
/// it once with success(), failure() or timeout(); one dropped without an
/// outcome (its caller went away) counts as abandoned: it moves no state,
/// and a probe it held is free again.
class circuit_permit {
public:
  circuit_permit() = default;
  circuit_permit(circuit_permit&& other) noexcept;
  circuit_permit& operator=(circuit_permit&& other) noexcept;
  circuit_permit(const circuit_permit&) = delete;
  circuit_permit& operator=(const circuit_permit&) = delete;
  ~circuit_permit();

  void success();
  void failure();
  /// A failure that is counted in `timeouts` too.
  void timeout();

  /// Whether it still waits for its outcome.
  explicit operator bool() const noexcept {
    return core_ != nullptr;
  }

  /// The error an outcome of this call reports to its caller, naming the
  /// breaker if it has a name (errc::call_timeout for a timeout).
  caf::error own_error(errc x) const;

private:
  friend class circuit_breaker;

  circuit_permit(std::shared_ptr<detail::circuit_breaker_core> core, uint64_t epoch)
    : core_(std::move(core)), epoch_(epoch) {
    // nop
  }

  void record(detail::call_outcome o);

  std::shared_ptr<detail::circuit_breaker_core> core_;
  // The state it was taken in: only an outcome in the same one moves it.
  uint64_t epoch_ = 0;
};

namespace detail {

/// Registers `handler` for an answer that is the error `reason`, which
/// `self` gets as its next message: a rejected call's handlers never run
/// inside the request's call.
caf::message_id reject_request(caf::event_based_actor* self, caf::error reason);

/// Calls `f` with the elements of `answer` if their types are the ones `f` takes (by value, by reference or by
/// const reference: what CAF accepts in a response handler); returns
/// whether they were.
template <class F, class... Args, size_t... Is>
bool apply_answer(F& f, caf::type_erased_tuple& answer, caf::detail::type_list<Args...>,
                  std::index_sequence<Is...>) {
  if (!answer.match_elements<std::decay_t<Args>...>())
    return false;
  f(std::forward<Args>(answer.get_mutable_as<std::decay_t<Args>>(Is))...);
  return true;
}

/// The response handler (see any_response) of a call through a
/// circuit_breaker: records the outcome on its permit, then calls the
/// user's handler. Dropped unanswered, its permit counts as abandoned.
template <class OnValue, class OnError>
class breaker_response {
public:
  breaker_response(circuit_permit permit, OnValue on_value, OnError on_error)
    : permit_(std::move(permit)),
      on_value_(std::move(on_value)),
      on_error_(std::move(on_error)) {
    // nop
  }

  void answer(caf::event_based_actor*, caf::type_erased_tuple& xs) {
    if (permit_)
      permit_.success();
    // The answer is taken where it lies, as CAF's own handlers take it (a
    // message another one shares is copied by CAF before it is changed).
    if (!apply(xs)) {
      // Counted a success: the service answered. The caller's handler
      // expected something else, which CAF reports as this error too.
      caf::error err = caf::sec::unexpected_response;
      on_error_(err);
    }
  }

  void failure(caf::error& err) {
    if (!permit_) {
      on_error_(err); // rejected: no call was made
      return;
    }
    if (err == caf::sec::request_timeout) {
      auto own = permit_.own_error(errc::call_timeout);
      permit_.timeout();
      on_error_(own);
      return;
    }
    permit_.failure();
    on_error_(err);
  }

private:
  bool apply(caf::type_erased_tuple& xs) {
    using args = typename caf::detail::get_callable_trait<OnValue>::arg_types;
    return apply_answer(on_value_, xs, args{},
                        std::make_index_sequence<caf::detail::tl_size<args>::value>{});
  }

  circuit_permit permit_;
  OnValue on_value_;
  OnError on_error_;
};

} // namespace detail

/// A call made by circuit_breaker::request: the handlers go in with then().
class circuit_breaker_request {
public:
  circuit_breaker_request(circuit_breaker_request&&) = default;
  circuit_breaker_request& operator=(circuit_breaker_request&&) = default;

  /// As CAF's request(...).then(on_value, on_error): `on_value` takes the
  /// answer (any signature a CAF response handler may have: values, const
  /// references, nothing for a void answer); `on_error` takes a caf::error.
  /// The outcome is recorded before either runs: an answer of other types
  /// than `on_value` takes is a success of the service and reaches
  /// `on_error` as caf::sec::unexpected_response. A rejected call reaches
  /// `on_error` with errc::circuit_open as the actor's next message, never
  /// inside this call; a timeout as errc::call_timeout.
  template <class OnValue, class OnError>
  void then(OnValue on_value, OnError on_error) && {
    using handler = detail::breaker_response<std::decay_t<OnValue>, std::decay_t<OnError>>;
    static_assert(std::is_same<typename caf::detail::get_callable_trait<
                                 std::decay_t<OnValue>>::result_type,
                               void>::value,
                  "response handlers return nothing");
    detail::expect_any_response(self_, id_,
                                handler{std::move(permit_), std::move(on_value),
                                        std::move(on_error)});
  }

private:
  friend class circuit_breaker;

  circuit_breaker_request(caf::event_based_actor* self, caf::message_id id,
                          circuit_permit permit)
    : self_(self), id_(id), permit_(std::move(permit)) {
    // nop
  }

  caf::event_based_actor* self_;
  caf::message_id id_;
  // Empty for a rejected call.
  circuit_permit permit_;
};

class circuit_breaker {
public:
  /// The time the breaker goes by; tests inject one they move by hand.
  using clock = std::function<std::chrono::steady_clock::time_point()>;

  /// Validates `cfg` (throwing config_error). `name` names the breaker in
  /// its errors and state_change events; an empty `now` is steady_clock.
  /// The clock is read under the breaker's lock, only when a rule needs the
  /// time (asked while open, a transition): it must not call the breaker.
  explicit circuit_breaker(breaker_config cfg, std::string name = {},
                           clock now = {});

  /// A permit to call, or errc::circuit_open (counted as rejected). Open
  /// turns half-open here once the open timeout has passed.
  caf::expected<circuit_permit> try_acquire() const;

  /// "closed", "open" or "half_open", as the breaker actor reports it. An
  /// open breaker whose timeout passed says "open" until someone asks for
  /// a permit.
  std::string state() const;

  circuit_breaker_stats stats() const;

  /// `f` is called with a state_change{name, from, to, at_ns} (at_ns on the
  /// breaker's clock) after each transition, on the thread of the caller
  /// that caused it, outside the breaker's lock: as akka's onOpen / onClose
  /// / onHalfOpen. An actor to tell can be sent the event from `f`.
  /// Replaces the previous one; an empty `f` removes it.
  void on_change(std::function<void(const state_change&)> f) const;

  /// `self` calls `dest` with `xs` through the breaker, as
  /// self->request(dest, timeout, xs...): if a permit is given, the request
  /// goes to `dest` now; if not, nothing is sent. The handlers go in with
  /// then() on the result. `timeout` may be caf::infinite (no event in CAF's
  /// clock per call); a timeout is a failure.
  template <class... Ts>
  circuit_breaker_request request(caf::event_based_actor* self, const caf::actor& dest,
                                  const caf::duration& timeout, Ts&&... xs) const {
    auto p = try_acquire();
    if (!p)
      return {self, detail::reject_request(self, std::move(p.error())), {}};
    // Sent as CAF sends it, the values in the mailbox element: no message
    // of their own.
    auto id = self->request(dest, timeout, std::forward<Ts>(xs)...).id();
    return {self, id, std::move(*p)};
  }

  /// As CAF's request, a timeout may be given as a std::chrono duration.
  template <class Rep, class Period, class... Ts>
  circuit_breaker_request request(caf::event_based_actor* self, const caf::actor& dest,
                                  std::chrono::duration<Rep, Period> timeout,
                                  Ts&&... xs) const {
    return request(self, dest, caf::duration{timeout}, std::forward<Ts>(xs)...);
  }

private:
  std::shared_ptr<detail::circuit_breaker_core> core_;
};

} // namespace troupe
