#include "troupe/patterns/timeout.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace troupe {

void timeout_config::validate() const {
  if (timeout <= caf::timespan{0})
    throw config_error("timeout_config", "timeout is not positive");
  if (late_window < caf::timespan{0})
    throw config_error("timeout_config", "late_window is negative");
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
    ctl_->schedule(cfg_.timeout, id);
    return rp;
  }

  // The deadline of call `token` passed.
  void on_timer(uint64_t token, emitter&) override {
    auto i = open_.find(token);
    if (i == open_.end())
      return;
    ++timed_out_;
    i->second.deliver(make_error(errc::call_timeout, context_));
    open_.erase(i);
    late_.insert(token);
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
  timeout_config cfg_;
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
