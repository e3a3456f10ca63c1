// Baselines `batcher` and `batcher_latency`: a source -> a batcher actor ->
// a sink of batches. The batcher sends a batch at 256 items or 5 ms after the
// batch's first item: a delayed_send to itself carrying the batch's
// generation, so that the timer of a batch already sent full is ignored.
// Batches go to the sink over a link of 16 batches; while one waits for
// credit, the batcher acknowledges no items, so its input stops too.

#include "baseline.hpp"

#include <algorithm>
#include <vector>

namespace troupe::bench::baseline {

namespace {

using flush_atom = caf::atom_constant<caf::atom("bl_flush")>;
using tick_atom = caf::atom_constant<caf::atom("bl_tick")>;

constexpr size_t batch_size = 256;
constexpr auto batch_timeout = std::chrono::milliseconds(5);
constexpr uint32_t batch_window = 16;

/// An item of batcher_latency: its sequence number and submission time.
struct stamped {
  uint64_t seq = 0;
  int64_t submit_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stamped& x) {
  return f(caf::meta::type_name("stamped"), x.seq, x.submit_ns);
}

template <class T>
struct batcher_state {
  credit_in in;
  credit_out<std::vector<T>> out;
  std::vector<T> current;
  uint64_t generation = 0;
  bool ending = false;
};

template <class T>
void flush(caf::stateful_actor<batcher_state<T>>* self) {
  auto& st = self->state;
  std::vector<T> full;
  full.reserve(batch_size);
  full.swap(st.current);
  ++st.generation;
  st.out.push(self, std::move(full));
}

template <class T>
void end_when_drained(caf::stateful_actor<batcher_state<T>>* self) {
  auto& st = self->state;
  if (st.ending && st.current.empty() && st.out.backlog() == 0) {
    st.out.end(self);
    self->quit();
  }
}

template <class T>
caf::behavior batcher(caf::stateful_actor<batcher_state<T>>* self, caf::actor sink) {
  self->state.out = credit_out<std::vector<T>>{std::move(sink), batch_window};
  self->state.current.reserve(batch_size);
  return {
    [=](const T& x) {
      auto& st = self->state;
      st.in.from(self);
      st.current.push_back(x);
      if (st.current.size() == 1)
        self->delayed_send(self, batch_timeout, flush_atom::value, st.generation);
      if (st.current.size() == batch_size)
        flush(self);
      st.in.took(self, st.out.backlog() > 0);
    },
    [=](flush_atom, uint64_t generation) {
      auto& st = self->state;
      if (generation == st.generation && !st.current.empty()) {
        flush(self);
        st.in.settle(self, st.out.backlog() > 0);
      }
    },
    [=](ack_atom, uint32_t n) {
      auto& st = self->state;
      st.out.ack(self, n);
      st.in.settle(self, st.out.backlog() > 0);
      end_when_drained(self);
    },
    [=](end_atom) {
      auto& st = self->state;
      st.ending = true;
      if (!st.current.empty())
        flush(self);
      end_when_drained(self);
    },
  };
}

struct batch_sink_state {
  credit_in in{4};
  uint64_t items = 0;
  uint64_t sum = 0;
  uint64_t batches = 0;
  uint64_t full = 0;
};

/// Sums the batches' items; at the end tells `driver`
/// (done_atom, items, sum, batches, full_batches, end_ns).
caf::behavior summing_batch_sink(caf::stateful_actor<batch_sink_state>* self,
                                 caf::actor driver) {
  return {
    [=](const std::vector<uint64_t>& b) {
      auto& st = self->state;
      st.in.from(self);
      for (auto x : b)
        st.sum += x;
      st.items += b.size();
      ++st.batches;
      if (b.size() == batch_size)
        ++st.full;
      st.in.took(self);
    },
    [=](end_atom) {
      auto& st = self->state;
      self->send(driver, done_atom::value, st.items, st.sum, st.batches, st.full, now_ns());
      self->quit();
    },
  };
}

struct latency_sink_state {
  credit_in in{4};
  std::vector<int64_t> latencies;
  uint64_t sum = 0;
  uint64_t batches = 0;
};

/// Records per item the time from its submission to its batch being handled
/// here; at the end tells `driver` (done_atom, latencies, sum, batches).
caf::behavior latency_sink(caf::stateful_actor<latency_sink_state>* self,
                           caf::actor driver) {
  return {
    [=](const std::vector<stamped>& b) {
      auto& st = self->state;
      st.in.from(self);
      auto now = now_ns();
      ++st.batches;
      for (auto& x : b) {
        st.sum += x.seq;
        st.latencies.push_back(now - x.submit_ns);
      }
      st.in.took(self);
    },
    [=](end_atom) {
      auto& st = self->state;
      self->send(driver, done_atom::value, st.latencies, st.sum, st.batches);
      self->quit();
    },
  };
}

struct paced_state {
  credit_out<stamped> out;
  uint64_t next = 0;
  bench_clock::time_point start;
};

/// Submits one stamped item per ms, paced from its start so that timer
/// lateness does not add up; n items, then the end.
caf::behavior paced_source(caf::stateful_actor<paced_state>* self, uint64_t n,
                           caf::actor next) {
  auto& st = self->state;
  st.out = credit_out<stamped>{std::move(next), link_window};
  st.start = bench_clock::now();
  self->send(self, tick_atom::value);
  return {
    [=](tick_atom) {
      auto& st = self->state;
      st.out.push(self, stamped{st.next, now_ns()});
      if (++st.next == n) {
        st.out.end(self);
        self->quit();
        return;
      }
      auto due = st.start + std::chrono::milliseconds(st.next);
      auto delay = std::max(bench_clock::duration{0}, due - bench_clock::now());
      self->delayed_send(self, delay, tick_atom::value);
    },
    [=](ack_atom, uint32_t k) { self->state.out.ack(self, k); },
  };
}

} // namespace

void batcher_throughput(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(10'000'000);
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto first = std::make_shared<int64_t>(0);
  auto sink = sys.actors().spawn(summing_batch_sink, caf::actor{self});
  auto b = sys.actors().spawn(batcher<uint64_t>, sink);
  auto source = sys.actors().spawn(counting_source, n, b, first,
                                   std::shared_ptr<flight_gauge>{});
  auto r = caf_result("batcher");
  self->receive(
    [&](done_atom, uint64_t items, uint64_t sum, uint64_t batches, uint64_t full,
        int64_t end) {
      r.items = items;
      r.checksum = sum;
      r.lost = count_lost(n, items);
      r.seconds = static_cast<double>(end - *first) / 1e9;
      r.add("batches", batches);
      r.add("full_batches", full);
    },
    caf::after(bench_patience) >> [&] {
      give_up({source, b, sink}, "batcher (caf) did not finish in time");
    });
  out.push_back(std::move(r));
}

void batcher_latency(const options&, std::vector<result>& out) {
  // A fixed 1,000 items at 1 per ms, as the troupe workload.
  const uint64_t n = 1000;
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto sink = sys.actors().spawn(latency_sink, caf::actor{self});
  auto b = sys.actors().spawn(batcher<stamped>, sink);
  auto start = bench_clock::now();
  auto source = sys.actors().spawn(paced_source, n, b);
  auto r = caf_result("batcher_latency");
  self->receive(
    [&](done_atom, std::vector<int64_t>& latencies, uint64_t sum, uint64_t batches) {
      r.seconds = seconds_between(start, bench_clock::now());
      r.items = latencies.size();
      r.checksum = sum;
      r.lost = count_lost(n, latencies.size());
      std::sort(latencies.begin(), latencies.end());
      r.add("p50_ms", percentile_ms(latencies, 50));
      r.add("p99_ms", percentile_ms(latencies, 99));
      r.add("max_ms",
            latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6);
      r.add("batches", batches);
    },
    caf::after(bench_patience) >> [&] {
      give_up({source, b, sink}, "batcher_latency (caf) did not finish in time");
    });
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
