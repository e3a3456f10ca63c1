// Typed services: calls from an actor and from outside with typed results,
// typed errors and timeouts; the control atoms and counters; a service under
// a supervisor, reached at its stable address through the typed handle.

#include "fixture.hpp"

#include <troupe/patterns/service.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <memory>
#include <stdexcept>
#include <vector>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using div_atom = caf::atom_constant<caf::atom("div")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;

/// (add, a, b) -> a + b; (div, a, b) -> a / b, or invalid_argument for b = 0;
/// (hold) -> never answered while the service runs; (crash) -> throws.
using calc = caf::typed_actor<
  caf::replies_to<caf::add_atom, int32_t, int32_t>::with<int32_t>,
  caf::replies_to<div_atom, int32_t, int32_t>::with<int32_t>,
  caf::replies_to<hold_atom>::with<int32_t>,
  caf::replies_to<crash_atom>::with<int32_t>>;

using held_promises = std::vector<caf::typed_response_promise<int32_t>>;

calc::behavior_type calc_behavior(calc::pointer self,
                                  std::shared_ptr<held_promises> held) {
  return {
    [](caf::add_atom, int32_t a, int32_t b) { return a + b; },
    [](div_atom, int32_t a, int32_t b) -> caf::result<int32_t> {
      if (b == 0)
        return caf::make_error(caf::sec::invalid_argument, "division by zero");
      return a / b;
    },
    [self, held](hold_atom) -> caf::result<int32_t> {
      held->push_back(self->make_response_promise<int32_t>());
      return held->back();
    },
    [](crash_atom) -> int32_t { throw std::runtime_error("calc crashed"); },
  };
}

calc spawn_calc(spawn_context ctx) {
  auto held = std::make_shared<held_promises>();
  return spawn_service<calc>(std::move(ctx), [held](calc::pointer self) {
    return calc_behavior(self, held);
  });
}

/// Calls `c` from inside an actor with `msg`'s arguments and tells the test
/// (int32_t result) or (caf::error).
template <class... Ts>
void call_from_actor(caf::actor_system& sys, calc c, caf::actor test,
                     caf::timespan timeout, Ts... xs) {
  sys.spawn(
    [=](caf::event_based_actor* self, calc dest) {
      call(self, dest, timeout, xs...)
        .then([=](int32_t r) { caf::anon_send(test, r); },
              [=](caf::error& e) { caf::anon_send(test, e); });
    },
    c);
}

struct service_fixture : system_fixture {
  std::vector<caf::actor> started;

  ~service_fixture() {
    for (auto& a : started)
      caf::anon_send(a, cancel_atom::value);
  }

  calc make_calc() {
    auto c = spawn_calc(sys.actors());
    started.push_back(caf::actor_cast<caf::actor>(c));
    return c;
  }

  int32_t expect_value() {
    int32_t result = -1;
    self->receive([&](int32_t x) { result = x; },
                  fail_on_error(),
                  caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
    return result;
  }

  caf::error expect_error() {
    caf::error result;
    self->receive([&](int32_t x) { BOOST_FAIL("got a value: " + std::to_string(x)); },
                  [&](caf::error& e) { result = std::move(e); },
                  caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
    return result;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(service, service_fixture)

BOOST_AUTO_TEST_CASE(typed_call_from_an_actor_gets_the_typed_result) {
  auto c = make_calc();
  call_from_actor(sys.actors(), c, self, patience, caf::add_atom::value, 40, 2);
  BOOST_CHECK_EQUAL(expect_value(), 42);
}

BOOST_AUTO_TEST_CASE(error_answered_by_the_service_reaches_the_error_handler) {
  auto c = make_calc();
  call_from_actor(sys.actors(), c, self, patience, div_atom::value, 1, 0);
  auto e = expect_error();
  BOOST_CHECK(e == caf::sec::invalid_argument);
  BOOST_CHECK(contains(sys.actors().render(e), "division by zero"));
}

BOOST_AUTO_TEST_CASE(late_service_fails_the_call_with_call_timeout) {
  auto c = make_calc();
  auto start = std::chrono::steady_clock::now();
  call_from_actor(sys.actors(), c, self, 100ms, hold_atom::value);
  auto e = expect_error();
  BOOST_CHECK(e == errc::call_timeout);
  BOOST_CHECK(e.category() == error_category);
  BOOST_CHECK(contains(sys.actors().render(e), "100 ms"));
  BOOST_CHECK(std::chrono::steady_clock::now() - start >= 100ms);
}

BOOST_AUTO_TEST_CASE(call_sync_returns_the_value_or_the_typed_error) {
  auto c = make_calc();
  auto sum = call_sync(c, patience, caf::add_atom::value, 2, 3);
  BOOST_REQUIRE(sum);
  static_assert(std::is_same<decltype(sum), caf::expected<int32_t>>::value,
                "call_sync answers the interface's result type");
  BOOST_CHECK_EQUAL(*sum, 5);
  auto quotient = call_sync(c, patience, div_atom::value, 1, 0);
  BOOST_REQUIRE(!quotient);
  BOOST_CHECK(quotient.error() == caf::sec::invalid_argument);
  auto late = call_sync(c, 50ms, hold_atom::value);
  BOOST_REQUIRE(!late);
  BOOST_CHECK(late.error() == errc::call_timeout);
  auto nobody = call_sync(calc{}, patience, caf::add_atom::value, 1, 1);
  BOOST_REQUIRE(!nobody);
  BOOST_CHECK(nobody.error() == caf::sec::bad_function_call);
}

BOOST_AUTO_TEST_CASE(call_to_a_stopped_service_fails_with_receiver_down) {
  auto c = spawn_calc(sys.actors());
  auto untyped = caf::actor_cast<caf::actor>(c);
  self->monitor(untyped);
  self->send(untyped, cancel_atom::value);
  BOOST_CHECK(wait_down(untyped) == errc::cancelled);
  auto r = call_sync(c, patience, caf::add_atom::value, 1, 1);
  BOOST_REQUIRE(!r);
  BOOST_CHECK(r.error() == caf::sec::request_receiver_down);
}

BOOST_AUTO_TEST_CASE(status_counts_requests_answers_errors_and_unexpected) {
  auto c = make_calc();
  BOOST_CHECK(call_sync(c, patience, caf::add_atom::value, 1, 1));
  BOOST_CHECK(call_sync(c, patience, caf::add_atom::value, 2, 2));
  BOOST_CHECK(!call_sync(c, patience, div_atom::value, 1, 0));
  BOOST_CHECK(!call_sync(c, 20ms, hold_atom::value));
  auto untyped = caf::actor_cast<caf::actor>(c);
  self->request(untyped, patience, std::string{"not in the interface"})
    .receive([](const caf::message&) { BOOST_ERROR("answered"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::unexpected_message); });
  auto r = status(untyped);
  BOOST_CHECK_EQUAL(r.kind, "service");
  BOOST_CHECK(r.stopped == stop_reason::running);
  BOOST_CHECK_EQUAL(r.stats["requests"], 4);
  BOOST_CHECK_EQUAL(r.stats["answered"], 2);
  BOOST_CHECK_EQUAL(r.stats["errors"], 1);
  BOOST_CHECK_EQUAL(r.stats["deferred"], 1);
  BOOST_CHECK_EQUAL(r.stats["unexpected"], 1);
  BOOST_CHECK_EQUAL(r.in, 4u);
  BOOST_CHECK_EQUAL(r.out, 2u);
  BOOST_CHECK_EQUAL(r.errors, 1u);
}

BOOST_AUTO_TEST_CASE(drain_and_cancel_requested_are_answered) {
  // A request (not only a plain send) for drain or cancel gets an answer,
  // so a caller that asks and waits does not hang.
  for (bool cancel : {false, true}) {
    auto c = spawn_calc(sys.actors());
    auto untyped = caf::actor_cast<caf::actor>(c);
    self->monitor(untyped);
    auto msg = cancel ? caf::make_message(cancel_atom::value)
                      : caf::make_message(drain_atom::value);
    bool answered = false;
    self->request(untyped, patience, std::move(msg))
      .receive([&] { answered = true; },
               [&](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
    BOOST_CHECK(answered);
    auto reason = wait_down(untyped);
    if (cancel)
      BOOST_CHECK(reason == errc::cancelled);
    else
      BOOST_CHECK(!reason);
  }
}

BOOST_AUTO_TEST_CASE(request_whose_handler_throws_counts_as_a_request_and_an_error) {
  spawn_context ctx{sys.actors()};
  ctx.report_to(self);
  auto c = spawn_calc(ctx);
  BOOST_CHECK(call_sync(c, patience, caf::add_atom::value, 1, 1));
  BOOST_CHECK(!call_sync(c, patience, crash_atom::value));
  auto r = receive_one<actor_report>("the crashed service's report");
  BOOST_CHECK(r.stopped == stop_reason::crashed);
  BOOST_CHECK_EQUAL(r.stats["requests"], 2);
  BOOST_CHECK_EQUAL(r.stats["answered"], 1);
  BOOST_CHECK_EQUAL(r.stats["errors"], 1);
  BOOST_CHECK_EQUAL(r.in, 2u);
  BOOST_CHECK_EQUAL(r.errors, 1u);
}

BOOST_AUTO_TEST_CASE(supervised_service_is_restarted_at_its_stable_address_and_reports) {
  supervisor_spec spec;
  spec.name = "root";
  auto held = std::make_shared<held_promises>();
  spec.children.push_back(service_child<calc>("calc", [held](calc::pointer self) {
    return calc_behavior(self, held);
  }));
  auto root = spawn_supervisor(sys.actors(), spec);
  auto c = caf::actor_cast<calc>(address_of(root, "calc"));
  BOOST_CHECK_EQUAL(*call_sync(c, patience, caf::add_atom::value, 1, 2), 3);
  BOOST_CHECK(!call_sync(c, patience, div_atom::value, 1, 0));
  auto crash = call_sync(c, patience, crash_atom::value);
  BOOST_REQUIRE(!crash);
  BOOST_CHECK(crash.error() == caf::sec::runtime_error);
  BOOST_CHECK(contains(sys.actors().render(crash.error()), "calc crashed"));
  await_child(root, "calc", [](const actor_report& r) { return r.restarts == 1; },
              "restarted");
  // The new incarnation answers at the same address, with fresh counters.
  BOOST_CHECK_EQUAL(*call_sync(c, patience, caf::add_atom::value, 1, 2), 3);
  BOOST_CHECK_EQUAL(*call_sync(c, patience, caf::add_atom::value, 2, 2), 4);
  auto now = status(root);
  BOOST_REQUIRE(find_report(now, "calc"));
  BOOST_CHECK_EQUAL(find_report(now, "calc")->stats.at("requests"), 2);
  auto report = request_report(root, caf::make_message(drain_atom::value));
  auto calc_report = find_report(report, "calc");
  BOOST_REQUIRE(calc_report);
  BOOST_CHECK_EQUAL(calc_report->kind, "service");
  BOOST_CHECK(calc_report->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(calc_report->restarts, 1u);
  BOOST_CHECK_EQUAL(calc_report->stats.at("answered"), 2);
  BOOST_CHECK_EQUAL(calc_report->stats.at("errors"), 0);
}

BOOST_AUTO_TEST_SUITE_END()
