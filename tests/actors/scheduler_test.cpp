// troupe's scheduler (actors/detail/scheduler.cpp) is the default, and its
// next slot neither strands an actor behind a busy one nor lets two actors
// messaging each other starve the rest.

#include <boost/test/unit_test.hpp>

#include <troupe/actors/detail/scheduler.hpp>
#include <troupe/actors/system.hpp>

#include <caf/all.hpp>
#include <caf/detail/scope_guard.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

using namespace troupe;

namespace {

using go_atom = caf::atom_constant<caf::atom("go")>;
using ball_atom = caf::atom_constant<caf::atom("ball")>;

constexpr auto bound = std::chrono::seconds(10);

system_settings threads(size_t n) {
  system_settings s;
  s.scheduler_threads = n;
  return s;
}

// Sends the ball back to whoever sent it, until told to stop.
caf::behavior player(caf::event_based_actor* self,
                     std::shared_ptr<std::atomic<bool>> stop) {
  return {[self, stop](ball_atom) {
    if (!stop->load())
      self->send(caf::actor_cast<caf::actor>(self->current_sender()),
                 ball_atom::value);
  }};
}

} // namespace

BOOST_AUTO_TEST_SUITE(scheduler)

BOOST_AUTO_TEST_CASE(troupe_scheduler_runs_unless_another_is_chosen) {
  troupe::system defaults;
  BOOST_CHECK(detail::runs_troupe_scheduler(defaults));
  for (auto policy : {caf::atom("sharing"), caf::atom("testing")}) {
    caf::actor_system_config cfg;
    cfg.set("scheduler.policy", policy);
    troupe::system other{cfg};
    BOOST_CHECK(!detail::runs_troupe_scheduler(other));
  }
  system_settings caf_own;
  caf_own.troupe_scheduler = false;
  troupe::system plain{caf_own};
  BOOST_CHECK(!detail::runs_troupe_scheduler(plain));
}

// The helper sits in the slot of the worker that runs the waiter, which
// blocks until the helper ran: only the other worker can run it.
BOOST_AUTO_TEST_CASE(idle_worker_runs_an_actor_woken_behind_a_busy_one) {
  troupe::system sys{threads(2)};
  caf::scoped_actor self{sys.actors()};
  auto helped = std::make_shared<std::promise<void>>();
  auto helper = sys.actors().spawn(
    [](caf::event_based_actor*, std::shared_ptr<std::promise<void>> p)
      -> caf::behavior { return {[p](go_atom) { p->set_value(); }}; },
    helped);
  auto waiter = sys.actors().spawn(
    [](caf::event_based_actor* me, caf::actor h,
       std::shared_ptr<std::promise<void>> p) -> caf::behavior {
      return {[me, h, p](go_atom) {
        me->send(h, go_atom::value);
        return p->get_future().wait_for(bound) == std::future_status::ready;
      }};
    },
    helper, helped);
  self->request(waiter, caf::infinite, go_atom::value)
    .receive([](bool helper_ran) { BOOST_CHECK(helper_ran); },
             [](caf::error& e) { BOOST_FAIL(caf::to_string(e)); });
}

// One worker, two actors sending a ball back and forth for good: the third
// actor, woken from outside the scheduler, still gets its turn.
BOOST_AUTO_TEST_CASE(actors_messaging_each_other_do_not_starve_the_queue) {
  troupe::system sys{threads(1)};
  caf::scoped_actor self{sys.actors()};
  auto stop = std::make_shared<std::atomic<bool>>(false);
  // Stops the game however the test ends: the system waits for its actors.
  auto stop_game = caf::detail::make_scope_guard([stop] { stop->store(true); });
  auto a = sys.actors().spawn(player, stop);
  auto b = sys.actors().spawn(player, stop);
  caf::send_as(a, b, ball_atom::value);
  auto third = sys.actors().spawn(
    [](caf::event_based_actor*, bool) -> caf::behavior {
      return {[](go_atom) { return true; }};
    },
    true);
  self->request(third, bound, go_atom::value)
    .receive([](bool answered) { BOOST_CHECK(answered); },
             [](caf::error& e) { BOOST_FAIL(caf::to_string(e)); });
}

// CAF 0.17 delivers a response promise through the worker its actor last
// ran on, whichever thread delivers: the answer's receiver lands in that
// worker's slot from another thread, with no wake-up. With one thread, the
// worker is asleep by then (the delay only makes sure of that; the bound is
// the request's timeout), and must still find it.
BOOST_AUTO_TEST_CASE(answer_delivered_from_another_thread_reaches_a_sleeping_worker) {
  troupe::system sys{threads(1)};
  caf::scoped_actor self{sys.actors()};
  auto deliverer = std::make_shared<std::thread>();
  auto late = sys.actors().spawn(
    [](caf::event_based_actor* me, std::shared_ptr<std::thread> t)
      -> caf::behavior {
      return {[me, t](go_atom) {
        auto rp = me->make_response_promise<bool>();
        *t = std::thread{[rp]() mutable {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          rp.deliver(true);
        }};
        return rp;
      }};
    },
    deliverer);
  auto asker = sys.actors().spawn(
    [](caf::event_based_actor* me, caf::actor l) -> caf::behavior {
      return {[me, l](go_atom) {
        auto rp = me->make_response_promise<bool>();
        me->request(l, caf::infinite, go_atom::value)
          .then([rp](bool x) mutable { rp.deliver(x); });
        return rp;
      }};
    },
    late);
  self->request(asker, bound, go_atom::value)
    .receive([](bool answered) { BOOST_CHECK(answered); },
             [](caf::error& e) { BOOST_ERROR(caf::to_string(e)); });
  // Messages from outside wake the worker even if the test failed, so that
  // the system can stop.
  caf::anon_send_exit(asker, caf::exit_reason::kill);
  caf::anon_send_exit(late, caf::exit_reason::kill);
  if (deliverer->joinable())
    deliverer->join();
}

// CAF's resume bookkeeps the running actor's id in the current logger; a
// worker has none unless the logger prints something.
BOOST_AUTO_TEST_CASE(workers_run_without_a_logger_unless_it_prints) {
  auto logger_seen_by_an_actor = [](troupe::system& sys) {
    caf::scoped_actor self{sys.actors()};
    auto probe = sys.actors().spawn(
      [](caf::event_based_actor*, caf::logger* system_logger) -> caf::behavior {
        return {[system_logger](go_atom) -> std::string {
          auto current = caf::logger::current_logger();
          if (current == nullptr)
            return "none";
          return current == system_logger ? "the system's" : "another";
        }};
      },
      &sys.actors().logger());
    std::string seen;
    self->request(probe, bound, go_atom::value)
      .receive([&](std::string& x) { seen = std::move(x); },
               [](caf::error& e) { BOOST_ERROR(caf::to_string(e)); });
    return seen;
  };
  troupe::system quiet;
  BOOST_CHECK_EQUAL(logger_seen_by_an_actor(quiet), "none");
  caf::actor_system_config cfg;
  cfg.set("logger.console-verbosity", caf::atom("error"));
  cfg.set("logger.console", caf::atom("colored"));
  troupe::system printing{cfg};
  BOOST_REQUIRE(detail::runs_troupe_scheduler(printing));
  BOOST_CHECK_EQUAL(logger_seen_by_an_actor(printing), "the system's");
}

BOOST_AUTO_TEST_CASE(idle_workers_poll_longer_and_steal_at_every_nap) {
  auto setting = [](troupe::system& sys, const char* key) {
    return caf::get_or(sys.actors().config(), key, size_t{0});
  };
  const char* polls = "work-stealing.aggressive-poll-attempts";
  const char* steals = "work-stealing.moderate-steal-interval";
  troupe::system defaults;
  BOOST_CHECK_EQUAL(setting(defaults, polls), 15000u);
  BOOST_CHECK_EQUAL(setting(defaults, steals), 1u);
  caf::actor_system_config cfg;
  cfg.set(polls, size_t{100});
  cfg.set(steals, size_t{5});
  troupe::system configured{cfg};
  BOOST_CHECK_EQUAL(setting(configured, polls), 100u);
  BOOST_CHECK_EQUAL(setting(configured, steals), 5u);
}

BOOST_AUTO_TEST_SUITE_END()
