#include "troupe/patterns/retry.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/make_message.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>

namespace troupe {

namespace {

// Longer durations would only hide a unit mistake, and keep the arithmetic
// on them far from overflow.
constexpr caf::timespan max_duration = std::chrono::hours(24);

} // namespace

void retry_budget_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("retry_budget_config", what);
  };
  if (window <= caf::timespan{0})
    fail("window is not positive");
  if (window > max_duration)
    fail("window is more than 24 h");
  // Written so that NaN fails too.
  if (!(min_retries_per_second >= 0) || std::isinf(min_retries_per_second))
    fail("min_retries_per_second is " + std::to_string(min_retries_per_second)
         + ": it must be a finite number >= 0");
  if (!(retry_ratio >= 0 && retry_ratio <= 1000))
    fail("retry_ratio is " + std::to_string(retry_ratio)
         + ": it must be in [0, 1000]");
}

retry_budget::retry_budget(retry_budget_config cfg)
  : cfg_(cfg),
    slot_length_(std::max(cfg.window / static_cast<int64_t>(slots), caf::timespan{1})),
    start_(clock_type::now()),
    deposits_(slots, 0),
    withdrawals_(slots, 0) {
  // nop
}

// Moves to the slot of `now`, emptying the slots that fell out of the window.
void retry_budget::advance(clock_type::time_point now) {
  auto target = std::max<int64_t>((now - start_) / slot_length_, current_);
  for (auto i = current_ + 1; i <= target && i <= current_ + static_cast<int64_t>(slots); ++i) {
    deposits_[static_cast<size_t>(i) % slots] = 0;
    withdrawals_[static_cast<size_t>(i) % slots] = 0;
  }
  current_ = target;
}

void retry_budget::deposit(clock_type::time_point now) {
  advance(now);
  ++deposits_[static_cast<size_t>(current_) % slots];
}

bool retry_budget::withdraw(clock_type::time_point now) {
  advance(now);
  auto deposited = std::accumulate(deposits_.begin(), deposits_.end(), uint64_t{0});
  auto withdrawn = std::accumulate(withdrawals_.begin(), withdrawals_.end(), uint64_t{0});
  auto seconds = std::chrono::duration<double>(cfg_.window).count();
  auto allowed = cfg_.retry_ratio * static_cast<double>(deposited)
                 + cfg_.min_retries_per_second * seconds;
  if (static_cast<double>(withdrawn + 1) > allowed + 1e-9)
    return false;
  ++withdrawals_[static_cast<size_t>(current_) % slots];
  return true;
}

bool default_retryable(const caf::error& err) {
  return err == errc::call_timeout || err == caf::sec::request_timeout
         || err == caf::sec::request_receiver_down
         || err == errc::child_unavailable || err == errc::pool_full
         || err == errc::rate_limited;
}

void retry_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("retry_config", what);
  };
  if (max_attempts == 0)
    fail("max_attempts is 0: it must be at least 1");
  if (initial_backoff <= caf::timespan{0})
    fail("initial_backoff is not positive");
  if (!(multiplier >= 1) || std::isinf(multiplier))
    fail("multiplier is " + std::to_string(multiplier) + ": it must be at least 1");
  if (max_backoff < initial_backoff)
    fail("max_backoff is less than initial_backoff");
  if (jitter != jitter_mode::none && jitter != jitter_mode::full
      && jitter != jitter_mode::equal)
    fail("jitter is not none, full or equal");
  if (attempt_timeout <= caf::timespan{0})
    fail("attempt_timeout is not positive: an attempt never answered (a "
         "service restarted while holding it) would hold its call for ever");
  if (initial_backoff > max_duration || max_backoff > max_duration
      || attempt_timeout > max_duration)
    fail("initial_backoff, max_backoff and attempt_timeout must be at most 24 h");
  if (max_concurrent_calls == 0)
    fail("max_concurrent_calls is 0: it must be at least 1");
  if (use_budget)
    budget.validate();
}

caf::timespan backoff_delay(const retry_config& cfg, uint32_t retry,
                            std::mt19937_64& rng) {
  auto exponent = static_cast<double>(std::max(retry, 1u) - 1);
  auto ns = static_cast<double>(cfg.initial_backoff.count())
            * std::pow(cfg.multiplier, exponent);
  auto cap = static_cast<double>(cfg.max_backoff.count());
  // Compared as doubles but capped as an integer: a cap near the int64 limit
  // rounds up as a double, and casting that back would overflow.
  auto d = ns < cap ? static_cast<int64_t>(ns) : cfg.max_backoff.count();
  d = std::max<int64_t>(d, 0);
  switch (cfg.jitter) {
    case jitter_mode::none:
      break;
    case jitter_mode::full:
      d = std::uniform_int_distribution<int64_t>{0, d}(rng);
      break;
    case jitter_mode::equal:
      d = d / 2 + std::uniform_int_distribution<int64_t>{0, d - d / 2}(rng);
      break;
  }
  return caf::timespan{d};
}

namespace {

std::string attempts_text(uint32_t n) {
  return std::to_string(n) + (n == 1 ? " attempt" : " attempts");
}

class retry_logic final : public stage_logic {
public:
  retry_logic(retry_config cfg, caf::actor service)
    : cfg_(std::move(cfg)),
      service_(std::move(service)),
      budget_(cfg_.budget) {
    rng_.seed(cfg_.seed != 0 ? cfg_.seed : std::random_device{}());
    if (!cfg_.retryable)
      cfg_.retryable = default_retryable;
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
  }

  // Stream items are calls whose answers go downstream in item order.
  void on_item(item& x, emitter&) override {
    auto& c = open(std::move(x).to_message());
    c.stream = true;
    c.slot = next_slot_++;
    pending_.push_back(slot{});
    attempt(c.id);
  }

  bool ready() override {
    // Asked when the outputs have room again: answers held for credit go
    // first.
    flush();
    return pending_.size() < cfg_.max_concurrent_calls;
  }

  bool busy() const override {
    return !calls_.empty() || !pending_.empty();
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    auto& c = open(std::move(x));
    c.rp = self_->make_response_promise();
    auto rp = c.rp;
    attempt(c.id);
    return rp;
  }

  // The backoff of call `token` is over, or (flush_token) it is time to
  // look for credit again.
  void on_timer(uint64_t token, emitter&) override {
    if (token == flush_token) {
      flush_timer_armed_ = false;
      flush();
      return;
    }
    if (auto i = calls_.find(token); i != calls_.end()) {
      i->second.backing_off = false;
      attempt(token);
    }
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& [id, c] : calls_) {
      if (c.stream)
        continue; // counted as dropped with the rest of pending_
      ++abandoned_;
      c.rp.deliver(answer);
    }
    calls_.clear();
  }

  void describe(actor_report& r) const override {
    r.errors += failed_items_;
    // A stopped retry actor (cancel, crash, kill) never emits what it held.
    if (r.stopped != stop_reason::running)
      r.dropped += pending_.size();
    auto& s = r.stats;
    s["calls"] = static_cast<int64_t>(calls_count_);
    s["attempts"] = static_cast<int64_t>(attempts_);
    s["retries"] = static_cast<int64_t>(retries_);
    s["succeeded"] = static_cast<int64_t>(succeeded_);
    s["not_retryable"] = static_cast<int64_t>(not_retryable_);
    s["gave_up"] = static_cast<int64_t>(gave_up_);
    s["budget_exhausted"] = static_cast<int64_t>(budget_exhausted_);
    s["in_progress"] = static_cast<int64_t>(calls_.size());
    s["backing_off"] = std::count_if(calls_.begin(), calls_.end(),
                                     [](const auto& kv) { return kv.second.backing_off; });
    if (abandoned_ > 0)
      s["abandoned"] = static_cast<int64_t>(abandoned_);
  }

private:
  using clock_type = std::chrono::steady_clock;

  struct open_call {
    uint64_t id = 0;
    caf::message msg;
    uint32_t attempts = 0;
    // A request's promise, or a stream item's place in pending_.
    caf::response_promise rp;
    bool stream = false;
    uint64_t slot = 0;
    bool backing_off = false;
  };

  // A stream item's answer, held until the answers before it went out.
  struct slot {
    bool done = false;
    bool ok = false;
    caf::message answer;
  };

  open_call& open(caf::message msg) {
    ++calls_count_;
    if (cfg_.use_budget)
      budget_.deposit(clock_type::now());
    auto id = next_id_++;
    auto& c = calls_[id];
    c.id = id;
    c.msg = std::move(msg);
    return c;
  }

  void attempt(uint64_t id) {
    auto& c = calls_[id];
    ++c.attempts;
    ++attempts_;
    if (c.attempts > 1)
      ++retries_;
    request_any(
      self_, service_, caf::duration{cfg_.attempt_timeout}, c.msg,
      [this, id](caf::message& answer) {
        auto i = calls_.find(id);
        if (i == calls_.end())
          return;
        ++succeeded_;
        complete(i, std::move(answer), caf::error{});
        ctl_->resume();
      },
      [this, id](caf::error& err) {
        failed(id, err == caf::sec::request_timeout
                     ? make_error(errc::call_timeout, "attempt timed out")
                     : err);
        ctl_->resume();
      });
  }

  void failed(uint64_t id, const caf::error& err) {
    auto i = calls_.find(id);
    if (i == calls_.end())
      return;
    auto& c = i->second;
    if (!cfg_.retryable(err)) {
      ++not_retryable_;
      finish(i, err);
    } else if (c.attempts >= cfg_.max_attempts) {
      ++gave_up_;
      finish(i, with_context(err, "retry: gave up after " + attempts_text(c.attempts)
                                    + " (max_attempts)"));
    } else if (cfg_.use_budget && !budget_.withdraw(clock_type::now())) {
      ++gave_up_;
      ++budget_exhausted_;
      finish(i, with_context(err, "retry: budget exhausted after "
                                    + attempts_text(c.attempts)));
    } else {
      c.backing_off = true;
      ctl_->schedule(backoff_delay(cfg_, c.attempts, rng_), id);
    }
  }

  void finish(std::unordered_map<uint64_t, open_call>::iterator i,
              const caf::error& err) {
    complete(i, caf::message{}, err);
  }

  // The call's outcome goes to its caller, or downstream in item order (a
  // failed item is counted in `errors` and emits nothing).
  void complete(std::unordered_map<uint64_t, open_call>::iterator i,
                caf::message answer, const caf::error& err) {
    auto& c = i->second;
    if (!c.stream) {
      if (err)
        c.rp.deliver(err);
      else
        c.rp.deliver(std::move(answer));
      calls_.erase(i);
      return;
    }
    auto& s = pending_[c.slot - first_slot_];
    s.done = true;
    s.ok = !err;
    s.answer = std::move(answer);
    calls_.erase(i);
    flush();
  }

  // Sends the answers that are due, in item order, within the downstream's
  // credit. What is left waits for credit: the stage asks ready() again when
  // its outputs have room and input is waiting; without input, nothing asks,
  // so a timer looks again (1 ms, doubling to 100 ms while stalled).
  void flush() {
    bool progressed = false;
    while (!pending_.empty() && pending_.front().done) {
      auto& front = pending_.front();
      if (front.ok) {
        if (ctl_->room() == 0)
          break;
        ctl_->push(std::move(front.answer));
      } else {
        ++failed_items_;
      }
      pending_.pop_front();
      ++first_slot_;
      progressed = true;
    }
    if (progressed)
      flush_delay_ = min_flush_delay;
    if (!pending_.empty() && pending_.front().done && !flush_timer_armed_) {
      flush_timer_armed_ = true;
      ctl_->schedule(flush_delay_, flush_token);
      flush_delay_ = std::min(flush_delay_ * 2, max_flush_delay);
    }
  }

  // Call ids count up from 0 and never reach this.
  static constexpr uint64_t flush_token = std::numeric_limits<uint64_t>::max();
  static constexpr caf::timespan min_flush_delay = std::chrono::milliseconds(1);
  static constexpr caf::timespan max_flush_delay = std::chrono::milliseconds(100);

  retry_config cfg_;
  caf::actor service_;
  bool flush_timer_armed_ = false;
  caf::timespan flush_delay_ = min_flush_delay;
  retry_budget budget_;
  std::mt19937_64 rng_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  std::unordered_map<uint64_t, open_call> calls_;
  std::deque<slot> pending_;
  uint64_t first_slot_ = 0;
  uint64_t next_slot_ = 0;
  uint64_t failed_items_ = 0;
  uint64_t next_id_ = 0;
  uint64_t calls_count_ = 0;
  uint64_t attempts_ = 0;
  uint64_t retries_ = 0;
  uint64_t succeeded_ = 0;
  uint64_t not_retryable_ = 0;
  uint64_t gave_up_ = 0;
  uint64_t budget_exhausted_ = 0;
  uint64_t abandoned_ = 0;
};

} // namespace

caf::actor spawn_retry(spawn_context ctx, retry_config cfg, caf::actor service,
                       stage_config links) {
  cfg.validate();
  if (!service)
    throw config_error("spawn_retry", "service is not an actor");
  if (links.kind.empty())
    links.kind = "retry";
  auto logic = std::make_unique<retry_logic>(std::move(cfg), std::move(service));
  return spawn_stage(std::move(ctx), std::move(links), std::move(logic));
}

} // namespace troupe
