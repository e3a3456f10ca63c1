#include "bench.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace troupe::bench {

void result::add(std::string key, double value) {
  std::ostringstream s;
  s.precision(6);
  s << std::fixed << (std::isfinite(value) ? value : 0.0);
  extra.emplace_back(std::move(key), s.str());
}

void result::add(std::string key, uint64_t value) {
  extra.emplace_back(std::move(key), std::to_string(value));
}

void result::add(std::string key, std::string value) {
  extra.emplace_back(std::move(key), "\"" + value + "\"");
}

std::string result::to_json() const {
  char sum[17];
  std::snprintf(sum, sizeof(sum), "%016llx", static_cast<unsigned long long>(checksum));
  std::ostringstream s;
  s.precision(6);
  s << std::fixed;
  s << "{\"impl\":\"" << impl << "\",\"workload\":\"" << workload
    << "\",\"items\":" << items << ",\"seconds\":" << seconds
    << ",\"items_per_s\":" << (seconds > 0 ? items / seconds : 0.0)
    << ",\"checksum\":\"" << sum << "\",\"lost\":" << lost;
  for (auto& [key, value] : extra)
    s << ",\"" << key << "\":" << value;
  s << "}";
  return s.str();
}

std::vector<workload> all_workloads() {
  return {
    {"pipeline", pipeline_items, baseline::pipeline_items},
    {"fanout", fanout_items, baseline::fanout_items},
    {"pool", pool_jobs, baseline::pool_jobs},
    {"batcher", batcher_throughput, baseline::batcher_throughput},
    {"batcher_latency", batcher_latency, baseline::batcher_latency},
    {"limiter", limiter_accuracy, baseline::limiter_accuracy},
    {"breaker", breaker_calls, baseline::breaker_calls},
    {"breaker_trip", breaker_trip, baseline::breaker_trip},
    {"state", state_ops, baseline::state_ops},
    {"shutdown", shutdown_units, baseline::shutdown_units},
    {"spawn", spawn_idle, baseline::spawn_idle},
    {"remote", remote_items, baseline::remote_items},
  };
}

system_settings bench_settings() {
  return system_settings{};
}

void progress(const std::string& line) {
  std::cerr << "troupe-bench: " << line << std::endl;
}

uint64_t pool_job(uint64_t j, bool skewed) {
  if (skewed && j % 100 == 0) {
    auto until = bench_clock::now() + std::chrono::microseconds(20);
    while (bench_clock::now() < until) {
      // spin: the job's cost
    }
  }
  return mix_rounds(j, 16);
}

void finish_breaker_trip(caf::scoped_actor& self,
                         const std::function<bool(uint64_t, uint64_t&)>& call,
                         const uint64_t& calls, uint64_t until_open, int64_t opened_at,
                         bench_clock::time_point start, result& r) {
  // One call per ms until one is let through (the half-open probe).
  uint64_t rejected = 0;
  uint64_t sum = 0;
  uint64_t value = 0;
  auto paced = bench_clock::now();
  int64_t admitted_at = 0;
  while (admitted_at == 0 && rejected < 10'000) {
    auto at = now_ns();
    if (call(0, value)) {
      admitted_at = at;
      sum += value;
    } else {
      ++rejected;
      paced += std::chrono::milliseconds(1);
      self->receive(caf::after(std::max(bench_clock::duration{0},
                                        paced - bench_clock::now())) >> [] {});
    }
  }
  // Closed again: 100 calls must pass.
  uint64_t passed = 0;
  for (uint64_t k = 1; k <= 100; ++k)
    if (call(k, value)) {
      ++passed;
      sum += value;
    }
  r.seconds = seconds_between(start, bench_clock::now());
  r.items = calls;
  r.checksum = sum;
  r.lost = 100 - passed;
  r.add("calls_until_open", until_open);
  r.add("rejected_while_open", rejected);
  r.add("ms_to_half_open", static_cast<double>(admitted_at - opened_at) / 1e6);
}

void limiter_figures(result& r, const std::vector<int64_t>& stamps,
                     const std::vector<uint64_t>& values, double rate, double burst,
                     std::chrono::seconds window) {
  if (stamps.empty() || stamps.size() != values.size()) {
    r.lost = stamps.size() - std::min(stamps.size(), values.size());
    return;
  }
  // Count what passed within `window` of the first item let through.
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
}

double percentile_ms(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

uint64_t status_kb(const std::string& key) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      std::istringstream fields{line.substr(key.size() + 1)};
      uint64_t kb = 0;
      fields >> kb;
      return kb;
    }
  }
  return 0;
}

bool reset_peak_rss() {
  std::ofstream out{"/proc/self/clear_refs"};
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

} // namespace troupe::bench

namespace troupe::bench {

produce_function count_to(uint64_t n, std::shared_ptr<int64_t> first_ns) {
  auto next = std::make_shared<uint64_t>(0);
  return [n, next, first_ns](emitter& out, size_t max) {
    if (*next == 0 && n > 0)
      *first_ns = now_ns();
    for (size_t k = 0; k < max && *next < n; ++k)
      out.push(make_item((*next)++));
    return *next < n;
  };
}

} // namespace troupe::bench
