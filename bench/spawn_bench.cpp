// Workload `spawn`: 100,000 idle troupe stages (unsupervised, as spawn_stage
// gives them), each told its id; `spawn_per_s` counts until every one has
// started (its on_start ran). Then each gets a cancel and, as it stops, adds
// its id to the checksum. Memory is measured as the Tokio reference does:
// (VmHWM - VmRSS before) / N, after malloc_trim(0) and resetting VmHWM.
// Then the same for N/10 idle stages under one supervisor (each with its
// stable address), in the `supervised_` fields: what supervision adds.

#include "bench.hpp"

#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <caf/all.hpp>

#include <malloc.h>

#include <atomic>
#include <memory>
#include <string>
#include <type_traits>

namespace troupe::bench {

namespace {

class idle_unit final : public stage_logic {
public:
  idle_unit(std::shared_ptr<spawn_tally> t, uint64_t id) : tally_(std::move(t)), id_(id) {
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
  std::shared_ptr<spawn_tally> tally_;
  uint64_t id_;
};

/// Waits for the tally's (all_started_atom) or (all_stopped_atom); a bound,
/// not an expectation: a unit that never starts or stops shows in the result
/// (lost) instead of hanging the run.
template <class Atom>
void await_all(caf::scoped_actor& self, const spawn_tally& t, const std::string& what) {
  self->receive([](Atom) {}, caf::after(std::chrono::minutes(2)) >> [&] {
    auto done = std::is_same<Atom, all_started_atom>::value ? t.started.load()
                                                             : t.stopped.load();
    progress("spawn: only " + std::to_string(done) + " of "
             + std::to_string(t.n) + " units " + what);
  });
}

/// `n` idle stages, unsupervised like the reference's tasks: the figures of
/// SPEC.md.
void spawn_unsupervised(uint64_t n, result& r) {
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto t = std::make_shared<spawn_tally>();
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
  await_all<all_started_atom>(self, *t, "started");
  auto t_spawned = bench_clock::now();
  auto rss_now_kb = status_kb("VmRSS");
  for (auto& u : units)
    caf::anon_send(u, cancel_atom::value);
  units.clear();
  await_all<all_stopped_atom>(self, *t, "stopped");
  auto t_end = bench_clock::now();
  auto peak_kb = hwm_reset ? status_kb("VmHWM") : rss_now_kb;
  auto grown = peak_kb > base_kb ? peak_kb - base_kb : 0;
  r.seconds = seconds_between(t0, t_end);
  r.checksum = t->id_sum.load();
  r.lost += n - t->stopped.load();
  r.add("spawn_per_s", static_cast<double>(n) / seconds_between(t0, t_spawned));
  r.add("rss_kb_per_actor", static_cast<double>(grown) / static_cast<double>(n));
}

/// `n` idle stages as the children of one supervisor: how fast they start,
/// the memory each takes with its relay and the supervisor's bookkeeping,
/// and the supervisor's graceful shutdown of them all. In a system of its
/// own, made once the first one is gone: the memory the first one's actors
/// freed is back with malloc, and trimmed, rather than freed while this
/// measures.
void spawn_supervised(uint64_t n, result& r) {
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto t = std::make_shared<spawn_tally>();
  t->n = n;
  t->driver = caf::actor{self};
  supervisor_spec spec;
  spec.name = "idle";
  spec.stop_order = stop_order::concurrent;
  spec.children.reserve(n);
  for (uint64_t id = 0; id < n; ++id) {
    child_spec c;
    c.name = "idle-" + std::to_string(id);
    c.start = [t, id](const spawn_context& ctx) {
      stage_config cfg;
      cfg.kind = "idle";
      return spawn_stage(ctx, cfg, std::make_unique<idle_unit>(t, id));
    };
    spec.children.push_back(std::move(c));
  }
  malloc_trim(0);
  auto hwm_reset = reset_peak_rss();
  auto base_kb = status_kb("VmRSS");
  auto t0 = bench_clock::now();
  auto sup = spawn_supervisor(sys, std::move(spec));
  await_all<all_started_atom>(self, *t, "started under the supervisor");
  auto t_started = bench_clock::now();
  auto rss_now_kb = status_kb("VmRSS");
  auto report = troupe::shutdown(sys.actors(), sup);
  auto t_end = bench_clock::now();
  if (!report)
    progress("spawn: the supervisor's shutdown failed: "
             + sys.actors().render(report.error()));
  auto peak_kb = hwm_reset ? status_kb("VmHWM") : rss_now_kb;
  auto grown = peak_kb > base_kb ? peak_kb - base_kb : 0;
  r.lost += n - t->stopped.load();
  r.add("supervised", n);
  r.add("supervised_spawn_per_s",
        static_cast<double>(n) / seconds_between(t0, t_started));
  r.add("supervised_rss_kb_per_actor",
        static_cast<double>(grown) / static_cast<double>(n));
  r.add("supervised_shutdown_ms", seconds_between(t_started, t_end) * 1e3);
}

} // namespace

void spawn_idle(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(100'000);
  result r;
  r.workload = "spawn";
  r.items = n;
  spawn_unsupervised(n, r);
  spawn_supervised(n / 10, r);
  out.push_back(std::move(r));
}

} // namespace troupe::bench
