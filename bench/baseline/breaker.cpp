// Baselines `breaker` and `breaker_trip`, with a service actor answering
// splitmix64(k) and the breaker's rules (closed / open / half-open, open
// after 5 failures in a row, half-open 50 ms later) written by hand. For
// `breaker`, as troupe's circuit_breaker: a struct on the caller's side,
// behind a mutex so that callers could share it, asked before each
// request/then to the service and told its outcome. For `breaker_trip`, as
// troupe's breaker actor: an actor in front of the service, answering each
// call through a response promise once the service answered, so that it sees
// every outcome; an open breaker answers with an error at once. Calls carry
// no timeout, as in the Tokio reference.

#include "baseline.hpp"

#include <algorithm>
#include <memory>
#include <mutex>

namespace troupe::bench::baseline {

namespace {

using failing_atom = caf::atom_constant<caf::atom("failing")>;

constexpr uint32_t threshold = 5;
constexpr auto open_timeout = std::chrono::milliseconds(50);

/// Answers k with splitmix64(k), or fails while told to (`failing` at
/// first: a spawn argument, since CAF 0.17 spawning without one trips UBSan).
caf::behavior service(caf::stateful_actor<bool>* self, bool failing) {
  self->state = failing;
  return {
    [=](uint64_t k) -> caf::result<uint64_t> {
      if (self->state)
        return caf::make_error(caf::sec::runtime_error, "scripted failure");
      return splitmix64(k);
    },
    [=](failing_atom, bool on) { self->state = on; },
  };
}

enum class circuit { closed, open, half_open };

struct breaker_state {
  circuit mode = circuit::closed;
  uint32_t failures = 0;
  bench_clock::time_point opened;
  int64_t opened_ns = 0;
  bool probing = false;
};

using breaker_actor = caf::stateful_actor<breaker_state>;

/// Whether a call may pass now; takes the probe when half-open.
bool admit(breaker_state& st) {
  if (st.mode == circuit::open && bench_clock::now() - st.opened >= open_timeout)
    st.mode = circuit::half_open;
  if (st.mode == circuit::open || (st.mode == circuit::half_open && st.probing))
    return false;
  if (st.mode == circuit::half_open)
    st.probing = true;
  return true;
}

void outcome(breaker_state& st, bool ok) {
  if (ok) {
    st.failures = 0;
    st.mode = circuit::closed;
  } else if (st.mode == circuit::half_open || ++st.failures >= threshold) {
    st.mode = circuit::open;
    st.opened = bench_clock::now();
    st.opened_ns = now_ns();
  }
  st.probing = false;
}

caf::behavior breaker(breaker_actor* self, caf::actor service) {
  return {
    [=](uint64_t k) -> caf::result<uint64_t> {
      if (!admit(self->state))
        return caf::make_error(caf::sec::runtime_error, "breaker open");
      auto rp = self->make_response_promise<uint64_t>();
      self->request(service, caf::infinite, k)
        .then(
          [=](uint64_t x) mutable {
            outcome(self->state, true);
            rp.deliver(x);
          },
          [=](caf::error& e) mutable {
            outcome(self->state, false);
            rp.deliver(std::move(e));
          });
      return rp;
    },
    // For breaker_trip: whether it is open, and since when.
    [=](caf::get_atom) {
      return std::make_tuple(self->state.mode == circuit::open, self->state.opened_ns);
    },
  };
}

/// The same rules on the caller's side: asked before a call, told its
/// outcome.
class caller_breaker {
public:
  bool admit() {
    std::lock_guard<std::mutex> guard{mtx_};
    return baseline::admit(st_);
  }

  void outcome(bool ok) {
    std::lock_guard<std::mutex> guard{mtx_};
    baseline::outcome(st_, ok);
  }

private:
  std::mutex mtx_;
  breaker_state st_;
};

struct caller_state {
  uint64_t next = 0;
  uint64_t answered = 0;
  uint64_t sum = 0;
};

using caller_actor = caf::stateful_actor<caller_state>;

/// Makes the next of `n` calls to `svc` through `b`, or tells the driver
/// (done_atom, answered, sum) after the last.
void call_next(caller_actor* self, const std::shared_ptr<caller_breaker>& b,
               const caf::actor& svc, uint64_t n, const caf::actor& driver) {
  auto& st = self->state;
  // A rejected call answers nothing: on to the next one.
  while (st.next < n && !b->admit())
    ++st.next;
  if (st.next == n) {
    self->send(driver, done_atom::value, st.answered, st.sum);
    self->quit();
    return;
  }
  self->request(svc, caf::infinite, st.next++)
    .then(
      [=](uint64_t x) {
        b->outcome(true);
        ++self->state.answered;
        self->state.sum += x;
        call_next(self, b, svc, n, driver);
      },
      [=](caf::error&) {
        b->outcome(false);
        call_next(self, b, svc, n, driver);
      });
}

caf::behavior sequential_caller(caller_actor* self, std::shared_ptr<caller_breaker> b,
                                caf::actor svc, uint64_t n, caf::actor driver) {
  call_next(self, b, svc, n, driver);
  return {};
}

} // namespace

void breaker_calls(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(2'000'000);
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto svc = sys.actors().spawn(service, false);
  auto start = bench_clock::now();
  auto caller = sys.actors().spawn(sequential_caller, std::make_shared<caller_breaker>(),
                                   svc, n, caf::actor{self});
  auto r = caf_result("breaker");
  self->receive(
    [&](done_atom, uint64_t answered, uint64_t sum) {
      r.seconds = seconds_between(start, bench_clock::now());
      r.items = answered;
      r.checksum = sum;
      r.lost = count_lost(n, answered);
    },
    caf::after(bench_patience) >> [&] {
      give_up({caller, svc}, "breaker (caf) did not finish in time");
    });
  out.push_back(std::move(r));
  self->send_exit(svc, caf::exit_reason::user_shutdown);
}

void breaker_trip(const options&, std::vector<result>& out) {
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto svc = sys.actors().spawn(service, true);
  auto b = sys.actors().spawn(breaker, svc);
  auto r = caf_result("breaker_trip");
  uint64_t calls = 0;
  auto call = [&](uint64_t k, uint64_t& value) {
    ++calls;
    bool ok = false;
    self->request(b, std::chrono::seconds(10), k)
      .receive(
        [&](uint64_t x) {
          ok = true;
          value = x;
        },
        [](caf::error&) {});
    return ok;
  };
  auto start = bench_clock::now();
  // Fail until the breaker is open.
  int64_t opened_at = 0;
  uint64_t until_open = 0;
  uint64_t ignored = 0;
  while (opened_at == 0 && until_open < 100) {
    call(until_open++, ignored);
    self->request(b, std::chrono::seconds(10), caf::get_atom::value)
      .receive(
        [&](bool open, int64_t since) {
          if (open)
            opened_at = since;
        },
        [](caf::error&) {});
  }
  self->send(svc, failing_atom::value, false);
  finish_breaker_trip(self, call, calls, until_open, opened_at, start, r);
  out.push_back(std::move(r));
  self->send_exit(b, caf::exit_reason::user_shutdown);
  self->send_exit(svc, caf::exit_reason::user_shutdown);
}

} // namespace troupe::bench::baseline
