// Workload `shutdown`: 10,000 units under one supervisor, each a troupe stage
// handling a stream of messages (u * 100 + j, j < 100) sent to its stable
// address; once all 1,000,000 are sent, one graceful shutdown of the
// supervisor (drain_atom). The drain reaches each unit behind the messages
// already in its mailbox, so it handles them all before it stops; the
// supervisor's report says how many each handled and their sum.

#include "bench.hpp"

#include <troupe/supervision/supervisor.hpp>

#include <caf/all.hpp>

#include <string>

namespace troupe::bench {

namespace {

constexpr uint64_t messages_per_unit = 100;

class unit_logic final : public stage_logic {
public:
  void on_item(item&, emitter&) override {
    // No stream input: the unit's messages are its requests.
  }
  caf::result<caf::message> on_request(caf::message& x) override {
    if (!x.match_elements<uint64_t>())
      return stage_logic::on_request(x);
    ++handled_;
    sum_ += x.get_as<uint64_t>(0);
    return caf::message{};
  }
  void describe(actor_report& r) const override {
    r.stats["handled"] = static_cast<int64_t>(handled_);
    r.stats["sum"] = static_cast<int64_t>(sum_);
  }

private:
  uint64_t handled_ = 0;
  uint64_t sum_ = 0;
};

} // namespace

void shutdown_units(const options& opts, std::vector<result>& out) {
  uint64_t units = opts.quick ? 500 : 10'000;
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  supervisor_spec spec;
  spec.name = "units";
  // The units are independent of each other: stopped all at once, as Tokio
  // cancels all its tasks, rather than one round trip after another.
  spec.stop_order = stop_order::concurrent;
  for (uint64_t u = 0; u < units; ++u) {
    child_spec c;
    c.name = "unit-" + std::to_string(u);
    c.start = [](const spawn_context& ctx) {
      stage_config cfg;
      cfg.kind = "unit";
      return spawn_stage(ctx, cfg, std::make_unique<unit_logic>());
    };
    spec.children.push_back(std::move(c));
  }
  auto sup = spawn_supervisor(sys, spec);
  // Stable addresses, asked for all at once: answers come back in order.
  std::vector<caf::actor> addresses;
  for (uint64_t u = 0; u < units; ++u)
    self->send(sup, caf::get_atom::value, "unit-" + std::to_string(u));
  for (uint64_t u = 0; u < units; ++u)
    self->receive([&](caf::actor& a) { addresses.push_back(std::move(a)); });
  progress("shutdown: " + std::to_string(units) + " units started");
  auto t0 = bench_clock::now();
  for (uint64_t u = 0; u < units; ++u)
    for (uint64_t j = 0; j < messages_per_unit; ++j)
      caf::anon_send(addresses[u], u * messages_per_unit + j);
  auto t_req = bench_clock::now();
  actor_report report;
  self->request(sup, std::chrono::minutes(10), drain_atom::value,
                caf::timespan{std::chrono::minutes(5)})
    .receive([&](actor_report& r) { report = std::move(r); },
             [&](caf::error& e) {
               throw std::runtime_error("shutdown failed: " + sys.actors().render(e));
             });
  auto t_end = bench_clock::now();
  uint64_t drained = 0;
  uint64_t sum = 0;
  uint64_t not_drained = 0;
  for (auto& c : report.children) {
    drained += static_cast<uint64_t>(c.stats["handled"]);
    sum += static_cast<uint64_t>(c.stats["sum"]);
    if (c.stopped != stop_reason::drained)
      ++not_drained;
  }
  if (not_drained > 0)
    progress("shutdown: " + std::to_string(not_drained) + " units did not drain");
  auto total = units * messages_per_unit;
  result r;
  r.workload = "shutdown";
  r.items = total;
  r.seconds = seconds_between(t0, t_end);
  r.checksum = sum;
  r.lost = total - drained;
  r.add("shutdown_ms", seconds_between(t_req, t_end) * 1e3);
  r.add("drained", drained);
  r.add("not_drained", not_drained);
  out.push_back(std::move(r));
}

} // namespace troupe::bench
