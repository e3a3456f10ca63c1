// Baseline `limiter`: a greedy source -> a token bucket actor (20,000 per
// second, burst 100, starting full) -> a sink, for 3 s. The bucket is
// refilled from the steady clock whenever an item waits; when none is left,
// the actor sends itself a tick for when the next permit is due. It stamps
// items as it lets them through, as the troupe workload's on_pass hook does,
// and acknowledges an item to the source only then, so the source is held
// back by the rate.

#include "baseline.hpp"

#include <algorithm>
#include <vector>

namespace troupe::bench::baseline {

namespace {

using tick_atom = caf::atom_constant<caf::atom("bl_tick")>;
using stamps_atom = caf::atom_constant<caf::atom("bl_stamps")>;

constexpr double rate = 20'000;
constexpr double burst = 100;
constexpr auto window = std::chrono::seconds(3);

struct limiter_state {
  credit_in in;
  credit_out<uint64_t> out;
  std::deque<uint64_t> held;
  double tokens = burst;
  bench_clock::time_point last = bench_clock::now();
  bool tick_pending = false;
  bool ending = false;
  std::vector<int64_t> stamps;
};

using limiter_actor = caf::stateful_actor<limiter_state>;

void let_through(limiter_actor* self, const caf::actor& driver) {
  auto& st = self->state;
  auto now = bench_clock::now();
  st.tokens = std::min(burst, st.tokens + rate * seconds_between(st.last, now));
  st.last = now;
  auto stamp = now_ns();
  while (!st.held.empty() && st.tokens >= 1 && st.out.backlog() == 0) {
    st.tokens -= 1;
    st.stamps.push_back(stamp);
    st.out.push(self, st.held.front());
    st.held.pop_front();
    st.in.took(self);
  }
  if (!st.held.empty() && st.tokens < 1 && !st.tick_pending) {
    st.tick_pending = true;
    auto due = std::chrono::duration<double>((1 - st.tokens) / rate);
    self->delayed_send(self, std::chrono::duration_cast<std::chrono::nanoseconds>(due),
                       tick_atom::value);
  }
  if (st.ending && st.held.empty() && st.out.backlog() == 0) {
    self->send(driver, stamps_atom::value, std::move(st.stamps));
    st.out.end(self);
    self->quit();
  }
}

caf::behavior token_bucket(limiter_actor* self, caf::actor sink, caf::actor driver) {
  self->state.out = credit_out<uint64_t>{std::move(sink), link_window};
  self->state.stamps.reserve(80'000);
  return {
    [=](uint64_t x) {
      self->state.in.from(self);
      self->state.held.push_back(x);
      let_through(self, driver);
    },
    [=](tick_atom) {
      self->state.tick_pending = false;
      let_through(self, driver);
    },
    [=](ack_atom, uint32_t n) {
      self->state.out.ack(self, n);
      let_through(self, driver);
    },
    [=](end_atom) {
      self->state.ending = true;
      let_through(self, driver);
    },
  };
}

struct collecting_state {
  credit_in in;
  std::vector<uint64_t> values;
};

/// Keeps the items it gets, in order; at the end tells `driver`
/// (done_atom, values).
caf::behavior collecting_sink(caf::stateful_actor<collecting_state>* self,
                              caf::actor driver) {
  self->state.values.reserve(80'000);
  return {
    [=](uint64_t x) {
      self->state.in.from(self);
      self->state.values.push_back(x);
      self->state.in.took(self);
    },
    [=](end_atom) {
      self->send(driver, done_atom::value, std::move(self->state.values));
      self->quit();
    },
  };
}

} // namespace

void limiter_accuracy(const options&, std::vector<result>& out) {
  // 3 s also with --quick, as the troupe workload.
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto sink = sys.actors().spawn(collecting_sink, caf::actor{self});
  auto limiter = sys.actors().spawn(token_bucket, sink, caf::actor{self});
  auto first = std::make_shared<int64_t>(0);
  auto source = sys.actors().spawn(counting_source, UINT64_MAX, limiter, first,
                                   std::shared_ptr<flight_gauge>{});
  self->receive(caf::after(window) >> [] {});
  self->send(source, stop_atom::value);
  auto r = caf_result("limiter");
  std::vector<int64_t> stamps;
  std::vector<uint64_t> values;
  bool got_stamps = false;
  bool got_values = false;
  while (!got_stamps || !got_values)
    self->receive(
      [&](stamps_atom, std::vector<int64_t>& xs) {
        stamps = std::move(xs);
        got_stamps = true;
      },
      [&](done_atom, std::vector<uint64_t>& xs) {
        values = std::move(xs);
        got_values = true;
      },
      caf::after(bench_patience) >> [&] {
        give_up({source, limiter, sink}, "limiter (caf) did not finish in time");
      });
  limiter_figures(r, stamps, values, rate, burst, window);
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
