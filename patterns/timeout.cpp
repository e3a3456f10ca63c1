#include "troupe/patterns/timeout.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>

#include <chrono>
#include <deque>
#include <string>
#include <utility>
#include <unordered_map>
#include <unordered_set>

namespace troupe {

void timeout_config::validate() const {
  // Longer durations would only hide a unit mistake, and keep their sum far
  // from overflow.
  constexpr caf::timespan max_duration = std::chrono::hours(24);
  if (timeout <= caf::timespan{0})
    throw config_error("timeout_config", "timeout is not positive");
  if (timeout > max_duration)
    throw config_error("timeout_config", "timeout is more than 24 h");
  if (late_window < caf::timespan{0})
    throw config_error("timeout_config", "late_window is negative");
  if (late_window > max_duration)
    throw config_error("timeout_config", "late_window is more than 24 h");
}

namespace {

class timeout_logic final : public stage_logic {
public:
  timeout_logic(timeout_config cfg, caf::actor service)
    : cfg_(cfg), service_(std::move(service)) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeout);
    context_ = "timeout: no answer within " + std::to_string(ms.count()) + " ms";
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
  }

  void on_item(item&, emitter&) override {
    // Items are requests only: a timeout actor has no stream inputs.
  }

  bool busy() const override {
    return !open_.empty();
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    ++calls_;
    auto id = next_id_++;
    auto rp = self_->make_response_promise();
    open_.emplace(id, rp);
    // CAF's own timeout ends the wait for a late answer; ours, the call.
    request_any(
      self_, service_, caf::duration{cfg_.timeout + cfg_.late_window}, std::move(x),
      [this, id](caf::message& answer) {
        if (auto i = open_.find(id); i != open_.end()) {
          ++answered_;
          i->second.deliver(std::move(answer));
          open_.erase(i);
          ctl_->resume();
        } else if (late_.erase(id) > 0) {
          ++late_answers_;
        }
      },
      [this, id](caf::error& err) {
        auto silent = err == caf::sec::request_timeout;
        if (auto i = open_.find(id); i != open_.end()) {
          // Only with a late_window of 0 can CAF's timeout come first.
          if (silent) {
            ++timed_out_;
            ++never_answered_;
            i->second.deliver(make_error(errc::call_timeout, context_));
          } else {
            ++answered_;
            i->second.deliver(std::move(err));
          }
          open_.erase(i);
          ctl_->resume();
        } else if (late_.erase(id) > 0) {
          if (silent)
            ++never_answered_;
          else
            ++late_answers_;
        }
      });
    // Every call has the same timeout, so deadlines come in call order: one
    // timer for the earliest, rather than one per call left in the clock
    // until its deadline, answered or not.
    deadlines_.emplace_back(clock_type::now() + cfg_.timeout, id);
    if (!timer_armed_) {
      timer_armed_ = true;
      ctl_->schedule(cfg_.timeout, 0);
    }
    return rp;
  }

  // The earliest deadline is due: time out the calls past theirs that are
  // still open, and arm the timer for the next one.
  void on_timer(uint64_t, emitter&) override {
    timer_armed_ = false;
    auto now = clock_type::now();
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      auto id = deadlines_.front().second;
      deadlines_.pop_front();
      auto i = open_.find(id);
      if (i == open_.end())
        continue;
      ++timed_out_;
      i->second.deliver(make_error(errc::call_timeout, context_));
      open_.erase(i);
      late_.insert(id);
    }
    // Answered calls leave their entries; drop them here, not per answer.
    while (!deadlines_.empty() && open_.count(deadlines_.front().second) == 0)
      deadlines_.pop_front();
    if (!deadlines_.empty()) {
      timer_armed_ = true;
      ctl_->schedule(deadlines_.front().first - now, 0);
    }
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& [id, rp] : open_) {
      ++abandoned_;
      rp.deliver(answer);
    }
    open_.clear();
  }

  void describe(actor_report& r) const override {
    auto& s = r.stats;
    s["calls"] = static_cast<int64_t>(calls_);
    s["answered"] = static_cast<int64_t>(answered_);
    s["timed_out"] = static_cast<int64_t>(timed_out_);
    s["late_answers"] = static_cast<int64_t>(late_answers_);
    s["never_answered"] = static_cast<int64_t>(never_answered_);
    s["in_flight"] = static_cast<int64_t>(open_.size());
    s["awaiting_late"] = static_cast<int64_t>(late_.size());
    if (abandoned_ > 0)
      s["abandoned"] = static_cast<int64_t>(abandoned_);
  }

private:
  using clock_type = std::chrono::steady_clock;

  timeout_config cfg_;
  // (deadline, call id) in call order, answered calls included until the
  // timer passes them.
  std::deque<std::pair<clock_type::time_point, uint64_t>> deadlines_;
  bool timer_armed_ = false;
  caf::actor service_;
  std::string context_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  // Calls within their deadline, by id.
  std::unordered_map<uint64_t, caf::response_promise> open_;
  // Calls past their deadline whose answer may still come.
  std::unordered_set<uint64_t> late_;
  uint64_t next_id_ = 0;
  uint64_t calls_ = 0;
  uint64_t answered_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t late_answers_ = 0;
  uint64_t never_answered_ = 0;
  uint64_t abandoned_ = 0;
};

} // namespace

caf::actor spawn_timeout(spawn_context ctx, timeout_config cfg, caf::actor service) {
  cfg.validate();
  if (!service)
    throw config_error("spawn_timeout", "service is not an actor");
  stage_config links;
  links.kind = "timeout";
  auto logic = std::make_unique<timeout_logic>(cfg, std::move(service));
  return spawn_stage(std::move(ctx), std::move(links), std::move(logic));
}

} // namespace troupe
