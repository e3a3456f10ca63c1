#include "troupe/patterns/breaker.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"

#include <caf/actor_cast.hpp>
#include <caf/behavior.hpp>
#include <caf/delegated.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_counted.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <utility>

namespace troupe {

void breaker_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("breaker_config", what);
  };
  if (consecutive_failures == 0)
    fail("consecutive_failures is 0: it must be at least 1");
  // Written so that NaN fails too.
  if (!(failure_rate >= 0 && failure_rate <= 1))
    fail("failure_rate is " + std::to_string(failure_rate)
         + ": it must be 0 (off) or in (0, 1]");
  if (window_size == 0)
    fail("window_size is 0: it must be at least 1");
  if (minimum_calls == 0)
    fail("minimum_calls is 0: it must be at least 1");
  if (minimum_calls > window_size)
    fail("minimum_calls is " + std::to_string(minimum_calls)
         + ": it must not exceed window_size (" + std::to_string(window_size)
         + ")");
  if (call_timeout <= caf::timespan{0})
    fail("call_timeout is not positive");
  if (open_timeout <= caf::timespan{0})
    fail("open_timeout is not positive");
  if (half_open_probes == 0)
    fail("half_open_probes is 0: it must be at least 1");
  if (!(backoff_multiplier >= 1) || std::isinf(backoff_multiplier))
    fail("backoff_multiplier is " + std::to_string(backoff_multiplier)
         + ": it must be at least 1");
  if (max_open_timeout < open_timeout)
    fail("max_open_timeout is less than open_timeout");
  if (max_concurrent_calls == 0)
    fail("max_concurrent_calls is 0: it must be at least 1");
  if (when_open != when_open_policy::hold && when_open != when_open_policy::reject)
    fail("when_open is not hold or reject");
  for (size_t i = 0; i < subscribers.size(); ++i)
    if (!subscribers[i])
      fail("subscribers[" + std::to_string(i) + "] is not an actor");
}

namespace {

using clock_type = std::chrono::steady_clock;

enum class breaker_state { closed, open, half_open };

const char* to_string(breaker_state x) {
  switch (x) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "unknown";
}

int64_t to_ns(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch())
    .count();
}

enum class outcome { success, failure, timeout };

// The outcomes of the last `size` calls made while closed.
class outcome_window {
public:
  void reset(size_t size) {
    failed_.assign(size, false);
    next_ = 0;
    calls_ = 0;
    failures_ = 0;
  }

  void add(bool failed) {
    if (failed_.empty())
      return;
    if (calls_ == failed_.size())
      failures_ -= failed_[next_] ? 1 : 0;
    else
      ++calls_;
    failed_[next_] = failed;
    failures_ += failed ? 1 : 0;
    next_ = (next_ + 1) % failed_.size();
  }

  size_t calls() const {
    return calls_;
  }

  size_t failures() const {
    return failures_;
  }

private:
  std::vector<bool> failed_;
  size_t next_ = 0;
  size_t calls_ = 0;
  size_t failures_ = 0;
};

class breaker_logic final : public stage_logic {
public:
  breaker_logic(std::string name, breaker_config cfg, caf::actor service)
    : name_(std::move(name)),
      cfg_(std::move(cfg)),
      service_(std::move(service)),
      open_timeout_(cfg_.open_timeout) {
    // Only a rate needs the window; its size may be large.
    window_.reset(cfg_.failure_rate > 0 ? cfg_.window_size : 0);
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
    // The stage core sets no down handler; subscribers are the only actors
    // this incarnation monitors.
    self_->set_down_handler([this](caf::down_msg& x) { drop(x.source); });
    state_change initial{name_, "", to_string(state_), to_ns(clock_type::now())};
    for (auto& sub : cfg_.subscribers) {
      add_subscriber(sub);
      caf::anon_send(sub, initial);
    }
  }

  // Stream items are calls whose answers go downstream in item order.
  void on_item(item& x, emitter&) override {
    if (!admit()) {
      ++rejected_;
      ++rejected_items_;
      return;
    }
    pending_.push_back(slot{});
    call(std::move(x).to_message(), next_slot_++, caf::response_promise{});
  }

  bool ready() override {
    refresh();
    if (pending_.size() >= cfg_.max_concurrent_calls)
      return false;
    if (cfg_.when_open == breaker_config::when_open_policy::reject)
      return true;
    switch (state_) {
      case breaker_state::closed:
        return true;
      case breaker_state::open:
        // The open timer wakes the stage.
        return false;
      case breaker_state::half_open:
        // A probe's answer wakes the stage.
        return probes_taken_ < cfg_.half_open_probes;
    }
    return false;
  }

  // A drain waits for the answers of calls in flight, requests included:
  // stopping before would break the callers' promises.
  bool busy() const override {
    return in_flight_ > 0 || !pending_.empty();
  }

  void on_timer(uint64_t token, emitter&) override {
    if (token == deadline_token) {
      expire_calls();
      return;
    }
    if (token != epoch_ || state_ != breaker_state::open)
      return; // stale: the breaker moved on since this timer was set
    auto now = clock_type::now();
    if (now >= opened_at_ + open_timeout_)
      transition(breaker_state::half_open, now);
    else
      ctl_->schedule(opened_at_ + open_timeout_ - now, epoch_);
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    if (x.match_elements<subscribe_atom>())
      return subscribe();
    if (x.match_elements<unsubscribe_atom>()) {
      auto sender = caf::actor_cast<caf::actor>(self_->current_sender());
      if (sender && drop(sender.address()))
        self_->demonitor(sender);
      return answer_if_request(caf::make_message(caf::ok_atom::value));
    }
    if (!admit()) {
      ++rejected_;
      return own_error(errc::circuit_open);
    }
    auto rp = self_->make_response_promise();
    call(std::move(x), no_slot, rp);
    return rp;
  }

  // Request calls still in flight get an answer: the reason the breaker
  // stops.
  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& [seq, c] : calls_in_flight_) {
      if (c.promise.pending()) {
        ++abandoned_;
        c.promise.deliver(answer);
      }
    }
    calls_in_flight_.clear();
  }

  void describe(actor_report& r) const override {
    r.state = to_string(state_);
    r.errors += failed_items_;
    r.dropped += rejected_items_;
    // A stopped breaker (cancel, crash, kill) never emits what it held.
    if (r.stopped != stop_reason::running)
      r.dropped += pending_.size();
    auto& s = r.stats;
    s["calls"] = static_cast<int64_t>(calls_);
    s["successes"] = static_cast<int64_t>(successes_);
    s["failures"] = static_cast<int64_t>(failures_);
    s["timeouts"] = static_cast<int64_t>(timeouts_);
    s["rejected"] = static_cast<int64_t>(rejected_);
    s["trips"] = static_cast<int64_t>(trips_);
    s["state_changes"] = static_cast<int64_t>(state_changes_);
    s["in_flight"] = static_cast<int64_t>(in_flight_);
    s["open_timeout_ms"]
      = std::chrono::duration_cast<std::chrono::milliseconds>(open_timeout_).count();
    s["subscribers"] = static_cast<int64_t>(subscribers_.size());
    if (abandoned_ > 0)
      s["abandoned"] = static_cast<int64_t>(abandoned_);
  }

private:
  // An item's call, held until the answers of the items before it went out.
  struct slot {
    bool done = false;
    bool ok = false;
    caf::message answer;
  };

  // A call to the service waiting for its outcome: the answer, an error, or
  // its deadline.
  struct call_record {
    clock_type::time_point deadline;
    caf::message_id request;
    // The state's epoch when it was made: only outcomes of the current one
    // move the state.
    uint64_t epoch = 0;
    // Its deadline passed and the timeout is on its way to the handler.
    bool expired = false;
    // A request call answers this promise; an item's call fills its slot.
    caf::response_promise promise;
    uint64_t slot = 0;
  };

  static constexpr uint64_t no_slot = std::numeric_limits<uint64_t>::max();

  // The timer token of call deadlines; open timers use the epoch, which
  // never gets this far.
  static constexpr uint64_t deadline_token = std::numeric_limits<uint64_t>::max();

  // Open turns half-open by the clock: a call must not wait for the timer.
  void refresh() {
    if (state_ != breaker_state::open)
      return;
    auto now = clock_type::now();
    if (now >= opened_at_ + open_timeout_)
      transition(breaker_state::half_open, now);
  }

  // Whether a call may go to the service now; takes a probe when half-open.
  bool admit() {
    refresh();
    switch (state_) {
      case breaker_state::closed:
        return true;
      case breaker_state::open:
        return false;
      case breaker_state::half_open:
        if (probes_taken_ >= cfg_.half_open_probes)
          return false;
        ++probes_taken_;
        return true;
    }
    return false;
  }

  // Calls share one timeout, so their deadlines come in the order they were
  // made: one timer for the earliest is enough, instead of a request timeout
  // each (an entry in CAF's clock, a message to its thread and back per call).
  void call(caf::message msg, uint64_t slot, caf::response_promise promise) {
    ++calls_;
    ++in_flight_;
    auto seq = next_call_++;
    auto id = request_any(
      self_, service_, caf::infinite, std::move(msg),
      [this, seq](caf::message& answer) { on_outcome(seq, outcome::success, answer, nullptr); },
      [this, seq](caf::error& err) {
        caf::message nothing;
        on_outcome(seq, outcome::failure, nothing, &err);
      });
    calls_in_flight_.emplace_hint(
      calls_in_flight_.end(), seq,
      call_record{clock_type::now() + cfg_.call_timeout, id, epoch_, false,
                  std::move(promise), slot});
    if (!deadline_timer_) {
      deadline_timer_ = true;
      ctl_->schedule(cfg_.call_timeout, deadline_token);
    }
  }

  // Calls past their deadline get the timeout CAF would have given them; the
  // timer is set again for the next deadline.
  void expire_calls() {
    deadline_timer_ = false;
    auto now = clock_type::now();
    for (auto& [seq, c] : calls_in_flight_) {
      if (c.deadline > now) {
        deadline_timer_ = true;
        ctl_->schedule(c.deadline - now, deadline_token);
        return;
      }
      if (!c.expired) {
        c.expired = true;
        expire_request(self_, c.request);
      }
    }
  }

  void on_outcome(uint64_t seq, outcome o, caf::message& answer, caf::error* err) {
    auto i = calls_in_flight_.find(seq);
    if (i == calls_in_flight_.end())
      return;
    auto c = std::move(i->second);
    calls_in_flight_.erase(i);
    caf::error answer_err;
    if (err != nullptr) {
      // The request timed out (its deadline): the service did not answer.
      if (*err == caf::sec::request_timeout) {
        o = outcome::timeout;
        answer_err = own_error(errc::call_timeout);
      } else {
        answer_err = std::move(*err);
      }
    }
    finish(o, c.epoch);
    if (c.slot != no_slot) {
      auto& s = pending_[c.slot - first_slot_];
      s.done = true;
      s.ok = o == outcome::success;
      s.answer = std::move(answer);
      emit_done();
    } else if (o == outcome::success) {
      c.promise.deliver(std::move(answer));
    } else {
      c.promise.deliver(std::move(answer_err));
    }
    ctl_->resume();
  }

  // Counts the outcome of a call made in `epoch` and moves the state if the
  // call was made in the current one. The caller then wakes the stage: an
  // answer to send, room for another item, or a drain waiting for this call.
  void finish(outcome o, uint64_t epoch) {
    --in_flight_;
    auto failed = o != outcome::success;
    if (failed)
      ++failures_;
    else
      ++successes_;
    if (o == outcome::timeout)
      ++timeouts_;
    if (epoch == epoch_) {
      if (state_ == breaker_state::closed) {
        consecutive_ = failed ? consecutive_ + 1 : 0;
        window_.add(failed);
        if (consecutive_ >= cfg_.consecutive_failures || rate_exceeded())
          trip();
      } else if (state_ == breaker_state::half_open) {
        if (failed)
          trip();
        else if (++probe_successes_ == cfg_.half_open_probes)
          transition(breaker_state::closed, clock_type::now());
      }
    }
  }

  bool rate_exceeded() const {
    return cfg_.failure_rate > 0 && window_.calls() >= cfg_.minimum_calls
           && static_cast<double>(window_.failures())
                >= cfg_.failure_rate * static_cast<double>(window_.calls());
  }

  void trip() {
    if (state_ == breaker_state::half_open && cfg_.backoff_multiplier > 1) {
      auto grown = static_cast<double>(open_timeout_.count()) * cfg_.backoff_multiplier;
      open_timeout_ = grown >= static_cast<double>(cfg_.max_open_timeout.count())
                        ? cfg_.max_open_timeout
                        : caf::timespan{static_cast<caf::timespan::rep>(grown)};
    }
    ++trips_;
    auto now = clock_type::now();
    opened_at_ = now;
    transition(breaker_state::open, now);
    ctl_->schedule(open_timeout_, epoch_);
  }

  void transition(breaker_state to, clock_type::time_point now) {
    auto from = state_;
    state_ = to;
    ++epoch_;
    ++state_changes_;
    consecutive_ = 0;
    probes_taken_ = 0;
    probe_successes_ = 0;
    if (to == breaker_state::closed) {
      window_.reset(cfg_.failure_rate > 0 ? cfg_.window_size : 0);
      open_timeout_ = cfg_.open_timeout;
    }
    state_change event{name_, to_string(from), to_string(to), to_ns(now)};
    for (auto& sub : subscribers_)
      caf::anon_send(sub, event);
  }

  // Sends the answers (and counts the failures) of the finished calls at the
  // front, keeping item order.
  void emit_done() {
    while (!pending_.empty() && pending_.front().done) {
      auto& s = pending_.front();
      if (s.ok)
        ctl_->push(std::move(s.answer));
      else
        ++failed_items_;
      pending_.pop_front();
      ++first_slot_;
    }
  }

  caf::result<caf::message> subscribe() {
    auto sender = caf::actor_cast<caf::actor>(self_->current_sender());
    if (!sender)
      return caf::sec::invalid_argument; // an anonymous message has no one to tell
    add_subscriber(sender);
    return answer_if_request(caf::make_message(std::string{to_string(state_)}));
  }

  void add_subscriber(const caf::actor& x) {
    if (std::any_of(subscribers_.begin(), subscribers_.end(),
                    [&](const caf::actor& y) { return y == x; }))
      return;
    self_->monitor(x);
    subscribers_.push_back(x);
  }

  bool drop(const caf::actor_addr& x) {
    auto i = std::find_if(subscribers_.begin(), subscribers_.end(),
                          [&](const caf::actor& y) { return y.address() == x; });
    if (i == subscribers_.end())
      return false;
    subscribers_.erase(i);
    return true;
  }

  // Names the breaker, when it has a name, for errors that reach callers of
  // a stack of patterns.
  caf::error own_error(errc x) const {
    return name_.empty() ? make_error(x) : make_error(x, "breaker " + name_);
  }

  // CAF sends a handler's result back even for a plain send; a subscriber
  // that sent one expects state changes only.
  caf::result<caf::message> answer_if_request(caf::message x) {
    auto e = self_->current_mailbox_element();
    if (e != nullptr && e->mid.is_request())
      return x;
    return caf::delegated<caf::message>{};
  }

  std::string name_;
  breaker_config cfg_;
  caf::actor service_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  breaker_state state_ = breaker_state::closed;
  // Bumped by every transition: timers and calls of an earlier state are
  // stale and move nothing.
  uint64_t epoch_ = 0;
  clock_type::time_point opened_at_;
  caf::timespan open_timeout_;
  uint32_t consecutive_ = 0;
  outcome_window window_;
  uint32_t probes_taken_ = 0;
  uint32_t probe_successes_ = 0;
  std::vector<caf::actor> subscribers_;
  std::deque<slot> pending_;
  uint64_t first_slot_ = 0;
  uint64_t next_slot_ = 0;
  uint64_t in_flight_ = 0;
  uint64_t calls_ = 0;
  uint64_t successes_ = 0;
  uint64_t failures_ = 0;
  uint64_t timeouts_ = 0;
  uint64_t abandoned_ = 0;
  // Calls in flight by sequence number, which is also deadline order.
  std::map<uint64_t, call_record> calls_in_flight_;
  uint64_t next_call_ = 0;
  // Whether a deadline timer is set.
  bool deadline_timer_ = false;
  uint64_t rejected_ = 0;
  uint64_t rejected_items_ = 0;
  uint64_t failed_items_ = 0;
  uint64_t trips_ = 0;
  uint64_t state_changes_ = 0;
};

} // namespace

caf::actor spawn_breaker(spawn_context ctx, breaker_config cfg,
                         caf::actor service, stage_config links) {
  cfg.validate();
  if (!service)
    throw config_error("spawn_breaker", "service is not an actor");
  if (links.kind.empty())
    links.kind = "breaker";
  auto logic = std::make_unique<breaker_logic>(ctx.name(), std::move(cfg),
                                               std::move(service));
  return spawn_stage(std::move(ctx), std::move(links), std::move(logic));
}

} // namespace troupe
