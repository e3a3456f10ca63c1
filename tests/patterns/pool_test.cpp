// The worker pool: each policy sends jobs where it should, results go back to
// whoever asked, a crashed worker is restarted and its jobs retried (and
// failed after max_attempts), resizing loses nothing, the pool holds at most
// queue_capacity jobs, and it works as a stream stage under a supervisor.

#include "patterns/streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/pool.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <atomic>
#include <limits>
#include <map>
#include <set>
#include <thread>

using namespace troupe;
using namespace troupe::test;

namespace {

using started_atom = caf::atom_constant<caf::atom("started")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using answer_atom = caf::atom_constant<caf::atom("answer")>;
using failure_atom = caf::atom_constant<caf::atom("failure")>;

constexpr uint64_t no_job = std::numeric_limits<uint64_t>::max();

/// What a test worker does; every job x is answered with x * 10.
struct worker_options {
  /// Gets (started_atom, worker name, job, worker handle) as a job starts.
  caf::actor observer;
  /// Holds each answer until (release_atom, job) or (release_atom) arrives.
  bool gated = false;
  /// The worker throws on this job while `crashes` is above zero.
  uint64_t poison = no_job;
  std::shared_ptr<std::atomic<int>> crashes;
  /// The worker answers this job with an error.
  uint64_t unlucky = no_job;
  /// Time each job takes (work, not waiting).
  std::chrono::microseconds work{0};
};

struct worker_state {
  std::map<uint64_t, caf::typed_response_promise<uint64_t>> held;
  static inline const char* name = "test_worker";
};

caf::behavior test_worker(caf::stateful_actor<worker_state>* self,
                          std::string name, worker_options opts) {
  // A crash is the point of some tests: no "unhandled exception" noise.
  self->set_exception_handler([](std::exception_ptr& ep) -> caf::error {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      return caf::make_error(caf::sec::runtime_error, e.what());
    }
  });
  return {
    [=](uint64_t x) -> caf::result<uint64_t> {
      if (opts.observer)
        caf::anon_send(opts.observer, started_atom::value, name, x,
                       caf::actor_cast<caf::actor>(self));
      if (x == opts.poison && opts.crashes && opts.crashes->fetch_sub(1) > 0)
        throw std::runtime_error("worker crashes on job " + std::to_string(x));
      if (x == opts.unlucky)
        return caf::make_error(caf::sec::invalid_argument, "unlucky job");
      if (opts.work.count() > 0)
        std::this_thread::sleep_for(opts.work);
      if (!opts.gated)
        return x * 10;
      auto rp = self->make_response_promise<uint64_t>();
      self->state.held.emplace(x, rp);
      return rp;
    },
    [=](release_atom, uint64_t x) {
      auto i = self->state.held.find(x);
      if (i != self->state.held.end()) {
        i->second.deliver(x * 10);
        self->state.held.erase(i);
      }
    },
    [=](release_atom) {
      for (auto& [x, rp] : self->state.held)
        rp.deliver(x * 10);
      self->state.held.clear();
    },
    [=](crash_atom) {
      self->quit(caf::make_error(caf::sec::runtime_error, "crash on request"));
    },
  };
}

using batch_atom = caf::atom_constant<caf::atom("batch")>;

/// What a worker of batches does; every job x is answered with x * 10.
struct batch_options {
  /// Gets (batch_atom, number of jobs) for each batch.
  caf::actor observer;
  /// The worker throws on a batch holding this job while `crashes` is above
  /// zero.
  uint64_t poison = no_job;
  std::shared_ptr<std::atomic<int>> crashes;
  /// This job's result is an error (in its place in the batch).
  uint64_t unlucky = no_job;
  /// A batch holding this job is answered one result short.
  uint64_t malformed = no_job;
};

caf::behavior batch_worker(caf::event_based_actor* self, batch_options opts) {
  self->set_exception_handler([](std::exception_ptr& ep) -> caf::error {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      return caf::make_error(caf::sec::runtime_error, e.what());
    }
  });
  return {
    [=](batch& jobs) {
      if (opts.observer)
        caf::anon_send(opts.observer, batch_atom::value,
                       static_cast<uint64_t>(jobs.items.size()));
      batch results;
      for (auto& job : jobs.items) {
        auto x = job.get_as<uint64_t>(0);
        if (x == opts.poison && opts.crashes && opts.crashes->fetch_sub(1) > 0)
          throw std::runtime_error("worker crashes on a batch with job "
                                   + std::to_string(x));
        if (x == opts.malformed)
          return batch{};
        if (x == opts.unlucky)
          results.items.push_back(caf::make_message(
            caf::make_error(caf::sec::invalid_argument, "unlucky job")));
        else
          results.items.push_back(caf::make_message(x * 10));
      }
      return results;
    },
  };
}

worker_factory batch_workers_with(batch_options opts) {
  return [opts](const spawn_context& ctx) {
    return ctx.system().spawn(batch_worker, opts);
  };
}

worker_factory workers_with(worker_options opts) {
  return [opts](const spawn_context& ctx) {
    return ctx.system().spawn(test_worker, ctx.name(), opts);
  };
}

/// Asks `pool` for job x and tells `observer` (answer_atom, x, result) or
/// (failure_atom, x, error): many jobs can be outstanding at once.
void client(caf::event_based_actor* self, caf::actor pool, uint64_t x,
            caf::actor observer) {
  self->request(pool, patience, x)
    .then([=](uint64_t r) { self->send(observer, answer_atom::value, x, r); },
          [=](caf::error& e) { self->send(observer, failure_atom::value, x, e); });
}

struct started {
  std::string worker;
  uint64_t job = 0;
  caf::actor handle;
};

struct outcome {
  bool ok = false;
  uint64_t value = 0;
  caf::error error;
};

int64_t stat(const actor_report& r, const std::string& key) {
  auto i = r.stats.find(key);
  if (i == r.stats.end()) {
    BOOST_ERROR("no stat " + key);
    return -1;
  }
  return i->second;
}

struct pool_fixture : system_fixture {
  void ask(const caf::actor& pool, uint64_t x) {
    sys.actors().spawn(client, pool, x, caf::actor{self});
  }

  started next_start() {
    started result;
    bool got = false;
    self->receive(
      [&](started_atom, std::string& worker, uint64_t job, caf::actor& handle) {
        result = started{std::move(worker), job, std::move(handle)};
        got = true;
      },
      caf::after(patience) >> [] { BOOST_FAIL("no job started"); });
    BOOST_REQUIRE(got);
    return result;
  }

  std::vector<started> next_starts(size_t n) {
    std::vector<started> result;
    for (size_t i = 0; i < n; ++i)
      result.push_back(next_start());
    return result;
  }

  /// Asks for job x and waits until a worker started it.
  started ask_and_start(const caf::actor& pool, uint64_t x) {
    ask(pool, x);
    auto s = next_start();
    BOOST_CHECK_EQUAL(s.job, x);
    return s;
  }

  std::pair<uint64_t, outcome> next_outcome() {
    std::pair<uint64_t, outcome> result;
    self->receive(
      [&](answer_atom, uint64_t x, uint64_t r) {
        result = {x, outcome{true, r, caf::error{}}};
      },
      [&](failure_atom, uint64_t x, caf::error& e) {
        result = {x, outcome{false, 0, std::move(e)}};
      },
      caf::after(patience) >> [] { BOOST_FAIL("no answer from the pool"); });
    return result;
  }

  /// Asks for job x and checks that it is answered with x * 10.
  void expect_tenfold(const caf::actor& pool, uint64_t x) {
    ask(pool, x);
    auto [job, o] = next_outcome();
    BOOST_CHECK_EQUAL(job, x);
    BOOST_CHECK(o.ok);
    BOOST_CHECK_EQUAL(o.value, x * 10);
  }

  /// Waits for n answers; each job must be answered once, with x * 10.
  void expect_answers(size_t n) {
    std::set<uint64_t> seen;
    for (size_t i = 0; i < n; ++i) {
      auto [x, o] = next_outcome();
      BOOST_CHECK_MESSAGE(o.ok, "job " << x << " failed: "
                                       << sys.actors().render(o.error));
      BOOST_CHECK_EQUAL(o.value, x * 10);
      BOOST_CHECK_MESSAGE(seen.insert(x).second, "job " << x << " answered twice");
    }
  }

  /// Started messages already in the mailbox (no waiting).
  std::vector<started> pending_starts() {
    std::vector<started> result;
    for (bool more = true; more;) {
      more = false;
      self->receive(
        [&](started_atom, std::string& worker, uint64_t job, caf::actor& h) {
          result.push_back(started{std::move(worker), job, std::move(h)});
          more = true;
        },
        caf::after(std::chrono::seconds(0)) >> [] {});
    }
    return result;
  }


  /// Asks for the pool's status until its stat `key` is `value`: a bounded
  /// number of round trips, each a point of sync.
  actor_report await_stat(const caf::actor& pool, const std::string& key,
                          int64_t value) {
    for (int i = 0; i < 10000; ++i) {
      auto r = status(pool);
      if (auto j = r.stats.find(key); j != r.stats.end() && j->second == value)
        return r;
    }
    BOOST_FAIL(key + " never reached " + std::to_string(value));
    return actor_report{};
  }

  caf::error request_error(const caf::actor& pool, uint64_t x) {
    caf::error result;
    self->request(pool, patience, x)
      .receive([&](uint64_t r) { BOOST_ERROR("job answered: " << r); },
               [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  uint32_t resize(const caf::actor& pool, uint32_t n) {
    uint32_t result = 0;
    self->request(pool, patience, resize_atom::value, n)
      .receive([&](uint32_t x) { result = x; },
               fail_on_error());
    return result;
  }

  pool_config config(worker_options opts, uint32_t workers,
                     dispatch_policy policy) {
    pool_config cfg;
    cfg.workers = workers;
    cfg.worker = workers_with(std::move(opts));
    cfg.policy = policy;
    return cfg;
  }

  worker_options observed(bool gated = false) {
    worker_options opts;
    opts.observer = self;
    opts.gated = gated;
    return opts;
  }

  void stop(const caf::actor& pool) {
    self->monitor(pool);
    self->send(pool, cancel_atom::value);
    wait_down(pool);
  }
};

child_spec pool_child(pool_config cfg, std::string next) {
  child_spec spec;
  spec.name = "pool";
  spec.start = [cfg, next](const spawn_context& ctx) {
    stage_config links;
    if (!next.empty())
      links.next = {ctx.sibling(next)};
    return spawn_pool(ctx, cfg, links);
  };
  return spec;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(pool, pool_fixture)

BOOST_AUTO_TEST_CASE(round_robin_spreads_jobs_evenly_over_workers) {
  auto pool = spawn_pool(sys, config(observed(), 3, dispatch_policy::round_robin));
  for (uint64_t x = 0; x < 9; ++x)
    ask(pool, x);
  std::map<std::string, int> per_worker;
  for (auto& s : next_starts(9))
    ++per_worker[s.worker];
  BOOST_CHECK_EQUAL(per_worker.size(), 3u);
  for (auto& [worker, n] : per_worker)
    BOOST_CHECK_MESSAGE(n == 3, worker << " got " << n << " jobs");
  expect_answers(9);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 9);
  BOOST_CHECK_EQUAL(r.children.size(), 3u);
  for (auto& w : r.children)
    BOOST_CHECK_EQUAL(w.in, 3u);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(least_loaded_sends_jobs_to_the_worker_with_fewest_outstanding) {
  auto pool = spawn_pool(sys, config(observed(true), 2,
                                     dispatch_policy::least_loaded));
  auto busy = ask_and_start(pool, 0); // stays outstanding throughout
  auto other = ask_and_start(pool, 1);
  BOOST_CHECK_NE(other.worker, busy.worker);
  self->send(other.handle, release_atom::value, uint64_t{1});
  expect_answers(1);
  // Round robin would alternate; least loaded keeps away from the busy one.
  for (uint64_t x = 2; x < 6; ++x) {
    auto s = ask_and_start(pool, x);
    BOOST_CHECK_EQUAL(s.worker, other.worker);
    self->send(s.handle, release_atom::value, x);
    expect_answers(1);
  }
  self->send(busy.handle, release_atom::value, uint64_t{0});
  expect_answers(1);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(pull_keeps_queued_jobs_away_from_a_worker_stuck_on_a_slow_job) {
  auto pool = spawn_pool(sys, config(observed(true), 3, dispatch_policy::pull));
  auto slow = ask_and_start(pool, 0); // never released until the end
  for (uint64_t x = 1; x <= 8; ++x)
    ask(pool, x);
  auto first = next_starts(2);
  // One job per worker (prefetch 1); the rest waits in the pool.
  auto r = await_stat(pool, "accepted", 9);
  BOOST_CHECK_EQUAL(stat(r, "in_flight"), 3);
  BOOST_CHECK_EQUAL(stat(r, "queued"), 6);
  std::vector<started> todo(first.begin(), first.end());
  for (size_t done = 0; done < 8; ++done) {
    if (todo.empty())
      todo.push_back(next_start());
    auto s = todo.front();
    todo.erase(todo.begin());
    BOOST_CHECK_NE(s.worker, slow.worker);
    self->send(s.handle, release_atom::value, s.job);
    expect_answers(1);
  }
  r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "queued"), 0);
  BOOST_CHECK_EQUAL(stat(r, "in_flight"), 1);
  self->send(slow.handle, release_atom::value, uint64_t{0});
  expect_answers(1);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(results_return_to_requesters) {
  auto pool = spawn_pool(sys, config(worker_options{}, 2,
                                     dispatch_policy::round_robin));
  for (uint64_t x = 0; x < 20; ++x)
    ask(pool, x);
  expect_answers(20);
  self->request(pool, patience, uint64_t{7})
    .receive([](uint64_t r) { BOOST_CHECK_EQUAL(r, 70u); },
             fail_on_error());
  BOOST_CHECK_EQUAL(stat(status(pool), "completed"), 21);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(error_answered_by_a_worker_is_the_result_and_not_retried) {
  auto opts = observed();
  opts.unlucky = 13;
  auto pool = spawn_pool(sys, config(opts, 2, dispatch_policy::round_robin));
  auto err = request_error(pool, 13);
  BOOST_CHECK(err == caf::sec::invalid_argument);
  BOOST_CHECK_EQUAL(pending_starts().size(), 1u); // one attempt
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 1);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 0);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 0);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(crashed_worker_is_restarted_and_its_job_retried_once_elsewhere) {
  auto opts = observed();
  opts.poison = 5;
  opts.crashes = std::make_shared<std::atomic<int>>(1);
  auto pool = spawn_pool(sys, config(opts, 2, dispatch_policy::round_robin));
  ask(pool, 5);
  auto crashed = next_start();
  auto retry = next_start();
  BOOST_CHECK_EQUAL(retry.job, 5u);
  BOOST_CHECK_NE(retry.worker, crashed.worker); // the surviving worker
  expect_answers(1);
  BOOST_CHECK(pending_starts().empty()); // not run a third time
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 1);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 0);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 1);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 1);
  BOOST_CHECK_EQUAL(stat(r, "workers"), 2);
  // The restarted worker takes jobs again.
  for (uint64_t x = 10; x < 14; ++x)
    ask(pool, x);
  std::set<std::string> used;
  for (auto& s : next_starts(4))
    used.insert(s.worker);
  BOOST_CHECK_EQUAL(used.size(), 2u);
  expect_answers(4);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(jobs_held_by_a_crashed_worker_go_to_other_workers) {
  auto pool = spawn_pool(sys, config(observed(true), 2,
                                     dispatch_policy::round_robin));
  for (uint64_t x = 0; x < 4; ++x)
    ask(pool, x);
  auto first = next_starts(4);
  // The worker holding two answers back dies without giving them.
  auto victim = first.front();
  std::set<uint64_t> lost;
  for (auto& s : first)
    if (s.worker == victim.worker)
      lost.insert(s.job);
  BOOST_CHECK_EQUAL(lost.size(), 2u);
  self->send(victim.handle, crash_atom::value);
  std::set<uint64_t> rerun;
  for (auto& s : next_starts(2)) {
    rerun.insert(s.job);
    self->send(s.handle, release_atom::value, s.job);
  }
  BOOST_CHECK(rerun == lost);
  for (auto& s : first)
    if (s.worker != victim.worker)
      self->send(s.handle, release_atom::value, s.job);
  expect_answers(4);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 4);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 2);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 1);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(jobs_queued_at_a_crashing_worker_are_each_answered_once) {
  // Jobs wait in the workers' mailboxes: those behind the crash bounce with
  // request_receiver_down, and go to a worker again with the held ones.
  auto opts = observed();
  opts.poison = 0;
  opts.crashes = std::make_shared<std::atomic<int>>(1);
  opts.work = std::chrono::milliseconds(1);
  auto pool = spawn_pool(sys, config(opts, 2, dispatch_policy::round_robin));
  for (uint64_t x = 0; x < 20; ++x)
    ask(pool, x);
  expect_answers(20);
  // Every job ran once to its answer, plus the attempt that crashed.
  BOOST_CHECK_EQUAL(pending_starts().size(), 21u);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 20);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 0);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 1);
  BOOST_CHECK_GE(stat(r, "retried"), 1);
  BOOST_TEST_MESSAGE("jobs dispatched again: " << stat(r, "retried"));
  stop(pool);
}

BOOST_AUTO_TEST_CASE(job_whose_every_attempt_crashes_fails_after_max_attempts) {
  auto opts = observed();
  opts.poison = 66;
  opts.crashes = std::make_shared<std::atomic<int>>(1000);
  auto cfg = config(opts, 2, dispatch_policy::least_loaded);
  cfg.max_attempts = 3;
  auto pool = spawn_pool(sys, cfg);
  auto err = request_error(pool, 66);
  BOOST_CHECK(err == errc::job_failed);
  BOOST_CHECK_NE(sys.actors().render(err).find("worker crashes on job 66"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(pending_starts().size(), 3u);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 1);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 2);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 3);
  // The pool itself carries on.
  self->request(pool, patience, uint64_t{1})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 10u); },
             fail_on_error());
  stop(pool);
}

BOOST_AUTO_TEST_CASE(worker_crashes_beyond_intensity_fail_the_pool) {
  auto opts = observed();
  opts.poison = 66;
  opts.crashes = std::make_shared<std::atomic<int>>(1000);
  auto cfg = config(opts, 3, dispatch_policy::round_robin);
  cfg.max_attempts = 10;
  cfg.worker_restarts = {1, std::chrono::seconds(30)};
  auto pool = spawn_pool(sys, cfg);
  self->monitor(pool);
  auto healthy = ask_and_start(pool, 1);
  expect_answers(1);
  // The job crashes the next worker, then (after one restart) the third.
  ask(pool, 66);
  auto [x, o] = next_outcome();
  BOOST_CHECK_EQUAL(x, 66u);
  BOOST_CHECK(!o.ok);
  BOOST_CHECK(o.error == errc::restart_intensity_exceeded);
  BOOST_CHECK(wait_down(pool) == errc::restart_intensity_exceeded);
  BOOST_CHECK_EQUAL(pending_starts().size(), 2u);
  // The worker that never crashed went with the pool.
  self->monitor(healthy.handle);
  wait_down(healthy.handle);
}

BOOST_AUTO_TEST_CASE(failing_worker_factory_fails_the_pool) {
  // At the first start: the pool cannot run at all.
  auto cfg = config(worker_options{}, 2, dispatch_policy::round_robin);
  cfg.worker = [](const spawn_context&) -> caf::actor {
    throw std::runtime_error("no workers today");
  };
  auto pool = spawn_pool(sys, cfg);
  self->monitor(pool);
  auto reason = wait_down(pool);
  BOOST_CHECK(reason == caf::sec::runtime_error);
  BOOST_CHECK_NE(sys.actors().render(reason).find("no workers today"),
                 std::string::npos);
  // On a restart: each failed start counts against the intensity, while the
  // job of the crashed worker goes to the other one.
  auto opts = observed();
  opts.poison = 5;
  opts.crashes = std::make_shared<std::atomic<int>>(1);
  auto starts = std::make_shared<std::atomic<int>>(0);
  cfg = config(opts, 2, dispatch_policy::round_robin);
  cfg.worker = [starts, inner = cfg.worker](const spawn_context& ctx) {
    if (starts->fetch_add(1) >= 2)
      throw std::runtime_error("factory broke");
    return inner(ctx);
  };
  cfg.worker_restarts = {2, std::chrono::seconds(30)};
  pool = spawn_pool(sys, cfg);
  self->monitor(pool);
  ask(pool, 5);
  expect_answers(1);
  BOOST_CHECK(wait_down(pool) == errc::restart_intensity_exceeded);
  // Two workers and two failed restarts; a third restart is one too many.
  BOOST_CHECK_EQUAL(starts->load(), 4);
}

BOOST_AUTO_TEST_CASE(resize_up_and_down_while_running_loses_no_job) {
  auto pool = spawn_pool(sys, config(observed(true), 2,
                                     dispatch_policy::round_robin));
  for (uint64_t x = 0; x < 4; ++x)
    ask(pool, x);
  auto held = next_starts(4);
  BOOST_CHECK_EQUAL(resize(pool, 4), 4u);
  BOOST_CHECK_EQUAL(stat(status(pool), "workers"), 4);
  for (uint64_t x = 4; x < 8; ++x)
    ask(pool, x);
  std::set<std::string> used;
  for (auto& s : next_starts(4)) {
    used.insert(s.worker);
    held.push_back(s);
  }
  BOOST_CHECK_EQUAL(used.size(), 4u); // the new workers take jobs
  // Shrinking to one: the other three finish what they hold, then stop.
  BOOST_CHECK_EQUAL(resize(pool, 1), 1u);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(r.state, "resizing");
  BOOST_CHECK_EQUAL(stat(r, "workers"), 1);
  BOOST_CHECK_EQUAL(stat(r, "retiring"), 3);
  std::map<std::string, caf::actor> handles;
  for (auto& s : held)
    handles[s.worker] = s.handle;
  BOOST_REQUIRE_EQUAL(handles.size(), 4u);
  auto kept = r.children.front().name; // the oldest worker stays
  for (auto& [name, h] : handles)
    if (name != kept)
      self->monitor(h);
  for (uint64_t x = 8; x < 10; ++x) {
    auto s = ask_and_start(pool, x);
    BOOST_CHECK_EQUAL(s.worker, kept);
    held.push_back(s);
  }
  for (auto& s : held)
    self->send(s.handle, release_atom::value, s.job);
  expect_answers(10);
  for (int i = 0; i < 3; ++i)
    self->receive(
      [&](caf::down_msg& x) {
        BOOST_CHECK(x.reason == caf::exit_reason::user_shutdown);
      },
      caf::after(patience) >> [] { BOOST_FAIL("removed worker never stopped"); });
  r = status(pool);
  BOOST_CHECK_EQUAL(r.state, "running");
  BOOST_CHECK_EQUAL(stat(r, "retiring"), 0);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 10);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 0);
  // Growing again brings fresh workers.
  BOOST_CHECK_EQUAL(resize(pool, 3), 3u);
  for (uint64_t x = 10; x < 13; ++x)
    ask(pool, x);
  used.clear();
  for (auto& s : next_starts(3)) {
    used.insert(s.worker);
    self->send(s.handle, release_atom::value, s.job);
  }
  BOOST_CHECK_EQUAL(used.size(), 3u);
  expect_answers(3);
  self->request(pool, patience, resize_atom::value, uint32_t{0})
    .receive([](uint32_t) { BOOST_ERROR("resized to 0 workers"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::invalid_argument); });
  stop(pool);
}

BOOST_AUTO_TEST_CASE(fast_stream_producer_never_gets_more_than_queue_capacity_into_the_pool) {
  constexpr uint64_t items = 2000;
  worker_options opts;
  opts.work = std::chrono::microseconds(100); // slow workers
  auto cfg = config(opts, 2, dispatch_policy::pull);
  cfg.queue_capacity = 8;
  auto sink = spawn_stage(sys, stage_config{},
                          std::make_unique<summing_sink>(self, endless));
  spawn_context ctx{sys};
  ctx.report_to(self);
  stage_config links;
  links.next = {sink};
  auto pool = spawn_pool(ctx, cfg, links);
  stage_config src_cfg;
  src_cfg.next = {pool};
  auto n = std::make_shared<uint64_t>(0);
  spawn_source(sys, src_cfg, [n](emitter& out, size_t max) {
    for (size_t k = 0; k < max && *n < items; ++k)
      out.push(caf::make_message((*n)++));
    return *n < items;
  });
  self->receive(
    [&](sink_done_atom, uint64_t count, uint64_t sum) {
      BOOST_CHECK_EQUAL(count, items);
      BOOST_CHECK_EQUAL(sum, 10 * (items * (items - 1) / 2));
    },
    caf::after(patience) >> [] { BOOST_FAIL("stream never ended"); });
  auto r = receive_one<actor_report>("the pool's final report");
  BOOST_TEST_MESSAGE(to_text(r));
  BOOST_CHECK(r.stopped == stop_reason::completed);
  BOOST_CHECK_EQUAL(r.in, items);
  BOOST_CHECK_EQUAL(r.out, items);
  BOOST_CHECK_EQUAL(r.dropped, 0u);
  BOOST_CHECK_EQUAL(stat(r, "completed"), static_cast<int64_t>(items));
  // The bound held, and the producer was made to wait at it.
  BOOST_CHECK_EQUAL(stat(r, "max_held"), 8);
  BOOST_CHECK_EQUAL(stat(r, "abandoned"), 0);
}

BOOST_AUTO_TEST_CASE(request_beyond_queue_capacity_gets_pool_full) {
  auto cfg = config(observed(true), 1, dispatch_policy::round_robin);
  cfg.queue_capacity = 2;
  auto pool = spawn_pool(sys, cfg);
  auto a = ask_and_start(pool, 0);
  auto b = ask_and_start(pool, 1);
  BOOST_CHECK(request_error(pool, 2) == errc::pool_full);
  self->send(a.handle, release_atom::value);
  expect_answers(2);
  // Room again once jobs are done.
  ask(pool, 3);
  self->send(next_start().handle, release_atom::value);
  expect_answers(1);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "rejected"), 1);
  BOOST_CHECK_EQUAL(stat(r, "max_held"), 2);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(invalid_configs_throw_config_error_naming_the_field) {
  auto expect_invalid = [&](pool_config cfg, const std::string& field) {
    auto why = config_rejection([&] { cfg.validate(); });
    BOOST_CHECK_MESSAGE(why.find("pool_config: " + field) == 0, why);
    BOOST_CHECK_THROW(spawn_pool(sys, cfg), config_error);
  };
  auto good = config(worker_options{}, 2, dispatch_policy::pull);
  BOOST_CHECK_NO_THROW(good.validate());
  auto cfg = good;
  cfg.workers = 0;
  expect_invalid(cfg, "workers is 0");
  cfg = good;
  cfg.worker = nullptr;
  expect_invalid(cfg, "worker and work are both empty");
  cfg = good;
  cfg.work = [](item& x) -> caf::expected<item> { return x; };
  expect_invalid(cfg, "worker and work are both set");
  cfg = good;
  cfg.queue_capacity = 0;
  expect_invalid(cfg, "queue_capacity");
  cfg = good;
  cfg.prefetch = 0;
  expect_invalid(cfg, "prefetch");
  cfg = good;
  cfg.max_attempts = 0;
  expect_invalid(cfg, "max_attempts");
  cfg = good;
  cfg.job_timeout = std::chrono::seconds(-1);
  expect_invalid(cfg, "job_timeout");
  cfg = good;
  cfg.worker_restarts.period = caf::timespan{0};
  expect_invalid(cfg, "worker_restarts.period");
  cfg = good;
  cfg.worker_restarts.max_restarts = -1;
  expect_invalid(cfg, "worker_restarts.max_restarts");
  cfg = good;
  cfg.rejoin_interval = caf::timespan{0};
  expect_invalid(cfg, "rejoin_interval");
}

BOOST_AUTO_TEST_CASE(stream_items_reach_the_sink_and_end_of_stream_waits_for_jobs) {
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  spawn_context ctx{sys};
  ctx.report_to(self);
  auto opts = observed(true);
  opts.unlucky = 2; // answered with an error: counted, not emitted
  auto pool = spawn_pool(ctx, config(opts, 2, dispatch_policy::round_robin),
                         links);
  self->monitor(pool);
  manual_upstream up{self, pool};
  up.push({caf::make_message(uint64_t{1}), caf::make_message(uint64_t{2}),
           caf::make_message(uint64_t{3})});
  auto held = next_starts(3);
  up.end();
  // The input has ended, but two jobs are not done: the pool waits.
  auto r = await_stat(pool, "failed", 1);
  BOOST_CHECK_EQUAL(stat(r, "in_flight"), 2);
  self->receive([](sink_end_atom, uint64_t) { BOOST_ERROR("sink ended early"); },
                caf::after(std::chrono::seconds(0)) >> [] {});
  for (auto& s : held)
    self->send(s.handle, release_atom::value, s.job);
  std::multiset<uint64_t> values;
  for (int i = 0; i < 2; ++i)
    values.insert(receive_sunk(*this).value.get_as<uint64_t>(0));
  BOOST_CHECK(values == (std::multiset<uint64_t>{10, 30}));
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 2u);
  BOOST_CHECK(!wait_down(pool));
  auto report = receive_one<actor_report>("the pool's final report");
  BOOST_CHECK_EQUAL(report.in, 3u);
  BOOST_CHECK_EQUAL(report.out, 2u);
  BOOST_CHECK_EQUAL(report.errors, 1u);
  BOOST_CHECK_EQUAL(stat(report, "completed"), 2);
  BOOST_CHECK_EQUAL(stat(report, "failed"), 1);
  // Its workers stopped with it.
  self->monitor(held.front().handle);
  wait_down(held.front().handle);
}

BOOST_AUTO_TEST_CASE(cancel_answers_held_jobs_and_stops_the_workers) {
  auto pool = spawn_pool(sys, config(observed(true), 2,
                                     dispatch_policy::round_robin));
  ask(pool, 0);
  ask(pool, 1);
  auto held = next_starts(2);
  self->send(pool, cancel_atom::value);
  for (int i = 0; i < 2; ++i) {
    auto [x, o] = next_outcome();
    BOOST_CHECK(!o.ok);
    BOOST_CHECK(o.error == errc::cancelled);
  }
  for (auto& s : held) {
    self->monitor(s.handle);
    wait_down(s.handle);
  }
}

BOOST_AUTO_TEST_CASE(late_job_fails_with_call_timeout_and_is_not_retried) {
  auto cfg = config(observed(true), 1, dispatch_policy::round_robin);
  cfg.job_timeout = std::chrono::milliseconds(50);
  auto pool = spawn_pool(sys, cfg);
  auto err = request_error(pool, 4);
  BOOST_CHECK(err == errc::call_timeout);
  auto starts = pending_starts();
  BOOST_REQUIRE_EQUAL(starts.size(), 1u);
  // The worker still runs it: the job keeps its place there.
  BOOST_CHECK_EQUAL(stat(status(pool), "overdue"), 1);
  BOOST_CHECK_EQUAL(stat(status(pool), "in_flight"), 0);
  // The worker's answer comes too late and is ignored.
  self->send(starts.front().handle, release_atom::value);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "timed_out"), 1);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 1);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 0);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(supervised_stream_shuts_down_gracefully_with_nothing_lost) {
  worker_options opts;
  opts.poison = 100;
  opts.crashes = std::make_shared<std::atomic<int>>(1); // one crash mid-way
  auto cfg = config(opts, 3, dispatch_policy::pull);
  cfg.queue_capacity = 16;
  supervisor_spec spec;
  spec.name = "pipeline";
  spec.children = {summing_sink_child(self, 500), pool_child(cfg, "sink"),
                   counter_source("pool")};
  auto root = spawn_supervisor(sys, spec);
  await_progress(*this);
  // The running pool's own stats come through its address.
  auto address = address_of(root, "pool");
  auto live = await_stat(address, "worker_restarts", 1);
  live = await_stat(address, "retried", 1);
  BOOST_CHECK_LE(stat(live, "max_held"), 16);
  auto report = troupe::shutdown(sys, root);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto [count, sum] = receive_sink_done(*this);
  auto source = find_report(*report, "source");
  auto pool = find_report(*report, "pool");
  auto sink = find_report(*report, "sink");
  BOOST_REQUIRE(source && pool && sink);
  BOOST_CHECK(pool->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(pool->in, source->out);
  BOOST_CHECK_EQUAL(pool->out, source->out);
  BOOST_CHECK_EQUAL(sink->in, source->out);
  BOOST_CHECK_EQUAL(count, source->out);
  BOOST_CHECK_EQUAL(sum, 10 * (source->out * (source->out - 1) / 2));
  BOOST_CHECK_EQUAL(pool->dropped, 0u);
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
  BOOST_CHECK_EQUAL(t.errors, 0u);
}

BOOST_AUTO_TEST_CASE(pool_restarted_by_its_supervisor_answers_at_its_stable_address) {
  auto opts = observed();
  opts.poison = 99;
  opts.crashes = std::make_shared<std::atomic<int>>(1);
  auto cfg = config(opts, 2, dispatch_policy::round_robin);
  cfg.worker_restarts = {0, std::chrono::seconds(30)}; // first crash fails it
  supervisor_spec spec;
  spec.children = {pool_child(cfg, "")};
  auto sup = spawn_supervisor(sys, spec);
  auto address = address_of(sup, "pool");
  auto ask_address = [&](uint64_t x) {
    self->request(address, patience, x)
      .receive([&](uint64_t r) { BOOST_CHECK_EQUAL(r, x * 10); },
               [&](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  };
  ask_address(1);
  BOOST_CHECK(request_error(address, 99) == errc::restart_intensity_exceeded);
  await_child(sup, "pool",
              [](const actor_report& x) {
                return x.restarts == 1 && x.stopped == stop_reason::running;
              },
              "restarted");
  ask_address(2);
  ask_address(3);
  auto report = troupe::shutdown(sys, sup);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto pool = find_report(*report, "pool");
  BOOST_REQUIRE(pool);
  BOOST_CHECK_EQUAL(pool->restarts, 1u);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

using refused_atom = caf::atom_constant<caf::atom("refused")>;
using joined_atom = caf::atom_constant<caf::atom("joined")>;

/// A node the test takes down and brings back: while it is down, a start
/// placed on it throws node_unreachable, as a factory that starts workers on
/// another node does. A start tells `observer` (joined_atom, worker), and a
/// refused one (refused_atom, worker) while `notes` is above zero: refusals
/// come every rejoin_interval, and a steady stream of messages would keep
/// the test's receive timeouts from ever firing.
struct test_node {
  std::shared_ptr<std::atomic<bool>> up = std::make_shared<std::atomic<bool>>(true);
  std::shared_ptr<std::atomic<int>> notes = std::make_shared<std::atomic<int>>(0);
  caf::actor observer;
};

/// Starts worker-n (named by the pool) on nodes[n % nodes.size()].
worker_factory placed_on(std::vector<test_node> nodes, worker_factory inner) {
  return [nodes, inner](const spawn_context& ctx) {
    auto n = std::stoul(ctx.name().substr(ctx.name().rfind('-') + 1));
    auto& node = nodes[n % nodes.size()];
    if (!node.up->load()) {
      auto wanted = node.notes->load();
      while (wanted > 0 && !node.notes->compare_exchange_weak(wanted, wanted - 1))
        ; // another start took a note meanwhile
      if (wanted > 0)
        caf::anon_send(node.observer, refused_atom::value, ctx.name());
      throw node_unreachable(ctx.name() + ": its node is down");
    }
    auto worker = inner(ctx);
    caf::anon_send(node.observer, joined_atom::value, ctx.name());
    return worker;
  };
}

/// Simulates the death of the node a worker runs on: CAF takes down the
/// proxies of a lost node's actors with this reason.
void lose_node_of(const caf::actor& worker) {
  caf::anon_send_exit(worker, caf::exit_reason::remote_link_unreachable);
}

struct remote_fixture : pool_fixture {
  /// A pool with parked workers keeps itself alive with its rejoin timers,
  /// and the system waits for every actor as it shuts down: a test that
  /// fails before it stops its pool must not hang.
  ~remote_fixture() {
    for (auto& x : to_kill)
      caf::anon_send_exit(x, caf::exit_reason::kill);
  }

  caf::actor start_pool(spawn_context ctx, const pool_config& cfg) {
    to_kill.push_back(spawn_pool(std::move(ctx), cfg));
    return to_kill.back();
  }

  /// Pools and supervisors the test started.
  std::vector<caf::actor> to_kill;

  test_node node() {
    test_node result;
    result.observer = self;
    return result;
  }

  /// A pool of `workers` gated workers of `opts`, worker-n on
  /// nodes[n % size]; parked workers retry every 20 ms.
  pool_config remote_config(worker_options opts, uint32_t workers,
                            std::vector<test_node> nodes) {
    auto cfg = config(std::move(opts), workers, dispatch_policy::round_robin);
    cfg.worker = placed_on(std::move(nodes), cfg.worker);
    cfg.rejoin_interval = std::chrono::milliseconds(20);
    return cfg;
  }

  /// Waits until `n` more starts on `at` were refused (from now on: earlier
  /// ones are not told).
  void await_refusals(const test_node& at, int n) {
    at.notes->store(n);
    for (; n > 0; --n)
      self->receive([&](refused_atom, const std::string&) {},
                    caf::after(patience) >> [&] { BOOST_FAIL("no start was tried"); });
  }

  /// Waits until `worker` started (earlier joins of others are skipped).
  void await_join(const std::string& worker) {
    for (bool joined = false; !joined;) {
      self->receive(
        [&](joined_atom, const std::string& who) { joined = who == worker; },
        caf::after(patience) >> [&] { BOOST_FAIL(worker + " never joined"); });
    }
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(pool_remote_workers, remote_fixture)

BOOST_AUTO_TEST_CASE(jobs_held_by_a_worker_lost_with_its_node_go_to_other_workers_without_using_an_attempt) {
  auto a = node();
  auto b = node();
  auto cfg = remote_config(observed(true), 2, {a, b});
  // One attempt: a job whose loss counted as an attempt would fail.
  cfg.max_attempts = 1;
  auto pool = start_pool(sys, cfg);
  for (uint64_t x = 0; x < 4; ++x)
    ask(pool, x);
  auto first = next_starts(4);
  std::set<uint64_t> lost;
  caf::actor victim;
  for (auto& s : first) {
    if (s.worker == "pool/worker-0") {
      lost.insert(s.job);
      victim = s.handle;
    }
  }
  BOOST_REQUIRE_EQUAL(lost.size(), 2u);
  a.up->store(false);
  lose_node_of(victim);
  std::set<uint64_t> rerun;
  for (auto& s : next_starts(2)) {
    BOOST_CHECK_EQUAL(s.worker, "pool/worker-1");
    rerun.insert(s.job);
    self->send(s.handle, release_atom::value, s.job);
  }
  BOOST_CHECK(rerun == lost);
  for (auto& s : first)
    if (s.worker != "pool/worker-0")
      self->send(s.handle, release_atom::value, s.job);
  expect_answers(4); // none lost, none failed
  BOOST_CHECK(pending_starts().empty()); // and none run a third time
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 4);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 0);
  BOOST_CHECK_EQUAL(stat(r, "redispatched"), 2);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 0);
  BOOST_CHECK_EQUAL(stat(r, "node_losses"), 1);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 0);
  // Parked: a worker of this process lost with its link is started again
  // after rejoin_interval (one of another node is started again at once,
  // and parked when its node is gone: the cluster tests cover that).
  BOOST_CHECK_EQUAL(stat(r, "parked"), 1);
  BOOST_CHECK_EQUAL(stat(r, "workers"), 2);
  BOOST_REQUIRE_EQUAL(r.children.size(), 2u);
  BOOST_CHECK_EQUAL(r.children[0].state, "parked");
  BOOST_CHECK(contains(r.children[0].error, "remote_link_unreachable"));
  stop(pool);
}

BOOST_AUTO_TEST_CASE(a_job_redispatched_after_a_node_loss_keeps_its_attempts_for_crashes) {
  auto a = node();
  auto b = node();
  auto cfg = remote_config(observed(true), 2, {a, b});
  cfg.max_attempts = 2; // the loss and a crash: had the loss used one, the
                        // crash would fail the job
  auto pool = start_pool(sys, cfg);
  auto first = ask_and_start(pool, 5);
  BOOST_CHECK_EQUAL(first.worker, "pool/worker-0");
  a.up->store(false);
  lose_node_of(first.handle);
  auto second = next_start();
  BOOST_CHECK_EQUAL(second.worker, "pool/worker-1");
  self->send(second.handle, crash_atom::value);
  auto third = next_start(); // worker-1 restarted; worker-0 is parked
  BOOST_CHECK_EQUAL(third.worker, "pool/worker-1");
  BOOST_CHECK_EQUAL(third.job, 5u);
  self->send(third.handle, release_atom::value, uint64_t{5});
  expect_answers(1);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "redispatched"), 1);
  BOOST_CHECK_EQUAL(stat(r, "retried"), 1);
  BOOST_CHECK_EQUAL(stat(r, "node_losses"), 1);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 1);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 0);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(node_losses_and_parked_starts_do_not_count_toward_restart_intensity) {
  auto a = node();
  auto b = node();
  a.up->store(false); // worker-0's node is not up yet
  auto cfg = remote_config(observed(), 2, {a, b});
  cfg.worker_restarts = {0, std::chrono::seconds(30)}; // no restart at all
  auto pool = start_pool(sys, cfg);
  await_join("pool/worker-1");
  await_refusals(a, 5); // worker-0 is tried again and again
  // worker-1 is lost with its node, which is back when it is started
  // again at once.
  auto s = ask_and_start(pool, 0);
  BOOST_CHECK_EQUAL(s.worker, "pool/worker-1");
  expect_answers(1);
  lose_node_of(s.handle);
  await_join("pool/worker-1");
  // Then lost again, with its node staying down.
  s = ask_and_start(pool, 1);
  BOOST_CHECK_EQUAL(s.worker, "pool/worker-1");
  expect_answers(1);
  b.up->store(false);
  lose_node_of(s.handle);
  await_refusals(b, 3);
  auto r = status(pool); // the pool still runs
  BOOST_CHECK_EQUAL(r.state, "parked");
  BOOST_CHECK_EQUAL(stat(r, "node_losses"), 2);
  BOOST_CHECK_EQUAL(stat(r, "worker_restarts"), 0);
  BOOST_CHECK_EQUAL(stat(r, "parked"), 2);
  BOOST_REQUIRE_EQUAL(r.children.size(), 2u);
  BOOST_CHECK_EQUAL(r.children[1].restarts, 2u); // a new worker per loss
  stop(pool);
}

BOOST_AUTO_TEST_CASE(parked_worker_rejoins_once_its_node_is_up_and_then_takes_jobs) {
  auto a = node();
  auto b = node();
  a.up->store(false);
  auto pool = start_pool(sys, remote_config(observed(), 2, {a, b}));
  await_refusals(a, 1);
  // Meanwhile every job goes to the worker that runs.
  for (uint64_t x = 0; x < 4; ++x)
    BOOST_CHECK_EQUAL(ask_and_start(pool, x).worker, "pool/worker-1");
  expect_answers(4);
  a.up->store(true);
  await_join("pool/worker-0");
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "rejoined"), 1);
  BOOST_CHECK_EQUAL(stat(r, "parked"), 0);
  BOOST_CHECK_EQUAL(r.state, "running");
  for (uint64_t x = 10; x < 14; ++x)
    ask(pool, x);
  std::map<std::string, int> per_worker;
  for (auto& s : next_starts(4))
    ++per_worker[s.worker];
  BOOST_CHECK_EQUAL(per_worker["pool/worker-0"], 2);
  BOOST_CHECK_EQUAL(per_worker["pool/worker-1"], 2);
  expect_answers(4);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(jobs_wait_while_every_worker_is_parked_and_complete_once_one_rejoins) {
  auto a = node();
  auto b = node();
  auto pool = start_pool(sys, remote_config(observed(), 2, {a, b}));
  await_join("pool/worker-0");
  await_join("pool/worker-1");
  // Both nodes die: the second loss leaves no worker at all.
  a.up->store(false);
  b.up->store(false);
  auto s0 = ask_and_start(pool, 0);
  auto s1 = ask_and_start(pool, 1);
  expect_answers(2);
  lose_node_of(s0.handle);
  lose_node_of(s1.handle);
  await_refusals(a, 1);
  await_refusals(b, 1);
  for (uint64_t x = 10; x < 13; ++x)
    ask(pool, x);
  auto r = await_stat(pool, "queued", 3);
  BOOST_CHECK_EQUAL(r.state, "parked");
  BOOST_CHECK_EQUAL(stat(r, "failed"), 0);
  BOOST_CHECK(pending_starts().empty());
  b.up->store(true);
  expect_answers(3);
  for (auto& s : next_starts(3))
    BOOST_CHECK_EQUAL(s.worker, "pool/worker-1");
  r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "completed"), 5);
  BOOST_CHECK_EQUAL(stat(r, "rejoined"), 1);
  BOOST_CHECK_EQUAL(stat(r, "parked"), 1);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(drain_while_every_worker_is_parked_ends_and_fails_the_waiting_jobs) {
  auto a = node();
  a.up->store(false); // never comes up
  spawn_context ctx{sys};
  ctx.report_to(self);
  auto pool = start_pool(ctx, remote_config(observed(), 2, {a}));
  self->monitor(pool);
  ask(pool, 1);
  ask(pool, 2);
  await_stat(pool, "queued", 2);
  self->send(pool, drain_atom::value);
  for (int i = 0; i < 2; ++i) {
    auto [x, o] = next_outcome();
    BOOST_CHECK(!o.ok);
    BOOST_CHECK_MESSAGE(o.error == errc::node_unreachable,
                        "job " << x << ": " << sys.actors().render(o.error));
  }
  BOOST_CHECK(!wait_down(pool));
  auto r = receive_one<actor_report>("the pool's final report");
  BOOST_CHECK(r.stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(stat(r, "stranded"), 2);
  BOOST_CHECK_EQUAL(stat(r, "failed"), 2);
  BOOST_CHECK_EQUAL(stat(r, "abandoned"), 0);
  BOOST_CHECK(pending_starts().empty());
}

BOOST_AUTO_TEST_CASE(shrinking_removes_parked_workers_first_and_growing_parks_what_cannot_start) {
  auto a = node();
  auto b = node();
  a.up->store(false);
  // worker-0 (and worker-3) on a, worker-1 and worker-2 on b.
  auto pool = start_pool(sys, remote_config(observed(), 3, {a, b, b}));
  await_refusals(a, 1);
  BOOST_CHECK_EQUAL(resize(pool, 2), 2u);
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "workers"), 2);
  BOOST_CHECK_EQUAL(stat(r, "parked"), 0);
  BOOST_CHECK_EQUAL(stat(r, "retiring"), 0);
  std::set<std::string> names;
  for (auto& w : r.children)
    names.insert(w.name);
  BOOST_CHECK(names == (std::set<std::string>{"pool/worker-1", "pool/worker-2"}));
  BOOST_CHECK_EQUAL(resize(pool, 3), 3u);
  BOOST_CHECK_EQUAL(stat(status(pool), "parked"), 1);
  a.up->store(true);
  await_join("pool/worker-3");
  r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "parked"), 0);
  BOOST_CHECK_EQUAL(stat(r, "rejoined"), 1);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(supervised_stream_drains_while_every_worker_is_parked_with_every_job_counted) {
  auto a = node();
  a.up->store(false); // never comes up
  auto cfg = remote_config(worker_options{}, 2, {a});
  cfg.queue_capacity = 16;
  // A source cannot flush into a pool that takes nothing more: it is
  // stopped at its shutdown deadline.
  auto source_spec = counter_source("pool");
  source_spec.shutdown = std::chrono::milliseconds(100);
  supervisor_spec spec;
  spec.name = "pipeline";
  spec.children = {summing_sink_child(self, 1), pool_child(cfg, "sink"),
                   source_spec};
  auto root = spawn_supervisor(sys, spec);
  to_kill.push_back(root);
  // The pool takes items up to its capacity, then its upstream has no
  // credit left.
  await_stat(address_of(root, "pool"), "queued", 16);
  auto report = troupe::shutdown(sys, root);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK_EQUAL(count, 0u);
  auto source = find_report(*report, "source");
  auto pool = find_report(*report, "pool");
  BOOST_REQUIRE(source && pool);
  BOOST_CHECK(source->stopped == stop_reason::killed);
  BOOST_CHECK(pool->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(pool->in, source->out); // what it sent, the pool took
  BOOST_CHECK_EQUAL(pool->errors, pool->in); // and failed, none lost
  BOOST_CHECK_EQUAL(stat(*pool, "stranded"), static_cast<int64_t>(pool->in));
  BOOST_CHECK_EQUAL(pool->dropped, 0u);
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(pool_batches, pool_fixture)

namespace {

/// 20 jobs 0..19 in one link message into `pool`, which sends its results to
/// a reporting sink; returns the values that reached the sink and the
/// sizes of the batches the workers got.
struct batch_run {
  std::multiset<uint64_t> values;
  std::vector<uint64_t> batches;
  actor_report report;
};

batch_run run_batches(pool_fixture& f, pool_config cfg) {
  batch_run result;
  auto sink = spawn_reporting_sink(f.sys, f.self);
  stage_config links;
  links.next = {sink};
  spawn_context ctx{f.sys};
  ctx.report_to(f.self);
  auto pool = spawn_pool(ctx, cfg, links);
  f.self->monitor(pool);
  manual_upstream up{f.self, pool};
  std::vector<item> jobs;
  for (uint64_t x = 0; x < 20; ++x)
    jobs.push_back(caf::make_message(x));
  up.push(std::move(jobs));
  up.end();
  bool ended = false;
  while (!ended) {
    f.self->receive(
      [&](sink_item_atom, item& x, int64_t) {
        result.values.insert(x.get_as<uint64_t>(0));
      },
      [&](batch_atom, uint64_t n) { result.batches.push_back(n); },
      [&](sink_end_atom, uint64_t) { ended = true; },
      caf::after(patience) >> [] { BOOST_FAIL("the sink never ended"); });
  }
  BOOST_CHECK(!f.wait_down(pool));
  result.report = f.receive_one<actor_report>("the pool's final report");
  // Every batch notice was sent before its answer, so before the sink's end.
  for (bool more = true; more;) {
    more = false;
    f.self->receive(
      [&](batch_atom, uint64_t n) {
        result.batches.push_back(n);
        more = true;
      },
      caf::after(std::chrono::seconds(0)) >> [] {});
  }
  return result;
}

std::multiset<uint64_t> tenfold(uint64_t n, uint64_t except = no_job) {
  std::multiset<uint64_t> result;
  for (uint64_t x = 0; x < n; ++x)
    if (x != except)
      result.insert(x * 10);
  return result;
}

} // namespace

BOOST_AUTO_TEST_CASE(items_of_a_round_go_to_workers_in_batches_of_at_most_max_batch) {
  batch_options opts;
  opts.observer = self;
  auto cfg = config(worker_options{}, 2, dispatch_policy::round_robin);
  cfg.worker = batch_workers_with(opts);
  cfg.max_batch = 8;
  auto run = run_batches(*this, cfg);
  BOOST_CHECK(run.values == tenfold(20));
  uint64_t jobs = 0;
  uint64_t largest = 0;
  for (auto n : run.batches) {
    jobs += n;
    largest = std::max(largest, n);
  }
  BOOST_CHECK_EQUAL(jobs, 20u);
  BOOST_CHECK_LE(largest, 8u);
  BOOST_CHECK_GT(largest, 1u);
  BOOST_CHECK_EQUAL(stat(run.report, "completed"), 20);
  BOOST_CHECK_EQUAL(run.report.out, 20u);
}

BOOST_AUTO_TEST_CASE(an_error_in_a_batch_answer_fails_that_job_alone) {
  batch_options opts;
  opts.unlucky = 7;
  auto cfg = config(worker_options{}, 2, dispatch_policy::round_robin);
  cfg.worker = batch_workers_with(opts);
  cfg.max_batch = 8;
  auto run = run_batches(*this, cfg);
  BOOST_CHECK(run.values == tenfold(20, 7));
  BOOST_CHECK_EQUAL(stat(run.report, "failed"), 1);
  BOOST_CHECK_EQUAL(stat(run.report, "retried"), 0);
  BOOST_CHECK_EQUAL(run.report.errors, 1u);
}

BOOST_AUTO_TEST_CASE(jobs_of_a_batch_whose_worker_crashed_are_each_retried_and_answered_once) {
  batch_options opts;
  opts.poison = 5;
  opts.crashes = std::make_shared<std::atomic<int>>(1);
  auto cfg = config(worker_options{}, 2, dispatch_policy::round_robin);
  cfg.worker = batch_workers_with(opts);
  cfg.max_batch = 8;
  auto run = run_batches(*this, cfg);
  BOOST_CHECK(run.values == tenfold(20));
  BOOST_CHECK_EQUAL(stat(run.report, "worker_restarts"), 1);
  BOOST_CHECK_GE(stat(run.report, "retried"), 1);
  BOOST_CHECK_EQUAL(stat(run.report, "completed"), 20);
}

BOOST_AUTO_TEST_CASE(requests_go_in_batches_too_and_a_malformed_answer_fails_with_job_failed) {
  batch_options opts;
  opts.malformed = 3;
  auto cfg = config(worker_options{}, 1, dispatch_policy::round_robin);
  cfg.worker = batch_workers_with(opts);
  cfg.max_batch = 4;
  auto pool = spawn_pool(sys, cfg);
  expect_tenfold(pool, 2);
  auto err = request_error(pool, 3);
  BOOST_CHECK(err == errc::job_failed);
  stop(pool);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(pool_function_workers, pool_fixture)

using pool_batches::run_batches;
using pool_batches::tenfold;

namespace {

/// A pool of `workers` function workers computing x * 10; job `unlucky`
/// returns an error and job `throwing` throws.
pool_config tenfold_work(uint32_t workers, uint64_t unlucky = no_job,
                         uint64_t throwing = no_job) {
  pool_config cfg;
  cfg.workers = workers;
  cfg.work = [=](item& job) -> caf::expected<item> {
    auto x = job.get_as<uint64_t>(0);
    if (x == unlucky)
      return caf::make_error(caf::sec::invalid_argument, "unlucky job");
    if (x == throwing)
      throw std::runtime_error("job " + std::to_string(x) + " threw");
    return make_item(x * 10);
  };
  return cfg;
}

/// Sends jobs from..from+n-1 in one link message and waits for their n
/// results at the sink.
std::multiset<uint64_t> push_round(pool_fixture& f, manual_upstream& up,
                                   uint64_t from, uint64_t n) {
  std::vector<item> jobs;
  for (uint64_t x = from; x < from + n; ++x)
    jobs.push_back(make_item(x));
  up.push(std::move(jobs));
  std::multiset<uint64_t> values;
  for (uint64_t i = 0; i < n; ++i)
    f.self->receive(
      [&](sink_item_atom, item& x, int64_t) { values.insert(x.get_as<uint64_t>(0)); },
      caf::after(patience) >> [] { BOOST_FAIL("a result never came"); });
  return values;
}

} // namespace

BOOST_AUTO_TEST_CASE(function_workers_share_a_first_round_then_take_cheap_jobs_in_full_batches) {
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  auto pool = spawn_pool(sys, tenfold_work(2), links);
  manual_upstream up{self, pool};
  BOOST_CHECK(push_round(*this, up, 0, 20) == tenfold(20));
  // What a job costs is unknown before a batch was answered: the round is
  // shared out, one batch per worker, rather than sent to the first.
  auto r = status(pool);
  BOOST_CHECK_EQUAL(stat(r, "batches"), 2);
  for (auto& w : r.children)
    BOOST_CHECK_EQUAL(w.in, 10u);
  // Those batches took far less than a millisecond: the next round of
  // these cheap jobs goes in one message, not one per worker.
  BOOST_CHECK_EQUAL(push_round(*this, up, 20, 20).size(), 20u);
  BOOST_CHECK_EQUAL(stat(status(pool), "batches"), 3);
  up.end();
}

BOOST_AUTO_TEST_CASE(function_workers_share_out_a_round_once_a_batch_took_long) {
  pool_config cfg;
  cfg.workers = 3;
  cfg.work = [](item& job) -> caf::expected<item> {
    // The work itself takes long (the cost under test), not a wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return make_item(job.get_as<uint64_t>(0) * 10);
  };
  auto sink = spawn_reporting_sink(sys, self);
  stage_config links;
  links.next = {sink};
  auto pool = spawn_pool(sys, cfg, links);
  manual_upstream up{self, pool};
  push_round(*this, up, 0, 1);
  // That batch took over a millisecond: a round of 6 goes 2 to each
  // worker, not 6 to one.
  BOOST_CHECK(push_round(*this, up, 1, 6).size() == 6u);
  for (auto& w : status(pool).children)
    BOOST_CHECK_LE(w.in, 3u);
  up.end();
}

BOOST_AUTO_TEST_CASE(a_function_that_fails_or_throws_fails_its_job_alone_without_retry) {
  auto run = run_batches(*this, tenfold_work(2, 4, 7));
  std::multiset<uint64_t> expected;
  for (uint64_t x = 0; x < 20; ++x)
    if (x != 4 && x != 7)
      expected.insert(x * 10);
  BOOST_CHECK(run.values == expected);
  BOOST_CHECK_EQUAL(stat(run.report, "failed"), 2);
  BOOST_CHECK_EQUAL(stat(run.report, "retried"), 0);
  BOOST_CHECK_EQUAL(stat(run.report, "worker_restarts"), 0);
  BOOST_CHECK_EQUAL(run.report.errors, 2u);
}

BOOST_AUTO_TEST_CASE(a_request_to_a_pool_of_function_workers_gets_its_result_or_error) {
  auto pool = spawn_pool(sys, tenfold_work(2, no_job, 3));
  expect_tenfold(pool, 2);
  auto err = request_error(pool, 3);
  BOOST_CHECK(err == errc::job_threw);
  BOOST_CHECK_NE(sys.actors().render(err).find("job 3 threw"), std::string::npos);
  stop(pool);
}

BOOST_AUTO_TEST_CASE(a_job_that_is_itself_a_batch_reaches_the_function_whole) {
  pool_config cfg;
  cfg.workers = 1;
  cfg.max_batch = 1;
  cfg.work = [](item& job) -> caf::expected<item> {
    if (!job.match_elements<batch>())
      return caf::make_error(caf::sec::invalid_argument, "not a batch");
    return make_item(static_cast<uint64_t>(job.get_as<batch>(0).items.size()));
  };
  auto pool = spawn_pool(sys, cfg);
  batch two;
  two.items = {make_item(uint64_t{1}), make_item(uint64_t{2})};
  self->request(pool, patience, std::move(two))
    .receive([](uint64_t n) { BOOST_CHECK_EQUAL(n, 2u); }, fail_on_error());
  stop(pool);
}

BOOST_AUTO_TEST_SUITE_END()
