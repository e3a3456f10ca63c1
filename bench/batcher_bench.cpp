// Workloads `batcher` and `batcher_latency`: a source, the batcher (size 256,
// timeout 5 ms, timer from each batch's first item), and a sink of batches.

#include "bench.hpp"

#include <troupe/patterns/batcher.hpp>

#include <caf/all.hpp>

#include <algorithm>

namespace troupe::bench {

namespace {

constexpr size_t batch_size = 256;
constexpr auto batch_timeout = std::chrono::milliseconds(5);

batcher_config spec_batcher() {
  batcher_config cfg;
  cfg.size = batch_size;
  cfg.timeout = batch_timeout;
  return cfg;
}

// Sums the items of each batch; at the end tells the driver
// (done_atom, items, sum, batches, full_batches, end_ns).
class summing_batch_sink final : public stage_logic {
public:
  explicit summing_batch_sink(caf::actor driver) : driver_(std::move(driver)) {
  }
  void on_item(item& x, emitter&) override {
    auto& b = x.get_as<batch>(0);
    for (auto& y : b.items)
      sum_ += y.get_as<uint64_t>(0);
    items_ += b.items.size();
    ++batches_;
    if (b.items.size() == batch_size)
      ++full_;
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, items_, sum_, batches_, full_, now_ns());
  }

private:
  caf::actor driver_;
  uint64_t items_ = 0;
  uint64_t sum_ = 0;
  uint64_t batches_ = 0;
  uint64_t full_ = 0;
};

// Emits (seq, submit_ns) once per millisecond, paced from its start so that
// timer lateness does not add up.
class paced_source final : public source_logic {
public:
  explicit paced_source(uint64_t n) : n_(n) {
  }
  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    start_ = bench_clock::now();
    ctl.schedule(caf::timespan{0}, 0);
  }
  void on_timer(uint64_t, emitter& out) override {
    if (next_ >= n_)
      return;
    if (ctl_->room() == 0) {
      // The downstream is behind: try again shortly, never beyond credit.
      ctl_->schedule(std::chrono::microseconds(100), next_);
      return;
    }
    out.push(caf::make_message(next_, now_ns()));
    ++next_;
    auto due = start_ + std::chrono::milliseconds(next_);
    auto delay = std::max(bench_clock::duration{0}, due - bench_clock::now());
    ctl_->schedule(std::chrono::duration_cast<caf::timespan>(delay), next_);
  }
  bool produce(emitter&, size_t) override {
    return next_ < n_;
  }

private:
  uint64_t n_;
  uint64_t next_ = 0;
  stage_control* ctl_ = nullptr;
  bench_clock::time_point start_;
};

// Records, per item, the time from its submission to its batch being
// processed here; at the end sends the sorted latencies and the batch count.
class latency_sink final : public stage_logic {
public:
  explicit latency_sink(caf::actor driver) : driver_(std::move(driver)) {
  }
  void on_item(item& x, emitter&) override {
    auto now = now_ns();
    ++batches_;
    for (auto& y : x.get_as<batch>(0).items) {
      sum_ += y.get_as<uint64_t>(0);
      latencies_.push_back(now - y.get_as<int64_t>(1));
    }
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, latencies_, sum_, batches_);
  }

private:
  caf::actor driver_;
  std::vector<int64_t> latencies_;
  uint64_t sum_ = 0;
  uint64_t batches_ = 0;
};

} // namespace

void batcher_throughput(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(10'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto first = std::make_shared<int64_t>(0);
  auto sink = spawn_stage(sys, stage_config{},
                          std::make_unique<summing_batch_sink>(self));
  stage_config to_sink;
  to_sink.next = {sink};
  auto b = spawn_batcher(sys, spec_batcher(), to_sink);
  stage_config to_batcher;
  to_batcher.next = {b};
  spawn_source(sys, to_batcher, count_to(n, first));
  result r;
  r.workload = "batcher";
  self->receive([&](done_atom, uint64_t items, uint64_t sum, uint64_t batches,
                    uint64_t full, int64_t end) {
    r.items = items;
    r.checksum = sum;
    r.lost = n - items;
    r.seconds = static_cast<double>(end - *first) / 1e9;
    r.add("batches", batches);
    r.add("full_batches", full);
  });
  out.push_back(std::move(r));
}

void batcher_latency(const options&, std::vector<result>& out) {
  // A fixed 1,000 items at 1 per ms: --quick does not shorten it.
  const uint64_t n = 1000;
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<latency_sink>(self));
  stage_config to_sink;
  to_sink.next = {sink};
  auto b = spawn_batcher(sys, spec_batcher(), to_sink);
  stage_config to_batcher;
  to_batcher.next = {b};
  auto start = bench_clock::now();
  spawn_source(sys, to_batcher, std::make_unique<paced_source>(n));
  result r;
  r.workload = "batcher_latency";
  self->receive([&](done_atom, std::vector<int64_t>& latencies, uint64_t sum,
                    uint64_t batches) {
    r.seconds = seconds_between(start, bench_clock::now());
    r.items = latencies.size();
    r.checksum = sum;
    r.lost = n - latencies.size();
    std::sort(latencies.begin(), latencies.end());
    r.add("p50_ms", percentile_ms(latencies, 50));
    r.add("p99_ms", percentile_ms(latencies, 99));
    r.add("max_ms", latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6);
    r.add("batches", batches);
  });
  out.push_back(std::move(r));
}

} // namespace troupe::bench
