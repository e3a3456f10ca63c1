// Workload `limiter`: a greedy source -> the rate limiter (delay mode, 20,000
// per second, burst 100, bucket starting full) -> a sink, for 3 s. Items are
// stamped as the limiter lets them through (its on_pass hook), as the Tokio
// reference stamps them after acquiring a permit: the sink's own scheduling
// would blur the 10 ms windows.

#include "bench.hpp"

#include <troupe/patterns/limiter.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <cmath>

namespace troupe::bench {

namespace {

using done_atom = caf::atom_constant<caf::atom("benchdone")>;

// Keeps the items it gets, in order; at the end sends them to the driver.
class collecting_sink final : public stage_logic {
public:
  explicit collecting_sink(caf::actor driver) : driver_(std::move(driver)) {
    values_.reserve(80'000);
  }
  void on_item(item& x, emitter&) override {
    values_.push_back(x.get_as<uint64_t>(0));
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, values_);
  }

private:
  caf::actor driver_;
  std::vector<uint64_t> values_;
};

} // namespace

void limiter_accuracy(const options&, std::vector<result>& out) {
  // The run lasts 3 s also with --quick: the rate is what is measured.
  constexpr double rate = 20'000;
  constexpr double burst = 100;
  constexpr auto window = std::chrono::seconds(3);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<collecting_sink>(self));
  // Written by the limiter only; read once the sink ended, which happens
  // after the limiter ended (messages order the two).
  auto pass_stamps = std::make_shared<std::vector<int64_t>>();
  pass_stamps->reserve(80'000);
  limiter_config cfg;
  cfg.rate = rate;
  cfg.burst = burst;
  cfg.on_pass = [pass_stamps](const item&) { pass_stamps->push_back(now_ns()); };
  stage_config to_sink;
  to_sink.next = {sink};
  auto l = spawn_limiter(sys, cfg, to_sink);
  stage_config to_limiter;
  to_limiter.next = {l};
  auto first = std::make_shared<int64_t>(0);
  auto source = spawn_source(sys, to_limiter, count_to(UINT64_MAX, first));
  // The producer stays greedy for the whole window, then drains.
  self->receive(caf::after(window) >> [] {});
  self->send(source, drain_atom::value);
  result r;
  r.workload = "limiter";
  self->receive([&](done_atom, std::vector<uint64_t>& values) {
    auto& stamps = *pass_stamps;
    if (stamps.empty() || stamps.size() != values.size()) {
      r.lost = stamps.size() - std::min(stamps.size(), values.size());
      return;
    }
    // Count what passed within 3 s of the first item let through.
    auto end = stamps.front() + std::chrono::nanoseconds(window).count();
    auto in_window = static_cast<size_t>(
      std::lower_bound(stamps.begin(), stamps.end(), end) - stamps.begin());
    uint64_t sum = 0;
    for (size_t i = 0; i < in_window; ++i)
      sum += values[i];
    size_t most = 0;
    for (size_t lo = 0, hi = 0; hi < in_window; ++hi) {
      while (stamps[hi] - stamps[lo] >= 10'000'000)
        ++lo;
      most = std::max(most, hi - lo + 1);
    }
    auto seconds = std::chrono::duration<double>(window).count();
    auto achieved = static_cast<double>(in_window) / seconds;
    r.items = in_window;
    r.seconds = seconds;
    r.checksum = sum;
    r.lost = 0;
    r.add("achieved_per_s", achieved);
    r.add("rate_error", std::abs(achieved / rate - 1));
    r.add("max_in_10ms", static_cast<uint64_t>(most));
    r.add("allowed_in_10ms", static_cast<uint64_t>(burst + rate * 0.01));
  });
  out.push_back(std::move(r));
}

} // namespace troupe::bench
