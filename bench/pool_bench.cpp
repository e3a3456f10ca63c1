// Workloads `pool` and `pool_skewed`: one producer (a source) submits jobs to
// a pool of 8 workers on a stream; a job is 16 rounds of splitmix64 (and in
// the skewed run, every 100th job also spins 20 us); a sink sums the results.
// The main line gives the job as a function (pool_config::work), as a Tokio
// user writes a closure; the actor workers of earlier runs are an extra field.

#include "bench.hpp"

#include <troupe/patterns/pool.hpp>

#include <caf/all.hpp>

namespace troupe::bench {

namespace {

constexpr uint32_t workers = 8;

caf::behavior job_worker(caf::event_based_actor*, bool skewed) {
  return {[skewed](uint64_t j) { return pool_job(j, skewed); }};
}

enum class workers_as { function, actor };

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
                workers_as kind, dispatch_policy policy, uint32_t prefetch = 1) {
  auto n = opts.scaled(4'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<summing_sink>(self));
  pool_config cfg;
  cfg.workers = workers;
  cfg.policy = policy;
  cfg.prefetch = prefetch;
  if (kind == workers_as::function)
    cfg.work = [skewed](item& job) -> caf::expected<item> {
      return make_item(pool_job(job.get_as<uint64_t>(0), skewed));
    };
  else
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
    record_done(r, n, count, sum, *first, end);
  });
  r.add("policy", to_string(policy));
  if (skewed)
    r.add("makespan_s", r.seconds);
  return r;
}

} // namespace

void pool_jobs(const options& opts, std::vector<result>& out) {
  auto rr = run_pool(opts, "pool", false, workers_as::function,
                     dispatch_policy::round_robin);
  add_side_run(rr, run_pool(opts, "pool", false, workers_as::actor,
                             dispatch_policy::round_robin), "actor_workers");
  out.push_back(std::move(rr));
  // With batches, round robin spreads slow jobs as evenly as pull does; the
  // actor workers, one job per message, pull.
  auto skewed = run_pool(opts, "pool_skewed", true, workers_as::function,
                         dispatch_policy::round_robin);
  add_side_run(skewed, run_pool(opts, "pool_skewed", true, workers_as::actor,
                                 dispatch_policy::pull), "actor_workers");
  out.push_back(std::move(skewed));
}

} // namespace troupe::bench
