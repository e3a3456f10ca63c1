// Parallel joins: all-of gathers in branch order with errors, try-join
// returns all values or fails fast and really stops the slow branches, the
// overall timeout, cancelling a join actor or its caller, config validation.

#include "flaky_service.hpp"

#include <troupe/patterns/join.hpp>

#include <atomic>
#include <memory>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using work_atom = caf::atom_constant<caf::atom("work")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

using counter = std::shared_ptr<std::atomic<uint64_t>>;

struct ticker_state {
  uint64_t ticks = 0;
  caf::response_promise rp;
  static inline const char* name = "ticker";
};

/// A branch that works in 1 ms steps, counting each in `ticks`: (work_atom)
/// is answered with the number of steps once `needed` are done, or with
/// caf::sec::runtime_error "branch fails" if `fail`. Between two steps it
/// takes its other messages, so an exit stops it there.
caf::behavior ticker(caf::stateful_actor<ticker_state>* self, counter ticks,
                     uint64_t needed, bool fail) {
  return {
    [self](work_atom) -> caf::result<uint64_t> {
      self->state.rp = self->make_response_promise();
      self->delayed_send(self, 1ms, tick_atom::value);
      return self->state.rp;
    },
    [=](tick_atom) {
      ++*ticks;
      if (++self->state.ticks < needed) {
        self->delayed_send(self, 1ms, tick_atom::value);
        return;
      }
      if (fail)
        self->state.rp.deliver(caf::make_error(caf::sec::runtime_error, "branch fails"));
      else
        self->state.rp.deliver(self->state.ticks);
    },
  };
}

/// The join's results as a batch: each branch's answer, or its error alone.
batch as_batch(join_results& rs) {
  batch b;
  for (auto& r : rs)
    b.items.push_back(r ? *r : caf::make_message(r.error()));
  return b;
}

void all_joiner(caf::event_based_actor* self, caf::actor test,
                std::vector<join_branch> branches, caf::timespan timeout) {
  join_all(self, std::move(branches), timeout,
           [test](join_results& rs) { caf::anon_send(test, as_batch(rs)); });
}

void try_joiner(caf::event_based_actor* self, caf::actor test,
                std::vector<join_branch> branches, caf::timespan timeout) {
  try_join(
    self, std::move(branches), timeout,
    [test](std::vector<item>& xs) { caf::anon_send(test, batch{xs}); },
    [test](caf::error& e) { caf::anon_send(test, e); });
}

/// An owned branch that traps exits: it answers (work_atom) with 1 at once
/// and ignores any exit but kill.
caf::behavior exit_trapper(caf::event_based_actor* self, int) {
  self->set_exit_handler([](caf::exit_msg&) {});
  return {[](work_atom) { return uint64_t{1}; }};
}

/// Runs join_all over `branches` for each (work_atom) and tells the test
/// (batch, the join actor), staying alive between joins as a long-lived
/// caller does.
caf::behavior repeat_joiner(caf::event_based_actor* self, caf::actor test,
                            std::vector<join_branch> branches) {
  return {[=](work_atom) {
    join_all(self, branches, caf::timespan{0}, [self, test](join_results& rs) {
      caf::anon_send(test, as_batch(rs), self->current_sender());
    });
  }};
}

uint64_t value_of(const item& x) {
  BOOST_REQUIRE(x.match_elements<uint64_t>());
  return x.get_as<uint64_t>(0);
}

caf::error error_of(const item& x) {
  BOOST_REQUIRE(x.match_elements<caf::error>());
  return x.get_as<caf::error>(0);
}

struct join_fixture : flaky_fixture {
  /// An owned branch: a ticker spawned for the join.
  join_branch tick_branch(counter ticks, uint64_t needed, bool fail = false) {
    auto t = sys.actors().spawn(ticker, std::move(ticks), needed, fail);
    return join_branch{t, caf::make_message(work_atom::value), true};
  }

  /// A shared branch: (n) to the flaky service.
  join_branch service_branch(uint64_t n) {
    return join_branch{service, caf::make_message(n), false};
  }

  static counter new_counter() {
    return std::make_shared<std::atomic<uint64_t>>(0);
  }

  batch receive_batch() {
    return receive_one<batch>("the join's values");
  }

  caf::error receive_error() {
    return receive_one<caf::error>("the join's error");
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(join, join_fixture)

BOOST_AUTO_TEST_CASE(all_of_gathers_every_result_in_branch_order_with_errors) {
  // Completion order: the services at once, then the 3-step ticker, then the
  // failing 5-step one; the result keeps the branch order.
  auto three = tick_branch(new_counter(), 3);
  auto failing = tick_branch(new_counter(), 5, true);
  self->monitor(three.target);
  self->monitor(failing.target);
  std::vector<join_branch> branches{service_branch(1), failing, service_branch(2), three};
  sys.actors().spawn(all_joiner, caf::actor{self}, branches, caf::timespan{0});
  auto b = receive_batch();
  BOOST_REQUIRE_EQUAL(b.items.size(), 4u);
  BOOST_CHECK_EQUAL(value_of(b.items[0]), answer_to(1));
  BOOST_CHECK(error_of(b.items[1]) == caf::sec::runtime_error);
  BOOST_CHECK_EQUAL(value_of(b.items[2]), answer_to(2));
  BOOST_CHECK_EQUAL(value_of(b.items[3]), 3u);
  // The join stops the owned branches it is done with, answered or not.
  for (int i = 0; i < 2; ++i)
    self->receive([](caf::down_msg& x) { BOOST_CHECK(x.reason == caf::exit_reason::kill); },
                  caf::after(patience) >> [] { BOOST_FAIL("an owned branch kept running"); });
}

BOOST_AUTO_TEST_CASE(try_join_answers_all_values_in_branch_order) {
  std::vector<join_branch> branches{tick_branch(new_counter(), 4), service_branch(5),
                                    tick_branch(new_counter(), 2)};
  sys.actors().spawn(try_joiner, caf::actor{self}, branches, caf::timespan{0});
  auto b = receive_batch();
  BOOST_REQUIRE_EQUAL(b.items.size(), 3u);
  BOOST_CHECK_EQUAL(value_of(b.items[0]), 4u);
  BOOST_CHECK_EQUAL(value_of(b.items[1]), answer_to(5));
  BOOST_CHECK_EQUAL(value_of(b.items[2]), 2u);
}

BOOST_AUTO_TEST_CASE(try_join_fails_fast_and_cancels_the_slow_branches) {
  constexpr uint64_t forever = 1'000'000; // some 17 minutes of steps
  auto slow1_ticks = new_counter();
  auto slow2_ticks = new_counter();
  auto slow1 = tick_branch(slow1_ticks, forever);
  auto slow2 = tick_branch(slow2_ticks, forever);
  auto failing = tick_branch(new_counter(), 20, true);
  self->monitor(slow1.target);
  self->monitor(slow2.target);
  // A shared branch too: it cannot be stopped, only abandoned.
  script(caf::make_message(hold_atom::value));
  std::vector<join_branch> branches{slow1, service_branch(1), failing, slow2};
  sys.actors().spawn(try_joiner, caf::actor{self}, branches, caf::timespan{0});
  auto e = receive_error();
  BOOST_CHECK(e == caf::sec::runtime_error);
  auto text = sys.actors().render(e);
  BOOST_CHECK_MESSAGE(contains(text, "branch 2 of 4 failed"), text);
  BOOST_CHECK(contains(text, "branch fails"));
  // Both slow branches were working, and are stopped: killed, not finished.
  for (int i = 0; i < 2; ++i)
    self->receive([](caf::down_msg& x) { BOOST_CHECK(x.reason == caf::exit_reason::kill); },
                  caf::after(patience) >> [] { BOOST_FAIL("a slow branch kept running"); });
  auto after1 = slow1_ticks->load();
  auto after2 = slow2_ticks->load();
  BOOST_CHECK_GT(after1, 0u);
  BOOST_CHECK_GT(after2, 0u);
  BOOST_CHECK_LT(after1, forever);
  BOOST_CHECK_LT(after2, forever);
  // Their steps stay where they stopped while other work goes on.
  script(caf::make_message(release_atom::value));
  for (int i = 0; i < 5; ++i)
    BOOST_CHECK(call(service, 7));
  BOOST_CHECK_EQUAL(slow1_ticks->load(), after1);
  BOOST_CHECK_EQUAL(slow2_ticks->load(), after2);
}

BOOST_AUTO_TEST_CASE(join_actor_reports_cancelled_and_abandoned_branches) {
  fail_next(1, failure_kind::own_error);
  script(caf::make_message(hold_atom::value));
  // The service gets (1) first, which fails; (2) is held.
  std::vector<join_branch> branches{tick_branch(new_counter(), 1'000'000), service_branch(1),
                                    service_branch(2)};
  join_config cfg;
  cfg.mode = join_mode::first_error;
  spawn_context ctx{sys.actors()};
  ctx.report_to(self);
  auto j = spawn_join(ctx, cfg, branches);
  self->request(j, patience, join_atom::value)
    .receive([](batch&) { BOOST_ERROR("the join succeeded"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::runtime_error); });
  auto r = receive_one<actor_report>("the join's final report");
  BOOST_CHECK_EQUAL(r.kind, "join");
  BOOST_CHECK_EQUAL(r.state, "done");
  BOOST_CHECK_EQUAL(r.stats["branches"], 3);
  BOOST_CHECK_EQUAL(r.stats["failed"], 1);
  BOOST_CHECK_EQUAL(r.stats["cancelled"], 1);
  BOOST_CHECK_EQUAL(r.stats["abandoned"], 1);
  script(caf::make_message(release_atom::value));
}

BOOST_AUTO_TEST_CASE(overall_timeout_fails_what_is_unanswered_with_call_timeout) {
  auto slow = tick_branch(new_counter(), 1'000'000);
  self->monitor(slow.target);
  auto start = steady::now();
  std::vector<join_branch> branches{service_branch(3), slow};
  // 500 ms: the service branch must answer within it, even on a loaded
  // machine; the slow one never does.
  sys.actors().spawn(all_joiner, caf::actor{self}, branches, caf::timespan{500ms});
  auto b = receive_batch();
  BOOST_CHECK(steady::now() - start >= 500ms);
  BOOST_REQUIRE_EQUAL(b.items.size(), 2u);
  BOOST_CHECK_EQUAL(value_of(b.items[0]), answer_to(3));
  auto e = error_of(b.items[1]);
  BOOST_CHECK(e == errc::call_timeout);
  BOOST_CHECK(contains(sys.actors().render(e), "no answer within 500 ms"));
  BOOST_CHECK(wait_down(slow.target) == caf::exit_reason::kill);
  // Try-join: the timeout is the join's error.
  auto slow2 = tick_branch(new_counter(), 1'000'000);
  branches = {service_branch(4), slow2};
  sys.actors().spawn(try_joiner, caf::actor{self}, branches, caf::timespan{500ms});
  BOOST_CHECK(receive_error() == errc::call_timeout);
}

BOOST_AUTO_TEST_CASE(cancelled_join_actor_answers_cancelled_and_stops_its_branches) {
  auto slow = tick_branch(new_counter(), 1'000'000);
  self->monitor(slow.target);
  auto j = spawn_join(sys.actors(), join_config{}, {slow});
  auto pending = self->request(j, patience, join_atom::value);
  BOOST_CHECK_EQUAL(status(j).state,
                    "running");
  self->send(j, cancel_atom::value);
  pending.receive([](batch&) { BOOST_ERROR("the join succeeded"); },
                  [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
  BOOST_CHECK(wait_down(slow.target) == caf::exit_reason::kill);
}

BOOST_AUTO_TEST_CASE(join_stops_its_branches_when_its_caller_stops) {
  auto slow = tick_branch(new_counter(), 1'000'000);
  self->monitor(slow.target);
  auto caller = sys.actors().spawn(all_joiner, caf::actor{self},
                                   std::vector<join_branch>{slow}, caf::timespan{0});
  caf::anon_send_exit(caller, caf::exit_reason::user_shutdown);
  BOOST_CHECK(wait_down(slow.target) == caf::exit_reason::kill);
}

BOOST_AUTO_TEST_CASE(drain_and_cancel_requested_from_a_join_actor_are_answered) {
  for (bool cancel : {false, true}) {
    auto j = spawn_join(sys.actors(), join_config{}, {service_branch(1)});
    self->monitor(j);
    auto msg = cancel ? caf::make_message(cancel_atom::value)
                      : caf::make_message(drain_atom::value);
    bool answered = false;
    self->request(j, patience, std::move(msg))
      .receive([&] { answered = true; },
               [&](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
    BOOST_CHECK(answered);
    auto reason = wait_down(j);
    if (cancel)
      BOOST_CHECK(reason == errc::cancelled);
    else
      BOOST_CHECK(!reason);
  }
}

BOOST_AUTO_TEST_CASE(answered_owned_branch_that_traps_exits_is_still_stopped) {
  auto trapper = sys.actors().spawn(exit_trapper, 0);
  self->monitor(trapper);
  std::vector<join_branch> branches{
    join_branch{trapper, caf::make_message(work_atom::value), true}};
  sys.actors().spawn(all_joiner, caf::actor{self}, branches, caf::timespan{0});
  auto b = receive_batch();
  BOOST_REQUIRE_EQUAL(b.items.size(), 1u);
  BOOST_CHECK_EQUAL(value_of(b.items[0]), 1u);
  BOOST_CHECK(wait_down(trapper) == caf::exit_reason::kill);
}

BOOST_AUTO_TEST_CASE(finished_join_leaves_no_monitor_on_its_caller) {
  auto caller = sys.actors().spawn(repeat_joiner, caf::actor{self},
                                   std::vector<join_branch>{service_branch(2)});
  self->send(caller, work_atom::value);
  caf::strong_actor_ptr join_ptr;
  self->receive(
    [&](batch& b, caf::strong_actor_ptr& j) {
      BOOST_CHECK_EQUAL(b.items.size(), 1u);
      join_ptr = std::move(j);
    },
    caf::after(patience) >> [] { BOOST_FAIL("no join result"); });
  BOOST_REQUIRE(join_ptr);
  auto j = caf::actor_cast<caf::actor>(join_ptr);
  self->monitor(j);
  wait_down(j);
  j = nullptr;
  // What still holds a weak reference to the stopped join: only the strong
  // references together (join_ptr). A monitor left on the caller would hold
  // one more, for as long as the caller lives.
  BOOST_CHECK_EQUAL(join_ptr->weak_refs.load(), 1u);
  caf::anon_send_exit(caller, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(invalid_join_config_names_the_field) {
  join_config negative;
  negative.timeout = -1ms;
  BOOST_CHECK(contains(config_rejection([&] { spawn_join(sys.actors(), negative, {}); }),
                       "timeout is negative"));
  join_config bad_mode;
  bad_mode.mode = static_cast<join_mode>(7);
  BOOST_CHECK(contains(config_rejection([&] { spawn_join(sys.actors(), bad_mode, {}); }),
                       "mode"));
  std::vector<join_branch> branches{service_branch(1), join_branch{}};
  BOOST_CHECK(contains(config_rejection([&] { spawn_join(sys.actors(), join_config{}, branches); }),
                       "branches[1].target is not an actor"));
}

BOOST_AUTO_TEST_SUITE_END()
