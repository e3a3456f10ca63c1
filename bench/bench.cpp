#include "bench.hpp"

#include <cmath>
#include <cstdio>
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
    {"pipeline", pipeline_items},
    {"fanout", fanout_items},
    {"pool", pool_jobs},
    {"batcher", batcher_throughput},
    {"batcher_latency", batcher_latency},
    {"limiter", limiter_accuracy},
    {"breaker", breaker_calls},
    {"breaker_trip", breaker_trip},
    {"state", state_ops},
    {"shutdown", shutdown_units},
    {"spawn", spawn_idle},
  };
}

system_settings bench_settings() {
  return system_settings{};
}

void progress(const std::string& line) {
  std::cerr << "troupe-bench: " << line << std::endl;
}

} // namespace troupe::bench

namespace troupe::bench {

produce_function count_to(uint64_t n, std::shared_ptr<int64_t> first_ns) {
  auto next = std::make_shared<uint64_t>(0);
  return [n, next, first_ns](emitter& out, size_t max) {
    if (*next == 0 && n > 0)
      *first_ns = now_ns();
    for (size_t k = 0; k < max && *next < n; ++k)
      out.push(caf::make_message((*next)++));
    return *next < n;
  };
}

} // namespace troupe::bench
