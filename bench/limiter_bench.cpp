// Workload `limiter`: a greedy source -> the rate limiter (delay mode, 20,000
// per second, burst 100, bucket starting full) -> a sink, for 3 s. Items are
// stamped as the limiter lets them through (its on_pass hook), as the Tokio
// reference stamps them after acquiring a permit: the sink's own scheduling
// would blur the 10 ms windows.

#include "bench.hpp"

#include <troupe/patterns/limiter.hpp>

#include <caf/all.hpp>

namespace troupe::bench {

namespace {

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
    limiter_figures(r, *pass_stamps, values, rate, burst, window);
  });
  out.push_back(std::move(r));
}

} // namespace troupe::bench
