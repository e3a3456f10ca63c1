#include "troupe/patterns/fanout.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/patterns/detail/free_places.hpp"
#include "troupe/patterns/function_worker.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message_id.hpp>
#include <caf/message_priority.hpp>
#include <caf/response_promise.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <utility>

namespace troupe {

void fanout_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("fanout_config", what);
  };
  if (max_in_flight == 0)
    fail("max_in_flight is 0: it must be at least 1");
  if (order != order_policy::input && order != order_policy::completion)
    fail("order is not input or completion");
  auto given = int{!processors.empty()} + int{static_cast<bool>(spawn_processor)}
               + int{static_cast<bool>(process)};
  if (given == 0)
    fail("none of processors, spawn_processor and process is set: set one of them");
  if (given > 1)
    fail("more than one of processors, spawn_processor and process is set: set only "
         "one");
  for (size_t i = 0; i < processors.size(); ++i)
    if (!processors[i])
      fail("processors[" + std::to_string(i) + "] is not an actor");
  if (call_timeout < caf::timespan{0})
    fail("call_timeout is negative");
}

std::string to_string(fanout_config::order_policy x) {
  return x == fanout_config::order_policy::input ? "input" : "completion";
}

namespace {

// Job 0 is the stream; requests are jobs 1, 2, ...
constexpr uint64_t stream_job = 0;

// With `process`: a full window whose work costs less than this is not
// spread over the runners: another call's messaging (a request, an answer,
// waking the runner: a few microseconds) would cost more than running the
// work in parallel saves. Measured on 2 cores, 16 items of 0.2 us go faster
// in one call than in two, items of 1.5 us faster in two.
constexpr uint64_t spread_from_ns = 20'000;

class fanout_logic final : public stage_logic {
public:
  fanout_logic(std::string name, fanout_config cfg)
    : name_(std::move(name)),
      cfg_(std::move(cfg)),
      load_(cfg_.processors.size(), 0),
      runs_(static_cast<bool>(cfg_.process)) {
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
    // The stage core sets no down handler; requesters and runners are the
    // only actors this logic monitors.
    self_->set_down_handler([this](caf::down_msg& x) {
      if (!runs_ || !runner_down(x))
        abandon(x.source);
    });
    if (!runs_)
      return;
    size_t n = cfg_.runners;
    if (n == 0)
      n = self_->system().scheduler().num_workers();
    n = std::max<size_t>(1, std::min<size_t>(n, cfg_.max_in_flight));
    share_ = (cfg_.max_in_flight + n - 1) / n;
    runners_.resize(n);
    for (auto& r : runners_)
      spawn_runner(r);
  }

  // With runners, the items of a round are queued and leave together at
  // its end (on_round_end), a lone item too, at once.
  void on_item(item& x, emitter&) override {
    auto slot = next_slot_++;
    ++stream_held_;
    if (cfg_.order == fanout_config::order_policy::input)
      slots_.emplace_back();
    if (runs_)
      queue_.push_back(waiting{std::move(x), stream_job, slot});
    else
      start(waiting{std::move(x), stream_job, slot});
  }

  void on_round_end(emitter&) override {
    if (runs_)
      dispatch();
  }

  // Every item taken yields one result, pushed from a response handler
  // later: the output window must have room for all of them, held ones
  // included, or results would pile up past the credit. With runners the
  // queue holds the round's items until its end; a stream item is taken
  // only if all that is queued fits the bound, so queued request items
  // still go first.
  bool ready() override {
    auto waiting = runs_ ? queue_.size() : (queue_.empty() ? 0 : cfg_.max_in_flight);
    return live_ + waiting < cfg_.max_in_flight && stream_held_ < cfg_.max_in_flight
           && ctl_->room() > stream_held_;
  }

  // A drain waits for every call in flight and every open request, not for
  // the late answers of calls already failed or abandoned.
  bool busy() const override {
    return live_ > late_ || !queue_.empty() || !jobs_.empty()
           || stream_held_ > 0;
  }

  // A call's timer: it fails now with call_timeout. A per-item actor is
  // killed and its slot is free; a fixed processor still has the call in its
  // mailbox, so the call keeps its slot (and its processor's load) until the
  // late answer comes, and max_in_flight bounds what a slow processor holds.
  void on_timer(uint64_t tag, emitter&) override {
    if (runs_) {
      call_timed_out(tag);
      return;
    }
    auto live = find(tag);
    if (live == nullptr || live->late)
      return;
    ++failed_;
    ++timeouts_;
    auto reason = name_.empty() ? make_error(errc::call_timeout)
                                : make_error(errc::call_timeout, "fanout " + name_);
    flight f;
    if (live->own) {
      kill(*live);
      land(tag, f);
    } else {
      f = *live;
      mark_late(*live);
    }
    auto failure = caf::make_message(item_failure{f.input, reason});
    deliver(f, std::move(failure), reason);
    dispatch();
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    ++requests_;
    // Answered in place, before a promise exists: once made, the promise has
    // taken the sender out of the message and a returned value reaches nobody.
    if (x.match_elements<batch>() && x.get_as<batch>(0).items.empty())
      return caf::make_message(batch{});
    auto id = next_job_++;
    job j;
    // Taken first: making the promise takes the sender out of the message.
    auto sender = self_->current_sender();
    j.rp = self_->make_response_promise();
    auto rp = j.rp;
    std::vector<item> inputs;
    if (x.match_elements<batch>()) {
      j.is_batch = true;
      inputs = std::move(x.get_mutable_as<batch>(0).items);
    } else {
      inputs.push_back(std::move(x));
    }
    j.remaining = inputs.size();
    if (cfg_.order == fanout_config::order_policy::input)
      j.results.resize(inputs.size());
    if (sender) {
      j.requester = caf::actor_cast<caf::actor_addr>(sender);
      if (requesters_[j.requester]++ == 0)
        self_->monitor(sender);
    }
    jobs_.emplace(id, std::move(j));
    for (size_t i = 0; i < inputs.size(); ++i)
      queue_.push_back(waiting{std::move(inputs[i]), id, i});
    dispatch();
    return rp;
  }

  void on_response(uint64_t tag, caf::message& answer) override {
    if (runs_)
      on_call_answer(tag, answer);
    else if (answer.match_elements<caf::error>())
      on_failure(tag, answer.get_mutable_as<caf::error>(0));
    else
      on_answer(tag, answer);
  }

  // Whatever still runs is stopped; open requests get the reason.
  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& f : flights_) {
      if (!f.live || f.late)
        continue;
      if (f.job != stream_job)
        ++abandoned_;
      kill(f);
    }
    for (auto& w : queue_)
      if (w.job != stream_job)
        ++abandoned_;
    for (auto& c : calls_) {
      if (!c.live)
        continue;
      for (auto& e : c.items)
        if (!e.gone && e.job != stream_job)
          ++abandoned_;
      c = call{};
    }
    for (auto& r : runners_)
      kill_runner(r.actor);
    queue_.clear();
    for (auto& [id, j] : jobs_)
      j.rp.deliver(answer);
    jobs_.clear();
    stopped_ = true;
  }

  void describe(actor_report& r) const override {
    r.state = "running";
    r.errors += failed_;
    // Stream items taken in and not emitted are lost to a stop that is not a
    // normal end (the stage core counts them no other way).
    if (r.stopped != stop_reason::running)
      r.dropped += stream_held_;
    auto& s = r.stats;
    s["calls"] = static_cast<int64_t>(calls_made_);
    s["succeeded"] = static_cast<int64_t>(succeeded_);
    s["failed"] = static_cast<int64_t>(failed_);
    s["timeouts"] = static_cast<int64_t>(timeouts_);
    s["in_flight"] = static_cast<int64_t>(stopped_ ? 0 : live_);
    s["late"] = static_cast<int64_t>(stopped_ ? 0 : late_);
    s["peak_in_flight"] = static_cast<int64_t>(peak_in_flight_);
    s["queued"] = static_cast<int64_t>(queue_.size());
    s["spawned"] = static_cast<int64_t>(spawned_);
    s["killed"] = static_cast<int64_t>(killed_);
    s["requests"] = static_cast<int64_t>(requests_);
    s["abandoned"] = static_cast<int64_t>(abandoned_);
    if (runs_) {
      s["batches"] = static_cast<int64_t>(batches_);
      s["largest_batch"] = static_cast<int64_t>(largest_batch_);
      s["runners"] = static_cast<int64_t>(runners_.size());
      s["runner_restarts"] = static_cast<int64_t>(runner_restarts_);
    }
  }

private:
  // An item waiting for a free slot: its job, and its index there (the
  // stream's slot number for job 0).
  struct waiting {
    item input;
    uint64_t job = stream_job;
    uint64_t index = 0;
  };

  // A call in flight, in a slab of reused places; its tag (for its
  // response and its timer) is its place and a serial, so that a stale
  // answer or timer finds nothing.
  struct flight {
    item input;
    uint64_t job = stream_job;
    uint64_t index = 0;
    caf::actor own;           // the per-item actor, if any
    size_t processor = 0;     // index into processors, for a fixed set
    uint32_t serial = 0;
    bool late = false;        // failed or abandoned; waits for its answer
    bool live = false;        // false: a free place
  };

  // A service request: its promise and the results gathered so far.
  struct job {
    caf::response_promise rp;
    bool is_batch = false;
    std::vector<item> results;
    size_t remaining = 0;
    caf::actor_addr requester;
  };

  // A stream result waiting for the results before it (input order).
  struct slot {
    bool done = false;
    item result;
  };

  // A function worker of the fan-out's own, and the items it holds now.
  struct runner {
    caf::actor actor;
    size_t load = 0;
  };

  // An item of a batch call; `gone` once its requester stopped: its result
  // is ignored, its slot held until the call answers.
  struct entry {
    item input;
    uint64_t job = stream_job;
    uint64_t index = 0;
    bool gone = false;
  };

  // A batch call to a runner, in a slab like flights; its tag (for its
  // response and its timer) is its place and a serial.
  struct call {
    std::vector<entry> items;
    std::chrono::steady_clock::time_point sent;
    size_t runner = 0;
    uint32_t serial = 0;
    bool live = false;
  };

  static uint64_t make_tag(uint32_t place, uint32_t serial) {
    return (uint64_t{serial} << 32) | place;
  }

  // The live element of `slab` (flights, calls) that `tag` names, or none
  // (landed, answered, failed, or its place reused).
  template <class T>
  static T* live_at(std::vector<T>& slab, uint64_t tag) {
    auto place = static_cast<uint32_t>(tag);
    if (place >= slab.size())
      return nullptr;
    auto& x = slab[place];
    if (!x.live || make_tag(place, x.serial) != tag)
      return nullptr;
    return &x;
  }

  flight* find(uint64_t tag) {
    return live_at(flights_, tag);
  }

  void dispatch() {
    if (runs_) {
      dispatch_calls();
      return;
    }
    while (!queue_.empty() && live_ < cfg_.max_in_flight) {
      auto w = std::move(queue_.front());
      queue_.pop_front();
      start(std::move(w));
    }
  }

  void start(waiting w) {
    ++calls_made_;
    flight f;
    f.job = w.job;
    f.index = w.index;
    f.input = w.input;
    caf::actor dest;
    if (cfg_.spawn_processor) {
      caf::error failed;
      try {
        dest = cfg_.spawn_processor(self_->system());
      } catch (const std::exception& e) {
        failed = make_error(errc::child_start_failed, e.what());
      }
      if (!dest) {
        if (!failed)
          failed = make_error(errc::child_start_failed, "no actor from spawn_processor");
        ++failed_;
        deliver(f, caf::make_message(item_failure{std::move(w.input), failed}),
                failed);
        return;
      }
      ++spawned_;
      f.own = dest;
    } else {
      f.processor = least_loaded();
      ++load_[f.processor];
      dest = cfg_.processors[f.processor];
    }
    auto place = detail::take_place(flights_, free_);
    f.serial = next_serial_++;
    f.live = true;
    auto tag = make_tag(place, f.serial);
    flights_[place] = std::move(f);
    ++live_;
    peak_in_flight_ = std::max<uint64_t>(peak_in_flight_, live_);
    // No CAF timeout: with it, the late answer of a fixed processor would
    // never be seen, and its slot could not be held until then.
    ctl_->request(dest, std::move(w.input).to_message(), tag);
    if (cfg_.call_timeout > caf::timespan{0})
      ctl_->schedule(cfg_.call_timeout, tag);
  }

  // The most items a call takes: a runner's share of max_in_flight, so that
  // a full window is spread over every runner; but while a full window's
  // work, as measured, costs less than a call's messaging, spreading it
  // only adds calls, and one call takes all that is free.
  size_t per_call() const {
    // Divided, not multiplied: a slow item times a large bound would wrap.
    if (ns_per_item_ > 0 && ns_per_item_ < spread_from_ns / cfg_.max_in_flight)
      return cfg_.max_in_flight;
    return share_;
  }

  // Sends what is queued and fits the bound to the runners, at most
  // per_call() items a call, each call to the runner holding the fewest
  // items (ties rotate).
  void dispatch_calls() {
    auto cap = per_call();
    auto now = std::chrono::steady_clock::now();
    while (!queue_.empty() && live_ < cfg_.max_in_flight) {
      auto n = std::min<size_t>({queue_.size(), cfg_.max_in_flight - live_, cap});
      auto r = least_loaded_runner();
      auto place = detail::take_place(calls_, free_calls_);
      auto& c = calls_[place];
      c.runner = r;
      c.serial = next_serial_++;
      c.live = true;
      c.sent = now;
      c.items.clear();
      c.items.reserve(n);
      batch xs;
      xs.items.reserve(n);
      for (size_t k = 0; k < n; ++k) {
        auto& w = queue_.front();
        xs.items.push_back(w.input);
        c.items.push_back(entry{std::move(w.input), w.job, w.index, false});
        queue_.pop_front();
      }
      calls_made_ += n;
      ++batches_;
      largest_batch_ = std::max<uint64_t>(largest_batch_, n);
      live_ += n;
      runners_[r].load += n;
      peak_in_flight_ = std::max<uint64_t>(peak_in_flight_, live_);
      auto tag = make_tag(place, c.serial);
      ctl_->request(runners_[r].actor, caf::make_message(std::move(xs)), tag);
      if (cfg_.call_timeout > caf::timespan{0})
        ctl_->schedule(cfg_.call_timeout, tag);
    }
  }

  size_t least_loaded_runner() {
    auto n = runners_.size();
    size_t best = next_runner_ % n;
    for (size_t k = 1; k < n; ++k) {
      auto i = (next_runner_ + k) % n;
      if (runners_[i].load < runners_[best].load)
        best = i;
    }
    next_runner_ = (best + 1) % n;
    return best;
  }

  // A kill that goes ahead of the calls waiting in the runner's mailbox: it
  // takes effect as soon as the call it runs now returns, and the calls
  // behind it never start (they are sent again, or nobody wants them).
  static void kill_runner(const caf::actor& x) {
    if (x)
      x->enqueue(nullptr, caf::make_message_id(caf::message_priority::high),
                 caf::make_message(caf::exit_msg{x.address(), caf::exit_reason::kill}),
                 nullptr);
  }

  void spawn_runner(runner& r) {
    r.actor = spawn_function_worker(self_->system(), cfg_.process);
    r.load = 0;
    self_->monitor(r.actor);
  }

  call* find_call(uint64_t tag) {
    return live_at(calls_, tag);
  }

  // Takes a call out of flight, freeing its items' slots.
  call take_call(uint64_t tag) {
    auto& c = calls_[static_cast<uint32_t>(tag)];
    call out = std::move(c);
    c = call{};
    free_calls_.push_back(static_cast<uint32_t>(tag));
    live_ -= out.items.size();
    runners_[out.runner].load -= out.items.size();
    for (auto& e : out.items)
      if (e.gone)
        --late_;
    return out;
  }

  // A runner's answer: a batch of one result per item (an item holding
  // just an error for a failed one), or an error for the whole call (the
  // runner died: it is replaced).
  void on_call_answer(uint64_t tag, caf::message& answer) {
    auto c = find_call(tag);
    if (c == nullptr)
      return;
    if (answer.match_elements<caf::error>()) {
      auto r = c->runner;
      auto reason = answer.get_as<caf::error>(0);
      fail_call(take_call(tag), reason);
      replace_runner(r, reason);
    } else if (!answer.match_elements<batch>()
               || answer.get_as<batch>(0).items.size() != c->items.size()) {
      fail_call(take_call(tag),
                make_error(errc::job_failed, "a runner answered a batch with something "
                                             "else than a batch of as many results"));
    } else {
      auto done = take_call(tag);
      measure(done);
      auto& results = answer.get_mutable_as<batch>(0).items;
      for (size_t k = 0; k < done.items.size(); ++k) {
        auto& e = done.items[k];
        if (e.gone)
          continue;
        auto& result = results[k];
        if (result.match_elements<caf::error>()) {
          ++failed_;
          auto reason = result.get_as<caf::error>(0);
          deliver(e.job, e.index,
                  caf::make_message(item_failure{std::move(e.input), reason}), reason);
        } else {
          ++succeeded_;
          deliver(e.job, e.index, std::move(result), caf::error{});
        }
      }
    }
    dispatch();
    ctl_->resume();
  }

  // A call's time from sending to answer per item, averaged over the last
  // calls or so: messaging, waiting in the runner's mailbox, and the work.
  void measure(const call& c) {
    auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - c.sent)
                     .count();
    auto sample = static_cast<uint64_t>(std::max<int64_t>(elapsed, 1)) / c.items.size();
    ns_per_item_ = ns_per_item_ == 0 ? sample : (ns_per_item_ * 7 + sample) / 8;
  }

  // Every item of a call still wanted fails with `reason`.
  void fail_call(call c, const caf::error& reason) {
    for (auto& e : c.items) {
      if (e.gone)
        continue;
      ++failed_;
      deliver(e.job, e.index, caf::make_message(item_failure{std::move(e.input), reason}),
              reason);
    }
  }

  // A call's timer: its items fail with call_timeout; the runner is killed
  // and replaced, and the calls queued behind it there, not started (the
  // runner was still busy with this one), are sent again first.
  void call_timed_out(uint64_t tag) {
    auto c = find_call(tag);
    if (c == nullptr)
      return;
    auto r = c->runner;
    auto reason = name_.empty() ? make_error(errc::call_timeout)
                                : make_error(errc::call_timeout, "fanout " + name_);
    for (auto& e : c->items)
      if (!e.gone)
        ++timeouts_;
    fail_call(take_call(tag), reason);
    replace_runner(r, caf::error{});
    dispatch();
    ctl_->resume();
  }

  // Kills runner `r` (if alive) and spawns its replacement. Its calls still
  // open fail with `reason`, or, without one, are queued again in front: in
  // a runner's mailbox they have not started, unless the runner finished
  // the timed-out call just as the kill left, and then one may run twice.
  void replace_runner(size_t r, const caf::error& reason) {
    auto& old = runners_[r];
    if (old.actor) {
      self_->demonitor(old.actor);
      kill_runner(old.actor);
    }
    std::vector<std::pair<uint32_t, uint32_t>> open; // serial, place
    for (uint32_t place = 0; place < calls_.size(); ++place)
      if (calls_[place].live && calls_[place].runner == r)
        open.emplace_back(calls_[place].serial, place);
    // Serials wrap rarely, and only order the calls sent again.
    std::sort(open.begin(), open.end());
    std::vector<waiting> again;
    for (auto& [serial, place] : open) {
      auto c = take_call(make_tag(place, serial));
      if (reason) {
        fail_call(std::move(c), reason);
        continue;
      }
      for (auto& e : c.items) {
        if (e.gone)
          continue;
        calls_made_ -= 1;
        again.push_back(waiting{std::move(e.input), e.job, e.index});
      }
    }
    queue_.insert(queue_.begin(), std::make_move_iterator(again.begin()),
                  std::make_move_iterator(again.end()));
    ++runner_restarts_;
    if (!stopped_)
      spawn_runner(old);
  }

  // A runner died (it should not: the function's throws are its items'
  // errors); false if `x` is not about a runner.
  bool runner_down(const caf::down_msg& x) {
    for (size_t r = 0; r < runners_.size(); ++r) {
      if (runners_[r].actor.address() != x.source)
        continue;
      runners_[r].actor = caf::actor{};
      auto reason = x.reason ? x.reason : caf::make_error(caf::sec::request_receiver_down);
      replace_runner(r, reason);
      dispatch();
      ctl_->resume();
      return true;
    }
    return false;
  }

  void mark_late(flight& f) {
    f.late = true;
    f.input = item{};
    ++late_;
  }

  size_t least_loaded() {
    auto n = load_.size();
    size_t best = next_processor_ % n;
    for (size_t k = 1; k < n; ++k) {
      auto i = (next_processor_ + k) % n;
      if (load_[i] < load_[best])
        best = i;
    }
    next_processor_ = (best + 1) % n;
    return best;
  }

  // Takes a call out of flight, freeing its slot; false if it is no longer
  // there (killed per-item actor) or was late (already answered for).
  bool land(uint64_t tag, flight& out) {
    auto live = find(tag);
    if (live == nullptr)
      return false;
    out = std::move(*live);
    *live = flight{};
    free_.push_back(static_cast<uint32_t>(tag));
    --live_;
    if (!out.own)
      --load_[out.processor];
    if (!out.late)
      return true;
    --late_;
    dispatch();
    ctl_->resume();
    return false;
  }

  // A per-item actor that answered is done. Killed rather than asked to
  // exit: an actor that traps exits (a troupe supervisor) would ignore that.
  static void finish(const flight& f) {
    if (f.own)
      caf::anon_send_exit(f.own, caf::exit_reason::kill);
  }

  void on_answer(uint64_t id, caf::message& answer) {
    flight f;
    if (!land(id, f))
      return;
    ++succeeded_;
    finish(f);
    deliver(f, std::move(answer), caf::error{});
    dispatch();
    ctl_->resume();
  }

  void on_failure(uint64_t id, caf::error& reason) {
    flight f;
    if (!land(id, f))
      return;
    ++failed_;
    finish(f);
    auto failure = caf::make_message(item_failure{f.input, reason});
    deliver(f, std::move(failure), reason);
    dispatch();
    ctl_->resume();
  }

  // Hands a call's result (or item_failure) to its job. `reason` is set
  // when the call failed: a single request is answered with it.
  void deliver(const flight& f, item result, const caf::error& reason) {
    deliver(f.job, f.index, std::move(result), reason);
  }

  // The result stays an item all the way: a value held inline is never
  // wrapped in a caf::message (an allocation per item) on its way downstream.
  void deliver(uint64_t job, uint64_t index, item result,
               const caf::error& reason) {
    if (job == stream_job) {
      if (cfg_.order == fanout_config::order_policy::completion) {
        --stream_held_;
        ctl_->push(std::move(result));
        return;
      }
      auto& s = slots_[index - first_slot_];
      s.done = true;
      s.result = std::move(result);
      while (!slots_.empty() && slots_.front().done) {
        ctl_->push(std::move(slots_.front().result));
        slots_.pop_front();
        ++first_slot_;
        --stream_held_;
      }
      return;
    }
    auto i = jobs_.find(job);
    if (i == jobs_.end())
      return;
    auto& j = i->second;
    if (cfg_.order == fanout_config::order_policy::input)
      j.results[index] = std::move(result);
    else
      j.results.push_back(std::move(result));
    if (--j.remaining > 0)
      return;
    if (j.is_batch)
      j.rp.deliver(batch{std::move(j.results)});
    else if (reason)
      j.rp.deliver(reason);
    else
      j.rp.deliver(std::move(j.results.front()).to_message());
    forget_requester(j.requester);
    jobs_.erase(i);
  }

  void kill(const flight& f) {
    if (!f.own)
      return;
    ++killed_;
    caf::anon_send_exit(f.own, caf::exit_reason::kill);
  }

  void forget_requester(const caf::actor_addr& x) {
    if (!x)
      return;
    auto i = requesters_.find(x);
    if (i == requesters_.end())
      return;
    if (--i->second == 0) {
      self_->demonitor(x);
      requesters_.erase(i);
    }
  }

  // A requester stopped: its work is cancelled, nobody waits for it.
  void abandon(const caf::actor_addr& requester) {
    requesters_.erase(requester);
    std::vector<uint64_t> gone;
    for (auto& [id, j] : jobs_)
      if (j.requester == requester)
        gone.push_back(id);
    if (gone.empty())
      return;
    auto is_gone = [&](uint64_t job) {
      return std::find(gone.begin(), gone.end(), job) != gone.end();
    };
    // A per-item actor is killed and its slot freed; a fixed processor
    // keeps the call in its mailbox, so the call keeps its slot until its
    // answer comes, ignored.
    for (uint32_t place = 0; place < flights_.size(); ++place) {
      auto& f = flights_[place];
      if (!f.live || f.late || !is_gone(f.job))
        continue;
      ++abandoned_;
      if (f.own) {
        kill(f);
        f = flight{};
        free_.push_back(place);
        --live_;
      } else {
        mark_late(f);
      }
    }
    for (auto& c : calls_) {
      if (!c.live)
        continue;
      for (auto& e : c.items) {
        if (e.gone || !is_gone(e.job))
          continue;
        ++abandoned_;
        e.gone = true;
        e.input = item{};
        ++late_;
      }
    }
    auto before = queue_.size();
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const waiting& w) { return is_gone(w.job); }),
                 queue_.end());
    abandoned_ += before - queue_.size();
    for (auto id : gone)
      jobs_.erase(id);
    dispatch();
    ctl_->resume();
  }

  std::string name_;
  fanout_config cfg_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  std::vector<uint64_t> load_; // calls in flight per fixed processor
  size_t next_processor_ = 0;
  std::vector<flight> flights_; // calls in flight, and free places
  std::vector<uint32_t> free_;
  size_t live_ = 0;             // calls in flight (late ones too)
  uint32_t next_serial_ = 0;
  std::deque<waiting> queue_;
  std::map<uint64_t, job> jobs_;
  std::map<caf::actor_addr, size_t> requesters_; // open jobs per requester
  std::deque<slot> slots_;
  uint64_t first_slot_ = 0;
  uint64_t next_slot_ = 0;
  uint64_t stream_held_ = 0; // stream items taken and not yet emitted
  size_t late_ = 0;          // flights failed or abandoned, answer awaited
  uint64_t next_job_ = 1;
  uint64_t calls_made_ = 0;
  uint64_t succeeded_ = 0;
  uint64_t failed_ = 0;
  uint64_t timeouts_ = 0;
  uint64_t peak_in_flight_ = 0;
  uint64_t spawned_ = 0;
  uint64_t killed_ = 0;
  uint64_t requests_ = 0;
  uint64_t abandoned_ = 0;
  bool stopped_ = false;
  // With `process`: the runners, the batch calls out to them, and the most
  // items a call takes.
  bool runs_ = false;
  std::vector<runner> runners_;
  size_t next_runner_ = 0;
  std::vector<call> calls_;
  std::vector<uint32_t> free_calls_;
  size_t share_ = 1;          // max_in_flight / runners, rounded up
  uint64_t ns_per_item_ = 0;  // measured; 0 before the first answer
  uint64_t batches_ = 0;
  uint64_t largest_batch_ = 0;
  uint64_t runner_restarts_ = 0;
};

} // namespace

caf::actor spawn_fanout(spawn_context ctx, fanout_config cfg, stage_config links) {
  cfg.validate();
  if (links.kind.empty())
    links.kind = "fanout";
  auto logic = std::make_unique<fanout_logic>(ctx.name(), std::move(cfg));
  return spawn_stage(std::move(ctx), std::move(links), std::move(logic));
}

} // namespace troupe
