// Restart strategies, restart types, intensity and escalation, backoff, stable
// addresses across restarts, and failures in factories and handlers.

#include "supervision/children.hpp"

#include <troupe/actors/errors.hpp>

#include <algorithm>

using namespace troupe;
using namespace troupe::test;

namespace {

supervisor_spec three_children(caf::actor observer, restart_strategy strategy) {
  supervisor_spec spec;
  spec.name = "root";
  spec.strategy = strategy;
  spec.intensity = {10, std::chrono::seconds(10)};
  for (auto name : {"a", "b", "c"})
    spec.children.push_back(observed_child(name, observer));
  return spec;
}

using events = std::vector<std::string>;

using stopping_atom = caf::atom_constant<caf::atom("stopping")>;
using release_atom = caf::atom_constant<caf::atom("release")>;

/// A plain actor that, asked to stop (an exit), tells `observer` and stops
/// only once released: the test acts while its group restart waits for it.
caf::behavior stops_when_released(caf::event_based_actor* self, std::string name,
                                  caf::actor observer) {
  self->attach_functor([name, observer](const caf::error& reason) {
    caf::anon_send(observer, stopped_atom::value, name, reason);
  });
  self->set_exit_handler([self, name, observer](caf::exit_msg& x) {
    caf::anon_send(observer, stopping_atom::value, name);
    self->become([self, reason = x.reason](release_atom) { self->quit(reason); });
  });
  return {[](release_atom) {}};
}

/// Its first incarnation stops when released, later ones as observed does.
child_spec held_child(const std::string& name, caf::actor observer) {
  child_spec spec = observed_child(name, observer);
  spec.start = [name, observer](const spawn_context& ctx) {
    auto handle = ctx.restarts() == 0
                    ? ctx.system().spawn(stops_when_released, name, observer)
                    : ctx.system().spawn(observed, name, ctx.restarts(), observer);
    caf::anon_send(observer, started_atom::value, name, ctx.restarts(), handle);
    return handle;
  };
  return spec;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(supervisor, event_log)

BOOST_AUTO_TEST_CASE(children_start_in_order) {
  auto sup = spawn_supervisor(sys, three_children(self, restart_strategy::one_for_one));
  BOOST_CHECK((next_events(3) == events{"+a0", "+b0", "+c0"}));
  self->send(sup, cancel_atom::value);
  next_events(3);
}

BOOST_AUTO_TEST_CASE(one_for_one_restarts_only_the_failed_child) {
  auto sup = spawn_supervisor(sys, three_children(self, restart_strategy::one_for_one));
  next_events(3);
  self->send(address_of(sup, "b"), crash_atom::value);
  BOOST_CHECK((next_events(2) == events{"-b", "+b1"}));
  expect_quiet(sup);
  self->send(sup, cancel_atom::value);
  BOOST_CHECK((next_events(3) == events{"-c", "-b", "-a"}));
}

BOOST_AUTO_TEST_CASE(one_for_all_stops_the_others_in_reverse_and_restarts_all) {
  auto sup = spawn_supervisor(sys, three_children(self, restart_strategy::one_for_all));
  next_events(3);
  self->send(address_of(sup, "b"), crash_atom::value);
  BOOST_CHECK((next_events(6) == events{"-b", "-c", "-a", "+a1", "+b1", "+c1"}));
  expect_quiet(sup);
  self->send(sup, cancel_atom::value);
  next_events(3);
}

BOOST_AUTO_TEST_CASE(rest_for_one_restarts_the_failed_and_later_children) {
  auto sup = spawn_supervisor(sys, three_children(self, restart_strategy::rest_for_one));
  next_events(3);
  self->send(address_of(sup, "b"), crash_atom::value);
  BOOST_CHECK((next_events(4) == events{"-b", "-c", "+b1", "+c1"}));
  expect_quiet(sup);
  self->send(address_of(sup, "a"), crash_atom::value);
  BOOST_CHECK((next_events(6) == events{"-a", "-c", "-b", "+a1", "+b2", "+c2"}));
  expect_quiet(sup);
  self->send(sup, cancel_atom::value);
  next_events(3);
}

BOOST_AUTO_TEST_CASE(permanent_child_restarts_even_after_a_normal_exit) {
  supervisor_spec spec;
  spec.children = {observed_child("p", self, restart_type::permanent)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  self->send(address_of(sup, "p"), finish_atom::value);
  BOOST_CHECK((next_events(2) == events{"-p", "+p1"}));
  self->send(sup, cancel_atom::value);
  next_event();
}

BOOST_AUTO_TEST_CASE(transient_child_restarts_only_after_a_failure) {
  supervisor_spec spec;
  spec.children = {observed_child("t", self, restart_type::transient)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto t = address_of(sup, "t");
  self->send(t, crash_atom::value);
  BOOST_CHECK((next_events(2) == events{"-t", "+t1"}));
  self->send(t, finish_atom::value);
  BOOST_CHECK_EQUAL(next_event(), "-t");
  expect_quiet(sup);
  auto report = status(sup);
  BOOST_REQUIRE_EQUAL(report.children.size(), 1u);
  BOOST_CHECK(report.children[0].stopped == stop_reason::completed);
  BOOST_CHECK_EQUAL(report.children[0].restarts, 1u);
  self->send(sup, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(temporary_child_is_never_restarted) {
  supervisor_spec spec;
  spec.children = {observed_child("tmp", self, restart_type::temporary),
                   observed_child("other", self)};
  auto sup = spawn_supervisor(sys, spec);
  next_events(2);
  self->send(address_of(sup, "tmp"), crash_atom::value);
  BOOST_CHECK_EQUAL(next_event(), "-tmp");
  expect_quiet(sup);
  auto report = status(sup);
  BOOST_CHECK(report.children[0].stopped == stop_reason::crashed);
  BOOST_CHECK(report.children[1].stopped == stop_reason::running);
  self->send(sup, cancel_atom::value);
  next_event();
}

namespace {

// `crasher` fails; while its group stops, `held` holds the stop up, and the
// transient `done` and the temporary `once` finish normally meanwhile. The
// group then restarts without them: only a failure restarts a transient
// child, and a temporary one never restarts.
void finished_children_stay_finished(event_log& log, restart_strategy strategy,
                                     const std::vector<std::string>& order,
                                     const events& restarted) {
  auto& self = log.self;
  supervisor_spec spec;
  spec.strategy = strategy;
  spec.intensity = {10, std::chrono::seconds(10)};
  for (auto& name : order) {
    if (name == "held")
      spec.children.push_back(held_child(name, self));
    else if (name == "done")
      spec.children.push_back(observed_child(name, self, restart_type::transient));
    else if (name == "once")
      spec.children.push_back(observed_child(name, self, restart_type::temporary));
    else
      spec.children.push_back(observed_child(name, self));
  }
  auto sup = spawn_supervisor(log.sys, spec);
  log.next_events(order.size());
  self->send(log.address_of(sup, "crasher"), crash_atom::value);
  BOOST_CHECK_EQUAL(log.next_event(), "-crasher");
  self->receive([](stopping_atom, const std::string& name) { BOOST_CHECK_EQUAL(name, "held"); },
                caf::after(patience) >> [] { BOOST_FAIL("held was not asked to stop"); });
  self->send(log.address_of(sup, "done"), finish_atom::value);
  self->send(log.address_of(sup, "once"), finish_atom::value);
  auto finished = log.next_events(2);
  std::sort(finished.begin(), finished.end());
  BOOST_CHECK((finished == events{"-done", "-once"}));
  log.await_child(sup, "done", stopped, "stopped");
  log.await_child(sup, "once", stopped, "stopped");
  self->send(log.address_of(sup, "held"), release_atom::value);
  BOOST_CHECK_EQUAL(log.next_event(), "-held");
  // A restart of `done` or `once` would come before the others': the
  // supervisor starts the group in order, in one go.
  BOOST_CHECK(log.next_events(restarted.size()) == restarted);
  log.expect_quiet(sup);
  auto report = log.status(sup);
  for (auto name : {"done", "once"}) {
    auto child = find_report(report, name);
    BOOST_REQUIRE(child);
    BOOST_CHECK(child->stopped == stop_reason::completed);
    BOOST_CHECK_EQUAL(child->restarts, 0u);
  }
  self->send(sup, cancel_atom::value);
  log.next_events(restarted.size());
}

} // namespace

BOOST_AUTO_TEST_CASE(one_for_all_does_not_restart_children_that_finished) {
  finished_children_stay_finished(*this, restart_strategy::one_for_all,
                                  {"done", "once", "held", "crasher"},
                                  {"+held1", "+crasher1"});
}

BOOST_AUTO_TEST_CASE(rest_for_one_does_not_restart_children_that_finished) {
  finished_children_stay_finished(*this, restart_strategy::rest_for_one,
                                  {"crasher", "done", "once", "held"},
                                  {"+crasher1", "+held1"});
}

BOOST_AUTO_TEST_CASE(exceeding_intensity_fails_the_supervisor) {
  supervisor_spec spec;
  spec.intensity = {1, std::chrono::seconds(30)};
  spec.children = {observed_child("w", self), observed_child("v", self)};
  auto sup = spawn_supervisor(sys, spec);
  self->monitor(sup);
  next_events(2);
  auto w = address_of(sup, "w");
  self->send(w, crash_atom::value);
  BOOST_CHECK((next_events(2) == events{"-w", "+w1"}));
  self->send(w, crash_atom::value);
  // The second restart is one too many: the children stop, reverse order.
  BOOST_CHECK((next_events(2) == events{"-w", "-v"}));
  auto reason = wait_down(sup);
  BOOST_CHECK(reason == errc::restart_intensity_exceeded);
}

BOOST_AUTO_TEST_CASE(escalation_restarts_the_subtree_under_the_parent) {
  supervisor_spec inner;
  inner.name = "inner";
  inner.intensity = {1, std::chrono::seconds(30)};
  inner.children = {observed_child("w", self)};
  supervisor_spec root;
  root.name = "root";
  root.children = {observed_child("peer", self), supervisor_child(inner)};
  auto sup = spawn_supervisor(sys, root);
  BOOST_CHECK((next_events(2) == events{"+peer0", "+w0"}));
  // Ask the inner supervisor (through its stable address) for w's address.
  auto w = address_of(address_of(sup, "inner"), "w");
  self->send(w, crash_atom::value);
  BOOST_CHECK((next_events(2) == events{"-w", "+w1"}));
  self->send(w, crash_atom::value);
  // inner gives up; root restarts inner, which starts a fresh w.
  BOOST_CHECK((next_events(2) == events{"-w", "+w0"}));
  expect_quiet(sup);
  auto report = status(sup);
  auto inner_report = find_report(report, "inner");
  BOOST_REQUIRE(inner_report != nullptr);
  BOOST_CHECK_EQUAL(inner_report->restarts, 1u);
  BOOST_CHECK_EQUAL(find_report(report, "peer")->restarts, 0u);
  self->send(sup, cancel_atom::value);
  next_events(2);
}

BOOST_AUTO_TEST_CASE(backoff_spaces_restarts_exponentially) {
  using clock = std::chrono::steady_clock;
  // Start times, taken by the factory itself; read only after the start
  // event that follows each write.
  auto starts = std::make_shared<std::vector<clock::time_point>>();
  auto w = observed_child("w", self);
  w.start = [starts, start = w.start](const spawn_context& ctx) {
    starts->push_back(clock::now());
    return start(ctx);
  };
  supervisor_spec spec;
  spec.intensity = {5, std::chrono::seconds(30)};
  spec.backoff = {std::chrono::milliseconds(40), std::chrono::seconds(1), 2.0};
  spec.children = {w};
  auto sup = spawn_supervisor(sys, spec);
  expect_start("w", 0);
  for (uint32_t n = 1; n <= 3; ++n) {
    self->send(address_of(sup, "w"), crash_atom::value);
    BOOST_CHECK_EQUAL(next_event(), "-w");
    expect_start("w", n);
  }
  BOOST_REQUIRE_EQUAL(starts->size(), 4u);
  // Each restart came at least its backoff after the previous start (a
  // timer never fires early): 40, 80, 160 ms.
  auto at_least = std::chrono::milliseconds(40);
  for (size_t i = 1; i < starts->size(); ++i, at_least *= 2)
    BOOST_CHECK((*starts)[i] - (*starts)[i - 1] >= at_least);
  self->send(sup, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(restarted_child_keeps_its_address_and_gets_held_messages) {
  supervisor_spec spec;
  // The backoff keeps the child down long enough to send it messages.
  spec.backoff = {std::chrono::milliseconds(200), std::chrono::seconds(1), 2.0};
  spec.children = {observed_child("w", self)};
  auto sup = spawn_supervisor(sys, spec);
  auto first = expect_start("w", 0);
  auto w = address_of(sup, "w");
  crash_and_wait(sup, "w");
  for (int i = 0; i < 5; ++i)
    self->send(w, note_atom::value);
  self->request(w, patience, whoami_atom::value)
    .receive(
      [&](const std::string& name, uint32_t incarnation, uint64_t notes) {
        BOOST_CHECK_EQUAL(name, "w");
        BOOST_CHECK_EQUAL(incarnation, 1u);
        BOOST_CHECK_EQUAL(notes, 5u);
      },
      fail_on_error());
  auto second = expect_start("w", 1);
  BOOST_CHECK(first != second);
  BOOST_CHECK(address_of(sup, "w") == w);
  self->send(sup, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(messages_to_a_child_that_will_not_return_are_counted_lost) {
  supervisor_spec spec;
  spec.children = {observed_child("gone", self, restart_type::temporary)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto gone = address_of(sup, "gone");
  crash_and_wait(sup, "gone");
  for (int i = 0; i < 3; ++i)
    self->send(gone, note_atom::value);
  self->request(gone, patience, whoami_atom::value)
    .receive([&](const std::string&, uint32_t, uint64_t) {
               BOOST_ERROR("a child that is gone answered");
             },
             [&](caf::error& e) {
               BOOST_CHECK(e == errc::child_unavailable);
             });
  auto report = request_report(sup, caf::make_message(drain_atom::value));
  BOOST_REQUIRE_EQUAL(report.children.size(), 1u);
  BOOST_CHECK_EQUAL(report.children[0].lost, 4u);
}

// The relay lets only the supervisor's own drain find the child gone
// uncounted (it may have completed); a drain from anyone else is a message
// that was not delivered.
BOOST_AUTO_TEST_CASE(drain_from_another_sender_to_a_gone_child_is_counted_lost) {
  supervisor_spec spec;
  spec.children = {observed_child("gone", self, restart_type::temporary)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto gone = address_of(sup, "gone");
  crash_and_wait(sup, "gone");
  self->send(gone, drain_atom::value);
  auto report = request_report(sup, caf::make_message(drain_atom::value));
  BOOST_REQUIRE_EQUAL(report.children.size(), 1u);
  BOOST_CHECK_EQUAL(report.children[0].lost, 1u);
}

// An exit sent to a child's address ends the address, not the child: the
// supervisor still stops the child and reports it, and closing an address
// that is gone does not hold the report up.
BOOST_AUTO_TEST_CASE(address_ended_by_an_exit_does_not_hold_up_the_report) {
  supervisor_spec spec;
  spec.children = {observed_child("w", self)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto w = address_of(sup, "w");
  self->monitor(w);
  self->send_exit(w, caf::exit_reason::kill);
  self->receive([&](caf::down_msg& d) { BOOST_CHECK(d.source == w.address()); },
                caf::after(patience) >> [] { BOOST_FAIL("the address did not end"); });
  auto report = request_report(sup, caf::make_message(drain_atom::value));
  BOOST_REQUIRE_EQUAL(report.children.size(), 1u);
  BOOST_CHECK(report.children[0].stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(report.children[0].lost, 0u);
  BOOST_CHECK_EQUAL(next_event(), "-w");
}

// The addresses end with their supervisor: a request to one is refused at
// once instead of being held for a child that will not come back.
BOOST_AUTO_TEST_CASE(addresses_end_with_their_supervisor) {
  supervisor_spec spec;
  spec.children = {observed_child("w", self)};
  auto sup = spawn_supervisor(sys, spec);
  next_event();
  auto w = address_of(sup, "w");
  self->monitor(w);
  request_report(sup, caf::make_message(drain_atom::value));
  BOOST_CHECK_EQUAL(next_event(), "-w");
  self->receive([&](caf::down_msg& d) { BOOST_CHECK(d.source == w.address()); },
                caf::after(patience) >> [] {
                  BOOST_FAIL("the address outlived its supervisor");
                });
  self->request(w, patience, whoami_atom::value)
    .receive([&](const std::string&, uint32_t,
                 uint64_t) { BOOST_ERROR("an ended address answered"); },
             [&](caf::error& e) { BOOST_CHECK(e == caf::sec::request_receiver_down); });
}

BOOST_AUTO_TEST_CASE(throwing_factory_is_a_crash_the_supervisor_handles) {
  auto calls = std::make_shared<int>(0);
  child_spec flaky;
  flaky.name = "flaky";
  flaky.start = [calls, observer = caf::actor{self}](const spawn_context& ctx) {
    if ((*calls)++ == 0)
      throw std::runtime_error("constructor failed");
    auto handle = ctx.system().spawn(observed, std::string{"flaky"},
                                     ctx.restarts(), observer);
    caf::anon_send(observer, started_atom::value, std::string{"flaky"},
                   ctx.restarts(), handle);
    return handle;
  };
  supervisor_spec spec;
  spec.children = {flaky};
  auto sup = spawn_supervisor(sys, spec);
  expect_start("flaky", 1);
  auto report = status(sup);
  BOOST_CHECK(report.children[0].stopped == stop_reason::running);
  BOOST_CHECK_EQUAL(report.children[0].restarts, 1u);
  BOOST_CHECK_EQUAL(*calls, 2);
  self->send(sup, cancel_atom::value);
  next_event();
}

BOOST_AUTO_TEST_CASE(throwing_handler_is_a_crash_the_supervisor_handles) {
  child_spec thrower;
  thrower.name = "thrower";
  thrower.start = [observer = caf::actor{self}](const spawn_context& ctx) {
    auto restarts = ctx.restarts();
    caf::anon_send(observer, started_atom::value, std::string{"thrower"},
                   restarts, caf::actor{});
    return ctx.system().spawn(
      [](caf::event_based_actor*, std::string) -> caf::behavior {
        return {[](crash_atom) -> int { throw std::logic_error("handler threw"); }};
      },
      ctx.name());
  };
  supervisor_spec spec;
  spec.children = {thrower};
  auto sup = spawn_supervisor(sys, spec);
  expect_start("thrower", 0);
  self->send(address_of(sup, "thrower"), crash_atom::value);
  expect_start("thrower", 1);
  auto report = status(sup);
  BOOST_CHECK_EQUAL(report.children[0].restarts, 1u);
  self->send(sup, cancel_atom::value);
}

BOOST_AUTO_TEST_SUITE_END()
