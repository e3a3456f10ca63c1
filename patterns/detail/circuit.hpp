#pragma once

// The rules of a circuit breaker (closed / open / half-open) without anything
// that carries calls: the breaker actor (patterns/breaker.cpp) and the
// caller-side circuit_breaker (patterns/circuit_breaker.hpp) both keep one,
// so that both follow the same rules. It reads its clock only when a rule
// needs the time (an open state's timeout, a transition), not per call; it
// sets no timer, and it is not thread-safe: its owner serializes.

#include "troupe/patterns/breaker.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace troupe::detail {

enum class circuit_state { closed, open, half_open };

/// "closed", "open" or "half_open": what the breaker reports.
const char* to_string(circuit_state x);

enum class call_outcome { success, failure, timeout };

/// What one step of the circuit did to its state: at most one transition,
/// which the owner tells its observers about (and, into open, may set a
/// timer for).
struct circuit_change {
  bool happened = false;
  circuit_state from = circuit_state::closed;
  circuit_state to = circuit_state::closed;
  std::chrono::steady_clock::time_point at;
};

class circuit {
public:
  using time_point = std::chrono::steady_clock::time_point;

  /// `cfg` must be valid (breaker_config::validate).
  circuit(const breaker_config& cfg, std::function<time_point()> now);

  /// Open turns half-open once the open timeout has passed: asked by the
  /// clock, not by a timer, so that a call never waits for one.
  circuit_change refresh();

  /// Whether a call may go to the service now. Counts it as a call in flight
  /// (taking a probe when half-open) and sets `epoch` to the state it was
  /// admitted in, or counts it as rejected. Its outcome goes to finish, or,
  /// if it never gets one, to abandon.
  bool admit(uint64_t& epoch, circuit_change& change);

  /// Whether admit would let a call pass, without taking a probe.
  bool may_admit() const;

  /// Counts the outcome of a call admitted in `epoch`, which moves the state
  /// only if the call was admitted in the current one.
  circuit_change finish(call_outcome o, uint64_t epoch);

  /// A call admitted in `epoch` that will have no outcome (its caller went
  /// away): no longer in flight, and, if it was a probe of the current
  /// half-open state, its probe is free again.
  void abandon(uint64_t epoch);

  circuit_state state() const {
    return state_;
  }

  /// Bumped by every transition: calls and timers of an earlier state are
  /// stale and move nothing.
  uint64_t epoch() const {
    return epoch_;
  }

  time_point opened_at() const {
    return opened_at_;
  }

  /// How long the current or next open state lasts (grown by backoff).
  std::chrono::nanoseconds open_timeout() const {
    return open_timeout_;
  }

  const breaker_counters& counters() const {
    return counters_;
  }

private:
  bool rate_exceeded() const;

  circuit_change trip();

  circuit_change transition(circuit_state to, time_point now);

  void reset_window();

  std::function<time_point()> now_;
  uint32_t consecutive_failures_;
  double failure_rate_;
  uint32_t window_size_;
  uint32_t minimum_calls_;
  uint32_t half_open_probes_;
  double backoff_multiplier_;
  std::chrono::nanoseconds base_open_timeout_;
  std::chrono::nanoseconds max_open_timeout_;
  circuit_state state_ = circuit_state::closed;
  uint64_t epoch_ = 0;
  time_point opened_at_;
  std::chrono::nanoseconds open_timeout_;
  uint32_t consecutive_ = 0;
  uint32_t probes_taken_ = 0;
  uint32_t probe_successes_ = 0;
  // The outcomes (true: failed) of the last window_size_ calls made while
  // closed, as a ring; only a failure rate needs it.
  std::vector<bool> window_;
  size_t window_next_ = 0;
  size_t window_calls_ = 0;
  size_t window_failures_ = 0;
  breaker_counters counters_;
};

} // namespace troupe::detail
