#include "troupe/patterns/limiter.hpp"

#include "troupe/actors/errors.hpp"

#include <caf/response_promise.hpp>

#include <chrono>
#include <cmath>
#include <deque>
#include <unordered_map>

namespace troupe {

void limiter_config::validate() const {
  const char* where = "limiter_config";
  if (!(rate > 0) || !std::isfinite(rate))
    throw config_error(where, "rate must be a positive number of permits per second");
  if (!(burst >= 1) || !std::isfinite(burst))
    throw config_error(where, "burst must be at least 1");
  if (mode == limit_mode::delay && max_queue == 0)
    throw config_error(where, "max_queue is 0: delay mode must hold at least one");
  if (key_of && max_keys == 0)
    throw config_error(where, "max_keys is 0: per-key limiting needs a bucket");
}

namespace {

using clock_type = std::chrono::steady_clock;

/// Longest a waiting item sleeps before the bucket is looked at again.
constexpr double max_wait_seconds = 3600;

/// Permits computed from the clock at the moment one is asked for.
class token_bucket {
public:
  token_bucket(double rate, double burst, clock_type::time_point now)
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {
  }

  bool try_take(clock_type::time_point now) {
    refill(now);
    if (tokens_ < 1)
      return false;
    tokens_ -= 1;
    return true;
  }

  /// Time until the next permit (zero if one is there).
  clock_type::duration wait(clock_type::time_point now) {
    refill(now);
    if (tokens_ >= 1)
      return clock_type::duration{0};
    // Capped, so that a tiny rate cannot overflow the clock's duration.
    auto seconds = std::min((1 - tokens_) / rate_, max_wait_seconds);
    return std::chrono::duration_cast<clock_type::duration>(
             std::chrono::duration<double>(seconds))
           + clock_type::duration{1};
  }

  bool full(clock_type::time_point now) {
    refill(now);
    return tokens_ >= burst_;
  }

  double tokens() const {
    return tokens_;
  }

private:
  void refill(clock_type::time_point now) {
    if (now <= last_)
      return;
    std::chrono::duration<double> elapsed = now - last_;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  clock_type::time_point last_;
};

// Something waiting for a permit: a stream item, or a request and its promise.
struct waiting {
  item msg;
  caf::response_promise promise;
  bool is_request = false;
};

class limiter final : public stage_logic {
public:
  limiter(limiter_config cfg, caf::actor service)
    : cfg_(std::move(cfg)), service_(std::move(service)) {
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
  }

  bool ready() override {
    return cfg_.mode == limit_mode::reject || held_ < cfg_.max_queue;
  }

  bool busy() const override {
    return held_ > 0;
  }

  void on_item(item& x, emitter& out) override {
    auto now = clock_type::now();
    auto* b = bucket_for(x, now);
    if (b == nullptr) {
      ++rejected_;
      ++dropped_;
      return;
    }
    if (b->queue.empty() && b->tokens.try_take(now)) {
      pass(x);
      out.push(std::move(x));
      return;
    }
    if (cfg_.mode == limit_mode::reject) {
      ++rejected_;
      ++dropped_;
      return;
    }
    hold(*b, waiting{std::move(x), {}, false}, now);
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    if (!service_)
      return caf::sec::unexpected_message;
    ++requests_;
    auto now = clock_type::now();
    auto* b = bucket_for(x, now);
    if (b == nullptr) {
      ++rejected_;
      return make_error(errc::rate_limited, "no bucket left for a new key");
    }
    if (b->queue.empty() && b->tokens.try_take(now)) {
      pass(x);
      ++forwarded_;
      return ctl_->self()->delegate(service_, std::move(x));
    }
    if (cfg_.mode == limit_mode::reject || held_ >= cfg_.max_queue) {
      ++rejected_;
      return make_error(errc::rate_limited);
    }
    auto rp = ctl_->self()->make_response_promise();
    hold(*b, waiting{std::move(x), rp, true}, now);
    return rp;
  }

  void on_timer(uint64_t token, emitter& out) override {
    if (token != timer_generation_)
      return;
    timer_pending_ = false;
    release(out);
  }

  // Requests still waiting get an answer: the reason the limiter stops.
  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& [key, b] : buckets_)
      for (auto& w : b.queue)
        if (w.is_request) {
          ++abandoned_;
          w.promise.deliver(answer);
        }
  }

  void describe(actor_report& r) const override {
    r.state = held_ > 0 ? "limiting" : "open";
    if (abandoned_ > 0)
      r.stats["abandoned"] = static_cast<int64_t>(abandoned_);
    r.in += requests_;
    r.out += forwarded_;
    r.dropped += dropped_;
    r.stats["passed"] = static_cast<int64_t>(passed_);
    r.stats["rejected"] = static_cast<int64_t>(rejected_);
    r.stats["delayed"] = static_cast<int64_t>(delayed_);
    r.stats["held"] = static_cast<int64_t>(held_);
    r.stats["keys"] = static_cast<int64_t>(buckets_.size());
    if (!cfg_.key_of && !buckets_.empty())
      r.stats["tokens"] = static_cast<int64_t>(buckets_.begin()->second.tokens.tokens());
    // Items still waiting when the limiter stops without draining are lost
    // to the stream: counted. (Held requests were answered by on_stop.)
    if (lost_what_it_held(r.stopped))
      r.dropped += held_items_;
  }

private:
  struct bucket {
    token_bucket tokens;
    std::deque<waiting> queue;
  };

  // The bucket of x's key, made on first use; null if there are max_keys
  // buckets and none can go.
  bucket* bucket_for(const item& x, clock_type::time_point now) {
    auto key = cfg_.key_of ? cfg_.key_of(x) : std::string{};
    auto i = buckets_.find(key);
    if (i != buckets_.end())
      return &i->second;
    if (buckets_.size() >= cfg_.max_keys && !evict_idle(now))
      return nullptr;
    auto j = buckets_.emplace(std::move(key),
                              bucket{token_bucket{cfg_.rate, cfg_.burst, now}, {}});
    return &j.first->second;
  }

  // A full bucket with nothing waiting is the same as a new one: dropping it
  // changes nothing the key will see.
  bool evict_idle(clock_type::time_point now) {
    auto before = buckets_.size();
    for (auto i = buckets_.begin(); i != buckets_.end();) {
      if (i->second.queue.empty() && i->second.tokens.full(now))
        i = buckets_.erase(i);
      else
        ++i;
    }
    return buckets_.size() < before;
  }

  void pass(const item& x) {
    ++passed_;
    if (cfg_.on_pass)
      cfg_.on_pass(x);
  }

  void hold(bucket& b, waiting w, clock_type::time_point now) {
    if (!w.is_request)
      ++held_items_;
    ++held_;
    b.queue.push_back(std::move(w));
    arm_timer(now);
  }

  // Lets through, per key and in order, whatever has a permit now.
  void release(emitter& out) {
    auto now = clock_type::now();
    for (auto& [key, b] : buckets_) {
      while (!b.queue.empty() && b.tokens.try_take(now)) {
        auto w = std::move(b.queue.front());
        b.queue.pop_front();
        --held_;
        ++delayed_;
        pass(w.msg);
        if (w.is_request) {
          ++forwarded_;
          w.promise.delegate(service_, std::move(w.msg).to_message());
        } else {
          --held_items_;
          out.push(std::move(w.msg));
        }
      }
    }
    if (held_ > 0)
      arm_timer(now);
  }

  // One live timer, for the earliest permit a waiting item gets. A new key
  // whose permit comes sooner replaces it (the older one goes stale).
  void arm_timer(clock_type::time_point now) {
    auto soonest = clock_type::duration::max();
    for (auto& [key, b] : buckets_)
      if (!b.queue.empty())
        soonest = std::min(soonest, b.tokens.wait(now));
    if (soonest == clock_type::duration::max())
      return;
    if (timer_pending_ && now + soonest >= timer_due_)
      return;
    timer_pending_ = true;
    timer_due_ = now + soonest;
    ctl_->schedule(std::chrono::duration_cast<caf::timespan>(soonest),
                   ++timer_generation_);
  }

  limiter_config cfg_;
  caf::actor service_;
  stage_control* ctl_ = nullptr;
  std::unordered_map<std::string, bucket> buckets_;
  size_t held_ = 0;
  size_t held_items_ = 0;
  bool timer_pending_ = false;
  clock_type::time_point timer_due_;
  uint64_t timer_generation_ = 0;
  uint64_t requests_ = 0;
  uint64_t forwarded_ = 0;
  uint64_t passed_ = 0;
  uint64_t rejected_ = 0;
  uint64_t dropped_ = 0;
  uint64_t delayed_ = 0;
  uint64_t abandoned_ = 0;
};

} // namespace

caf::actor spawn_limiter(spawn_context ctx, limiter_config cfg,
                         stage_config links, caf::actor service) {
  cfg.validate();
  if (links.kind.empty())
    links.kind = "limiter";
  return spawn_stage(std::move(ctx), std::move(links),
                     std::make_unique<limiter>(std::move(cfg), std::move(service)));
}

} // namespace troupe
