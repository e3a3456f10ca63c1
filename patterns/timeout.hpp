#pragma once

// A deadline in front of a service, as tower's Timeout layer: a call the
// service does not answer within `timeout` is answered with
// errc::call_timeout, so the caller is free to go on (or to retry). The
// service is not told: its answer may still come, and is then discarded and
// counted as a late answer, which tells an operator how far off the deadline
// is.
//
// A request to it is a call to the service, with the caller's message as it
// is; the service's answer (any value or error) is the answer when it comes in
// time. A timeout's error has the context "timeout: no answer within N ms".
// After its deadline, a call's late answer is waited for during
// `late_window` more; a call that stays silent that long counts as
// `never_answered` (the service may be stuck or have dropped it).
//
// Messages it understands, besides those of a stage (actors/stage.hpp:
// status, drain, cancel): anything else is a call. A drain waits for the calls
// still within their deadline (not for late answers); a cancel answers them
// with errc::cancelled.
//
// Its actor_report (kind "timeout") has these `stats`:
//   calls           requests taken
//   answered        answered by the service in time (values and errors)
//   timed_out       answered with errc::call_timeout
//   late_answers    answers (values or errors) that came after the deadline
//                   and were discarded
//   never_answered  timed-out calls still silent at the end of late_window
//   in_flight       calls within their deadline
//   awaiting_late   timed-out calls whose late answer may still come
//   abandoned       calls in flight when it stopped, answered with the
//                   reason (final report only)

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"

#include <caf/actor.hpp>
#include <caf/timespan.hpp>

#include <chrono>

namespace troupe {

struct timeout_config {
  /// The service's deadline per call (> 0, at most 24 h).
  caf::timespan timeout = std::chrono::seconds(1);
  /// How long after its deadline a late answer is still counted (>= 0, at
  /// most 24 h).
  caf::timespan late_window = std::chrono::seconds(10);

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// Spawns a timeout actor in front of `service` (validating `cfg`, throwing
/// config_error). Supervised, pass the service's stable address
/// (ctx.sibling(...)).
caf::actor spawn_timeout(spawn_context ctx, timeout_config cfg, caf::actor service);

} // namespace troupe
