// Services for pools, fan-outs, breakers, retries and timeouts to stand in
// front of: hash_service, flaky_service, sleep_service. Each answers a
// request of any item with the item itself.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"

#include <caf/response_promise.hpp>

#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

namespace troupe::builtin_kinds {

namespace {

/// Hashes the request `rounds` times (CPU work in the handler), answers it.
/// With skew, every `skew_every`-th request costs `skew_factor` times more.
class hash_service final : public service_logic {
public:
  hash_service(uint64_t rounds, uint64_t skew_every, uint64_t skew_factor)
    : rounds_(rounds), skew_every_(skew_every), skew_factor_(skew_factor) {
  }

protected:
  caf::result<caf::message> answer(caf::message& x) override {
    auto rounds = rounds_;
    if (skew_every_ != 0 && requests() % skew_every_ == 0) {
      rounds *= skew_factor_;
      ++skewed_;
    }
    digest_ ^= hash_item(x, rounds);
    return x;
  }

  void describe(actor_report& r) const override {
    service_logic::describe(r);
    r.stats["skewed"] = static_cast<int64_t>(skewed_);
    r.stats["digest"] = static_cast<int64_t>(digest_);
  }

private:
  uint64_t rounds_;
  uint64_t skew_every_;
  uint64_t skew_factor_;
  uint64_t skewed_ = 0;
  uint64_t digest_ = 0;
};

struct flaky_settings {
  double probability = 0.1;
  uint64_t seed = 1;
  /// The first this many requests fail, whatever the probability.
  uint64_t fail_first = 0;
  caf::timespan latency{0};
  caf::error failure;
  /// Every this many requests of an incarnation it crashes (0: never).
  uint64_t crash_every = 0;
};

/// Fails a share of its requests with a configured error, after an optional
/// latency (answered from a timer), and may crash every N requests.
class flaky_service final : public service_logic {
public:
  explicit flaky_service(flaky_settings cfg)
    : cfg_(std::move(cfg)),
      rng_(cfg_.seed != 0 ? cfg_.seed : std::random_device{}()),
      fails_(cfg_.probability) {
  }

  bool busy() const override {
    return !delayed_.empty();
  }

  void on_timer(uint64_t token, emitter&) override {
    auto i = delayed_.find(token);
    if (i == delayed_.end())
      return;
    auto& d = i->second;
    if (d.fail)
      failed(d.rp, cfg_.failure);
    else
      answered(d.rp, std::move(d.request));
    delayed_.erase(i);
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& kv : delayed_)
      kv.second.rp.deliver(answer);
    delayed_.clear();
  }

  void describe(actor_report& r) const override {
    service_logic::describe(r);
    r.errors += crashed_;
    r.stats["delayed"] = static_cast<int64_t>(delayed_.size());
    r.stats["crashed"] = static_cast<int64_t>(crashed_);
  }

protected:
  caf::result<caf::message> answer(caf::message& x) override {
    ++seen_;
    if (cfg_.crash_every != 0 && seen_ % cfg_.crash_every == 0) {
      // Dies without answering, as a crashed process would: a pool gives the
      // job to another worker, a caller waiting on its own times out.
      ++crashed_;
      auto rp = control().self()->make_response_promise();
      control().self()->quit(caf::make_error(
        caf::sec::runtime_error,
        "flaky_service: crash at request " + std::to_string(seen_)
          + " of this incarnation (crash_every = " + std::to_string(cfg_.crash_every)
          + ")"));
      return rp;
    }
    bool fail = requests() <= cfg_.fail_first || fails_(rng_);
    if (cfg_.latency == caf::timespan{0}) {
      if (fail)
        return cfg_.failure;
      return x;
    }
    auto token = next_token_++;
    auto& d = delayed_[token];
    d.rp = control().self()->make_response_promise();
    d.request = x;
    d.fail = fail;
    control().schedule(cfg_.latency, token);
    return d.rp;
  }

private:
  struct delayed_answer {
    caf::response_promise rp;
    caf::message request;
    bool fail = false;
  };

  flaky_settings cfg_;
  std::mt19937_64 rng_;
  std::bernoulli_distribution fails_;
  uint64_t seen_ = 0;
  uint64_t crashed_ = 0;
  uint64_t next_token_ = 0;
  std::map<uint64_t, delayed_answer> delayed_;
};

/// Answers each request after `delay`, from a timer: requests overlap, and no
/// thread waits.
class sleep_service final : public service_logic {
public:
  explicit sleep_service(caf::timespan delay) : delay_(delay) {
  }

  bool busy() const override {
    return !waiting_.empty();
  }

  void on_timer(uint64_t token, emitter&) override {
    auto i = waiting_.find(token);
    if (i == waiting_.end())
      return;
    answered(i->second.first, std::move(i->second.second));
    waiting_.erase(i);
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down);
    for (auto& kv : waiting_)
      kv.second.first.deliver(answer);
    waiting_.clear();
  }

protected:
  caf::result<caf::message> answer(caf::message& x) override {
    auto token = next_token_++;
    auto& w = waiting_[token];
    w.first = control().self()->make_response_promise();
    w.second = x;
    control().schedule(delay_, token);
    return w.first;
  }

private:
  caf::timespan delay_;
  uint64_t next_token_ = 0;
  std::map<uint64_t, std::pair<caf::response_promise, caf::message>> waiting_;
};

caf::error flaky_error(const std::string& name, const std::string& message) {
  if (name == "call_timeout")
    return make_error(errc::call_timeout, message);
  if (name == "rate_limited")
    return make_error(errc::rate_limited, message);
  if (name == "pool_full")
    return make_error(errc::pool_full, message);
  if (name == "child_unavailable")
    return make_error(errc::child_unavailable, message);
  return caf::make_error(caf::sec::runtime_error, message);
}

} // namespace

void add_service_kinds(kind_registry& registry) {
  registry.add(service_kind(
    "hash_service", "answers each request with itself after hashing it `rounds` times",
    [](kind_config& cfg) -> actor_starter {
      auto rounds = static_cast<uint64_t>(cfg.integer("rounds", 100, 0, 1'000'000'000));
      auto skew_every = static_cast<uint64_t>(cfg.integer("skew_every", 0, 0, 1'000'000'000));
      auto skew_factor = static_cast<uint64_t>(cfg.integer("skew_factor", 10, 1, 1'000'000));
      if (cfg.has("skew_factor") && skew_every == 0)
        cfg.fail("skew_factor", "'skew_factor' needs 'skew_every' (which requests cost more)");
      // A skewed request is hashed in the handler, on a scheduler thread:
      // as many rounds as any request may have, not 1e15.
      constexpr uint64_t most_rounds = 1'000'000'000;
      if (skew_every != 0 && rounds > most_rounds / skew_factor)
        cfg.fail(cfg.has("skew_factor") ? "skew_factor" : "rounds",
                 "'rounds' (" + std::to_string(rounds) + ") times 'skew_factor' ("
                   + std::to_string(skew_factor) + ") is more than "
                   + std::to_string(most_rounds)
                   + " rounds for a skewed request; lower one of them");
      return [=](const spawn_context& ctx, const wiring&) {
        auto logic = std::make_unique<hash_service>(rounds, skew_every, skew_factor);
        return spawn_stage(ctx, service_links("hash_service"), std::move(logic));
      };
    }));
  registry.add(service_kind(
    "flaky_service", "answers each request with itself, or fails it with a probability",
    [](kind_config& cfg) -> actor_starter {
      flaky_settings s;
      s.probability = cfg.number("probability", s.probability, 0, 1);
      s.seed = static_cast<uint64_t>(
        cfg.integer("seed", 1, 0, std::numeric_limits<int64_t>::max()));
      s.fail_first = static_cast<uint64_t>(
        cfg.integer("fail_first", 0, 0, std::numeric_limits<int64_t>::max()));
      s.latency = cfg.duration("latency", caf::timespan{0}, caf::timespan{0},
                               std::chrono::hours(1));
      auto error = cfg.choice("error", "call_timeout",
                              {"call_timeout", "rate_limited", "pool_full",
                               "child_unavailable", "runtime_error"});
      auto message = cfg.string("message", "flaky_service failed");
      s.failure = flaky_error(error, message);
      s.crash_every = static_cast<uint64_t>(cfg.integer("crash_every", 0, 0, 1'000'000'000));
      return [=](const spawn_context& ctx, const wiring&) {
        return spawn_stage(ctx, service_links("flaky_service"),
                           std::make_unique<flaky_service>(s));
      };
    }));
  registry.add(service_kind(
    "sleep_service", "answers each request with itself after `delay`",
    [](kind_config& cfg) -> actor_starter {
      auto delay = cfg.duration("delay", std::chrono::milliseconds(10), caf::timespan{0},
                                std::chrono::hours(1));
      return [=](const spawn_context& ctx, const wiring&) {
        return spawn_stage(ctx, service_links("sleep_service"),
                           std::make_unique<sleep_service>(delay));
      };
    }));
}

} // namespace troupe::builtin_kinds
