#include "troupe/patterns/pool.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/actors/messages.hpp"

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
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace troupe {

void pool_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("pool_config", what);
  };
  if (workers == 0)
    fail("workers is 0: a pool needs at least one worker");
  if (!worker)
    fail("worker is empty: a pool needs a worker factory");
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

std::string render_duration(caf::timespan x) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(x).count();
  if (us % 1000 != 0)
    return std::to_string(us) + " us";
  return std::to_string(us / 1000) + " ms";
}

// The state of one pool incarnation. Shared by the stage logic, the response
// handlers, the down handler and the functor that runs as the pool exits.
class pool_core : public std::enable_shared_from_this<pool_core> {
public:
  pool_core(spawn_context ctx, pool_config cfg)
    : ctx_(std::move(ctx)), cfg_(std::move(cfg)) {
    name_ = ctx_.name().empty() ? std::string{"pool"} : ctx_.name();
  }

  void start(stage_control& ctl) {
    ctl_ = &ctl;
    self_ = ctl.self();
    auto core = shared_from_this();
    self_->set_down_handler([core](caf::down_msg& x) { core->on_down(x); });
    for (uint32_t i = 0; i < cfg_.workers; ++i) {
      auto failure = start_worker(add_slot());
      if (!failure.empty())
        throw std::runtime_error(name_ + ": cannot start a worker: " + failure);
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
    for (auto& [id, j] : jobs_) {
      if (j.promise.pending())
        j.promise.deliver(err);
      abandon(j);
      // The promise refers to the pool: dropping it breaks the cycle.
      j.promise = caf::response_promise{};
    }
    for (auto& [id, s] : slots_)
      if (s.worker)
        caf::anon_send_exit(s.worker, caf::exit_reason::kill);
  }

  void take_item(item x) {
    accept(std::move(x), caf::response_promise{}, true);
  }

  bool has_room() const {
    return !failed_ && jobs_.size() < cfg_.queue_capacity;
  }

  bool holds_jobs() const {
    return !jobs_.empty();
  }

  void on_end() {
    ended_ = true;
  }

  void on_timer(uint64_t token) {
    if ((token & deadline_bit) != 0) {
      on_deadline(token);
      return;
    }
    auto i = slots_.find(token);
    if (i == slots_.end() || i->second.worker)
      return; // retired meanwhile
    if (restart(i->second))
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
    accept(std::move(x), rp, false);
    return rp;
  }

  void describe(actor_report& r) const {
    size_t retiring = 0;
    for (auto& [id, s] : slots_)
      if (s.retiring)
        ++retiring;
    r.state = retiring > 0 ? "resizing" : "running";
    auto stat = [&r](const char* key, uint64_t value) {
      r.stats[key] = static_cast<int64_t>(value);
    };
    stat("workers", slots_.size() - retiring);
    stat("retiring", retiring);
    stat("queued", queue_.size());
    stat("in_flight", jobs_.size() - queue_.size());
    stat("overdue", overdue_.size());
    stat("max_held", max_held_);
    stat("accepted", accepted_);
    stat("completed", completed_);
    stat("failed", failed_jobs_);
    stat("timed_out", timed_out_);
    stat("late_answers", late_answers_);
    stat("retried", retried_);
    stat("worker_restarts", worker_restarts_);
    stat("rejected", rejected_);
    r.errors += stream_failed_;
    bool stopped = r.stopped != stop_reason::running;
    if (stopped) {
      stat("abandoned", jobs_.size());
      for (auto& [id, j] : jobs_)
        if (j.from_stream)
          ++r.dropped;
    }
    for (auto& [id, s] : slots_) {
      actor_report w;
      w.name = s.name;
      w.kind = "worker";
      w.in = s.dispatched;
      w.out = s.answered;
      w.errors = s.error_answers;
      w.restarts = s.restarts;
      w.stopped = stopped ? stop_reason::stopped : stop_reason::running;
      r.children.push_back(std::move(w));
    }
  }

private:
  static constexpr uint64_t no_slot = std::numeric_limits<uint64_t>::max();

  // Marks a timer token as a job's deadline; slot ids (start retries) never
  // reach this bit.
  static constexpr uint64_t deadline_bit = uint64_t{1} << 63;

  // One attempt of a job: its answer is matched to it by both.
  using attempt_key = std::pair<uint64_t, uint32_t>;

  struct job {
    caf::message msg;
    // Pending for a request; not for a stream item or an asynchronous
    // message (whose result has nowhere to go).
    caf::response_promise promise;
    bool from_stream = false;
    uint32_t attempts = 0; // also tags the current attempt's answer
    uint64_t slot = no_slot; // the slot holding it; no_slot while queued
    uint64_t deadline = 0; // token of the current attempt's timer, or 0
  };

  struct slot {
    uint64_t id = 0;
    std::string name;
    caf::actor worker; // null while its restart is due
    uint32_t restarts = 0;
    bool retiring = false;
    std::set<uint64_t> held; // job ids, oldest first
    // Attempts answered at their deadline that the worker still runs: they
    // keep their place at the worker until it answers them.
    size_t overdue = 0;
    uint64_t dispatched = 0;
    uint64_t answered = 0;
    uint64_t error_answers = 0;
  };

  slot& add_slot() {
    auto id = next_slot_++;
    auto& s = slots_[id];
    s.id = id;
    s.name = name_ + "/worker-" + std::to_string(id);
    return s;
  }

  // Starts the slot's worker; returns why it failed, or an empty string.
  std::string start_worker(slot& s) {
    auto lookup = [pool = ctx_](const std::string& name) {
      return pool.sibling(name);
    };
    spawn_context ctx{self_->system(), s.name, caf::actor{},
                      caf::actor_cast<caf::actor>(self_), s.restarts, lookup};
    caf::actor handle;
    std::string failure;
    try {
      handle = cfg_.worker(ctx);
      if (!handle)
        failure = "factory returned no actor";
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "factory threw an unknown exception";
    }
    if (!failure.empty())
      return failure;
    s.worker = handle;
    self_->monitor(handle);
    return failure;
  }

  // Starts the slot's next worker; false if the pool failed instead.
  bool restart(slot& s) {
    if (!restart_window_.note_restart()) {
      fail_pool();
      return false;
    }
    ++s.restarts;
    ++worker_restarts_;
    if (!start_worker(s).empty())
      ctl_->schedule(start_retry_delay, s.id);
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

  // A planned stop: the worker holds no job, and its exit is no crash.
  void stop_worker(std::map<uint64_t, slot>::iterator i) {
    forget_overdue(i->second);
    if (i->second.worker) {
      self_->demonitor(i->second.worker);
      self_->send_exit(i->second.worker, caf::exit_reason::user_shutdown);
    }
    slots_.erase(i);
  }

  void on_down(const caf::down_msg& x) {
    auto i = std::find_if(slots_.begin(), slots_.end(), [&](const auto& kv) {
      return kv.second.worker && kv.second.worker.address() == x.source;
    });
    if (i == slots_.end() || failed_)
      return;
    auto& s = i->second;
    s.worker = nullptr;
    forget_overdue(s);
    auto why = x.reason ? self_->system().render(x.reason)
                        : std::string{"worker stopped"};
    requeue(s, why);
    if (s.retiring)
      slots_.erase(i); // no restart: its jobs go to the others
    else if (!restart(s))
      return;
    after_change();
  }

  // The slot's worker is gone: the jobs it held go back to the front of the
  // queue, oldest first, or fail if they had all their attempts.
  void requeue(slot& s, const std::string& why) {
    auto held = std::move(s.held);
    s.held.clear();
    for (auto k = held.rbegin(); k != held.rend(); ++k) {
      auto& j = jobs_.at(*k);
      j.slot = no_slot;
      if (j.attempts >= cfg_.max_attempts)
        fail_job(*k, make_error(errc::job_failed, why));
      else
        queue_.push_front(*k);
    }
  }

  void accept(caf::message msg, caf::response_promise rp, bool from_stream) {
    auto id = next_job_++;
    auto& j = jobs_[id];
    j.msg = std::move(msg);
    j.promise = std::move(rp);
    j.from_stream = from_stream;
    ++accepted_;
    max_held_ = std::max(max_held_, static_cast<uint64_t>(jobs_.size()));
    queue_.push_back(id);
    dispatch();
  }

  // Hands queued jobs to workers as the policy allows.
  void dispatch() {
    while (!failed_ && !queue_.empty()) {
      auto s = pick();
      if (s == nullptr)
        return;
      auto id = queue_.front();
      queue_.pop_front();
      send_attempt(id, *s);
    }
  }

  // The worker for the next job, or none. Candidates are visited starting
  // after the last pick, so ties rotate over the workers.
  slot* pick() {
    slot* best = nullptr;
    auto consider = [&](slot& s) {
      if (!s.worker || s.retiring)
        return false;
      if (cfg_.policy == dispatch_policy::pull && load(s) >= cfg_.prefetch)
        return false;
      if (cfg_.policy == dispatch_policy::round_robin) {
        best = &s;
        return true;
      }
      if (best == nullptr || load(s) < load(*best))
        best = &s;
      return false;
    };
    auto start = last_pick_ ? slots_.upper_bound(*last_pick_) : slots_.begin();
    bool done = false;
    for (auto i = start; i != slots_.end() && !done; ++i)
      done = consider(i->second);
    for (auto i = slots_.begin(); i != start && !done; ++i)
      done = consider(i->second);
    if (best != nullptr)
      last_pick_ = best->id;
    return best;
  }

  void send_attempt(uint64_t id, slot& s) {
    auto& j = jobs_.at(id);
    if (j.attempts > 0)
      ++retried_;
    auto attempt = ++j.attempts;
    j.slot = s.id;
    s.held.insert(id);
    ++s.dispatched;
    if (cfg_.job_timeout > caf::timespan{0}) {
      j.deadline = deadline_bit | next_deadline_++;
      deadlines_.emplace(j.deadline, attempt_key{id, attempt});
      ctl_->schedule(cfg_.job_timeout, j.deadline);
    }
    // No request timeout: the pool's own timer answers the caller at the
    // deadline, and the worker's late answer still arrives here, to free
    // its place.
    auto core = shared_from_this();
    request_any(
      self_, s.worker, caf::duration{caf::infinite}, j.msg,
      [core, id, attempt](caf::message& answer) { core->on_answer(id, attempt, answer); },
      [core, id, attempt](caf::error& err) { core->on_failure(id, attempt, err); });
  }

  // Jobs a worker holds, counting those answered at their deadline that it
  // is still running: a worker stuck in a late job gets no new ones.
  static size_t load(const slot& s) {
    return s.held.size() + s.overdue;
  }

  void on_deadline(uint64_t token) {
    auto i = deadlines_.find(token);
    if (i == deadlines_.end())
      return; // answered in time
    auto [id, attempt] = i->second;
    deadlines_.erase(i);
    auto j = current(id, attempt);
    if (j == nullptr || failed_)
      return;
    auto s = slots_.find(j->slot);
    if (s != slots_.end()) {
      ++s->second.overdue;
      overdue_.emplace(attempt_key{id, attempt}, s->first);
    }
    ++timed_out_;
    abandon(*j);
    fail_job(id, make_error(errc::call_timeout,
                            name_ + ": job took longer than "
                              + render_duration(cfg_.job_timeout)));
    after_change();
  }

  // The worker answered an attempt that was answered at its deadline: its
  // place is free again. True if it was such an attempt.
  bool settle_overdue(uint64_t id, uint32_t attempt) {
    auto i = overdue_.find(attempt_key{id, attempt});
    if (i == overdue_.end())
      return false;
    if (auto s = slots_.find(i->second); s != slots_.end() && s->second.overdue > 0)
      --s->second.overdue;
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
    if (cfg_.on_abandon && j.slot != no_slot)
      cfg_.on_abandon(j.msg);
  }

  // The job if `attempt` is its current one, held by a worker; answers of
  // attempts that were dispatched again meanwhile are stale.
  job* current(uint64_t id, uint32_t attempt) {
    auto i = jobs_.find(id);
    if (i == jobs_.end() || i->second.attempts != attempt
        || i->second.slot == no_slot)
      return nullptr;
    return &i->second;
  }

  void on_failure(uint64_t id, uint32_t attempt, caf::error& err) {
    if (settle_overdue(id, attempt) || current(id, attempt) == nullptr || failed_)
      return;
    probe(id, attempt, err);
  }

  void on_answer(uint64_t id, uint32_t attempt, caf::message& answer) {
    if (settle_overdue(id, attempt))
      return;
    auto j = current(id, attempt);
    if (j == nullptr || failed_)
      return;
    auto& s = slots_.at(j->slot);
    ++s.answered;
    auto job = take(id);
    ++completed_;
    if (job.from_stream) {
      if (!answer.empty())
        ctl_->push(std::move(answer));
    } else {
      job.promise.deliver(std::move(answer));
    }
    after_change();
  }

  // A worker answered an error. When a worker crashes on a job, CAF answers
  // the job with the crash reason before the worker's down message arrives,
  // so that error is no answer at all: the crash is handled once, by
  // on_down, which dispatches the job again. A system request every actor
  // answers tells the two apart: it bounces with request_receiver_down only
  // from a worker that is gone.
  void probe(uint64_t id, uint32_t attempt, caf::error err) {
    auto& s = slots_.at(jobs_.at(id).slot);
    auto core = shared_from_this();
    // The worker is alive if it answers at all, or does not answer in time.
    auto alive = [core, id, attempt, err]() mutable {
      auto j = core->current(id, attempt);
      if (j == nullptr || core->failed_)
        return;
      ++core->slots_.at(j->slot).error_answers;
      core->fail_job(id, std::move(err));
      core->after_change();
    };
    request_any(
      self_, s.worker, caf::duration{liveness_timeout},
      caf::make_message(caf::sys_atom::value, caf::get_atom::value, std::string{"info"}),
      [alive](caf::message&) mutable { alive(); },
      [alive](caf::error& reply_err) mutable {
        if (reply_err != caf::sec::request_receiver_down)
          alive();
      },
      caf::message_priority::high);
  }

  // Removes a job from the pool (and from the worker holding it).
  job take(uint64_t id) {
    auto i = jobs_.find(id);
    auto result = std::move(i->second);
    jobs_.erase(i);
    if (result.deadline != 0)
      deadlines_.erase(result.deadline);
    if (result.slot != no_slot)
      if (auto s = slots_.find(result.slot); s != slots_.end())
        s->second.held.erase(id);
    return result;
  }

  void fail_job(uint64_t id, caf::error err) {
    auto job = take(id);
    ++failed_jobs_;
    if (job.from_stream)
      ++stream_failed_;
    else
      job.promise.deliver(std::move(err));
  }

  // After jobs finished or moved: stops retiring workers that are done,
  // hands out what is queued, and lets the stage send results and take input.
  void after_change() {
    for (auto i = slots_.begin(); i != slots_.end();) {
      auto next = std::next(i);
      if (i->second.retiring && i->second.held.empty())
        stop_worker(i);
      i = next;
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
    size_t active = 0;
    for (auto& [id, s] : slots_)
      if (!s.retiring)
        ++active;
    // Growing takes back workers still finishing their jobs first.
    for (auto& [id, s] : slots_) {
      if (active >= n)
        break;
      if (s.retiring) {
        s.retiring = false;
        ++active;
      }
    }
    for (; active < n; ++active) {
      auto& s = add_slot();
      if (!start_worker(s).empty())
        ctl_->schedule(start_retry_delay, s.id);
    }
    // Shrinking removes the newest workers.
    for (auto i = slots_.rbegin(); i != slots_.rend() && active > n; ++i) {
      if (!i->second.retiring) {
        i->second.retiring = true;
        --active;
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
  std::map<uint64_t, slot> slots_;
  uint64_t next_slot_ = 0;
  std::optional<uint64_t> last_pick_;
  std::unordered_map<uint64_t, job> jobs_; // queued and in flight
  std::deque<uint64_t> queue_;
  uint64_t next_job_ = 0;
  std::unordered_map<uint64_t, attempt_key> deadlines_; // timer token -> attempt
  uint64_t next_deadline_ = 1;
  std::map<attempt_key, uint64_t> overdue_; // attempt -> slot still running it
  restart_window restart_window_{cfg_.worker_restarts};
  bool ended_ = false;
  bool failed_ = false;
  uint64_t max_held_ = 0;
  uint64_t accepted_ = 0;
  uint64_t completed_ = 0;
  uint64_t failed_jobs_ = 0;
  uint64_t stream_failed_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t retried_ = 0;
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
