// Workloads `pool` and `pool_skewed`: one producer (a source) submits jobs to
// a pool of 8 workers on a stream; a job is 16 rounds of splitmix64 (and in
// the skewed run, every 100th job also spins 20 us); a sink sums the results.

#include "bench.hpp"

#include <troupe/patterns/pool.hpp>

#include <caf/all.hpp>

namespace troupe::bench {

namespace {

using done_atom = caf::atom_constant<caf::atom("benchdone")>;

constexpr uint32_t workers = 8;

caf::behavior job_worker(caf::event_based_actor*, bool skewed) {
  return {[skewed](uint64_t j) { return pool_job(j, skewed); }};
}

class summing_sink final : public stage_logic {
public:
  explicit summing_sink(caf::actor driver) : driver_(std::move(driver)) {
  }
  void on_item(item& x, emitter&) override {
    ++count_;
    sum_ += x.get_as<uint64_t>(0);
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, count_, sum_, now_ns());
  }

private:
  caf::actor driver_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

result run_pool(const options& opts, const std::string& name, bool skewed,
                dispatch_policy policy) {
  auto n = opts.scaled(4'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<summing_sink>(self));
  pool_config cfg;
  cfg.workers = workers;
  cfg.policy = policy;
  cfg.worker = [skewed](const spawn_context& ctx) {
    return ctx.system().spawn(job_worker, skewed);
  };
  stage_config to_sink;
  to_sink.next = {sink};
  auto pool = spawn_pool(sys, cfg, to_sink);
  stage_config to_pool;
  to_pool.next = {pool};
  auto first = std::make_shared<int64_t>(0);
  spawn_source(sys, to_pool, count_to(n, first));
  result r;
  r.workload = name;
  self->receive([&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
    r.items = count;
    r.checksum = sum;
    r.lost = n - count;
    r.seconds = static_cast<double>(end - *first) / 1e9;
  });
  r.add("policy", to_string(policy));
  if (skewed)
    r.add("makespan_s", r.seconds);
  return r;
}

} // namespace

void pool_jobs(const options& opts, std::vector<result>& out) {
  out.push_back(run_pool(opts, "pool", false, dispatch_policy::round_robin));
  // Skewed costs are what pull dispatch is for.
  out.push_back(run_pool(opts, "pool_skewed", true, dispatch_policy::pull));
}

} // namespace troupe::bench
