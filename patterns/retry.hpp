#pragma once

// Retries in front of a service, as tower's retry layer and the AWS SDKs do
// them: a call that fails with a retryable error is made again after an
// exponential backoff with jitter, up to `max_attempts` attempts in all, and
// only while a retry budget has room, so that retries cannot multiply the
// load on a service that is down.
//
// A request to the retry actor is a call to the service, made with the
// caller's message as it is (so the service must tolerate getting it more
// than once: after a timeout, the first attempt may have done its work). The
// answer is the service's first value; or, when it gives up, the last error,
// with its code unchanged (a caller still tests `e == errc::call_timeout`)
// and a context saying why it stopped: "retry: gave up after 3 attempts
// (max_attempts)" or "retry: budget exhausted after 1 attempt". An error that
// is not retryable is answered at once, unchanged.
//
// Which errors are retryable (`retryable`; default default_retryable): the
// ones that say the call may succeed if made again, not that it is wrong:
//   errc::call_timeout, caf::sec::request_timeout   the service was late
//   caf::sec::request_receiver_down                 it was down (a supervised
//                                                   service's address keeps
//                                                   working across restarts)
//   errc::child_unavailable, errc::pool_full,
//   errc::rate_limited                              it was restarting or full
// Not retried: the service's own errors (they may be permanent, and the call
// may not be idempotent), errc::circuit_open (a breaker says the service is
// sick: retrying within its open timeout only adds rejected calls, so fail
// fast and let the breaker decide), errc::shutting_down, errc::cancelled and
// caf::sec::unexpected_message.
//
// Messages it understands, besides those of a stage (actors/stage.hpp:
// status, drain, cancel, the link protocol): anything else is a call. A drain
// waits for the calls in progress (backoffs included); a cancel answers them
// with errc::cancelled.
// On a stream, each item is such a call: the answer goes downstream in item
// order and within the downstream's credit (at most `max_concurrent_calls`
// items in progress or waiting for an earlier one or for credit), and an
// item whose call failed for good is counted in the
// report's `errors`; a stopped retry actor counts the items it held as
// `dropped`.
//
// Its actor_report (kind "retry") has these `stats`:
//   calls             requests taken
//   attempts          calls made to the service (first attempts included)
//   retries           attempts after the first
//   succeeded         calls answered with a value
//   not_retryable     calls answered with an error that is not retryable
//   gave_up           calls answered with their last error after retrying
//                     was refused (max_attempts or the budget)
//   budget_exhausted  of these, the ones the budget refused
//   in_progress       calls in flight or waiting for their backoff
//   backing_off       of these, the ones waiting for their backoff
//   abandoned         calls open when it stopped, answered with the reason
//                     (final report only)

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace troupe {

/// How a backoff delay is spread (see the AWS Architecture Blog, "Exponential
/// Backoff And Jitter"), with d the exponential delay of that retry:
enum class jitter_mode {
  none,  ///< exactly d
  full,  ///< uniform in [0, d]: spreads retries best
  equal, ///< d/2 plus uniform in [0, d/2]: never much shorter than d/2
};

/// tower's retry budget: each call deposits, each retry withdraws, and a
/// retry is allowed while the retries within the last `window` stay within
/// `retry_ratio` times the calls within it, plus `min_retries_per_second`
/// times the window's length in seconds (so a quiet client may still retry).
struct retry_budget_config {
  caf::timespan window = std::chrono::seconds(10);
  double min_retries_per_second = 10;
  double retry_ratio = 0.2;

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// The bookkeeping of a retry_budget_config, over the steady clock, in ten
/// slots of window/10 each. Used by the retry actor; public to be testable.
class retry_budget {
public:
  using clock_type = std::chrono::steady_clock;

  explicit retry_budget(retry_budget_config cfg);

  /// A call was made at `now`.
  void deposit(clock_type::time_point now);

  /// Takes a retry at `now`; false (and nothing taken) if the budget is spent.
  bool withdraw(clock_type::time_point now);

private:
  static constexpr size_t slots = 10;

  void advance(clock_type::time_point now);

  retry_budget_config cfg_;
  caf::timespan slot_length_;
  clock_type::time_point start_;
  int64_t current_ = 0;
  std::vector<uint64_t> deposits_;
  std::vector<uint64_t> withdrawals_;
};

/// The default retry predicate (see the top of this header).
bool default_retryable(const caf::error& err);

struct retry_config {
  /// Attempts per call in all, the first one included (at least 1).
  uint32_t max_attempts = 3;
  /// Durations are at most 24 h.
  /// The delay before the first retry, before jitter (> 0) ...
  caf::timespan initial_backoff = std::chrono::milliseconds(100);
  /// ... times `multiplier` (at least 1) for each further retry ...
  double multiplier = 2;
  /// ... at most this (>= initial_backoff).
  caf::timespan max_backoff = std::chrono::seconds(10);
  jitter_mode jitter = jitter_mode::full;
  /// Seeds the jitter; 0 takes a seed from std::random_device.
  uint64_t seed = 0;
  /// An attempt not answered within this fails with errc::call_timeout (and
  /// may be retried); its late answer is ignored. Required (> 0): CAF 0.17
  /// tells a caller nothing when a service drops a request (a supervised
  /// service restarted while holding it), so without a limit such a call
  /// would never be answered and a drain would never end.
  caf::timespan attempt_timeout = std::chrono::seconds(10);
  /// Whether retries are limited by `budget`.
  bool use_budget = true;
  retry_budget_config budget;
  /// Which errors are retried; empty means default_retryable.
  std::function<bool(const caf::error&)> retryable;
  /// On a stream: items in progress or waiting for an earlier answer (>= 1).
  uint32_t max_concurrent_calls = 16;

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// The delay before retry number `retry` (1 for the first retry) under `cfg`,
/// drawing jitter from `rng`.
caf::timespan backoff_delay(const retry_config& cfg, uint32_t retry,
                            std::mt19937_64& rng);

/// Spawns a retry actor in front of `service` (validating `cfg`, throwing
/// config_error). Requests to it are calls to `service`; stream items from
/// the upstreams in `links` become calls too, and their answers go to
/// `links.next`. Supervised, pass the service's stable address
/// (ctx.sibling(...)).
caf::actor spawn_retry(spawn_context ctx, retry_config cfg, caf::actor service,
                       stage_config links = {});

} // namespace troupe
