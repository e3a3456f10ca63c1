// Baseline `shutdown`: 10,000 plain actors (--quick: 500, as the troupe
// workload), each sent 100 messages u * 100 + j; then one stop request to a
// coordinator actor that monitors them all and sends each an exit message.
// An exit message waits in the mailbox behind the messages sent before it,
// so each unit handles all of its own before it stops (its exit handler adds
// what it handled to a shared tally, then quits). Measured: the request to
// the coordinator's report after the last down_msg.

#include "baseline.hpp"

#include <atomic>
#include <vector>

namespace troupe::bench::baseline {

namespace {

constexpr uint64_t messages_per_unit = 100;

struct tally {
  std::atomic<uint64_t> handled{0};
  std::atomic<uint64_t> sum{0};
};

struct unit_state {
  uint64_t handled = 0;
  uint64_t sum = 0;
};

caf::behavior unit(caf::stateful_actor<unit_state>* self, std::shared_ptr<tally> t) {
  self->set_exit_handler([=](caf::exit_msg& m) {
    t->handled.fetch_add(self->state.handled, std::memory_order_relaxed);
    t->sum.fetch_add(self->state.sum, std::memory_order_relaxed);
    self->quit(m.reason);
  });
  return {
    [=](uint64_t x) {
      ++self->state.handled;
      self->state.sum += x;
    },
  };
}

struct coordinator_state {
  std::vector<caf::actor> units;
  size_t down = 0;
  caf::actor requester;
};

/// Monitors `units`; on (stop_atom) sends each an exit and, once all are
/// down, tells the sender (done_atom).
caf::behavior coordinator(caf::stateful_actor<coordinator_state>* self,
                          std::vector<caf::actor> units) {
  for (auto& u : units)
    self->monitor(u);
  self->state.units = std::move(units);
  self->set_down_handler([=](caf::down_msg&) {
    auto& st = self->state;
    if (++st.down == st.units.size()) {
      self->send(st.requester, done_atom::value);
      self->quit();
    }
  });
  return {
    [=](stop_atom) {
      auto& st = self->state;
      st.requester = caf::actor_cast<caf::actor>(self->current_sender());
      for (auto& u : st.units)
        self->send_exit(u, caf::exit_reason::user_shutdown);
    },
  };
}

} // namespace

void shutdown_units(const options& opts, std::vector<result>& out) {
  uint64_t units = opts.quick ? 500 : 10'000;
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto t = std::make_shared<tally>();
  std::vector<caf::actor> addresses;
  addresses.reserve(units);
  for (uint64_t u = 0; u < units; ++u)
    addresses.push_back(sys.actors().spawn(unit, t));
  auto coord = sys.actors().spawn(coordinator, addresses);
  progress("shutdown (caf): " + std::to_string(units) + " units spawned");
  auto t0 = bench_clock::now();
  for (uint64_t u = 0; u < units; ++u)
    for (uint64_t j = 0; j < messages_per_unit; ++j)
      caf::anon_send(addresses[u], u * messages_per_unit + j);
  addresses.clear();
  auto t_req = bench_clock::now();
  self->send(coord, stop_atom::value);
  self->receive([](done_atom) {},
                caf::after(bench_patience) >> [&] {
                  give_up({coord}, "shutdown (caf) did not finish in time");
                });
  auto t_end = bench_clock::now();
  auto total = units * messages_per_unit;
  auto drained = t->handled.load();
  auto r = caf_result("shutdown");
  r.items = total;
  r.seconds = seconds_between(t0, t_end);
  r.checksum = t->sum.load();
  r.lost = count_lost(total, drained);
  r.add("shutdown_ms", seconds_between(t_req, t_end) * 1e3);
  r.add("drained", drained);
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
