#pragma once

// Blocking work, as Tokio's spawn_blocking: CPU-heavy or blocking calls (a
// sleep, a file or database call, a long computation) run on a bounded set of
// threads of their own, so they never hold the threads of CAF's cooperative
// scheduler that every event-based actor shares. The caller gets the result as
// a message. docs/patterns/blocking.md has the rules; in short:
//
//   - The executor is a worker pool (patterns/pool.hpp) with pull dispatch,
//     one job per worker at a time, whose workers are detached actors (each
//     its own thread). At most max_threads jobs are given to threads at
//     once; the others wait in the executor. It holds at most
//     queue_capacity + max_threads (as spawned) jobs that callers wait for;
//     beyond that a job is refused with errc::pool_full.
//   - A job is a function returning a value (blocking_job; build one with
//     make_blocking_job). It is local: its message cannot cross nodes.
//   - An exception thrown by the function is the job's answer, as
//     errc::job_threw with the exception's what(); the worker and its thread
//     carry on with the next job. A job is never run twice: a worker that
//     stops anyway (killed before it started the job) is restarted and the
//     job fails with errc::job_failed.
//   - A function cannot be interrupted. A job past job_timeout is answered
//     with errc::call_timeout at its deadline, but its thread keeps the job
//     (counted in `overdue`) and takes no other until the function returns.
//     Cancelling the executor answers every job it holds at once; running
//     functions still finish on their threads. A job answered before its
//     function started (timed out, cancelled) never starts.
//
// Messages it understands: those of a pool (and so of a stage: drain_atom
// waits for every job held, cancel_atom, status_atom, resize_atom to change
// the number of threads; the total of jobs held stays the one set at spawn,
// so growing leaves fewer waiting places), and
//   (blocking_job) -> whatever the function returned, or an error:
//       errc::pool_full, errc::job_threw, errc::call_timeout (job_timeout, or
//       the job's own start_by passed before a thread took it),
//       errc::shutting_down, errc::job_failed, or the executor's stop reason.
// A plain send (not a request) gets the same answer as a message to the
// sender, which is what submit_blocking uses.
//
// Its actor_report (kind "blocking") has the pool's stats: `workers` is the
// number of threads, `in_flight` the jobs running, `queued` the jobs waiting,
// `completed`, `failed` (threw, timed out, refused by a worker), `timed_out`,
// `overdue` (timed-out jobs whose function still runs), `late_answers`,
// `rejected` (full or shutting down), `worker_restarts`.

#include "troupe/actors/errors.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/timespan.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace troupe {

/// One piece of blocking work. Holds a function, so it is a local-only
/// message type (CAF_ALLOW_UNSAFE_MESSAGE_TYPE): sending it to an actor on
/// another node fails to serialize. Run blocking work on the node that has it.
struct blocking_job {
  /// Runs on a thread of the executor; its result is the answer.
  std::function<caf::message()> run;
  /// A job that has not started by then is answered with errc::call_timeout
  /// without running; the epoch (the default) means no limit.
  std::chrono::steady_clock::time_point start_by{};
  /// Set by the executor when it answered the job without its result (timed
  /// out, cancelled); a thread that has not started the job skips it. Shared
  /// by every copy of the job.
  std::shared_ptr<std::atomic<bool>> abandoned = std::make_shared<std::atomic<bool>>(false);
};

} // namespace troupe

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::blocking_job)

namespace troupe {

struct blocking_config {
  /// Threads, and so jobs running at once; at least 1.
  uint32_t max_threads = 4;
  /// Jobs waiting for a thread beyond those running; more are refused with
  /// errc::pool_full. 0 means none wait.
  size_t queue_capacity = 1024;
  /// How long a job may run; 0 means no limit. A late job is answered with
  /// errc::call_timeout; its thread takes no other job until the function
  /// returns.
  caf::timespan job_timeout{0};
  /// Worker restarts allowed within a period; one more and the executor
  /// fails with errc::restart_intensity_exceeded.
  restart_intensity worker_restarts;

  /// Throws config_error naming the field if the config is invalid.
  void validate() const;
};

/// Validates `cfg` (throws config_error) and spawns the executor with its
/// max_threads worker threads.
caf::actor spawn_blocking_executor(spawn_context ctx, blocking_config cfg);

/// The message a function's result becomes: the value itself, nothing for
/// void, a message as it is.
template <class F>
caf::message run_as_message(F& fn) {
  using result_type = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<result_type>) {
    fn();
    return caf::message{};
  } else if constexpr (std::is_same_v<std::decay_t<result_type>, caf::message>) {
    return fn();
  } else {
    return caf::make_message(fn());
  }
}

/// Wraps a function (taking no arguments, returning any value a message can
/// hold, or void) as a job. `start_within` > 0 sets the job's start_by.
template <class F>
blocking_job make_blocking_job(F fn, caf::timespan start_within = caf::timespan{0}) {
  blocking_job job;
  job.run = [fn = std::move(fn)]() mutable { return run_as_message(fn); };
  if (start_within > caf::timespan{0})
    job.start_by = std::chrono::steady_clock::now() + start_within;
  return job;
}

/// Runs `fn` on `executor` for the event-based actor `self` and calls
/// `on_result` with its result (no arguments for void; the result by
/// reference otherwise) or `on_error` with the error. `timeout` > 0 bounds
/// the whole call: past it, on_error gets errc::call_timeout, and a job that
/// has not started by then does not run. Exactly one handler is called, in
/// `self`'s context.
template <class F, class OnResult, class OnError>
void run_blocking(caf::event_based_actor* self, const caf::actor& executor,
                  F fn, OnResult on_result, OnError on_error,
                  caf::timespan timeout = caf::timespan{0}) {
  using result_type = std::decay_t<std::invoke_result_t<F&>>;
  auto limit = timeout > caf::timespan{0} ? caf::duration{timeout}
                                          : caf::duration{caf::infinite};
  auto fail = std::make_shared<OnError>(std::move(on_error));
  request_any(
    self, executor, limit,
    caf::make_message(make_blocking_job(std::move(fn), timeout)),
    [on_result = std::move(on_result), fail](caf::message& answer) mutable {
      if constexpr (std::is_void_v<result_type>) {
        on_result();
      } else if constexpr (std::is_same_v<result_type, caf::message>) {
        on_result(answer);
      } else {
        if (answer.match_elements<result_type>()) {
          on_result(answer.get_mutable_as<result_type>(0));
        } else {
          caf::error err = caf::make_error(caf::sec::unexpected_response,
                                           caf::to_string(answer));
          (*fail)(err);
        }
      }
    },
    [fail](caf::error& err) {
      if (err == caf::sec::request_timeout) {
        caf::error late = make_error(errc::call_timeout,
                                     "blocking call took longer than its timeout");
        (*fail)(late);
      } else {
        (*fail)(err);
      }
    });
}

/// From outside actors (plain code, a scoped_actor, another thread): runs
/// `fn` on `executor` and sends its result to `reply_to` as a message, or a
/// caf::error if the job failed. Results of several jobs arrive in the order
/// they finish; put an identifier in the result to tell them apart.
template <class F>
void submit_blocking(const caf::actor& executor, const caf::actor& reply_to, F fn) {
  caf::send_as(reply_to, executor, make_blocking_job(std::move(fn)));
}

} // namespace troupe
