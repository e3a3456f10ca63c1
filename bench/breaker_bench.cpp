// Workloads `breaker` (2,000,000 calls, one at a time, through a closed
// breaker to a service actor answering splitmix64(i): the caller-side
// circuit_breaker, then the breaker actor as `breaker_actor_per_s`) and
// `breaker_trip` (calls fail until the breaker actor opens, then one call per
// ms until a probe passes, then 100 calls that must pass).

#include "bench.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/breaker.hpp>
#include <troupe/patterns/circuit_breaker.hpp>

#include <caf/all.hpp>

namespace troupe::bench {

namespace {

using failing_atom = caf::atom_constant<caf::atom("failing")>;

constexpr uint32_t threshold = 5;
constexpr auto open_timeout = std::chrono::milliseconds(50);

breaker_config spec_breaker() {
  breaker_config cfg;
  cfg.consecutive_failures = threshold;
  cfg.open_timeout = open_timeout;
  return cfg;
}

// Answers k with splitmix64(k), or fails while told to.
caf::behavior scripted_service(caf::event_based_actor*, std::shared_ptr<bool> failing) {
  return {
    [failing](uint64_t k) -> caf::result<uint64_t> {
      if (*failing)
        return caf::make_error(caf::sec::runtime_error, "scripted failure");
      return splitmix64(k);
    },
    [failing](failing_atom, bool on) { *failing = on; },
  };
}

// Makes `n` calls one after the other, then tells the driver the sum.
caf::behavior sequential_caller(caf::event_based_actor* self, caf::actor target,
                                uint64_t n, caf::actor driver) {
  struct state {
    uint64_t next = 0;
    uint64_t answered = 0;
    uint64_t sum = 0;
  };
  auto st = std::make_shared<state>();
  auto call = std::make_shared<std::function<void()>>();
  *call = [=] {
    if (st->next == n) {
      self->send(driver, done_atom::value, st->answered, st->sum);
      self->quit();
      return;
    }
    self->request(target, caf::infinite, st->next++)
      .then(
        [=](uint64_t x) {
          ++st->answered;
          st->sum += x;
          (*call)();
        },
        [=](caf::error&) { (*call)(); });
  };
  (*call)();
  // The recursion through `call` holds itself: break the cycle at the end.
  self->attach_functor([call] { *call = nullptr; });
  return {};
}

struct guarded_caller_state {
  uint64_t next = 0;
  uint64_t answered = 0;
  uint64_t sum = 0;
};

using guarded_caller_actor = caf::stateful_actor<guarded_caller_state>;

// Makes the next of `n` calls to `service` through `breaker` (no timeout, as
// the Tokio reference has none), or tells the driver the sum after the last.
void call_guarded(guarded_caller_actor* self, const circuit_breaker& breaker,
                  const caf::actor& service, uint64_t n, const caf::actor& driver) {
  auto& st = self->state;
  if (st.next == n) {
    self->send(driver, done_atom::value, st.answered, st.sum);
    self->quit();
    return;
  }
  breaker.request(self, service, caf::infinite, st.next++)
    .then(
      [=](uint64_t x) {
        ++self->state.answered;
        self->state.sum += x;
        call_guarded(self, breaker, service, n, driver);
      },
      [=](caf::error&) { call_guarded(self, breaker, service, n, driver); });
}

caf::behavior guarded_caller(guarded_caller_actor* self, circuit_breaker breaker,
                             caf::actor service, uint64_t n, caf::actor driver) {
  call_guarded(self, breaker, service, n, driver);
  return {};
}

// `n` calls one at a time to the service: through a caller-side breaker, or
// (`actor`) through a breaker actor in front of the service.
result run_breaker_calls(uint64_t n, bool actor) {
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto service = sys.actors().spawn(scripted_service, std::make_shared<bool>(false));
  caf::actor breaker;
  auto start = bench_clock::now();
  if (actor) {
    breaker = spawn_breaker(sys, spec_breaker(), service);
    start = bench_clock::now();
    sys.actors().spawn(sequential_caller, breaker, n, caf::actor{self});
  } else {
    sys.actors().spawn(guarded_caller, circuit_breaker{spec_breaker()}, service, n,
                       caf::actor{self});
  }
  result r;
  r.workload = "breaker";
  self->receive([&](done_atom, uint64_t answered, uint64_t sum) {
    r.seconds = seconds_between(start, bench_clock::now());
    r.items = answered;
    r.checksum = sum;
    r.lost = n - answered;
  });
  if (breaker)
    self->send_exit(breaker, caf::exit_reason::user_shutdown);
  self->send_exit(service, caf::exit_reason::user_shutdown);
  return r;
}

} // namespace

void breaker_calls(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(2'000'000);
  auto r = run_breaker_calls(n, false);
  add_side_run(r, run_breaker_calls(n, true), "breaker_actor");
  out.push_back(std::move(r));
}

void breaker_trip(const options&, std::vector<result>& out) {
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto failing = std::make_shared<bool>(true);
  auto service = sys.actors().spawn(scripted_service, failing);
  auto breaker = spawn_breaker(sys, spec_breaker(), service);
  self->send(breaker, subscribe_atom::value);
  result r;
  r.workload = "breaker_trip";
  uint64_t calls = 0;
  auto call = [&](uint64_t k, uint64_t& value) {
    ++calls;
    bool ok = false;
    self->request(breaker, std::chrono::seconds(10), k)
      .receive([&](uint64_t x) { ok = true; value = x; }, [](caf::error&) {});
    return ok;
  };
  auto start = bench_clock::now();
  // Fail until the breaker says it is open.
  int64_t opened_at = 0;
  uint64_t until_open = 0;
  uint64_t ignored = 0;
  while (opened_at == 0 && until_open < 100) {
    call(until_open++, ignored);
    for (bool more = true; more;)
      self->receive([&](state_change& e) { if (e.to == "open") opened_at = e.at_ns; },
                    caf::after(std::chrono::milliseconds(0)) >> [&] { more = false; });
  }
  self->send(service, failing_atom::value, false);
  finish_breaker_trip(self, call, calls, until_open, opened_at, start, r);
  out.push_back(std::move(r));
  self->send_exit(breaker, caf::exit_reason::user_shutdown);
  self->send_exit(service, caf::exit_reason::user_shutdown);
}

} // namespace troupe::bench
