// Baselines `fanout`, `pool` and `pool_skewed`: source -> dispatcher -> sink,
// where the dispatcher hands each item to a worker actor as a request and
// passes the answers on to the sink. In CAF terms a fan-out with bounded
// concurrency and a worker pool are the same actor; they differ in how many
// requests a worker may hold and in how one is picked:
//   fanout       16 processors, one request each (16 in flight), 64 rounds
//   pool         8 workers round-robin, up to 16 requests each, 16 rounds
//   pool_skewed  8 workers, one request each, to whichever is idle (pull)
// The dispatcher acknowledges an item to the source when it sends it to a
// worker, and sends none while answers wait for the sink's credit, so every
// queue stays bounded.

#include "baseline.hpp"

#include <vector>

namespace troupe::bench::baseline {

namespace {

enum class picking { round_robin, idle_first };

struct dispatcher_state {
  credit_in in;
  credit_out<uint64_t> out;
  std::vector<caf::actor> workers;
  picking policy = picking::round_robin;
  uint32_t per_worker = 1;
  std::vector<uint32_t> load;
  // idle_first: one entry per free request slot of a worker.
  std::deque<size_t> free_slots;
  size_t next_worker = 0;
  std::deque<uint64_t> waiting;
  uint64_t in_flight = 0;
  bool ending = false;
};

using dispatcher_actor = caf::stateful_actor<dispatcher_state>;

/// The worker for the next item, or workers.size() if it has to wait.
size_t pick(dispatcher_state& st) {
  if (st.policy == picking::round_robin) {
    if (st.load[st.next_worker] == st.per_worker)
      return st.workers.size();
    auto w = st.next_worker;
    st.next_worker = (st.next_worker + 1) % st.workers.size();
    return w;
  }
  if (st.free_slots.empty())
    return st.workers.size();
  auto w = st.free_slots.front();
  st.free_slots.pop_front();
  return w;
}

void answered(dispatcher_state& st, size_t w) {
  --st.load[w];
  --st.in_flight;
  if (st.policy == picking::idle_first)
    st.free_slots.push_back(w);
}

void dispatch(dispatcher_actor* self) {
  auto& st = self->state;
  while (!st.waiting.empty() && st.out.backlog() == 0) {
    auto w = pick(st);
    if (w == st.workers.size())
      break;
    auto x = st.waiting.front();
    st.waiting.pop_front();
    st.in.took(self);
    ++st.load[w];
    ++st.in_flight;
    self->request(st.workers[w], caf::infinite, x)
      .then(
        [self, w](uint64_t y) {
          answered(self->state, w);
          self->state.out.push(self, y);
          dispatch(self);
        },
        [self, w](caf::error&) {
          // The item is lost: the sink's count shows it.
          answered(self->state, w);
          dispatch(self);
        });
  }
  if (st.ending && st.waiting.empty() && st.in_flight == 0 && st.out.backlog() == 0) {
    st.out.end(self);
    self->quit();
  }
}

caf::behavior dispatcher(dispatcher_actor* self, std::vector<caf::actor> workers,
                         picking policy, uint32_t per_worker, caf::actor sink) {
  auto& st = self->state;
  st.out = credit_out<uint64_t>{std::move(sink), link_window};
  st.policy = policy;
  st.per_worker = per_worker;
  st.load.assign(workers.size(), 0);
  for (uint32_t k = 0; k < per_worker; ++k)
    for (size_t w = 0; w < workers.size(); ++w)
      st.free_slots.push_back(w);
  st.workers = std::move(workers);
  return {
    [=](uint64_t x) {
      self->state.in.from(self);
      self->state.waiting.push_back(x);
      dispatch(self);
    },
    [=](ack_atom, uint32_t n) {
      self->state.out.ack(self, n);
      dispatch(self);
    },
    [=](end_atom) {
      self->state.ending = true;
      dispatch(self);
    },
  };
}

caf::behavior mixer(caf::event_based_actor*, int rounds) {
  return {[rounds](uint64_t x) { return mix_rounds(x, rounds); }};
}

caf::behavior job_worker(caf::event_based_actor*, bool skewed) {
  return {[skewed](uint64_t j) { return pool_job(j, skewed); }};
}

/// One run: n items from a source through a dispatcher over `workers` to a
/// summing sink; the workers are stopped afterwards.
result run(plain_system& sys, const std::string& name, uint64_t n,
           std::vector<caf::actor> workers, picking policy, uint32_t per_worker) {
  caf::scoped_actor self{sys.actors()};
  auto first = std::make_shared<int64_t>(0);
  auto sink = sys.actors().spawn(summing_sink, caf::actor{self},
                                 std::shared_ptr<flight_gauge>{});
  auto disp = sys.actors().spawn(dispatcher, workers, policy, per_worker, sink);
  auto source = sys.actors().spawn(counting_source, n, disp, first,
                                   std::shared_ptr<flight_gauge>{});
  auto r = caf_result(name);
  auto stop_workers = [&] {
    for (auto& w : workers)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  };
  self->receive(
    [&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
      record_done(r, n, count, sum, *first, end);
    },
    caf::after(bench_patience) >> [&] {
      stop_workers();
      give_up({source, disp, sink}, name + " (caf) did not finish in time");
    });
  stop_workers();
  return r;
}

} // namespace

void fanout_items(const options& opts, std::vector<result>& out) {
  plain_system sys;
  std::vector<caf::actor> processors;
  for (int i = 0; i < 16; ++i)
    processors.push_back(sys.actors().spawn(mixer, 64));
  out.push_back(run(sys, "fanout", opts.scaled(2'000'000), std::move(processors),
                    picking::idle_first, 1));
}

void pool_jobs(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(4'000'000);
  for (bool skewed : {false, true}) {
    plain_system sys;
    std::vector<caf::actor> workers;
    for (int i = 0; i < 8; ++i)
      workers.push_back(sys.actors().spawn(job_worker, skewed));
    auto r = skewed ? run(sys, "pool_skewed", n, std::move(workers), picking::idle_first, 1)
                    : run(sys, "pool", n, std::move(workers), picking::round_robin, 16);
    r.add("policy", std::string{skewed ? "pull" : "round_robin"});
    if (skewed)
      r.add("makespan_s", r.seconds);
    out.push_back(std::move(r));
  }
}

} // namespace troupe::bench::baseline
