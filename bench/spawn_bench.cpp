// Workload `spawn`: 100,000 idle troupe stages (unsupervised, as spawn_stage
// gives them), each told its id; `spawn_per_s` counts until every one has
// started (its on_start ran). Then each gets a cancel and, as it stops, adds
// its id to the checksum. Memory is measured as the Tokio reference does:
// (VmHWM - VmRSS before) / N, after malloc_trim(0) and resetting VmHWM.

#include "bench.hpp"

#include <caf/all.hpp>

#include <malloc.h>

#include <atomic>
#include <memory>
#include <string>

namespace troupe::bench {

namespace {

using all_started_atom = caf::atom_constant<caf::atom("allstart")>;
using all_stopped_atom = caf::atom_constant<caf::atom("allstop")>;

struct tally {
  uint64_t n = 0;
  caf::actor driver;
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> stopped{0};
  std::atomic<uint64_t> id_sum{0};
};

class idle_unit final : public stage_logic {
public:
  idle_unit(std::shared_ptr<tally> t, uint64_t id) : tally_(std::move(t)), id_(id) {
  }
  void on_start(stage_control&) override {
    if (tally_->started.fetch_add(1) + 1 == tally_->n)
      caf::anon_send(tally_->driver, all_started_atom::value);
  }
  void on_item(item&, emitter&) override {
    // idle: no input
  }
  void on_stop(const caf::error&) override {
    tally_->id_sum.fetch_add(id_);
    if (tally_->stopped.fetch_add(1) + 1 == tally_->n)
      caf::anon_send(tally_->driver, all_stopped_atom::value);
  }

private:
  std::shared_ptr<tally> tally_;
  uint64_t id_;
};

} // namespace

void spawn_idle(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(100'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto t = std::make_shared<tally>();
  t->n = n;
  t->driver = caf::actor{self};
  std::vector<caf::actor> units;
  units.reserve(n);
  malloc_trim(0);
  auto hwm_reset = reset_peak_rss();
  auto base_kb = status_kb("VmRSS");
  auto t0 = bench_clock::now();
  stage_config cfg;
  cfg.kind = "idle";
  for (uint64_t id = 0; id < n; ++id)
    units.push_back(spawn_stage(sys, cfg, std::make_unique<idle_unit>(t, id)));
  // Bounds, not expectations: a unit that never starts or stops must show
  // in the result (lost) instead of hanging the run.
  const auto patience = std::chrono::minutes(2);
  self->receive([](all_started_atom) {},
                caf::after(patience) >> [&] {
                  progress("spawn: only " + std::to_string(t->started.load()) + " of "
                           + std::to_string(n) + " units started");
                });
  auto t_spawned = bench_clock::now();
  auto rss_now_kb = status_kb("VmRSS");
  for (auto& u : units)
    caf::anon_send(u, cancel_atom::value);
  units.clear();
  self->receive([](all_stopped_atom) {},
                caf::after(patience) >> [&] {
                  progress("spawn: only " + std::to_string(t->stopped.load()) + " of "
                           + std::to_string(n) + " units stopped");
                });
  auto t_end = bench_clock::now();
  auto peak_kb = hwm_reset ? status_kb("VmHWM") : rss_now_kb;
  auto grown = peak_kb > base_kb ? peak_kb - base_kb : 0;
  result r;
  r.workload = "spawn";
  r.items = n;
  r.seconds = seconds_between(t0, t_end);
  r.checksum = t->id_sum.load();
  r.lost = n - t->stopped.load();
  r.add("spawn_per_s", static_cast<double>(n) / seconds_between(t0, t_spawned));
  r.add("rss_kb_per_actor", static_cast<double>(grown) / static_cast<double>(n));
  out.push_back(std::move(r));
}

} // namespace troupe::bench
