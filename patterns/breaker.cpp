#include "troupe/patterns/breaker.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/patterns/detail/circuit.hpp"

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

using detail::call_outcome;
using detail::circuit_state;

int64_t to_ns(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch())
    .count();
}

class breaker_logic final : public stage_logic {
public:
  breaker_logic(std::string name, breaker_config cfg, caf::actor service)
    : name_(std::move(name)),
      cfg_(std::move(cfg)),
      service_(std::move(service)),
      circuit_(cfg_, [] { return clock_type::now(); }) {
    // nop
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
    // The stage core sets no down handler; subscribers are the only actors
    // this incarnation monitors.
    self_->set_down_handler([this](caf::down_msg& x) { drop(x.source); });
    state_change initial{name_, "", to_string(circuit_.state()),
                         to_ns(clock_type::now())};
    for (auto& sub : cfg_.subscribers) {
      add_subscriber(sub);
      caf::anon_send(sub, initial);
    }
  }

  // Stream items are calls whose answers go downstream in item order.
  void on_item(item& x, emitter&) override {
    if (!admit()) {
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
    // When not, the open timer or a probe's answer wakes the stage.
    return circuit_.may_admit();
  }

  // A drain waits for the answers of calls in flight, requests included:
  // stopping before would break the callers' promises.
  bool busy() const override {
    return circuit_.counters().in_flight > 0 || !pending_.empty();
  }

  void on_timer(uint64_t token, emitter&) override {
    if (token == deadline_token) {
      expire_calls();
      return;
    }
    if (token != circuit_.epoch() || circuit_.state() != circuit_state::open)
      return; // stale: the breaker moved on since this timer was set
    if (!changed(circuit_.refresh())) {
      auto left = circuit_.opened_at() + circuit_.open_timeout() - clock_type::now();
      ctl_->schedule(std::max(left, clock_type::duration{0}), circuit_.epoch());
    }
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
    if (!admit())
      return own_error(errc::circuit_open);
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
    r.state = to_string(circuit_.state());
    r.errors += failed_items_;
    r.dropped += rejected_items_;
    // A stopped breaker (cancel, crash, kill) never emits what it held.
    if (r.stopped != stop_reason::running)
      r.dropped += pending_.size();
    auto& s = r.stats;
    auto& c = circuit_.counters();
    s["calls"] = static_cast<int64_t>(c.calls);
    s["successes"] = static_cast<int64_t>(c.successes);
    s["failures"] = static_cast<int64_t>(c.failures);
    s["timeouts"] = static_cast<int64_t>(c.timeouts);
    s["rejected"] = static_cast<int64_t>(c.rejected);
    s["trips"] = static_cast<int64_t>(c.trips);
    s["state_changes"] = static_cast<int64_t>(c.state_changes);
    s["in_flight"] = static_cast<int64_t>(c.in_flight);
    s["open_timeout_ms"]
      = std::chrono::duration_cast<std::chrono::milliseconds>(circuit_.open_timeout())
          .count();
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
    changed(circuit_.refresh());
  }

  // Whether a call may go to the service now (taking a probe when
  // half-open); a call let through is made in the circuit's current epoch.
  bool admit() {
    uint64_t epoch = 0;
    detail::circuit_change change;
    auto pass = circuit_.admit(epoch, change);
    changed(change);
    return pass;
  }

  // Tells the subscribers about a transition, and sets the open timer for
  // one into open. Returns whether there was one.
  bool changed(const detail::circuit_change& x) {
    if (!x.happened)
      return false;
    if (x.to == circuit_state::open)
      ctl_->schedule(circuit_.open_timeout(), circuit_.epoch());
    state_change event{name_, to_string(x.from), to_string(x.to), to_ns(x.at)};
    for (auto& sub : subscribers_)
      caf::anon_send(sub, event);
    return true;
  }

  // Calls share one timeout, so their deadlines come in the order they were
  // made: one timer for the earliest is enough, instead of a request timeout
  // each (an entry in CAF's clock, a message to its thread and back per call).
  void call(caf::message msg, uint64_t slot, caf::response_promise promise) {
    auto seq = next_call_++;
    auto id = request_any(
      self_, service_, caf::infinite, std::move(msg),
      [this, seq](caf::message& answer) {
        on_outcome(seq, call_outcome::success, answer, nullptr);
      },
      [this, seq](caf::error& err) {
        caf::message nothing;
        on_outcome(seq, call_outcome::failure, nothing, &err);
      });
    calls_in_flight_.emplace_hint(
      calls_in_flight_.end(), seq,
      call_record{clock_type::now() + cfg_.call_timeout, id, circuit_.epoch(), false,
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

  void on_outcome(uint64_t seq, call_outcome o, caf::message& answer, caf::error* err) {
    auto i = calls_in_flight_.find(seq);
    if (i == calls_in_flight_.end())
      return;
    auto c = std::move(i->second);
    calls_in_flight_.erase(i);
    caf::error answer_err;
    if (err != nullptr) {
      // The request timed out (its deadline): the service did not answer.
      if (*err == caf::sec::request_timeout) {
        o = call_outcome::timeout;
        answer_err = own_error(errc::call_timeout);
      } else {
        answer_err = std::move(*err);
      }
    }
    // Subscribers hear of a transition this outcome caused before its
    // caller gets the answer.
    changed(circuit_.finish(o, c.epoch));
    if (c.slot != no_slot) {
      auto& s = pending_[c.slot - first_slot_];
      s.done = true;
      s.ok = o == call_outcome::success;
      s.answer = std::move(answer);
      emit_done();
    } else if (o == call_outcome::success) {
      c.promise.deliver(std::move(answer));
    } else {
      c.promise.deliver(std::move(answer_err));
    }
    ctl_->resume();
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
    return answer_if_request(
      caf::make_message(std::string{to_string(circuit_.state())}));
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
  // The states and their rules; the open timer's token is its epoch.
  detail::circuit circuit_;
  std::vector<caf::actor> subscribers_;
  std::deque<slot> pending_;
  uint64_t first_slot_ = 0;
  uint64_t next_slot_ = 0;
  uint64_t abandoned_ = 0;
  // Calls in flight by sequence number, which is also deadline order.
  std::map<uint64_t, call_record> calls_in_flight_;
  uint64_t next_call_ = 0;
  // Whether a deadline timer is set.
  bool deadline_timer_ = false;
  uint64_t rejected_items_ = 0;
  uint64_t failed_items_ = 0;
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
