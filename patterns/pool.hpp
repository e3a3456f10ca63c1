#pragma once

// A worker pool: N workers, each an actor made by a factory and supervised by
// the pool, share the jobs given to the pool. A job is a message; a worker
// answers it (a request) with the job's result. Or the work is a function
// (`work`), run by workers the pool makes itself (spawn_function_worker). The pool is a stage, so it
// works in a stream (items in are jobs, results go out as items, in completion
// order) and in front of callers as a service (a request to the pool is a job,
// and the worker's answer goes to the requester). docs/patterns/pool.md has
// the rules; in short:
//
//   - The pool holds at most queue_capacity jobs (queued and in flight).
//     Beyond that it stops acknowledging stream items, so its upstream runs
//     out of credit, and answers requests with errc::pool_full.
//   - A worker that stops (crashes) is restarted in its place, and every job
//     it held is dispatched again, up to max_attempts in all; then the job
//     fails with errc::job_failed. Delivery to workers is at-least-once for
//     those jobs; every job is answered (or emitted) exactly once.
//   - Workers may live on other nodes. A worker whose factory throws
//     troupe::node_unreachable is parked: it takes no jobs, and the pool
//     starts it again every rejoin_interval until it rejoins. A worker that
//     goes down with exit_reason::remote_link_unreachable was lost with its
//     node: its jobs go to other workers without using up an attempt
//     (at-least-once: a job the node finished may run again), and it is
//     started again (typically parked). Neither counts against
//     worker_restarts. While every worker is parked, jobs wait in the pool;
//     a drain then fails them with errc::node_unreachable at the next
//     rejoin attempt that finds no worker, so that it ends.
//   - An error a worker answers is the job's result: it goes to the
//     requester (in a stream: counted in `errors`, nothing is emitted); it is
//     not retried. An empty answer emits nothing in a stream.
//   - With max_batch above 1, a worker may get several jobs in one
//     (troupe::batch) request and answers a troupe::batch of one result per
//     job, in order; a result holding just a caf::error is that job's error.
//     Crashes, retries, timeouts and answers stay per job. Function workers
//     always take batches (64 jobs at most by default). Jobs queued
//     together go to the next worker in full batches while batches are
//     quick; once one took over 1 ms (or before any was answered) they are
//     shared out over the workers, so that slow jobs run side by side. A
//     lone job leaves at once, alone.
//
// Messages it understands, besides those of a stage (actors/stage.hpp:
// stream links, drain_atom, cancel_atom, status_atom, stop_intake_atom):
//   (resize_atom, uint32_t n) -> uint32_t n
//       Grows to or shrinks to n workers (n >= 1). Removed workers (parked
//       ones first) take no new jobs and are stopped once the jobs they
//       hold are done.
//   (actor_report)   a worker's final report (troupe workers send one to the
//                    pool, their supervisor); ignored.
//   anything else    a job. Answered with the worker's answer, or with
//                    errc::pool_full (the pool holds queue_capacity jobs),
//                    errc::job_failed (every attempt's worker crashed; the
//                    context is the last crash reason), errc::call_timeout
//                    (job_timeout passed), errc::shutting_down (the pool is
//                    ending), errc::node_unreachable (the pool drained while
//                    every worker was parked), or the reason the pool
//                    stopped while it held the job.
// A drain or end of stream ends the pool once it holds no jobs. However the
// pool stops, its workers stop with it.
//
// Report: `state` is "running", "resizing" while removed workers finish
// their jobs, or "parked" while every worker is parked. `stats`:
//   workers          workers taking jobs (the target size)
//   retiring         removed workers still finishing their jobs
//   parked           of the workers, those parked (their node cannot be
//                    reached)
//   queued           jobs waiting for a worker
//   in_flight        jobs held by workers
//   max_held         most jobs held at once (queued + in flight)
//   accepted         jobs taken (stream items and requests)
//   completed        jobs answered with a result
//   failed           jobs that ended in an error (answered, timed out, or
//                    out of attempts)
//   timed_out        of these, jobs that exceeded job_timeout
//   overdue          timed-out jobs their workers are still running; each
//                    keeps its place at its worker until the worker answers
//   late_answers     answers of timed-out jobs, discarded
//   retried          dispatches of a job again after its worker crashed
//                    (these use up max_attempts)
//   redispatched     dispatches of a job again after its worker's node was
//                    lost (these do not)
//   node_losses      workers lost with their node (down with
//                    remote_link_unreachable)
//   rejoined         parked workers started again
//   stranded         jobs failed with errc::node_unreachable because the
//                    pool drained while every worker was parked (also in
//                    `failed`)
//   worker_restarts  workers restarted after they crashed or stopped (the
//                    restarts counted against worker_restarts)
//   rejected         requests refused (pool full or shutting down)
//   batches          troupe::batch requests sent to workers (max_batch
//                    above 1, or function workers)
//   abandoned        jobs held when the pool stopped (final report only);
//                    stream jobs among them are also counted as `dropped`
// `children` has one entry per worker: in = jobs dispatched to it, out =
// results, errors = error answers, restarts (crashes and node losses);
// a parked worker's entry has state "parked" and, as its error, what its
// factory said.

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/patterns/function_worker.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace troupe {

/// How the pool picks a worker for a job.
enum class dispatch_policy {
  /// Each job to the next worker in turn, as soon as it arrives.
  round_robin,
  /// Each job to the worker with the fewest jobs outstanding, as soon as it
  /// arrives.
  least_loaded,
  /// Jobs wait in the pool; a worker gets one when it holds fewer than
  /// `prefetch`. Suits jobs of skewed cost: a slow job delays only itself.
  pull,
};

/// Starts one worker: an actor that answers each job (a request carrying the
/// job's message) with its result. The context names the worker, counts its
/// restarts and names the pool as its supervisor.
using worker_factory = child_factory;

struct pool_config {
  /// Number of workers; at least 1.
  uint32_t workers = 4;
  /// Starts a worker actor. Set this or `work`, not both.
  worker_factory worker;
  /// The job as a function: the pool's workers run it on each job's item
  /// (what it returns or throws is the job's result or error; a throw is
  /// no crash, and the job is not run again). They are local actors, so a
  /// pool with `work` has no remote workers. Set this or `worker`.
  job_function work;
  dispatch_policy policy = dispatch_policy::round_robin;
  /// Jobs the pool holds at once, queued and in flight; at least 1.
  size_t queue_capacity = 1024;
  /// Pull policy: jobs a worker holds at once; at least 1.
  uint32_t prefetch = 1;
  /// Jobs sent to a worker in one message, at most; at least 1. Above 1,
  /// jobs that are queued together (the items of one stream round, or jobs
  /// waiting in the pool) go to a worker as one (troupe::batch) request of
  /// up to max_batch jobs, which the worker answers with a troupe::batch of
  /// one result per job, in order; see "Batches" in docs/patterns/pool.md.
  /// Cuts the messages per job for cheap jobs; 1 sends each job alone.
  /// 0 (the default) means 64 with `work` and 1 with `worker`, whose actors
  /// must know the batch protocol to take more.
  uint32_t max_batch = 0;
  /// Attempts a job gets when its workers crash; at least 1 (1: no retry).
  uint32_t max_attempts = 3;
  /// How long a worker may take for one attempt; 0 means no limit. A late
  /// job fails with errc::call_timeout at its deadline and is not retried.
  /// The worker may still be running it, so the job keeps its place at that
  /// worker (counted in `overdue`) until the worker answers, and the answer
  /// is discarded: a pull worker stuck in a late job is given no new ones.
  caf::timespan job_timeout{0};
  /// Optional. Called with a job's message when the pool answers the job
  /// without its worker's answer while a worker may hold it (it timed out,
  /// or the pool stopped), so that a worker that has not started the job
  /// yet can tell and skip it; the blocking executor sets a flag in its job.
  std::function<void(const item&)> on_abandon;
  /// Worker restarts allowed within a period; one more and the pool fails
  /// with errc::restart_intensity_exceeded, for its supervisor to handle.
  /// Node losses and parked starts do not count.
  restart_intensity worker_restarts;
  /// How often the pool tries again to start a parked worker (one whose
  /// factory threw troupe::node_unreachable); positive. Each attempt calls
  /// the factory from the pool's actor, so a factory should give up fast
  /// (a short connection patience) rather than block the pool. Bounds how
  /// long a drain waits while every worker is parked.
  caf::timespan rejoin_interval = std::chrono::seconds(1);

  /// Throws config_error naming the field if the config is invalid.
  void validate() const;
};

/// (resize_atom, uint32_t n) -> uint32_t: set the number of workers.
using resize_atom = caf::atom_constant<caf::atom("resize")>;

/// Validates `cfg` (throws config_error) and spawns the pool, which starts its
/// workers at once. `links` wires it into a stream (`next`, `inputs`,
/// `credit`); leave it empty for a pool used by requests only.
caf::actor spawn_pool(spawn_context ctx, pool_config cfg,
                      stage_config links = {});

std::string to_string(dispatch_policy x);

} // namespace troupe
