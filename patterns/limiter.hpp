#pragma once

// The rate limiter: a token bucket of `burst` permits, refilled at `rate` per
// second, computed from the steady clock whenever a permit is asked for (no
// refill timer, so the rate does not drift). The bucket starts full. Over any
// time T it lets through at most burst + rate * T.
//
// It works in a stream (items in, the same items out at the rate) and in front
// of a service (requests to the limiter go to `service` at the rate; answers
// go straight back to the caller). Modes:
//   delay   holds what has no permit yet and lets it through in order once a
//           permit is there. At most `max_queue` are held; then a stream
//           takes no more input, so its producer runs out of credit and slows
//           down, and a request is answered with errc::rate_limited.
//   reject  lets through what has a permit and drops the rest at once,
//           counted (a stream's `dropped`), or answers a request with
//           errc::rate_limited.
// With `key_of`, each key (e.g. a tenant) has a bucket of its own, so one
// key's traffic never delays another's; at most `max_keys` buckets exist, idle
// full ones are evicted, and a new key beyond that is rejected, counted.
//
// Messages: those of every stage (actors/stage.hpp); with a service, every
// other message is a request for it.
//
// Report: state "limiting" while something waits for a permit, else "open".
// Stats: "passed", "rejected", "delayed" (let through after waiting), "held"
// (waiting now), "keys", "tokens" (whole permits in the single bucket when it
// last gave one), "abandoned" (requests held when it stopped, answered with
// the reason; final report only).

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"

#include <caf/actor.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace troupe {

enum class limit_mode {
  delay,  ///< hold until permitted
  reject, ///< drop (count) or answer rate_limited at once
};

struct limiter_config {
  /// Permits per second.
  double rate = 1000;
  /// Bucket capacity: how many may pass at once after a quiet spell.
  double burst = 100;
  limit_mode mode = limit_mode::delay;
  /// Delay mode: most items or requests held waiting for a permit.
  size_t max_queue = 1024;
  /// Per-key limiting: the key of an item or request. Empty: one bucket.
  std::function<std::string(const item&)> key_of;
  /// Most buckets kept at once with key_of.
  size_t max_keys = 10000;
  /// Called in the limiter as each item or request is let through, e.g. to
  /// stamp or trace it. Empty: nothing.
  std::function<void(const item&)> on_pass;

  /// Throws config_error naming the field if a value is invalid.
  void validate() const;
};

/// A limiter in a stream (`links`), in front of `service` (requests), or both.
caf::actor spawn_limiter(spawn_context ctx, limiter_config cfg,
                         stage_config links, caf::actor service = {});

} // namespace troupe
