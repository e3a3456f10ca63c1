#include "troupe/actors/detail/scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/logger.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scheduler/worker.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace troupe::detail {

namespace {

// CAF's work stealing with a next slot, and its worker loop (below) without
// the logger's bookkeeping.
//
// An actor that a worker wakes (its running actor sent the actor a message)
// goes to that worker's next slot, which the worker runs next, as Tokio's
// LIFO slot: an actor that asks and the one that answers stay on one core,
// warm in its cache, instead of changing cores on each message as an idle
// worker steals the woken one. (CAF puts it at the head of the worker's
// queue, where an idle worker takes it.) An idle worker polling hard steals
// from queues only; one polling gently (CAF's moderate and relaxed rounds,
// after its hard polls, see use_troupe_scheduler) takes from slots too, so
// that an actor waiting in the slot behind a slow one still runs soon.
//
// After max_next_streak jobs in a row from the slot, the next actor woken
// goes to the back of the queue instead: a pair of actors messaging each
// other back and forth cannot keep the worker from its queue. (CAF's own
// head-of-queue order starves the queue the same way when no other worker
// steals, e.g. with one scheduler thread.)
class stealing_policy : public caf::policy::work_stealing {
public:
  using super = caf::policy::work_stealing;

  struct worker_data : super::worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator* p)
      : super::worker_data(p) {
    }
    worker_data(const worker_data& other) : super::worker_data(other) {
    }
    std::atomic<caf::resumable*> next{nullptr};
    // Jobs taken from `next` in a row. Atomic because internal_enqueue may
    // run on another thread (see dequeue); its value only steers fairness.
    std::atomic<size_t> next_streak{0};
  };

  static constexpr size_t max_next_streak = 32;

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    auto& data = d(self);
    if (data.next_streak.load(std::memory_order_relaxed) >= max_next_streak) {
      data.queue.append(job);
      return;
    }
    if (auto before = data.next.exchange(job, std::memory_order_acq_rel))
      data.queue.prepend(before);
  }

  template <class Worker>
  caf::resumable* try_steal(Worker* self, bool from_slots) {
    auto p = self->parent();
    if (p->num_workers() < 2)
      return nullptr;
    auto victim = d(self).uniform(d(self).rengine);
    if (victim == self->id())
      victim = p->num_workers() - 1;
    auto& v = d(p->worker_by_id(victim));
    if (!v.queue.empty())
      if (auto job = v.queue.take_tail())
        return job;
    return from_slots ? take_slot(v) : nullptr;
  }

  // Polling reads before it writes: an idle worker polls thousands of times
  // in a row, and a lock taken or a slot swapped on every poll would pull
  // the cache lines of the busy workers' queues and slots away from them
  // (and CAF's queue lock yields the thread when it finds the lock taken).
  static caf::resumable* take_slot(worker_data& data) {
    if (data.next.load(std::memory_order_acquire) == nullptr)
      return nullptr;
    return data.next.exchange(nullptr, std::memory_order_acq_rel);
  }

  template <class Worker>
  caf::resumable* take_own(Worker* self) {
    auto& data = d(self);
    if (auto job = take_slot(data)) {
      data.next_streak.fetch_add(1, std::memory_order_relaxed);
      return job;
    }
    if (data.next_streak.load(std::memory_order_relaxed) != 0)
      data.next_streak.store(0, std::memory_order_relaxed);
    return data.queue.empty() ? nullptr : data.queue.take_head();
  }

  // CAF's dequeue, taking the slot first and stealing slots when polling
  // gently. A worker asleep looks at its slot too whenever it wakes: a job
  // can reach the slot from another thread, with no wake-up (CAF 0.17
  // delivers a response promise through the execution unit its actor last
  // ran on, whichever thread delivers), and then waits at most one relaxed
  // sleep (10 ms), as it would at the head of CAF's queue.
  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& strategies = d(self).strategies;
    for (size_t k = 0; k < 2; ++k) {
      for (size_t i = 0; i < strategies[k].attempts;
           i += strategies[k].step_size) {
        if (auto job = take_own(self))
          return job;
        if ((i % strategies[k].steal_interval) == 0)
          if (auto job = try_steal(self, k > 0))
            return job;
        if (strategies[k].sleep_duration.count() > 0)
          std::this_thread::sleep_for(strategies[k].sleep_duration);
      }
    }
    auto& relaxed = strategies[2];
    auto& wait = d(self).waitdata;
    auto has_own = [&] {
      return !d(self).queue.empty()
             || d(self).next.load(std::memory_order_acquire) != nullptr;
    };
    for (size_t i = 1;; ++i) {
      {
        std::unique_lock<std::mutex> guard(wait.lock);
        wait.sleeping = true;
        wait.cv.wait_for(guard, relaxed.sleep_duration, has_own);
        wait.sleeping = false;
      }
      if (auto job = take_own(self))
        return job;
      if ((i % relaxed.steal_interval) == 0)
        if (auto job = try_steal(self, true))
          return job;
    }
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    for (auto job = take_own(self); job != nullptr; job = take_own(self))
      f(job);
  }
};

} // namespace

} // namespace troupe::detail

namespace caf::scheduler {

// CAF's loop, without CAF_PUSH_AID_FROM_PTR around each resume: Debian's
// libcaf_core is built with logging compiled in (at level quiet, so nothing
// is ever logged), and that macro costs a dynamic_cast across the actor's
// bases (string compares of type names across libraries) and a spinlocked
// map update per resume — about a tenth of the instructions of a message
// between two actors.
//
// When the system's logger prints nothing (verbosity quiet, the default),
// the worker also runs without a current logger: scheduled_actor::resume,
// compiled into libcaf_core, pushes and pops the actor id through the
// logger around each run the same way, and skips it without a logger.
// (A caf::scoped_actor made on the worker's thread sets the logger again
// for the rest of the thread's life: slower, not wrong.)
template <>
void worker<troupe::detail::stealing_policy>::run() {
  if (system().logger().verbosity() == CAF_LOG_LEVEL_QUIET)
    caf::logger::set_current_actor_system(nullptr);
  for (;;) {
    auto job = policy_.dequeue(this);
    policy_.before_resume(this, job);
    auto res = job->resume(this, max_throughput_);
    policy_.after_resume(this, job);
    switch (res) {
      case resumable::resume_later:
        policy_.resume_job_later(this, job);
        break;
      case resumable::done:
        policy_.after_completion(this, job);
        intrusive_ptr_release(job);
        break;
      case resumable::awaiting_message:
        intrusive_ptr_release(job);
        break;
      case resumable::shutdown_execution_unit:
        policy_.after_completion(this, job);
        policy_.before_shutdown(this);
        return;
    }
  }
}

} // namespace caf::scheduler

namespace troupe::detail {

using troupe_coordinator = caf::scheduler::coordinator<stealing_policy>;

constexpr caf::string_view aggressive_poll_attempts_key
  = "work-stealing.aggressive-poll-attempts";
constexpr caf::string_view moderate_steal_interval_key
  = "work-stealing.moderate-steal-interval";

bool runs_troupe_scheduler(caf::actor_system& sys) {
  return dynamic_cast<troupe_coordinator*>(&sys.scheduler()) != nullptr;
}

void use_troupe_scheduler(caf::actor_system_config& cfg) {
  auto policy = caf::get_or(cfg, "scheduler.policy", caf::atom("stealing"));
  // CAF's profiled scheduler keeps its own loop.
  if (policy != caf::atom("stealing")
      || caf::get_or(cfg, "scheduler.enable-profiling", false))
    return;
  // How long an idle worker polls before it naps, and how often it steals
  // while napping; a config that sets either keeps its value.
  //
  // CAF's worker polls 100 times (about a microsecond) before it naps 50 us
  // (over 100 us on Linux, with its default timer slack): a worker whose
  // actors wait a few microseconds for the next message, as in any stream
  // or pool, naps and leaves the jobs that arrive meanwhile waiting for most
  // of that time. troupe's polls 15000 times (about 30 us here; with CAF's
  // polls, which took a lock, 3000 took as long and 3000 read-only polls
  // take 6 us, too short for the pool's workers). Napping, CAF's worker
  // tries to steal at every fifth nap only; troupe's at every one.
  caf::put_missing(cfg.content, aggressive_poll_attempts_key, size_t{15000});
  caf::put_missing(cfg.content, moderate_steal_interval_key, size_t{1});
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* {
      return new troupe_coordinator(sys);
    });
}

} // namespace troupe::detail
