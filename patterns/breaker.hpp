#pragma once

// A circuit breaker in front of a service, as in resilience4j and
// akka.pattern.CircuitBreaker: while the service keeps failing, calls are
// rejected at once instead of piling up on it, and a few probe calls decide
// when it is healthy again.
//
// circuit_breaker (patterns/circuit_breaker.hpp) follows the same rules from
// the callers' side, as an object they share: a call is then two messages
// instead of four. This actor is for a breaker shared across nodes, on a
// stream, supervised, or with subscribers.
//
// States ("state" in its actor_report):
//   closed     calls pass. It trips (to open) after `consecutive_failures`
//              failures in a row, or, with a `failure_rate`, once the last
//              `window_size` calls hold at least `minimum_calls` calls and
//              that share of failures.
//   open       calls are rejected with errc::circuit_open without reaching
//              the service. After the open timeout the next calls find it
//              half-open (a timer also moves it there, for subscribers and
//              held streams).
//   half_open  at most `half_open_probes` calls pass; others are rejected. All
//              of them succeed: closed. One fails: open again, with the timer
//              restarted (and the open timeout grown by `backoff_multiplier`).
// A call fails when the service answers with an error or does not answer
// within `call_timeout`; its caller then gets that error, or
// errc::call_timeout (a late answer is ignored). Only the outcomes of calls
// made in the current state move it: a call made while closed that fails
// after the breaker opened is counted, but is not a failed probe.
//
// Messages it understands, besides those of a stage (actors/stage.hpp:
// status, drain, cancel, the link protocol):
//   (subscribe_atom)    the sender gets a state_change for each transition
//                       from now on, until it stops or unsubscribes. As a
//                       request, the answer is the current state (a string).
//   (unsubscribe_atom)  ends the sender's subscription.
//   anything else       a request to the service: forwarded (with the
//                       caller's message as it is) if the breaker lets it
//                       pass, and the service's answer is the answer.
// On a stream, each item is such a call: the answer goes downstream in item
// order, an item whose call failed is counted in the report's `errors`, and
// one rejected (when_open = reject) in its `dropped`.
//
// Its actor_report (kind "breaker") has `state` "closed", "open" or
// "half_open" and these `stats`:
//   calls            calls made to the service
//   successes        calls answered with a value
//   failures         calls answered with an error or timed out
//   timeouts         calls that did not answer within call_timeout
//   rejected         calls and items not let through (open, or half-open
//                    with all probes out)
//   trips            transitions to open
//   state_changes    transitions of any kind
//   in_flight        calls waiting for their answer
//   open_timeout_ms  how long the next (or current) open state lasts
//   subscribers      current subscribers
//   abandoned        request calls in flight when it stopped, answered with
//                    the reason (final report only)
//
// A supervised breaker is restarted like any stage; the new incarnation starts
// closed, with its counters at zero. Subscriptions belong to an incarnation,
// except for the config's `subscribers`, which every incarnation subscribes.

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"

#include <caf/actor.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace troupe {

/// The breaker actor uses every field; circuit_breaker the states' fields
/// only (not call_timeout, the stream's nor subscribers).
struct breaker_config {
  /// What a stream does with items that arrive while calls are rejected.
  enum class when_open_policy {
    /// Stop taking items until calls may pass again: the upstream backs up
    /// and nothing is lost.
    hold,
    /// Take them and drop them, counted in `dropped` and stats "rejected".
    reject,
  };

  /// Trips after this many failures in a row (at least 1).
  uint32_t consecutive_failures = 5;
  /// 0 turns the rate off; else it trips once failures / calls over the
  /// window reach this (0 < x <= 1).
  double failure_rate = 0;
  /// The window the rate is taken over: the outcomes of the last this many
  /// calls made while closed.
  uint32_t window_size = 100;
  /// The rate is judged only once the window holds this many calls (at least
  /// 1, at most window_size).
  uint32_t minimum_calls = 10;
  /// A call not answered within this is a failure (its caller gets
  /// errc::call_timeout).
  caf::timespan call_timeout = std::chrono::seconds(5);
  /// How long it stays open before letting probes through.
  caf::timespan open_timeout = std::chrono::seconds(1);
  /// Calls let through while half-open; all must succeed to close it.
  uint32_t half_open_probes = 1;
  /// Each trip straight from half-open multiplies the open timeout by this
  /// (at least 1), up to max_open_timeout; closing resets it.
  double backoff_multiplier = 1;
  caf::timespan max_open_timeout = std::chrono::seconds(60);
  /// On a stream: items whose calls are in flight or whose answers wait for
  /// an earlier one (answers go downstream in item order).
  uint32_t max_concurrent_calls = 16;
  when_open_policy when_open = when_open_policy::hold;
  /// Subscribed by every incarnation as it starts, which tells each of them
  /// state_change{name, "", "closed"}: unlike a subscription by message,
  /// these survive restarts.
  std::vector<caf::actor> subscribers;

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// What a breaker counted: the stats of the same names in the breaker actor's
/// report, and in circuit_breaker::stats().
struct breaker_counters {
  uint64_t calls = 0;         ///< calls let through to the service
  uint64_t successes = 0;     ///< calls answered with a value
  uint64_t failures = 0;      ///< answered with an error, or timed out
  uint64_t timeouts = 0;      ///< the failures that timed out
  uint64_t rejected = 0;      ///< calls not let through
  uint64_t trips = 0;         ///< transitions to open
  uint64_t state_changes = 0; ///< transitions of any kind
  uint64_t in_flight = 0;     ///< calls let through still without an outcome
};

/// Spawns a breaker in front of `service` (validating `cfg` and throwing
/// config_error). Requests to it are calls to `service`; stream items from
/// the upstreams in `links` become calls too, and their answers go to
/// `links.next`. Supervised, pass the service's stable address
/// (ctx.sibling(...)), so that the breaker keeps reaching it across restarts.
caf::actor spawn_breaker(spawn_context ctx, breaker_config cfg,
                         caf::actor service, stage_config links = {});

} // namespace troupe
