#include "troupe/patterns/pool.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/patterns/detail/free_places.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/detail/invoke_result_visitor.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_counted.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/type_erased_tuple.hpp>
#include <caf/unit.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe {

void pool_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("pool_config", what);
  };
  if (workers == 0)
    fail("workers is 0: a pool needs at least one worker");
  if (!worker && !work)
    fail("worker and work are both empty: set a worker factory or a function");
  if (worker && work)
    fail("worker and work are both set: set only one");
  switch (policy) {
    case dispatch_policy::round_robin:
    case dispatch_policy::least_loaded:
    case dispatch_policy::pull:
      break;
    default:
      fail("policy is not a dispatch_policy");
  }
  if (queue_capacity == 0)
    fail("queue_capacity is 0: the pool could hold no job");
  if (prefetch == 0)
    fail("prefetch is 0: a pulling worker could take no job");
  if (max_attempts == 0)
    fail("max_attempts is 0: a job needs at least one attempt");
  if (job_timeout < caf::timespan{0})
    fail("job_timeout is negative (0 means no limit)");
  if (rejoin_interval <= caf::timespan{0})
    fail("rejoin_interval is not positive: a parked worker would be started "
         "again in a loop");
  troupe::validate(worker_restarts, "pool_config", "worker_restarts");
}

std::string to_string(dispatch_policy x) {
  switch (x) {
    case dispatch_policy::round_robin:
      return "round_robin";
    case dispatch_policy::least_loaded:
      return "least_loaded";
    case dispatch_policy::pull:
      return "pull";
  }
  return "unknown dispatch_policy";
}

namespace {

using clock_type = std::chrono::steady_clock;

/// How long a worker that answered a job with an error has to show that it
/// is alive (see pool_core::probe); a worker that does not answer in time is
/// taken as alive and its error as the job's result.
constexpr caf::timespan liveness_timeout = std::chrono::seconds(1);

/// Delay before a worker whose factory failed is started again, so that a
/// factory that keeps failing uses up the restart intensity instead of
/// spinning.
constexpr caf::timespan start_retry_delay = std::chrono::milliseconds(10);

/// Once a batch takes longer than this, the jobs queued together are shared
/// out over the workers (see pool_core::spread_batches). Far above what the
/// messages of a batch cost, even on a busy machine, so that cheap jobs stay
/// in full batches; far below what a user waits for.
constexpr auto spread_above = std::chrono::milliseconds(1);

/// Jobs per message to a function worker when max_batch is left at 0. A
/// request and its answer cost over a microsecond; spread over 64 jobs it
/// is small next to jobs of tens of nanoseconds, and a batch's results stay
/// well inside a stream's credit.
constexpr uint32_t default_function_batch = 64;

std::string render_duration(caf::timespan x) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(x).count();
  if (us % 1000 != 0)
    return std::to_string(us) + " us";
  return std::to_string(us / 1000) + " ms";
}

// The state of one pool incarnation. Shared by the stage logic, the probe
// handlers, the down handler and the functor that runs as the pool exits.
//
// Jobs live in a slab (a vector reused through a free list), so taking one
// allocates nothing; a job's requests go out through stage_control::request,
// tagged with the job's place and the serial of the attempt, so that the
// answer finds its job at once and a stale answer (of an attempt dispatched
// again meanwhile, or of a job that ended) is told apart.
class pool_core : public std::enable_shared_from_this<pool_core> {
public:
  pool_core(spawn_context ctx, pool_config cfg)
    : ctx_(std::move(ctx)), cfg_(std::move(cfg)) {
    name_ = ctx_.name().empty() ? std::string{"pool"} : ctx_.name();
    // Function workers take batches only, whatever their size, so that a
    // job that is itself a troupe::batch is never taken for several.
    batched_ = cfg_.work || cfg_.max_batch > 1;
    if (cfg_.max_batch == 0)
      cfg_.max_batch = cfg_.work ? default_function_batch : 1;
    if (cfg_.work)
      cfg_.worker = [work = cfg_.work](const spawn_context& ctx) {
        return spawn_function_worker(ctx.system(), work);
      };
    jobs_.reserve(std::min<size_t>(cfg_.queue_capacity, 4096));
  }

  void start(stage_control& ctl) {
    ctl_ = &ctl;
    self_ = ctl.self();
    auto core = shared_from_this();
    self_->set_down_handler([core](caf::down_msg& x) { core->on_down(x); });
    // A worker whose node is not up yet is parked: the pool runs with the
    // others, and jobs wait while there are none.
    for (uint32_t i = 0; i < cfg_.workers; ++i) {
      auto& s = add_slot();
      auto r = start_worker(s);
      if (r.unreachable)
        park(s, r.failure);
      else if (!r.failure.empty())
        throw std::runtime_error(name_ + ": cannot start a worker: " + r.failure);
    }
  }

  // Runs as the pool exits, whatever the reason (end of stream, drain,
  // cancel, a crash, a kill; the stage calls on_stop): answers the requests
  // it still holds and stops its workers. Workers are killed rather than asked:
  // one that traps exits must not outlive the pool, and nothing it still
  // does is owed to anyone once the pool is gone.
  void on_exit(const caf::error& reason) {
    auto err = reason && reason != caf::exit_reason::normal
                 ? reason
                 : make_error(errc::shutting_down, name_);
    for (auto& j : jobs_) {
      if (!j.live)
        continue;
      if (j.promise.pending())
        j.promise.deliver(err);
      abandon(j);
      // The promise refers to the pool: dropping it breaks the cycle.
      j.promise = caf::response_promise{};
    }
    for (auto& s : slots_)
      if (s->worker)
        caf::anon_send_exit(s->worker, caf::exit_reason::kill);
  }

  // With batches, the items of a round are gathered and dispatched together
  // at its end (on_round_end); a lone job would otherwise leave alone.
  void take_item(item x) {
    accept(std::move(x), nullptr, !batched_);
  }

  void on_round_end() {
    dispatch();
  }

  bool has_room() const {
    return !failed_ && held_ < cfg_.queue_capacity;
  }

  bool holds_jobs() const {
    return held_ > 0;
  }

  void on_end() {
    ended_ = true;
  }

  void on_timer(uint64_t token) {
    if ((token & deadline_bit) != 0) {
      on_deadline(token);
      return;
    }
    if ((token & rejoin_bit) != 0) {
      rejoin(token & ~rejoin_bit);
      return;
    }
    auto s = find_slot(token);
    if (s == nullptr || s->worker)
      return; // retired meanwhile
    if (restart(*s))
      after_change();
  }

  caf::result<caf::message> on_request(caf::message& x) {
    if (x.match_elements<resize_atom, uint32_t>())
      return resize(x.get_as<uint32_t>(1));
    if (x.match_elements<actor_report>())
      return caf::message{}; // a worker's final report: the pool counts itself
    if (ended_ || failed_) {
      ++rejected_;
      return make_error(errc::shutting_down, name_);
    }
    if (!has_room()) {
      ++rejected_;
      return make_error(errc::pool_full, name_);
    }
    auto rp = self_->make_response_promise();
    accept(std::move(x), &rp, true);
    return rp;
  }

  // A worker's response to an attempt or a batch (see send_attempt).
  void on_response(uint64_t tag, caf::message& answer) {
    if ((tag & batch_bit) != 0)
      on_batch_response(tag, answer);
    else if (answer.match_elements<caf::error>())
      on_failure(tag, answer.get_mutable_as<caf::error>(0));
    else
      on_answer(tag, answer);
  }

  void describe(actor_report& r) const {
    size_t retiring = retiring_;
    size_t parked = 0;
    for (auto& s : slots_)
      if (s->parked && !s->retiring)
        ++parked;
    if (retiring > 0)
      r.state = "resizing";
    else if (parked > 0 && parked == slots_.size())
      r.state = "parked";
    else
      r.state = "running";
    auto stat = [&r](const char* key, uint64_t value) {
      r.stats[key] = static_cast<int64_t>(value);
    };
    stat("workers", slots_.size() - retiring);
    stat("retiring", retiring);
    stat("parked", parked);
    stat("queued", queue_.size());
    stat("in_flight", held_ - queue_.size());
    stat("overdue", overdue_.size());
    stat("max_held", max_held_);
    stat("accepted", accepted_);
    stat("completed", completed_);
    stat("failed", failed_jobs_);
    stat("timed_out", timed_out_);
    stat("late_answers", late_answers_);
    stat("retried", retried_);
    stat("redispatched", redispatched_);
    stat("node_losses", node_losses_);
    stat("rejoined", rejoined_);
    stat("stranded", stranded_);
    stat("worker_restarts", worker_restarts_);
    stat("rejected", rejected_);
    stat("batches", batches_sent_);
    r.errors += stream_failed_;
    bool stopped = r.stopped != stop_reason::running;
    if (stopped) {
      stat("abandoned", held_);
      for (auto& j : jobs_)
        if (j.live && j.from_stream)
          ++r.dropped;
    }
    for (auto& s : slots_) {
      actor_report w;
      w.name = s->name;
      w.kind = "worker";
      w.in = s->dispatched;
      w.out = s->answered;
      w.errors = s->error_answers;
      w.restarts = s->restarts;
      w.stopped = stopped ? stop_reason::stopped : stop_reason::running;
      if (s->parked) {
        w.state = "parked";
        w.error = s->park_reason;
      }
      r.children.push_back(std::move(w));
    }
  }

private:
  // Marks a timer token as a job's deadline; slot ids (start retries) never
  // reach this bit.
  static constexpr uint64_t deadline_bit = uint64_t{1} << 63;

  // Marks a timer token as a parked worker's rejoin attempt (with its slot
  // id below it).
  static constexpr uint64_t rejoin_bit = uint64_t{1} << 62;

  // Marks a request's tag as a batch's (see batch_flight).
  static constexpr uint64_t batch_bit = uint64_t{1} << 63;

  // Serials keep 31 bits in a tag, below batch_bit.
  static constexpr uint32_t serial_mask = 0x7fffffff;

  struct slot {
    uint64_t id = 0;
    std::string name;
    caf::actor worker; // null while its restart is due, or parked
    // Restarts after a crash and starts after its node was lost.
    uint32_t restarts = 0;
    bool retiring = false;
    // Its node cannot be reached: no worker, and a rejoin attempt is due.
    bool parked = false;
    std::string park_reason; // what the factory said, while parked
    size_t held = 0; // jobs dispatched to it and not yet answered for
    // Attempts answered at their deadline that the worker still runs: they
    // keep their place at the worker until it answers them.
    size_t overdue = 0;
    uint64_t dispatched = 0;
    uint64_t answered = 0;
    uint64_t error_answers = 0;
  };

  struct job {
    item msg;
    // Pending for a request; not for a stream item or an asynchronous
    // message (whose result has nowhere to go).
    caf::response_promise promise;
    uint64_t seq = 0;        // order of acceptance: requeued oldest first
    slot* holder = nullptr;  // the slot holding it; null while queued
    uint64_t deadline = 0;   // token of the current attempt's timer, or 0
    uint32_t attempts = 0;
    uint32_t serial = 0;     // of the current attempt (the tag's high half)
    bool from_stream = false;
    // Its worker's node was lost: the next dispatch is a redispatch, not a
    // retry (its attempt was given back).
    bool redispatch = false;
    bool live = false;       // false: a free place in the slab
  };

  // A batch request in flight: the tags of its jobs' attempts, in order.
  // It stays until its response comes (an answer, the worker's crash, or a
  // bounce), whose results go to the attempts that are still current.
  struct batch_flight {
    std::vector<uint64_t> tags;
    uint64_t slot = 0; // the id of the worker's slot
    uint32_t serial = 0;
    bool live = false;
    clock_type::time_point sent; // for last_batch_took_ (spread_batches)
  };

  // An attempt's tag: the job's place in the slab, and the attempt's serial.
  static uint64_t make_tag(uint32_t index, uint32_t serial) {
    return (uint64_t{serial & serial_mask} << 32) | index;
  }

  static uint32_t index_of(uint64_t tag) {
    return static_cast<uint32_t>(tag);
  }

  slot& add_slot() {
    auto id = next_slot_++;
    slots_.push_back(std::make_unique<slot>());
    auto& s = *slots_.back();
    s.id = id;
    s.name = name_ + "/worker-" + std::to_string(id);
    return s;
  }

  slot* find_slot(uint64_t id) {
    for (auto& s : slots_)
      if (s->id == id)
        return s.get();
    return nullptr;
  }

  // How a start went: `failure` is empty if the worker runs; `unreachable`
  // if the factory threw node_unreachable (its node is not up).
  child_start start_worker(slot& s) {
    auto lookup = [pool = ctx_](const std::string& name) {
      return pool.sibling(name);
    };
    spawn_context ctx{self_->system(), s.name, caf::actor{},
                      caf::actor_cast<caf::actor>(self_), s.restarts, lookup};
    auto result = try_start(cfg_.worker, ctx);
    if (!result.failure.empty())
      return result;
    s.worker = result.handle;
    s.parked = false;
    s.park_reason.clear();
    self_->monitor(result.handle);
    return result;
  }

  // Starts the slot's worker (after a crash, a node loss or a resize): a
  // worker whose node cannot be reached is parked; another failed start is
  // tried again shortly, by restart, and so counts as a restart.
  void start_or_park(slot& s) {
    auto r = start_worker(s);
    if (r.unreachable)
      park(s, r.failure);
    else if (!r.failure.empty())
      ctl_->schedule(start_retry_delay, s.id);
  }

  // The slot's node cannot be reached: it takes no jobs, and its worker is
  // started again every rejoin_interval. Counts against no restart
  // intensity: a node that is down is not a worker that keeps crashing.
  void park(slot& s, const std::string& why) {
    s.parked = true;
    s.park_reason = why;
    ctl_->schedule(cfg_.rejoin_interval, rejoin_bit | s.id);
  }

  // A parked slot's rejoin attempt is due.
  void rejoin(uint64_t id) {
    auto s = find_slot(id);
    if (failed_ || s == nullptr || !s->parked || s->worker)
      return; // retired meanwhile
    auto r = start_worker(*s);
    if (r.failure.empty()) {
      ++rejoined_;
    } else if (r.unreachable) {
      park(*s, r.failure);
    } else {
      s->parked = false;
      s->park_reason.clear();
      ctl_->schedule(start_retry_delay, s->id);
    }
    // A drain ends: jobs that still have no worker to go to after one more
    // attempt fail instead of holding the pool up for nodes that may
    // never come back.
    if (ctl_->draining() && !worker_up())
      strand_queued();
    after_change();
  }

  // A slot whose worker runs and is not being removed.
  static bool takes_jobs(const std::unique_ptr<slot>& s) {
    return s->worker && !s->retiring;
  }

  // Whether some worker takes jobs.
  bool worker_up() const {
    return std::any_of(slots_.begin(), slots_.end(), takes_jobs);
  }

  void strand_queued() {
    while (!queue_.empty()) {
      auto index = queue_.front();
      queue_.pop_front();
      ++stranded_;
      fail_job(index, make_error(errc::node_unreachable,
                                 name_ + ": the pool drained while no worker "
                                         "could be reached"));
    }
  }

  // Starts the slot's next worker; false if the pool failed instead.
  bool restart(slot& s) {
    if (!restart_window_.note_restart()) {
      fail_pool();
      return false;
    }
    ++s.restarts;
    ++worker_restarts_;
    start_or_park(s);
    return true;
  }

  // Escalates: the pool's supervisor decides what happens next. The jobs held
  // are answered with this reason as the pool exits (on_stop).
  void fail_pool() {
    failed_ = true;
    self_->quit(make_error(errc::restart_intensity_exceeded,
                           name_ + ": more than "
                             + std::to_string(cfg_.worker_restarts.max_restarts)
                             + " worker restarts in "
                             + render_duration(cfg_.worker_restarts.period)));
  }

  void erase_slot(const slot& s) {
    if (s.retiring)
      --retiring_;
    slots_.erase(std::find_if(slots_.begin(), slots_.end(),
                              [&](const auto& x) { return x.get() == &s; }));
  }

  // A planned stop: the worker holds no job, and its exit is no crash.
  void stop_worker(slot& s) {
    forget_overdue(s);
    if (s.worker) {
      self_->demonitor(s.worker);
      self_->send_exit(s.worker, caf::exit_reason::user_shutdown);
    }
    erase_slot(s);
  }

  void on_down(const caf::down_msg& x) {
    auto i = std::find_if(slots_.begin(), slots_.end(), [&](const auto& s) {
      return s->worker && s->worker.address() == x.source;
    });
    if (i == slots_.end() || failed_)
      return;
    auto& s = **i;
    s.worker = nullptr;
    forget_overdue(s);
    for (auto& f : batches_) {
      if (f.live && f.slot == s.id) {
        // Its response may never come (a lost node sends none): the jobs
        // are requeued below, and a late response finds the place freed.
        f.live = false;
        free_batches_.push_back(static_cast<uint32_t>(&f - batches_.data()));
      }
    }
    auto why = x.reason ? self_->system().render(x.reason)
                        : std::string{"worker stopped"};
    // A worker on a node that died or went silent did not crash on its
    // jobs: they go to the others without using up an attempt, and the
    // worker is started again without using up the restart intensity
    // (the factory typically finds its node gone, and it is parked).
    bool node_lost = x.reason == caf::exit_reason::remote_link_unreachable;
    requeue(s, why, node_lost);
    if (node_lost)
      ++node_losses_;
    if (s.retiring) {
      erase_slot(s); // no restart: its jobs go to the others
    } else if (node_lost && x.source.node() == self_->node()) {
      // A local worker that died of a lost link (to an actor on a node that
      // is gone): restarted after rejoin_interval, not at once, so that one
      // that dies of it again and again cannot loop outside the restart
      // intensity.
      ++s.restarts;
      park(s, why);
    } else if (node_lost) {
      ++s.restarts;
      start_or_park(s);
    } else if (!restart(s)) {
      return;
    }
    after_change();
  }

  // The slot's worker is gone: the jobs it held go back to the front of the
  // queue, oldest first, or fail if they had all their attempts. With its
  // node lost, each gets its attempt back. A crash is rare: finding its
  // jobs by a scan costs nothing per job.
  void requeue(slot& s, const std::string& why, bool node_lost) {
    std::vector<uint32_t> held;
    for (uint32_t k = 0; k < jobs_.size(); ++k)
      if (jobs_[k].live && jobs_[k].holder == &s)
        held.push_back(k);
    std::sort(held.begin(), held.end(), [this](uint32_t a, uint32_t b) {
      return jobs_[a].seq < jobs_[b].seq;
    });
    for (auto k = held.rbegin(); k != held.rend(); ++k) {
      auto& j = jobs_[*k];
      release(j);
      if (node_lost) {
        --j.attempts;
        j.redispatch = true;
        queue_.push_front(*k);
      } else if (j.attempts >= cfg_.max_attempts)
        fail_job(*k, make_error(errc::job_failed, why));
      else
        queue_.push_front(*k);
    }
  }

  // `rp` is the request's promise, or null for a stream item, whose job
  // keeps the empty promise of its free place: per item, no promise is
  // made, moved or dropped.
  void accept(item msg, caf::response_promise* rp, bool dispatch_now) {
    auto index = detail::take_place(jobs_, free_jobs_);
    auto& j = jobs_[index];
    j.msg = std::move(msg);
    if (rp != nullptr)
      j.promise = std::move(*rp);
    j.seq = next_seq_++;
    j.attempts = 0;
    j.from_stream = rp == nullptr;
    j.redispatch = false;
    j.live = true;
    ++held_;
    ++accepted_;
    max_held_ = std::max(max_held_, static_cast<uint64_t>(held_));
    queue_.push_back(index);
    if (dispatch_now)
      dispatch();
  }

  // Hands queued jobs to workers as the policy allows: one at a time, or
  // with batches up to max_batch per message (and with pull, no more than
  // the worker's free prefetch).
  void dispatch() {
    // A worker's share of what is queued, when batches are shared out.
    size_t share = queue_.size();
    if (batched_ && spread_batches()) {
      auto up = std::count_if(slots_.begin(), slots_.end(), takes_jobs);
      auto workers = std::max<size_t>(1, static_cast<size_t>(up));
      share = (queue_.size() + workers - 1) / workers;
    }
    while (!failed_ && !queue_.empty()) {
      auto s = pick();
      if (s == nullptr)
        return;
      if (batched_) {
        size_t n = std::min<size_t>({cfg_.max_batch, share, queue_.size()});
        if (cfg_.policy == dispatch_policy::pull)
          n = std::min<size_t>(n, cfg_.prefetch - load(*s));
        send_batch(*s, n);
        continue;
      }
      auto index = queue_.front();
      queue_.pop_front();
      send_attempt(index, *s);
    }
  }

  // Whether the jobs queued together are shared out over the workers
  // rather than sent to the next one in as few batches as max_batch allows.
  // Cheap jobs go in full batches, as a message costs more than many of
  // them; once a batch takes long, jobs go to every worker, so that slow
  // jobs run side by side (and wait less behind each other for their
  // job_timeout). Until a batch was answered, the cost is unknown: shared.
  // The time of the whole batch is judged, not a job's share of it: a small
  // batch's time is mostly its messages, and would make cheap jobs look dear.
  bool spread_batches() const {
    return last_batch_took_ < clock_type::duration::zero()
           || last_batch_took_ > spread_above;
  }

  // Sends the first `n` queued jobs to `s` in one (troupe::batch) request.
  void send_batch(slot& s, size_t n) {
    auto place = detail::take_place(batches_, free_batches_);
    auto& f = batches_[place];
    f.serial = next_batch_serial_++;
    f.slot = s.id;
    f.live = true;
    f.sent = clock_type::now();
    f.tags.clear();
    ++batches_sent_;
    batch jobs;
    jobs.items.reserve(n);
    for (size_t k = 0; k < n; ++k) {
      auto index = queue_.front();
      queue_.pop_front();
      f.tags.push_back(prepare_attempt(index, s));
      jobs.items.push_back(jobs_[index].msg);
    }
    auto tag = batch_bit | (uint64_t{f.serial & serial_mask} << 32) | place;
    ctl_->request(s.worker, caf::make_message(std::move(jobs)), tag);
  }

  // The worker for the next job, or none. Candidates are visited starting
  // after the last pick, so ties rotate over the workers.
  slot* pick() {
    auto n = slots_.size();
    if (n == 0)
      return nullptr;
    if (next_pick_ >= n)
      next_pick_ = 0;
    slot* best = nullptr;
    size_t best_at = 0;
    for (size_t k = 0; k < n; ++k) {
      auto at = (next_pick_ + k) % n;
      if (!takes_jobs(slots_[at]))
        continue;
      auto& s = *slots_[at];
      if (cfg_.policy == dispatch_policy::pull && load(s) >= cfg_.prefetch)
        continue;
      if (cfg_.policy == dispatch_policy::round_robin) {
        best = &s;
        best_at = at;
        break;
      }
      if (best == nullptr || load(s) < load(*best)) {
        best = &s;
        best_at = at;
      }
    }
    if (best != nullptr)
      next_pick_ = best_at + 1;
    return best;
  }

  void send_attempt(uint32_t index, slot& s) {
    auto tag = prepare_attempt(index, s);
    // No request timeout: the pool's own timer answers the caller at the
    // deadline, and the worker's late answer still arrives here, to free
    // its place.
    ctl_->request(s.worker, jobs_[index].msg.to_message(), tag);
  }

  // Gives the job's next attempt to `s` (and starts its timer); returns the
  // attempt's tag.
  uint64_t prepare_attempt(uint32_t index, slot& s) {
    auto& j = jobs_[index];
    if (j.redispatch)
      ++redispatched_;
    else if (j.attempts > 0)
      ++retried_;
    j.redispatch = false;
    ++j.attempts;
    j.serial = next_serial_++;
    j.holder = &s;
    ++s.held;
    ++s.dispatched;
    auto tag = make_tag(index, j.serial);
    if (cfg_.job_timeout > caf::timespan{0}) {
      j.deadline = deadline_bit | next_deadline_++;
      deadlines_.emplace(j.deadline, tag);
      ctl_->schedule(cfg_.job_timeout, j.deadline);
    }
    return tag;
  }

  // Jobs a worker holds, counting those answered at their deadline that it
  // is still running: a worker stuck in a late job gets no new ones.
  static size_t load(const slot& s) {
    return s.held + s.overdue;
  }

  void on_deadline(uint64_t token) {
    auto i = deadlines_.find(token);
    if (i == deadlines_.end())
      return; // answered in time
    auto tag = i->second;
    deadlines_.erase(i);
    auto j = current(tag);
    if (j == nullptr || failed_)
      return;
    ++j->holder->overdue;
    overdue_.emplace(tag, j->holder->id);
    ++timed_out_;
    abandon(*j);
    fail_job(index_of(tag), make_error(errc::call_timeout,
                                       name_ + ": job took longer than "
                                         + render_duration(cfg_.job_timeout)));
    after_change();
  }

  // The worker answered an attempt that was answered at its deadline: its
  // place is free again. True if it was such an attempt.
  bool settle_overdue(uint64_t tag) {
    if (overdue_.empty())
      return false;
    auto i = overdue_.find(tag);
    if (i == overdue_.end())
      return false;
    if (auto s = find_slot(i->second); s != nullptr && s->overdue > 0)
      --s->overdue;
    overdue_.erase(i);
    ++late_answers_;
    after_change();
    return true;
  }

  // The slot's worker is gone, and with it the late jobs it was running.
  void forget_overdue(slot& s) {
    for (auto i = overdue_.begin(); i != overdue_.end();) {
      if (i->second == s.id)
        i = overdue_.erase(i);
      else
        ++i;
    }
    s.overdue = 0;
  }

  // The job is answered without its worker's answer: tells the worker, if
  // the job asks to be told, so that one that has not started it skips it.
  void abandon(const job& j) {
    if (cfg_.on_abandon && j.holder != nullptr)
      cfg_.on_abandon(j.msg);
  }

  // The job of the attempt `tag` if that is its current attempt, held by a
  // worker; answers of attempts that were dispatched again meanwhile, or of
  // jobs that ended, are stale.
  job* current(uint64_t tag) {
    auto index = index_of(tag);
    if (index >= jobs_.size())
      return nullptr;
    auto& j = jobs_[index];
    if (!j.live || j.holder == nullptr || make_tag(index, j.serial) != tag)
      return nullptr;
    return &j;
  }

  void on_failure(uint64_t tag, caf::error& err) {
    if (settle_overdue(tag) || current(tag) == nullptr || failed_)
      return;
    probe({tag}, err);
  }

  void on_answer(uint64_t tag, caf::message& answer) {
    item result{std::move(answer)};
    complete(tag, result);
    after_change();
  }

  // The response to a batch: its results go to the attempts still current,
  // in order. An error for the whole batch is handled as a single job's
  // error (it may be a crash); an answer of the wrong shape fails the jobs.
  void on_batch_response(uint64_t tag, caf::message& answer) {
    auto place = static_cast<uint32_t>(tag);
    if (place >= batches_.size())
      return;
    auto& f = batches_[place];
    auto serial = static_cast<uint32_t>(tag >> 32) & serial_mask;
    if (!f.live || (f.serial & serial_mask) != serial)
      return;
    f.live = false;
    std::swap(f.tags, batch_tags_);
    free_batches_.push_back(place);
    auto& tags = batch_tags_;
    last_batch_took_ = clock_type::now() - f.sent;
    if (answer.match_elements<caf::error>()) {
      auto err = answer.get_as<caf::error>(0);
      std::vector<uint64_t> live;
      for (auto t : tags)
        if (!settle_overdue(t) && current(t) != nullptr)
          live.push_back(t);
      if (!live.empty() && !failed_)
        probe(std::move(live), err);
      return;
    }
    if (!answer.match_elements<batch>()
        || answer.get_as<batch>(0).items.size() != tags.size()) {
      auto err = make_error(errc::job_failed,
                            name_ + ": a worker answered a batch of "
                              + std::to_string(tags.size())
                              + " jobs with something else than a batch of as "
                                "many results");
      for (auto t : tags) {
        if (settle_overdue(t) || failed_)
          continue;
        if (auto j = current(t)) {
          ++j->holder->error_answers;
          fail_job(index_of(t), err);
        }
      }
      after_change();
      return;
    }
    auto& results = answer.get_mutable_as<batch>(0).items;
    for (size_t k = 0; k < tags.size(); ++k)
      complete(tags[k], results[k]);
    after_change();
  }

  // The worker's answer to an attempt: the job's result, unless the attempt
  // is stale. In a batch, a result holding just an error is the job's error.
  void complete(uint64_t tag, item& answer) {
    if (settle_overdue(tag))
      return;
    auto j = current(tag);
    if (j == nullptr || failed_)
      return;
    if (answer.match_elements<caf::error>()) {
      ++j->holder->error_answers;
      fail_job(index_of(tag), answer.get_as<caf::error>(0));
      return;
    }
    ++j->holder->answered;
    ++completed_;
    if (j->from_stream) {
      take(index_of(tag));
      if (!answer.empty())
        ctl_->push(std::move(answer));
      return;
    }
    auto promise = std::move(j->promise);
    take(index_of(tag));
    promise.deliver(std::move(answer).to_message());
  }

  // A worker answered an error. When a worker crashes on a job, CAF answers
  // the job with the crash reason before the worker's down message arrives,
  // so that error is no answer at all: the crash is handled once, by
  // on_down, which dispatches the job again. A system request every actor
  // answers tells the two apart: it bounces with request_receiver_down only
  // from a worker that is gone.
  void probe(std::vector<uint64_t> tags, caf::error err) {
    auto worker = current(tags.front())->holder->worker;
    auto core = shared_from_this();
    // The worker is alive if it answers at all, or does not answer in time.
    auto alive = [core, tags, err]() mutable {
      if (core->failed_)
        return;
      for (auto tag : tags) {
        auto j = core->current(tag);
        if (j == nullptr)
          continue;
        ++j->holder->error_answers;
        core->fail_job(index_of(tag), err);
      }
      core->after_change();
    };
    request_any(
      self_, worker, caf::duration{liveness_timeout},
      caf::make_message(caf::sys_atom::value, caf::get_atom::value, std::string{"info"}),
      [alive](caf::message&) mutable { alive(); },
      [alive](caf::error& reply_err) mutable {
        if (reply_err != caf::sec::request_receiver_down)
          alive();
      },
      caf::message_priority::high);
  }

  // The job leaves its worker (answered, failed, or its worker is gone).
  void release(job& j) {
    if (j.holder != nullptr) {
      --j.holder->held;
      j.holder = nullptr;
    }
    if (j.deadline != 0) {
      deadlines_.erase(j.deadline);
      j.deadline = 0;
    }
  }

  // Removes a job from the pool (and from the worker holding it); its place
  // in the slab is free again.
  void take(uint32_t index) {
    auto& j = jobs_[index];
    release(j);
    j.msg = item{};
    if (!j.from_stream)
      j.promise = caf::response_promise{};
    j.live = false;
    --held_;
    free_jobs_.push_back(index);
  }

  void fail_job(uint32_t index, caf::error err) {
    auto& j = jobs_[index];
    ++failed_jobs_;
    if (j.from_stream) {
      ++stream_failed_;
      take(index);
      return;
    }
    auto promise = std::move(j.promise);
    take(index);
    promise.deliver(std::move(err));
  }

  // After jobs finished or moved: stops retiring workers that are done,
  // hands out what is queued, and lets the stage send results and take input.
  void after_change() {
    if (retiring_ > 0) {
      std::vector<slot*> done;
      for (auto& s : slots_)
        if (s->retiring && s->held == 0)
          done.push_back(s.get());
      for (auto s : done)
        stop_worker(*s);
    }
    dispatch();
    ctl_->resume();
  }

  caf::result<caf::message> resize(uint32_t n) {
    if (n == 0)
      return caf::make_error(caf::sec::invalid_argument,
                             name_ + ": cannot resize to 0 workers");
    if (ended_ || failed_)
      return make_error(errc::shutting_down, name_);
    size_t active = slots_.size() - retiring_;
    // Growing takes back workers still finishing their jobs first.
    for (auto& s : slots_) {
      if (active >= n)
        break;
      if (s->retiring) {
        s->retiring = false;
        --retiring_;
        ++active;
      }
    }
    for (; active < n; ++active)
      start_or_park(add_slot());
    // Shrinking removes parked workers first (they do nothing), then the
    // newest.
    for (bool parked_only : {true, false}) {
      for (auto i = slots_.rbegin(); i != slots_.rend() && active > n; ++i) {
        if (!(*i)->retiring && (!parked_only || (*i)->parked)) {
          (*i)->retiring = true;
          ++retiring_;
          --active;
        }
      }
    }
    cfg_.workers = n;
    after_change();
    return caf::make_message(n);
  }

  spawn_context ctx_;
  pool_config cfg_;
  std::string name_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  // Workers by id (oldest first); each slot stays at one address while it
  // lives, so jobs point at the slot holding them.
  std::vector<std::unique_ptr<slot>> slots_;
  size_t retiring_ = 0;
  uint64_t next_slot_ = 0;
  size_t next_pick_ = 0;
  std::vector<job> jobs_;          // queued and in flight, and free places
  std::vector<uint32_t> free_jobs_;
  size_t held_ = 0;                // live jobs
  std::deque<uint32_t> queue_;     // jobs waiting for a worker
  uint64_t next_seq_ = 0;
  uint32_t next_serial_ = 0;
  std::vector<batch_flight> batches_; // batch requests in flight, free places
  std::vector<uint32_t> free_batches_;
  uint32_t next_batch_serial_ = 0;
  std::vector<uint64_t> batch_tags_; // scratch: the tags of the batch answered
  std::unordered_map<uint64_t, uint64_t> deadlines_; // timer token -> tag
  uint64_t next_deadline_ = 1;
  std::unordered_map<uint64_t, uint64_t> overdue_; // tag -> slot still running it
  restart_window restart_window_{cfg_.worker_restarts};
  // Jobs go to workers as troupe::batch requests (see the constructor).
  bool batched_ = false;
  // From sending the latest batch answered to its answer (its wait in the
  // worker's mailbox included); negative until one was answered.
  clock_type::duration last_batch_took_{-1};
  bool ended_ = false;
  bool failed_ = false;
  uint64_t max_held_ = 0;
  uint64_t accepted_ = 0;
  uint64_t batches_sent_ = 0;
  uint64_t completed_ = 0;
  uint64_t failed_jobs_ = 0;
  uint64_t stream_failed_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t retried_ = 0;
  uint64_t redispatched_ = 0;
  uint64_t node_losses_ = 0;
  uint64_t rejoined_ = 0;
  uint64_t stranded_ = 0;
  uint64_t worker_restarts_ = 0;
  uint64_t rejected_ = 0;
  uint64_t late_answers_ = 0;
};

// The stage's view of the pool; the state lives in pool_core, which the
// pool's handlers share.
class pool_stage final : public stage_logic {
public:
  explicit pool_stage(std::shared_ptr<pool_core> core) : core_(std::move(core)) {
    // nop
  }

  void on_start(stage_control& ctl) override {
    core_->start(ctl);
  }

  void on_item(item& x, emitter&) override {
    core_->take_item(std::move(x));
  }

  void on_round_end(emitter&) override {
    core_->on_round_end();
  }

  void on_stop(const caf::error& reason) override {
    core_->on_exit(reason);
  }

  bool ready() override {
    return core_->has_room();
  }

  bool busy() const override {
    return core_->holds_jobs();
  }

  void on_timer(uint64_t token, emitter&) override {
    core_->on_timer(token);
  }

  void on_end(emitter&, const caf::error&) override {
    core_->on_end();
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    return core_->on_request(x);
  }

  void on_response(uint64_t tag, caf::message& answer) override {
    core_->on_response(tag, answer);
  }

  void describe(actor_report& r) const override {
    core_->describe(r);
  }

private:
  std::shared_ptr<pool_core> core_;
};

} // namespace

caf::actor spawn_pool(spawn_context ctx, pool_config cfg, stage_config links) {
  cfg.validate();
  if (links.kind.empty())
    links.kind = "pool";
  auto core = std::make_shared<pool_core>(ctx, std::move(cfg));
  return spawn_stage(std::move(ctx), std::move(links),
                     std::make_unique<pool_stage>(std::move(core)));
}

} // namespace troupe
