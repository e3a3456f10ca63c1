#include "baseline.hpp"

#include <stdexcept>

namespace troupe::bench::baseline {

plain_system::plain_system() : actors_(prepare(cfg_)) {
  // nop
}

caf::actor_system_config& plain_system::prepare(caf::actor_system_config& cfg) {
  apply_settings(cfg, bench_settings());
  return cfg;
}

result caf_result(std::string workload) {
  result r;
  r.impl = "caf";
  r.workload = std::move(workload);
  return r;
}

void give_up(std::initializer_list<caf::actor> actors, const std::string& what) {
  for (auto& a : actors)
    caf::anon_send_exit(a, caf::exit_reason::kill);
  throw std::runtime_error(what);
}

namespace {

void produce(caf::stateful_actor<source_state>* self, uint64_t n,
             const std::shared_ptr<int64_t>& first_ns,
             const std::shared_ptr<flight_gauge>& gauge) {
  auto& st = self->state;
  if (st.next == 0 && n > 0)
    *first_ns = now_ns();
  while (st.out.credit() > 0 && st.next < n) {
    if (gauge) {
      auto now = gauge->now.fetch_add(1, std::memory_order_relaxed) + 1;
      if (now > gauge->peak)
        gauge->peak = now;
    }
    st.out.push(self, st.next++);
  }
  if (st.next == n) {
    st.out.end(self);
    self->quit();
  }
}

} // namespace

caf::behavior counting_source(caf::stateful_actor<source_state>* self, uint64_t n,
                              caf::actor next, std::shared_ptr<int64_t> first_ns,
                              std::shared_ptr<flight_gauge> gauge) {
  self->state.out = credit_out<uint64_t>{std::move(next), link_window};
  produce(self, n, first_ns, gauge);
  return {
    [=](ack_atom, uint32_t k) {
      self->state.out.ack(self, k);
      produce(self, n, first_ns, gauge);
    },
    [=](stop_atom) {
      self->state.out.end(self);
      self->quit();
    },
  };
}

caf::behavior summing_sink(caf::stateful_actor<summing_sink_state>* self,
                           caf::actor driver, std::shared_ptr<flight_gauge> gauge) {
  return {
    [=](uint64_t x) {
      auto& st = self->state;
      st.in.from(self);
      if (gauge)
        gauge->now.fetch_sub(1, std::memory_order_relaxed);
      ++st.count;
      st.sum += x;
      st.in.took(self);
    },
    [=](end_atom) {
      self->send(driver, done_atom::value, self->state.count, self->state.sum, now_ns());
      self->quit();
    },
  };
}

} // namespace troupe::bench::baseline
