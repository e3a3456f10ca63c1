// Baseline `spawn`: 100,000 idle event-based actors, each told its id;
// `spawn_per_s` counts until every one has started (its behavior function
// ran). Then each gets a (stop_atom) and, as it stops, adds its id to the
// checksum. Memory as in the troupe workload: (VmHWM - VmRSS before) / N,
// after malloc_trim(0) and resetting VmHWM.

#include "baseline.hpp"

#include <malloc.h>

#include <atomic>
#include <vector>

namespace troupe::bench::baseline {

namespace {

caf::behavior idle(caf::event_based_actor* self, std::shared_ptr<spawn_tally> t, uint64_t id) {
  if (t->started.fetch_add(1) + 1 == t->n)
    caf::anon_send(t->driver, all_started_atom::value);
  return {
    [=](stop_atom) {
      t->id_sum.fetch_add(id);
      if (t->stopped.fetch_add(1) + 1 == t->n)
        caf::anon_send(t->driver, all_stopped_atom::value);
      self->quit();
    },
  };
}

} // namespace

void spawn_idle(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(100'000);
  plain_system sys;
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
  for (uint64_t id = 0; id < n; ++id)
    units.push_back(sys.actors().spawn(idle, t, id));
  // Bounds, not expectations: a unit that never starts or stops shows in the
  // result (lost) instead of hanging the run.
  const auto patience = std::chrono::minutes(2);
  self->receive([](all_started_atom) {},
                caf::after(patience) >> [&] {
                  progress("spawn (caf): only " + std::to_string(t->started.load())
                           + " of " + std::to_string(n) + " actors started");
                });
  auto t_spawned = bench_clock::now();
  auto rss_now_kb = status_kb("VmRSS");
  for (auto& u : units)
    caf::anon_send(u, stop_atom::value);
  units.clear();
  self->receive([](all_stopped_atom) {},
                caf::after(patience) >> [&] {
                  progress("spawn (caf): only " + std::to_string(t->stopped.load())
                           + " of " + std::to_string(n) + " actors stopped");
                });
  auto t_end = bench_clock::now();
  auto peak_kb = hwm_reset ? status_kb("VmHWM") : rss_now_kb;
  auto grown = peak_kb > base_kb ? peak_kb - base_kb : 0;
  auto r = caf_result("spawn");
  r.items = n;
  r.seconds = seconds_between(t0, t_end);
  r.checksum = t->id_sum.load();
  r.lost = count_lost(n, t->stopped.load());
  r.add("spawn_per_s", static_cast<double>(n) / seconds_between(t0, t_spawned));
  r.add("rss_kb_per_actor", static_cast<double>(grown) / static_cast<double>(n));
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
