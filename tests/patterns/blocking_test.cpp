// Blocking work: a blocking call runs on a thread of its own and leaves the
// scheduler free for other actors; results come back as messages; an
// exception is an error answer; the executor bounds its threads and its
// queue, waits for running jobs on drain and answers every job on cancel.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/blocking.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace troupe;
using namespace troupe::test;

namespace {

using started_atom = caf::atom_constant<caf::atom("started")>;
using result_atom = caf::atom_constant<caf::atom("result")>;
using failure_atom = caf::atom_constant<caf::atom("failure")>;
using void_done_atom = caf::atom_constant<caf::atom("voiddone")>;

/// Jobs that wait for it block until the test opens it (or, if the test
/// failed before, until patience runs out).
class gate {
public:
  void open() {
    if (!opened_) {
      opened_ = true;
      promise_.set_value();
    }
  }
  void wait() const {
    future_.wait_for(patience);
  }
  ~gate() {
    open();
  }

private:
  std::promise<void> promise_;
  std::shared_future<void> future_{promise_.get_future().share()};
  bool opened_ = false;
};

int64_t stat(const actor_report& r, const std::string& key) {
  auto i = r.stats.find(key);
  if (i == r.stats.end()) {
    BOOST_ERROR("no stat " + key);
    return -1;
  }
  return i->second;
}

blocking_config with_threads(uint32_t n, size_t queue = 16) {
  blocking_config cfg;
  cfg.max_threads = n;
  cfg.queue_capacity = queue;
  return cfg;
}

/// Asks the executor to run `fn` on behalf of the event-based actor that
/// run_blocking is made for, and tells `observer` (result_atom, value) or
/// (failure_atom, error).
template <class F>
void ask_from_actor(caf::actor_system& sys, caf::actor executor, F fn,
                    caf::actor observer, caf::timespan timeout = caf::timespan{0}) {
  sys.spawn([=](caf::event_based_actor* self, int) {
    run_blocking(
      self, executor, fn,
      [=](auto& value) { self->send(observer, result_atom::value, value); },
      [=](caf::error& e) { self->send(observer, failure_atom::value, e); },
      timeout);
  }, 0);
}

struct blocking_fixture : system_fixture {
  caf::actor me{self};
  std::shared_ptr<gate> door = std::make_shared<gate>();

  /// A job that tells the test it started, waits at the door, returns x.
  std::function<int()> gated(int x) {
    caf::actor observer{self};
    auto d = door;
    return [observer, d, x] {
      caf::anon_send(observer, started_atom::value, x);
      d->wait();
      return x;
    };
  }

  int next_start() {
    int x = -1;
    self->receive([&](started_atom, int i) { x = i; },
                  caf::after(patience) >> [] { BOOST_FAIL("no job started"); });
    return x;
  }

  /// A job sent as a request from the test; the answer is read by take().
  caf::error request_error(const caf::actor& exec, blocking_job job) {
    caf::error result;
    self->request(exec, patience, std::move(job))
      .receive([&](int) { BOOST_ERROR("the job should have failed"); },
               [&](caf::error& e) { result = std::move(e); });
    return result;
  }


  /// Asks for the executor's status until n jobs wait in it: a bounded
  /// number of round trips, each a point of sync.
  void await_queued(const caf::actor& exec, int64_t n) {
    for (int i = 0; i < 10000; ++i)
      if (stat(status(exec), "queued") == n)
        return;
    BOOST_FAIL("the executor never held " + std::to_string(n) + " queued jobs");
  }

  void stop(const caf::actor& exec) {
    door->open();
    self->monitor(exec);
    self->send(exec, cancel_atom::value);
    wait_down(exec);
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(blocking, blocking_fixture)

BOOST_AUTO_TEST_CASE(config_is_validated) {
  auto rejection = [](blocking_config cfg) {
    return config_rejection([&] { cfg.validate(); });
  };
  blocking_config cfg;
  BOOST_CHECK_EQUAL(rejection(cfg), "(accepted)");
  cfg.max_threads = 0;
  BOOST_CHECK(contains(rejection(cfg), "max_threads"));
  cfg = blocking_config{};
  cfg.job_timeout = caf::timespan{-1};
  BOOST_CHECK(contains(rejection(cfg), "job_timeout"));
  cfg = blocking_config{};
  cfg.worker_restarts.period = caf::timespan{0};
  BOOST_CHECK(contains(rejection(cfg), "worker_restarts.period"));
  cfg.max_threads = 0;
  BOOST_CHECK(contains(config_rejection([&] { spawn_blocking_executor(sys, cfg); }),
                       "max_threads"));
}

// The point of the pattern: with the scheduler at 2 threads, two jobs each
// blocking their thread for 1 s would stall every actor if they ran on the
// scheduler. On threads of their own, a ping to another actor keeps
// answering in well under the bound all along.
BOOST_AUTO_TEST_CASE(two_blocking_calls_of_one_second_do_not_delay_pings) {
  auto exec = spawn_blocking_executor(sys, with_threads(2));
  auto ponger = sys.actors().spawn([](caf::event_based_actor*, int) -> caf::behavior {
    return {[](caf::ping_atom, int x) { return std::make_tuple(caf::pong_atom::value, x); }};
  }, 0);
  caf::actor observer{self};
  for (int job = 0; job < 2; ++job)
    submit_blocking(exec, me, [observer, job] {
      caf::anon_send(observer, started_atom::value, job);
      std::this_thread::sleep_for(std::chrono::seconds(1));
      return job;
    });
  next_start();
  next_start();
  auto begin = std::chrono::steady_clock::now();
  auto worst = std::chrono::nanoseconds{0};
  int pings = 0;
  int results = 0;
  while (results < 2) {
    auto sent = std::chrono::steady_clock::now();
    self->request(ponger, patience, caf::ping_atom::value, pings)
      .receive([&](caf::pong_atom, int) {},
               fail_on_error());
    worst = std::max(worst, std::chrono::steady_clock::now() - sent);
    ++pings;
    self->receive([&](int) { ++results; },
                  caf::after(std::chrono::milliseconds(1)) >> [] {});
  }
  auto took = std::chrono::steady_clock::now() - begin;
  auto worst_ms = std::chrono::duration<double, std::milli>(worst).count();
  BOOST_TEST_MESSAGE(pings << " pings while the jobs ran, slowest " << worst_ms << " ms");
  BOOST_CHECK_GE(pings, 50);
  // Blocked scheduler threads would hold a ping for up to 1000 ms; the bound
  // is far from that and leaves room for a loaded machine.
  BOOST_CHECK_LT(worst_ms, 200.0);
  // The jobs ran concurrently: both ended about 1 s after both had started
  // (one after the other would take 2 s).
  BOOST_TEST_MESSAGE("both jobs done after " << std::chrono::duration<double>(took).count()
                                             << " s");
  caf::anon_send_exit(ponger, caf::exit_reason::user_shutdown);
  stop(exec);
}

BOOST_AUTO_TEST_CASE(results_arrive_as_messages_to_actors_and_to_plain_code) {
  auto exec = spawn_blocking_executor(sys, with_threads(2));
  ask_from_actor(sys.actors(), exec, [] { return std::string{"from a thread"}; },
                 me);
  self->receive([](result_atom, std::string& s) { BOOST_CHECK_EQUAL(s, "from a thread"); },
                [](failure_atom, caf::error&) { BOOST_FAIL("the job failed"); },
                caf::after(patience) >> [] { BOOST_FAIL("no result"); });
  // A void function: the actor is told it finished.
  caf::actor observer{self};
  auto ran = std::make_shared<std::atomic<bool>>(false);
  sys.actors().spawn([=](caf::event_based_actor* a, int) {
    run_blocking(
      a, exec, [ran] { ran->store(true); },
      [=] { a->send(observer, void_done_atom::value); },
      [=](caf::error& e) { a->send(observer, failure_atom::value, e); });
  }, 0);
  self->receive([](void_done_atom) {},
                [](failure_atom, caf::error&) { BOOST_FAIL("the job failed"); },
                caf::after(patience) >> [] { BOOST_FAIL("no result"); });
  BOOST_CHECK(ran->load());
  // From outside actors: the result is sent to the actor named.
  submit_blocking(exec, me, [] { return 6 * 7; });
  BOOST_CHECK_EQUAL(receive_one<int>("the submitted job's result"), 42);
  // A request works too.
  self->request(exec, patience, make_blocking_job([] { return 1.5; }))
    .receive([](double x) { BOOST_CHECK_EQUAL(x, 1.5); },
             fail_on_error());
  auto report = status(exec);
  BOOST_CHECK_EQUAL(report.kind, "blocking");
  BOOST_CHECK_EQUAL(stat(report, "completed"), 4);
  stop(exec);
}

BOOST_AUTO_TEST_CASE(exception_becomes_an_error_answer_and_the_thread_carries_on) {
  auto exec = spawn_blocking_executor(sys, with_threads(1));
  ask_from_actor(sys.actors(), exec,
                 []() -> int { throw std::runtime_error("disk on fire"); }, me);
  caf::error err;
  self->receive([](result_atom, int) { BOOST_FAIL("the job should have failed"); },
                [&](failure_atom, caf::error& e) { err = e; },
                caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
  BOOST_CHECK(err == errc::job_threw);
  BOOST_CHECK(contains(sys.actors().render(err), "disk on fire"));
  // Not even a non-standard exception takes the worker down.
  auto other = request_error(exec, make_blocking_job([]() -> int { throw 17; }));
  BOOST_CHECK(other == errc::job_threw);
  submit_blocking(exec, me, [] { return 5; });
  BOOST_CHECK_EQUAL(receive_one<int>("a job after the exceptions"), 5);
  auto report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "failed"), 2);
  BOOST_CHECK_EQUAL(stat(report, "worker_restarts"), 0);
  stop(exec);
}

BOOST_AUTO_TEST_CASE(full_queue_refuses_a_job_with_pool_full) {
  auto exec = spawn_blocking_executor(sys, with_threads(1, 1));
  submit_blocking(exec, me, gated(1));
  BOOST_CHECK_EQUAL(next_start(), 1);
  submit_blocking(exec, me, gated(2)); // waits for the thread
  auto err = request_error(exec, make_blocking_job(gated(3)));
  BOOST_CHECK(err == errc::pool_full);
  door->open();
  BOOST_CHECK_EQUAL(receive_one<int>("job 1"), 1);
  BOOST_CHECK_EQUAL(receive_one<int>("job 2"), 2);
  BOOST_CHECK_EQUAL(next_start(), 2);
  auto report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "rejected"), 1);
  BOOST_CHECK_EQUAL(stat(report, "completed"), 2);
  stop(exec);
}

BOOST_AUTO_TEST_CASE(no_more_jobs_run_at_once_than_max_threads) {
  auto exec = spawn_blocking_executor(sys, with_threads(2));
  auto running = std::make_shared<std::atomic<int>>(0);
  auto most = std::make_shared<std::atomic<int>>(0);
  for (int i = 0; i < 6; ++i) {
    auto inner = gated(i);
    submit_blocking(exec, me, [running, most, inner] {
      auto now = ++*running;
      auto seen = most->load();
      while (now > seen && !most->compare_exchange_weak(seen, now)) {
        // retry with the value another job stored
      }
      auto x = inner();
      --*running;
      return x;
    });
  }
  next_start();
  next_start();
  // Two running at the door, four waiting in the executor, none elsewhere.
  auto report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "in_flight"), 2);
  BOOST_CHECK_EQUAL(stat(report, "queued"), 4);
  BOOST_CHECK_EQUAL(running->load(), 2);
  door->open();
  for (int i = 0; i < 6; ++i)
    receive_one<int>("a result");
  BOOST_CHECK_EQUAL(most->load(), 2);
  stop(exec);
}

BOOST_AUTO_TEST_CASE(drain_waits_for_the_running_job_then_stops) {
  auto exec = spawn_blocking_executor(sys, with_threads(1));
  self->monitor(exec);
  submit_blocking(exec, me, gated(7));
  next_start();
  self->send(exec, drain_atom::value);
  // Still there, still holding the job.
  auto report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "in_flight"), 1);
  door->open();
  BOOST_CHECK_EQUAL(receive_one<int>("the drained job's result"), 7);
  BOOST_CHECK(!wait_down(exec));
}

BOOST_AUTO_TEST_CASE(cancel_answers_running_and_queued_jobs_at_once) {
  auto exec = spawn_blocking_executor(sys, with_threads(1));
  self->monitor(exec);
  ask_from_actor(sys.actors(), exec, gated(1), me);
  next_start();
  ask_from_actor(sys.actors(), exec, gated(2), me);
  // The second job is in the executor before the cancel is sent.
  await_queued(exec, 1);
  self->send(exec, cancel_atom::value);
  for (int i = 0; i < 2; ++i)
    self->receive([](result_atom, int) { BOOST_FAIL("a cancelled job answered"); },
                  [](failure_atom, caf::error& e) { BOOST_CHECK(e == errc::cancelled); },
                  caf::after(patience) >> [] { BOOST_FAIL("a job was not answered"); });
  BOOST_CHECK(wait_down(exec) == errc::cancelled);
  // The function of the running job was not interrupted; it ends on its
  // thread once it returns.
  door->open();
}

BOOST_AUTO_TEST_CASE(job_past_job_timeout_is_answered_with_call_timeout) {
  auto cfg = with_threads(1);
  cfg.job_timeout = std::chrono::milliseconds(50);
  auto exec = spawn_blocking_executor(sys, cfg);
  auto err = request_error(exec, make_blocking_job(gated(1)));
  BOOST_CHECK(err == errc::call_timeout);
  BOOST_CHECK_EQUAL(stat(status(exec), "timed_out"), 1);
  stop(exec);
}

// A hung function keeps its thread: the job after it waits in the executor
// (counted there) instead of being given to the stuck thread, where it would
// time out and then run anyway once the thread is free.
BOOST_AUTO_TEST_CASE(job_after_a_timed_out_one_waits_in_the_executor_and_runs_for_its_caller) {
  auto cfg = with_threads(1);
  cfg.job_timeout = std::chrono::milliseconds(50);
  auto exec = spawn_blocking_executor(sys, cfg);
  auto err = request_error(exec, make_blocking_job(gated(1)));
  BOOST_CHECK(err == errc::call_timeout);
  BOOST_CHECK_EQUAL(next_start(), 1);
  auto runs = std::make_shared<std::atomic<int>>(0);
  submit_blocking(exec, me, [runs] { ++*runs; return 2; });
  await_queued(exec, 1);
  auto report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "in_flight"), 0);
  BOOST_CHECK_EQUAL(stat(report, "overdue"), 1);
  BOOST_CHECK_EQUAL(runs->load(), 0);
  door->open();
  BOOST_CHECK_EQUAL(receive_one<int>("the second job's result"), 2);
  BOOST_CHECK_EQUAL(runs->load(), 1);
  report = status(exec);
  BOOST_CHECK_EQUAL(stat(report, "overdue"), 0);
  BOOST_CHECK_EQUAL(stat(report, "late_answers"), 1);
  BOOST_CHECK_EQUAL(stat(report, "timed_out"), 1);
  BOOST_CHECK_EQUAL(stat(report, "completed"), 1);
  stop(exec);
}

// The cancel answers the job behind a hung one with errc::cancelled; once
// the hung function returns, its thread ends without running that job.
BOOST_AUTO_TEST_CASE(cancel_does_not_let_a_job_that_has_not_started_run) {
  auto cfg = with_threads(1);
  cfg.job_timeout = std::chrono::milliseconds(50);
  auto threads_before = sys.actors().detached_actors();
  auto exec = spawn_blocking_executor(sys, cfg);
  self->monitor(exec);
  auto err = request_error(exec, make_blocking_job(gated(1)));
  BOOST_CHECK(err == errc::call_timeout);
  BOOST_CHECK_EQUAL(next_start(), 1);
  auto ran = std::make_shared<std::atomic<bool>>(false);
  ask_from_actor(sys.actors(), exec, [ran] { ran->store(true); return 2; }, me);
  for (int i = 0; i < 10000 && stat(status(exec), "accepted") < 2; ++i) {
    // each status is a round trip: a bounded wait for the job to arrive
  }
  BOOST_REQUIRE_EQUAL(stat(status(exec), "accepted"), 2);
  self->send(exec, cancel_atom::value);
  self->receive([](result_atom, int) { BOOST_FAIL("a cancelled job answered"); },
                [](failure_atom, caf::error& e) { BOOST_CHECK(e == errc::cancelled); },
                caf::after(patience) >> [] { BOOST_FAIL("the job was not answered"); });
  BOOST_CHECK(wait_down(exec) == errc::cancelled);
  door->open();
  // Every worker thread has ended: had the job been given to the thread, it
  // would have run before the thread took its kill.
  auto give_up = std::chrono::steady_clock::now() + patience;
  while (sys.actors().detached_actors() > threads_before
         && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  BOOST_REQUIRE_EQUAL(sys.actors().detached_actors(), threads_before);
  BOOST_CHECK(!ran->load());
}

// The executor tells a thread that a job it has not started was answered:
// the thread skips it (checked directly with a job marked so).
BOOST_AUTO_TEST_CASE(thread_skips_a_job_marked_abandoned) {
  auto exec = spawn_blocking_executor(sys, with_threads(1));
  auto ran = std::make_shared<std::atomic<bool>>(false);
  auto job = make_blocking_job([ran] { ran->store(true); return 1; });
  job.abandoned->store(true);
  auto err = request_error(exec, job);
  BOOST_CHECK(err == errc::cancelled);
  BOOST_CHECK(!ran->load());
  stop(exec);
}

BOOST_AUTO_TEST_CASE(call_timeout_fails_the_caller_and_a_job_not_started_by_then_never_runs) {
  auto exec = spawn_blocking_executor(sys, with_threads(1));
  submit_blocking(exec, me, gated(1));
  next_start();
  auto ran = std::make_shared<std::atomic<bool>>(false);
  ask_from_actor(sys.actors(), exec, [ran] { ran->store(true); return 2; }, me,
                 std::chrono::milliseconds(20));
  self->receive([](result_atom, int) { BOOST_FAIL("the call should have timed out"); },
                [](failure_atom, caf::error& e) { BOOST_CHECK(e == errc::call_timeout); },
                caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
  door->open();
  BOOST_CHECK_EQUAL(receive_one<int>("job 1"), 1);
  // Jobs run in order on the one thread: once this one ran, job 2 had its turn.
  submit_blocking(exec, me, [] { return 3; });
  BOOST_CHECK_EQUAL(receive_one<int>("job 3"), 3);
  BOOST_CHECK(!ran->load());
  stop(exec);
}

BOOST_AUTO_TEST_CASE(works_under_a_supervisor_at_its_stable_address) {
  supervisor_spec spec;
  child_spec child;
  child.name = "io";
  child.start = [](const spawn_context& ctx) {
    return spawn_blocking_executor(ctx, with_threads(1));
  };
  spec.children.push_back(child);
  auto sup = spawn_supervisor(sys, spec);
  auto io = address_of(sup, "io");
  submit_blocking(io, me, [] { return 11; });
  BOOST_CHECK_EQUAL(receive_one<int>("a result through the relay"), 11);
  auto report = request_report(sup, caf::make_message(drain_atom::value));
  auto child_report = find_report(report, "io");
  BOOST_REQUIRE(child_report != nullptr);
  BOOST_CHECK_EQUAL(child_report->kind, "blocking");
  BOOST_CHECK_EQUAL(stat(*child_report, "completed"), 1);
  BOOST_CHECK(child_report->stopped == stop_reason::drained);
}

BOOST_AUTO_TEST_SUITE_END()
