// Work stages for demos and fault drills: hash, sleep, fail, crash.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"

#include <caf/make_message.hpp>

#include <any>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

namespace troupe::builtin_kinds {

namespace {

/// CPU work per item: `rounds` rounds of a hash over it. Emits the item
/// unchanged (sums and counts stay checkable downstream), or its hash.
class hash_stage final : public stage_logic {
public:
  hash_stage(uint64_t rounds, bool emit_hash) : rounds_(rounds), emit_hash_(emit_hash) {
  }

  void on_item(item& x, emitter& out) override {
    auto h = hash_item(x, rounds_);
    digest_ ^= h;
    if (emit_hash_)
      out.push(make_item(h));
    else
      out.push(std::move(x));
  }

  void describe(actor_report& r) const override {
    r.stats["digest"] = static_cast<int64_t>(digest_);
  }

private:
  uint64_t rounds_;
  bool emit_hash_;
  uint64_t digest_ = 0;
};

/// Holds each item for `delay` before emitting it, one item at a time, on a
/// stage timer: the scheduler thread is free meanwhile.
class sleep_stage final : public stage_logic {
public:
  explicit sleep_stage(caf::timespan delay) : delay_(delay) {
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
  }

  void on_item(item& x, emitter&) override {
    held_ = std::move(x);
    holding_ = true;
    ctl_->schedule(delay_, 0);
  }

  bool ready() override {
    return !holding_;
  }

  bool busy() const override {
    return holding_;
  }

  void on_timer(uint64_t, emitter& out) override {
    if (!holding_)
      return;
    holding_ = false;
    out.push(std::move(held_));
  }

  void describe(actor_report& r) const override {
    if (holding_ && lost_what_it_held(r.stopped))
      ++r.dropped;
  }

private:
  caf::timespan delay_;
  stage_control* ctl_ = nullptr;
  item held_;
  bool holding_ = false;
};

/// Fails each item with a probability: a failed item counts as an error and
/// is not emitted; the stage goes on.
class fail_stage final : public stage_logic {
public:
  fail_stage(double probability, uint64_t seed)
    : rng_(seed != 0 ? seed : std::random_device{}()), fails_(probability) {
  }

  void on_item(item& x, emitter& out) override {
    if (fails_(rng_)) {
      ++failed_;
      return;
    }
    out.push(std::move(x));
  }

  void describe(actor_report& r) const override {
    r.errors += failed_;
    r.stats["failed"] = static_cast<int64_t>(failed_);
  }

private:
  std::mt19937_64 rng_;
  std::bernoulli_distribution fails_;
  uint64_t failed_ = 0;
};

/// Throws at every `every`-th item of an incarnation: a crash, restarted by
/// the supervisor; the item that threw counts as an error. `left` (shared by
/// the incarnations of one run; null: no limit) is how many crashes remain.
class crash_stage final : public stage_logic {
public:
  crash_stage(uint64_t every, std::shared_ptr<std::atomic<int64_t>> left)
    : every_(every), left_(std::move(left)) {
  }

  void on_item(item& x, emitter& out) override {
    if (++seen_ % every_ == 0 && (!left_ || left_->fetch_sub(1) > 0))
      throw std::runtime_error("crash: item " + std::to_string(seen_)
                               + " of this incarnation (every = "
                               + std::to_string(every_) + ")");
    out.push(std::move(x));
  }

private:
  uint64_t every_;
  std::shared_ptr<std::atomic<int64_t>> left_;
  uint64_t seen_ = 0;
};

/// The crashes left to the incarnations of one run (null: no limit): each
/// run of a topology, each build of it, has the whole budget.
std::shared_ptr<std::atomic<int64_t>> crashes_left(const wiring& w, int64_t crashes) {
  using counter = std::shared_ptr<std::atomic<int64_t>>;
  if (crashes == 0)
    return nullptr;
  if (!w.per_run)
    return std::make_shared<std::atomic<int64_t>>(crashes);
  if (!w.per_run->has_value())
    *w.per_run = std::make_shared<std::atomic<int64_t>>(crashes);
  return std::any_cast<counter>(*w.per_run);
}

} // namespace

void add_work_kinds(kind_registry& registry) {
  registry.add(stage_kind(
    "hash", "hashes each item `rounds` times (CPU work); emits the item or its hash",
    [](kind_config& cfg) -> actor_starter {
      auto rounds = static_cast<uint64_t>(cfg.integer("rounds", 100, 0, 1'000'000'000));
      auto emit = cfg.choice("emit", "item", {"item", "hash"});
      bool emit_hash = emit == "hash";
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, std::make_unique<hash_stage>(rounds, emit_hash));
      };
    }));
  registry.add(stage_kind(
    "sleep", "holds each item for `delay` (one at a time) without blocking a thread",
    [](kind_config& cfg) -> actor_starter {
      auto delay = cfg.duration("delay", std::chrono::milliseconds(10), caf::timespan{0},
                                std::chrono::hours(1));
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, std::make_unique<sleep_stage>(delay));
      };
    }));
  registry.add(stage_kind(
    "fail", "drops each item with a probability, counted as an error",
    [](kind_config& cfg) -> actor_starter {
      auto probability = cfg.number("probability", 0.1, 0, 1);
      auto seed = static_cast<uint64_t>(
        cfg.integer("seed", 1, 0, std::numeric_limits<int64_t>::max()));
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, std::make_unique<fail_stage>(probability, seed));
      };
    }));
  registry.add(stage_kind(
    "crash", "crashes at every `every`-th item of an incarnation (a supervisor restarts it)",
    [](kind_config& cfg) -> actor_starter {
      auto every = static_cast<uint64_t>(cfg.integer("every", 100, 1, 1'000'000'000));
      auto crashes = cfg.integer("crashes", 0, 0, 1'000'000'000);
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links,
                           std::make_unique<crash_stage>(every, crashes_left(w, crashes)));
      };
    }));
}

} // namespace troupe::builtin_kinds
