#pragma once

// troupe's error codes, as a CAF error category (they render through
// actor_system::render once register_message_types has run), and the exception
// thrown for invalid configuration.

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace troupe {

enum class errc : uint8_t {
  /// A supervisor restarted its children more often than its restart
  /// intensity allows, stopped them and gave up.
  restart_intensity_exceeded = 1,
  /// The actor was cancelled (a cancel request, or its supervisor's).
  cancelled,
  /// A child did not stop by its shutdown deadline and was killed.
  shutdown_deadline,
  /// A message went to a child that is no longer running and will not be
  /// restarted, or its relay's restart buffer was full.
  child_unavailable,
  /// The factory of a child threw or returned no actor.
  child_start_failed,
  /// A rate limiter in reject mode had no permit for the request.
  rate_limited,
  /// A circuit breaker is open (or half-open with all probes taken) and
  /// rejected the call without making it.
  circuit_open,
  /// A call did not answer within the time a pattern allows it.
  call_timeout,
  /// A worker pool's queue is full: the request was not accepted.
  pool_full,
  /// A job failed on every attempt a worker pool allows it (its workers
  /// crashed while holding it); the context names the last error.
  job_failed,
  /// The pattern is shutting down and takes no new requests.
  shutting_down,
  /// A job's function threw (a blocking job, or the work of a function
  /// worker); the context is the exception's what().
  job_threw,
  /// A shared state refused a request so that writes held by get_manys can
  /// go in: too many writes wait on a shard (the write is refused), or the
  /// oldest has waited too long (a new get_many is refused).
  state_contended,
  /// A node could not be reached (not started yet, dead, refused the
  /// connection or its TLS handshake): what a start placed on it fails with.
  node_unreachable,
};

/// The CAF error category of errc.
constexpr caf::atom_value error_category = caf::atom("troupe");

std::string to_string(errc x);

caf::error make_error(errc x);
caf::error make_error(errc x, std::string context);

/// `err` with its code and category kept and a context of `what` followed by
/// its own context: how a pattern that hands an error on says what it did
/// ("retry: gave up after 3 attempts; ...").
caf::error with_context(const caf::error& err, const std::string& what);

/// Thrown when a configuration (a supervisor spec, a stage config, ...) is
/// invalid. The message names the offending field.
class config_error : public std::invalid_argument {
public:
  config_error(const std::string& where, const std::string& what);
};

/// Thrown by a child factory whose actor is placed on a node that cannot be
/// reached: a supervisor counts it as a failed start, a worker pool parks
/// the worker and tries it again later (that is how remote workers rejoin).
class node_unreachable : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

} // namespace troupe
