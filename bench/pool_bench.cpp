// Workloads `pool` and `pool_skewed`: one producer (a source) submits jobs to
// a pool of 8 workers on a stream; a job is 16 rounds of splitmix64 (and in
// the skewed run, every 100th job also spins 20 us); a sink sums the results.

#include "bench.hpp"

#include <troupe/patterns/pool.hpp>

#include <caf/all.hpp>

namespace troupe::bench {

namespace {

constexpr uint32_t workers = 8;

caf::behavior job_worker(caf::event_based_actor*, bool skewed) {
  return {[skewed](uint64_t j) { return pool_job(j, skewed); }};
}

// A worker for pool_config::max_batch > 1: one result per job, in order.
caf::behavior batch_worker(caf::event_based_actor*, bool skewed) {
  return {[skewed](batch& jobs) {
    for (auto& job : jobs.items)
      job = make_item(pool_job(job.get_as<uint64_t>(0), skewed));
    return std::move(jobs);
  }};
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
                dispatch_policy policy, uint32_t max_batch = 1,
                uint32_t prefetch = 1) {
  auto n = opts.scaled(4'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<summing_sink>(self));
  pool_config cfg;
  cfg.workers = workers;
  cfg.policy = policy;
  cfg.max_batch = max_batch;
  cfg.prefetch = prefetch;
  cfg.worker = [skewed, max_batch](const spawn_context& ctx) {
    return max_batch > 1 ? ctx.system().spawn(batch_worker, skewed)
                         : ctx.system().spawn(job_worker, skewed);
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
    record_done(r, n, count, sum, *first, end);
  });
  r.add("policy", to_string(policy));
  if (skewed)
    r.add("makespan_s", r.seconds);
  return r;
}

// The main line is the pattern as configured by default (one job per
// message, pull with prefetch 1); the tuned run does the same jobs with the
// settings a user would pick for jobs this cheap, and its rate goes in
// `tuned_items_per_s` (its lost items, and a checksum that differs, count
// in `lost`).
void add_tuned(result& main, const result& tuned, const std::string& settings) {
  bool same = tuned.checksum == main.checksum;
  main.add("tuned", settings);
  main.add("tuned_items_per_s", static_cast<double>(tuned.items) / tuned.seconds);
  main.add("tuned_checksum_ok", std::string{same ? "yes" : "no"});
  main.lost += tuned.lost + (same ? 0 : 1);
}

} // namespace

void pool_jobs(const options& opts, std::vector<result>& out) {
  auto rr = run_pool(opts, "pool", false, dispatch_policy::round_robin);
  add_tuned(rr, run_pool(opts, "pool", false, dispatch_policy::round_robin, 64),
            "max_batch=64");
  out.push_back(std::move(rr));
  // Skewed costs are what pull dispatch is for.
  auto pull = run_pool(opts, "pool_skewed", true, dispatch_policy::pull);
  add_tuned(pull, run_pool(opts, "pool_skewed", true, dispatch_policy::pull, 16, 16),
            "prefetch=16,max_batch=16");
  out.push_back(std::move(pull));
}

} // namespace troupe::bench
