// Baseline `pipeline`: source -> validate -> transform (x*3+1) -> enrich
// (x ^ (x >> 7)) -> sink as five plain actors, one message per item, each
// link bounded to 128 items by acknowledgements every 32.

#include "baseline.hpp"

namespace troupe::bench::baseline {

namespace {

using step_function = uint64_t (*)(uint64_t);

uint64_t validate(uint64_t x) {
  return x;
}

uint64_t transform(uint64_t x) {
  return x * 3 + 1;
}

uint64_t enrich(uint64_t x) {
  return x ^ (x >> 7);
}

struct stage_state {
  credit_in in;
  credit_out<uint64_t> out;
  bool ending = false;
};

void end_when_drained(caf::stateful_actor<stage_state>* self) {
  auto& st = self->state;
  if (st.ending && st.out.backlog() == 0) {
    st.out.end(self);
    self->quit();
  }
}

caf::behavior stage(caf::stateful_actor<stage_state>* self, caf::actor next,
                    step_function step) {
  self->state.out = credit_out<uint64_t>{std::move(next), link_window};
  return {
    [=](uint64_t x) {
      auto& st = self->state;
      st.in.from(self);
      st.out.push(self, step(x));
      st.in.took(self, st.out.backlog() > 0);
    },
    [=](ack_atom, uint32_t n) {
      auto& st = self->state;
      st.out.ack(self, n);
      st.in.settle(self, st.out.backlog() > 0);
      end_when_drained(self);
    },
    [=](end_atom) {
      self->state.ending = true;
      end_when_drained(self);
    },
  };
}

} // namespace

std::vector<caf::actor> spawn_pipeline_front(caf::actor_system& sys, uint64_t n,
                                             caf::actor sink,
                                             std::shared_ptr<int64_t> first_ns,
                                             std::shared_ptr<flight_gauge> gauge) {
  auto enricher = sys.spawn(stage, std::move(sink), &enrich);
  auto transformer = sys.spawn(stage, enricher, &transform);
  auto validator = sys.spawn(stage, transformer, &validate);
  auto source = sys.spawn(counting_source, n, validator, std::move(first_ns),
                          std::move(gauge));
  return {source, validator, transformer, enricher};
}

void pipeline_items(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(5'000'000);
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto gauge = std::make_shared<flight_gauge>();
  auto first = std::make_shared<int64_t>(0);
  auto sink = sys.actors().spawn(summing_sink, caf::actor{self}, gauge);
  auto front = spawn_pipeline_front(sys.actors(), n, sink, first, gauge);
  auto r = caf_result("pipeline");
  self->receive(
    [&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
      record_done(r, n, count, sum, *first, end);
    },
    caf::after(bench_patience) >> [&] {
      give_up({front[0], front[1], front[2], front[3], sink},
              "pipeline (caf) did not finish in time");
    });
  r.add("max_in_flight", static_cast<uint64_t>(gauge->peak));
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
