// The fan-out: results in input order and in completion order, at most k in
// flight, failed items reported in place with their error (an error answer,
// a processor crash, a timeout), cancellation that stops per-item actors
// (cancel, and a requester that stops), drain that waits for what is in
// flight, service mode with batches, work given as a function run on the
// fan-out's own runners in batch calls, and config validation.

#include "streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/patterns/fanout.hpp>
#include <troupe/patterns/pipeline.hpp>
#include <troupe/supervision/shutdown.hpp>

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using held_atom = caf::atom_constant<caf::atom("held")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using spawned_atom = caf::atom_constant<caf::atom("spawned")>;
constexpr uint64_t no_item = ~uint64_t{0};
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using gone_atom = caf::atom_constant<caf::atom("gone")>;

struct holder_state {
  std::map<uint64_t, caf::response_promise> held;
  caf::actor caller;
  static inline const char* name = "holding_processor";
};

/// A fixed processor that holds each call (uint64_t n), tells `observer`
/// (held_atom, n), and answers 10n when the test sends (release_atom, n).
/// (caf::get_atom) answers the actor that made the last call.
caf::behavior holding_processor(caf::stateful_actor<holder_state>* self,
                                caf::actor observer) {
  return {
    [self, observer](uint64_t n) {
      // Before the promise, which takes the sender out of the message.
      self->state.caller = caf::actor_cast<caf::actor>(self->current_sender());
      auto rp = self->make_response_promise();
      self->state.held.emplace(n, rp);
      caf::anon_send(observer, held_atom::value, n);
      return rp;
    },
    [self](release_atom, uint64_t n) {
      auto i = self->state.held.find(n);
      if (i == self->state.held.end())
        return;
      i->second.deliver(n * 10);
      self->state.held.erase(i);
    },
    [self](caf::get_atom) { return self->state.caller; },
  };
}

uint64_t receive_held(system_fixture& f) {
  uint64_t result = 0;
  f.self->receive([&](held_atom, uint64_t n) { result = n; },
                  caf::after(patience) >> [] { BOOST_FAIL("a call never came"); });
  return result;
}

/// A fixed processor answering 10n, or an error for n == bad.
caf::behavior failing_processor(caf::event_based_actor*, uint64_t bad) {
  return {[bad](uint64_t n) -> caf::result<uint64_t> {
    if (n == bad)
      return caf::make_error(caf::sec::runtime_error, "cannot take " + std::to_string(n));
    return n * 10;
  }};
}

struct gauge {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
};

/// A per-item processor that counts itself in `g` while it works, and
/// answers n after a millisecond (a timer, so others run meanwhile).
caf::behavior gauged_processor(caf::event_based_actor* self, std::shared_ptr<gauge> g) {
  return {
    [self, g](uint64_t n) {
      auto now = ++g->now;
      for (auto peak = g->peak.load(); now > peak && !g->peak.compare_exchange_weak(peak, now);) {
      }
      auto rp = self->make_response_promise();
      self->delayed_send(self, 1ms, finish_atom::value);
      self->become([self, g, rp, n](finish_atom) mutable {
        --g->now;
        rp.deliver(n);
      });
      return rp;
    },
  };
}

/// A per-item processor that tells `observer` (spawned_atom, itself) and
/// never answers: only a kill stops it.
caf::behavior stuck_processor(caf::event_based_actor* self, caf::actor observer) {
  caf::anon_send(observer, spawned_atom::value, caf::actor{self});
  return {[self](uint64_t) { return self->make_response_promise(); }};
}

/// A per-item processor that crashes on n == bad and answers 10n otherwise.
caf::behavior crashing_processor(caf::event_based_actor*, uint64_t bad) {
  return {[bad](uint64_t n) -> uint64_t {
    if (n == bad)
      throw std::runtime_error("processor crashes on " + std::to_string(n));
    return n * 10;
  }};
}

/// The value of a sink item, or of the input of an item_failure.
struct outcome {
  bool failed = false;
  uint64_t value = 0;
  caf::error reason;
};

outcome receive_outcome(system_fixture& f) {
  auto x = receive_sunk(f).value;
  if (x.match_elements<item_failure>()) {
    auto& failure = x.get_as<item_failure>(0);
    return {true, failure.input.get_as<uint64_t>(0), failure.reason};
  }
  return {false, x.get_as<uint64_t>(0), caf::error{}};
}

std::vector<uint64_t> receive_values(system_fixture& f, size_t n) {
  std::vector<uint64_t> result;
  for (size_t i = 0; i < n; ++i)
    result.push_back(receive_outcome(f).value);
  return result;
}

void await_held(system_fixture& f, size_t n) {
  for (size_t i = 0; i < n; ++i)
    f.self->receive([](held_atom, uint64_t) {},
                    caf::after(patience) >> [] { BOOST_FAIL("a call never came"); });
}

caf::actor receive_spawned(system_fixture& f) {
  caf::actor result;
  f.self->receive([&](spawned_atom, caf::actor& a) { result = a; },
                  caf::after(patience) >> [] { BOOST_FAIL("no per-item actor"); });
  return result;
}

/// Returns once `proc` handled every message the test sent it before: what
/// it sent the fan-out is then in the fan-out's mailbox ahead of anything
/// the test sends the fan-out next.
void sync_with(system_fixture& f, const caf::actor& proc) {
  f.self->request(proc, patience, caf::get_atom::value)
    .receive([](caf::actor&) {}, [](caf::error&) { BOOST_FAIL("no answer from the processor"); });
}

/// A gate that a function for fanout_config::process waits on. The test
/// system has two scheduler threads: at most one runner may wait at a time.
struct gate {
  std::promise<void> opened;
  std::shared_future<void> open_future = opened.get_future().share();
  void open() {
    opened.set_value();
  }
};

/// Tells the test (gone_atom) once destroyed: a runner's copy of a function
/// makes one at its first item, so it goes when the runner stops.
struct destruction_probe {
  caf::actor observer;
  ~destruction_probe() {
    caf::anon_send(observer, gone_atom::value);
  }
};

/// Items per runner, each runner known by the copy of the function it
/// holds (a runner numbers itself at its first item).
struct runner_tally {
  std::mutex mx;
  std::vector<uint64_t> items;
  size_t join() {
    std::lock_guard<std::mutex> guard{mx};
    items.push_back(0);
    return items.size() - 1;
  }
  void count(size_t runner) {
    std::lock_guard<std::mutex> guard{mx};
    ++items[runner];
  }
};

/// A function for fanout_config::process answering 10n: it tells `observer`
/// (held_atom, n) first, waits for `g` on n == gated, returns an error for
/// n == bad and throws for n == throwing.
job_function tenfold(caf::actor observer, std::shared_ptr<gate> g = nullptr,
                     uint64_t gated = no_item, uint64_t bad = no_item,
                     uint64_t throwing = no_item) {
  return [=](item& x) -> caf::expected<item> {
    auto n = x.get_as<uint64_t>(0);
    caf::anon_send(observer, held_atom::value, n);
    if (g && n == gated)
      g->open_future.wait();
    if (n == bad)
      return caf::make_error(caf::sec::runtime_error, "cannot take " + std::to_string(n));
    if (n == throwing)
      throw std::runtime_error("item " + std::to_string(n) + " threw");
    return make_item(n * 10);
  };
}

struct fanout_fixture : system_fixture {
  std::vector<caf::actor> sinks;

  // A sink whose fan-out was cancelled never sees its stream end.
  ~fanout_fixture() {
    for (auto& s : sinks)
      caf::anon_send(s, cancel_atom::value);
  }

  /// A fan-out that reports to the test when it stops, feeding a reporting
  /// sink.
  caf::actor make_fanout(fanout_config cfg) {
    auto sink = spawn_reporting_sink(sys.actors(), self);
    sinks.push_back(sink);
    stage_config links;
    links.next = {sink};
    return spawn_reporting_fanout(std::move(cfg), std::move(links));
  }

  /// A fan-out named "fan" that sends its final report to the test.
  caf::actor spawn_reporting_fanout(fanout_config cfg, stage_config links = {}) {
    spawn_context ctx{sys.actors(), "fan", caf::actor{}, caf::actor{self}, 0, {}};
    return spawn_fanout(ctx, std::move(cfg), std::move(links));
  }

  actor_report final_report() {
    return receive_one<actor_report>("the fan-out's final report");
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(fanout, fanout_fixture)

BOOST_AUTO_TEST_CASE(fanout_gathers_in_input_order_or_in_completion_order) {
  for (auto order : {fanout_config::order_policy::input,
                     fanout_config::order_policy::completion}) {
    BOOST_TEST_MESSAGE("order " << to_string(order));
    auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
    fanout_config cfg;
    cfg.max_in_flight = 5;
    cfg.order = order;
    cfg.processors = {proc};
    auto fan = make_fanout(cfg);
    manual_upstream up{self, fan};
    up.push(numbers(0, 5));
    await_held(*this, 5);
    for (uint64_t n : {3, 1, 4, 0, 2})
      caf::anon_send(proc, release_atom::value, n);
    auto got = receive_values(*this, 5);
    std::vector<uint64_t> expected = order == fanout_config::order_policy::input
                                       ? std::vector<uint64_t>{0, 10, 20, 30, 40}
                                       : std::vector<uint64_t>{30, 10, 40, 0, 20};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(),
                                  expected.end());
    up.end();
    BOOST_CHECK_EQUAL(receive_sink_end(*this), 5u);
    auto report = final_report();
    BOOST_CHECK_EQUAL(report.in, 5u);
    BOOST_CHECK_EQUAL(report.out, 5u);
    BOOST_CHECK_EQUAL(report.stats["succeeded"], 5);
    caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
  }
}

BOOST_AUTO_TEST_CASE(fanout_keeps_at_most_k_calls_in_flight) {
  constexpr uint64_t items = 300;
  auto g = std::make_shared<gauge>();
  fanout_config cfg;
  cfg.max_in_flight = 4;
  cfg.order = fanout_config::order_policy::completion;
  cfg.spawn_processor = [g](caf::actor_system& sys) {
    return sys.spawn(gauged_processor, g);
  };
  auto sink = spawn_stage(sys.actors(), stage_config{},
                          std::make_unique<summing_sink>(self, endless));
  stage_config links;
  links.next = {sink};
  auto fan = spawn_reporting_fanout(cfg, links);
  stage_config to_fan;
  to_fan.next = {fan};
  auto n = std::make_shared<uint64_t>(0);
  spawn_source(sys.actors(), to_fan, [n](emitter& out, size_t max) {
    for (size_t k = 0; k < max && *n < items; ++k)
      out.push(caf::make_message((*n)++));
    return *n < items;
  });
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK_EQUAL(count, items);
  BOOST_CHECK_EQUAL(sum, items * (items - 1) / 2);
  // Seen by the processors themselves: never more than k at once. (That k
  // are reached is timing here; the holding tests below prove it exactly.)
  BOOST_CHECK_LE(g->peak.load(), 4);
  BOOST_CHECK_GE(g->peak.load(), 1);
  auto report = final_report();
  BOOST_CHECK_LE(report.stats["peak_in_flight"], 4);
  BOOST_CHECK_EQUAL(report.stats["spawned"], static_cast<int64_t>(items));
  BOOST_CHECK_EQUAL(report.stats["killed"], 0);
}

BOOST_AUTO_TEST_CASE(fanout_in_input_order_stalls_intake_while_the_first_result_is_missing) {
  auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
  fanout_config cfg;
  cfg.max_in_flight = 3;
  cfg.order = fanout_config::order_policy::input;
  cfg.processors = {proc};
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 6));
  await_held(*this, 3);
  // 1 and 2 are done and wait for 0: they still count against k.
  caf::anon_send(proc, release_atom::value, uint64_t{1});
  caf::anon_send(proc, release_atom::value, uint64_t{2});
  sync_with(*this, proc);
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 3);
  BOOST_CHECK_EQUAL(now.stats["in_flight"], 1); // item 0
  BOOST_CHECK_EQUAL(now.stats["peak_in_flight"], 3);
  BOOST_CHECK_EQUAL(now.in, 3u);
  BOOST_CHECK_EQUAL(now.out, 0u);
  caf::anon_send(proc, release_atom::value, uint64_t{0});
  for (uint64_t i = 3; i < 6; ++i) {
    auto n = receive_held(*this);
    caf::anon_send(proc, release_atom::value, n);
  }
  auto got = receive_values(*this, 6);
  std::vector<uint64_t> expected{0, 10, 20, 30, 40, 50};
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
  up.end();
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 6u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.stats["peak_in_flight"], 3);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_emits_no_more_results_than_its_output_window) {
  using namespace troupe;
  auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
  fanout_config cfg;
  cfg.max_in_flight = 8;
  cfg.order = fanout_config::order_policy::completion;
  cfg.processors = {proc};
  // The test is the downstream, granting a window of 2 and acknowledging
  // only when it says so.
  stage_config links;
  links.next = {caf::actor{self}};
  auto fan = spawn_reporting_fanout(cfg, links);
  uint64_t out_link = 0;
  self->receive([&](link_open& x) { out_link = x.link; },
                caf::after(patience) >> [] { BOOST_FAIL("no link from the fan-out"); });
  constexpr uint64_t epoch = 4242;
  self->send(fan, demand{out_link, epoch, 0, 2});
  manual_upstream up{self, fan};
  up.push(numbers(0, 8));
  await_held(*this, 2);
  sync_with(*this, proc);
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 2); // not 8: only 2 results fit
  caf::anon_send(proc, release_atom::value, uint64_t{0});
  caf::anon_send(proc, release_atom::value, uint64_t{1});
  uint64_t received = 0;
  while (received < 2)
    self->receive([&](link_items& x) { received += x.items.size(); },
                  caf::after(patience) >> [] { BOOST_FAIL("no results"); });
  // Both results sent and not acknowledged: the window is full, no call.
  sync_with(*this, proc);
  now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 2);
  BOOST_CHECK_EQUAL(now.stats["peak_in_flight"], 2);
  // Acknowledged: room for two more.
  self->send(fan, demand{out_link, epoch, 2, 2});
  await_held(*this, 2);
  sync_with(*this, proc);
  now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 4);
  caf::anon_send(fan, cancel_atom::value);
  final_report();
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_timed_out_call_to_a_fixed_processor_keeps_its_slot_until_it_answers) {
  auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
  fanout_config cfg;
  cfg.max_in_flight = 2;
  cfg.order = fanout_config::order_policy::completion;
  cfg.processors = {proc};
  cfg.call_timeout = 50ms;
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 3));
  await_held(*this, 2);
  for (int i = 0; i < 2; ++i) {
    auto x = receive_outcome(*this);
    BOOST_CHECK(x.failed);
    BOOST_CHECK(x.reason == errc::call_timeout);
  }
  // Failed, but the processor still holds both: item 2 must wait.
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 2);
  BOOST_CHECK_EQUAL(now.stats["in_flight"], 2);
  BOOST_CHECK_EQUAL(now.stats["late"], 2);
  BOOST_CHECK_EQUAL(now.stats["timeouts"], 2);
  // The late answer frees the slot (and is not emitted).
  caf::anon_send(proc, release_atom::value, uint64_t{0});
  BOOST_CHECK_EQUAL(receive_held(*this), 2u);
  sync_with(*this, proc);
  now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["late"], 1);
  BOOST_CHECK_EQUAL(now.stats["peak_in_flight"], 2);
  caf::anon_send(proc, release_atom::value, uint64_t{1});
  caf::anon_send(proc, release_atom::value, uint64_t{2});
  up.end();
  // Item 2 answered in time, or timed out on a very loaded machine.
  receive_outcome(*this);
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 3u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.in, 3u);
  BOOST_CHECK_EQUAL(report.out, 3u);
  BOOST_CHECK_EQUAL(report.stats["calls"], 3);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_stops_a_per_item_actor_that_traps_exits_once_it_answered) {
  fanout_config cfg;
  cfg.spawn_processor = [this](caf::actor_system& sys) {
    return sys.spawn([](caf::event_based_actor* self, caf::actor observer) -> caf::behavior {
      // Like a supervisor: an exit message other than kill is its to handle.
      self->set_exit_handler([](caf::exit_msg&) {});
      caf::anon_send(observer, spawned_atom::value, caf::actor{self});
      return {[](uint64_t n) { return n * 10; }};
    }, caf::actor{self});
  };
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 2));
  up.end();
  for (int i = 0; i < 2; ++i)
    self->monitor(receive_spawned(*this));
  auto got = receive_values(*this, 2);
  BOOST_CHECK_EQUAL(got[1], 10u);
  for (int i = 0; i < 2; ++i)
    self->receive([](caf::down_msg&) {},
                  caf::after(patience) >> [] { BOOST_FAIL("a per-item actor lives on"); });
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 2u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.stats["killed"], 0); // all answered first
}

BOOST_AUTO_TEST_CASE(fanout_reports_a_failed_item_with_its_error_and_delivers_the_rest) {
  auto proc = sys.actors().spawn(failing_processor, uint64_t{3});
  fanout_config cfg;
  cfg.processors = {proc};
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 8));
  up.end();
  for (uint64_t i = 0; i < 8; ++i) {
    auto x = receive_outcome(*this);
    BOOST_CHECK_EQUAL(x.failed, i == 3);
    BOOST_CHECK_EQUAL(x.value, i == 3 ? 3 : i * 10);
    if (i == 3)
      BOOST_CHECK(x.reason == caf::sec::runtime_error);
  }
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 8u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.in, 8u);
  BOOST_CHECK_EQUAL(report.out, 8u); // seven results and one item_failure
  BOOST_CHECK_EQUAL(report.errors, 1u);
  BOOST_CHECK_EQUAL(report.stats["failed"], 1);
  BOOST_CHECK_EQUAL(report.dropped, 0u);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_reports_a_processor_crash_as_a_failed_item) {
  fanout_config cfg;
  cfg.spawn_processor = [](caf::actor_system& sys) {
    return sys.spawn(crashing_processor, uint64_t{2});
  };
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 5));
  up.end();
  for (uint64_t i = 0; i < 5; ++i) {
    auto x = receive_outcome(*this);
    BOOST_CHECK_EQUAL(x.failed, i == 2);
    BOOST_CHECK_EQUAL(x.value, i == 2 ? 2 : i * 10);
    if (i == 2)
      BOOST_CHECK_MESSAGE(static_cast<bool>(x.reason), "the crash comes with a reason");
  }
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 5u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.errors, 1u);
}

BOOST_AUTO_TEST_CASE(fanout_reports_a_dead_fixed_processor_and_a_timeout_as_failures) {
  auto dead = sys.actors().spawn(failing_processor, uint64_t{0});
  self->monitor(dead);
  caf::anon_send_exit(dead, caf::exit_reason::user_shutdown);
  wait_down(dead);
  for (auto timed_out : {false, true}) {
    fanout_config cfg;
    if (timed_out) {
      cfg.call_timeout = 20ms;
      cfg.spawn_processor = [this](caf::actor_system& sys) {
        return sys.spawn(stuck_processor, caf::actor{self});
      };
    } else {
      cfg.processors = {dead};
    }
    auto fan = make_fanout(cfg);
    manual_upstream up{self, fan};
    up.push(numbers(0, 2));
    up.end();
    // Each per-item actor is killed once its call timed out.
    if (timed_out)
      for (int i = 0; i < 2; ++i)
        self->monitor(receive_spawned(*this));
    for (int i = 0; i < 2; ++i) {
      auto x = receive_outcome(*this);
      BOOST_CHECK(x.failed);
      if (timed_out)
        BOOST_CHECK(x.reason == errc::call_timeout);
      else
        BOOST_CHECK(x.reason == caf::sec::request_receiver_down);
    }
    BOOST_CHECK_EQUAL(receive_sink_end(*this), 2u);
    if (timed_out) {
      for (int i = 0; i < 2; ++i)
        self->receive([](caf::down_msg&) {},
                      caf::after(patience) >> [] { BOOST_FAIL("processor lives on"); });
    }
    auto report = final_report();
    BOOST_CHECK_EQUAL(report.errors, 2u);
    BOOST_CHECK_EQUAL(report.stats["timeouts"], timed_out ? 2 : 0);
  }
}

BOOST_AUTO_TEST_CASE(fanout_cancel_kills_the_per_item_actors_in_flight) {
  fanout_config cfg;
  cfg.max_in_flight = 3;
  cfg.spawn_processor = [this](caf::actor_system& sys) {
    return sys.spawn(stuck_processor, caf::actor{self});
  };
  auto fan = make_fanout(cfg);
  self->monitor(fan);
  manual_upstream up{self, fan};
  up.push(numbers(0, 5));
  std::vector<caf::actor> workers;
  for (int i = 0; i < 3; ++i)
    workers.push_back(receive_spawned(*this));
  for (auto& w : workers)
    self->monitor(w);
  caf::anon_send(fan, cancel_atom::value);
  std::set<caf::actor_addr> down;
  for (int i = 0; i < 4; ++i)
    self->receive([&](caf::down_msg& x) { down.insert(x.source); },
                  caf::after(patience) >> [] { BOOST_FAIL("an actor lives on"); });
  for (auto& w : workers)
    BOOST_CHECK_MESSAGE(down.count(w.address()) == 1, "a per-item actor was not stopped");
  BOOST_CHECK(down.count(fan.address()) == 1);
  auto report = final_report();
  BOOST_CHECK(report.stopped == stop_reason::cancelled);
  BOOST_CHECK_EQUAL(report.stats["killed"], 3);
  // The three in flight are dropped; the other two were never taken in.
  BOOST_CHECK_EQUAL(report.in, 3u);
  BOOST_CHECK_EQUAL(report.dropped, 3u);
}

BOOST_AUTO_TEST_CASE(fanout_in_a_cancelled_pipeline_kills_its_per_item_actors) {
  fanout_config cfg;
  cfg.max_in_flight = 2;
  cfg.spawn_processor = [this](caf::actor_system& sys) {
    return sys.spawn(stuck_processor, caf::actor{self});
  };
  auto n = std::make_shared<uint64_t>(0);
  pipeline_config p;
  p.steps = {source_step("source",
                         [n](emitter& out, size_t max) {
                           for (size_t k = 0; k < max; ++k)
                             out.push(caf::make_message((*n)++));
                           return true;
                         }),
             actor_step("fan", [cfg](const spawn_context& ctx, stage_config links) {
               return spawn_fanout(ctx, cfg, std::move(links));
             }),
             function_step("sink", [](item&, emitter&) {})};
  auto pipe = spawn_pipeline(sys.actors(), p);
  std::vector<caf::actor> workers;
  for (int i = 0; i < 2; ++i)
    workers.push_back(receive_spawned(*this));
  for (auto& w : workers)
    self->monitor(w);
  auto report = request_report(pipe, caf::make_message(cancel_atom::value));
  for (int i = 0; i < 2; ++i)
    self->receive([](caf::down_msg& x) { BOOST_CHECK(x.reason == caf::exit_reason::kill); },
                  caf::after(patience) >> [] { BOOST_FAIL("a per-item actor lives on"); });
  auto fan = find_report(report, "fan");
  BOOST_REQUIRE(fan);
  BOOST_CHECK_EQUAL(fan->stats.at("killed"), 2);
  BOOST_CHECK_EQUAL(fan->dropped, 2u);
}

BOOST_AUTO_TEST_CASE(fanout_step_restarted_in_a_pipeline_counts_what_it_held_as_dropped) {
  auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
  fanout_config cfg;
  cfg.max_in_flight = 2;
  cfg.processors = {proc};
  auto n = std::make_shared<uint64_t>(0);
  pipeline_config p;
  p.steps = {source_step("source",
                         [n](emitter& out, size_t max) {
                           for (size_t k = 0; k < max && *n < 6; ++k)
                             out.push(caf::make_message((*n)++));
                           return *n < 6;
                         }),
             actor_step("fan", [cfg](const spawn_context& ctx, stage_config links) {
               return spawn_fanout(ctx, cfg, std::move(links));
             }),
             actor_step("sink", [observer = caf::actor{self}](const spawn_context& ctx,
                                                               stage_config links) {
               return spawn_stage(ctx, std::move(links),
                                  std::make_unique<summing_sink>(observer, endless));
             })};
  spawn_pipeline(spawn_context{sys.actors()}.report_to(caf::actor{self}), p);
  // Items 0 and 1 are in flight, taken (acknowledged) by the fan-out.
  std::set<uint64_t> first{receive_held(*this), receive_held(*this)};
  BOOST_CHECK((first == std::set<uint64_t>{0, 1}));
  caf::actor incarnation;
  self->request(proc, patience, caf::get_atom::value)
    .receive([&](caf::actor& a) { incarnation = a; },
             fail_on_error());
  BOOST_REQUIRE(incarnation);
  self->send_exit(incarnation, caf::make_error(caf::sec::runtime_error, "crash"));
  // The next incarnation gets the items the source had sent and the first
  // had not taken: 2 to 5. Their calls are answered as they come.
  for (int i = 0; i < 4; ++i) {
    auto held = receive_held(*this);
    BOOST_CHECK_GE(held, 2u);
    caf::anon_send(proc, release_atom::value, held);
  }
  auto [count, sum] = receive_sink_done(*this);
  BOOST_CHECK_EQUAL(count, 4u);
  BOOST_CHECK_EQUAL(sum, 20u + 30u + 40u + 50u);
  auto report = receive_one<actor_report>("the pipeline's final report");
  BOOST_TEST_MESSAGE(to_text(report));
  auto fan = find_report(report, "fan");
  BOOST_REQUIRE(fan);
  BOOST_CHECK_EQUAL(fan->restarts, 1u);
  BOOST_CHECK_EQUAL(fan->in, 6u);
  BOOST_CHECK_EQUAL(fan->out, 4u);
  // What the crashed incarnation had taken is lost with it, and counted.
  BOOST_CHECK_EQUAL(fan->dropped, 2u);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_requester_that_stops_cancels_its_batch) {
  fanout_config cfg;
  cfg.max_in_flight = 2;
  cfg.spawn_processor = [this](caf::actor_system& sys) {
    return sys.spawn(stuck_processor, caf::actor{self});
  };
  auto fan = spawn_reporting_fanout(cfg);
  auto requester = sys.actors().spawn([](caf::event_based_actor* self, caf::actor fan) {
    self->request(fan, caf::infinite, batch{numbers(0, 4)})
      .then([](const batch&) {}, [](caf::error&) {});
  }, fan);
  std::vector<caf::actor> workers;
  for (int i = 0; i < 2; ++i)
    workers.push_back(receive_spawned(*this));
  for (auto& w : workers)
    self->monitor(w);
  caf::anon_send_exit(requester, caf::exit_reason::kill);
  for (int i = 0; i < 2; ++i)
    self->receive([](caf::down_msg& x) { BOOST_CHECK(x.reason == caf::exit_reason::kill); },
                  caf::after(patience) >> [] { BOOST_FAIL("a per-item actor lives on"); });
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["abandoned"], 4); // two in flight, two queued
  BOOST_CHECK_EQUAL(now.stats["in_flight"], 0);
  BOOST_CHECK_EQUAL(now.stats["queued"], 0);
  caf::anon_send(fan, cancel_atom::value);
  final_report();
}

BOOST_AUTO_TEST_CASE(fanout_answers_a_batch_with_a_batch_of_results_in_order) {
  auto proc = sys.actors().spawn(failing_processor, uint64_t{5});
  fanout_config cfg;
  cfg.max_in_flight = 3;
  cfg.processors = {proc};
  auto fan = spawn_reporting_fanout(cfg);
  self->request(fan, patience, batch{numbers(0, 10)})
    .receive(
      [&](batch& b) {
        BOOST_REQUIRE_EQUAL(b.items.size(), 10u);
        for (uint64_t i = 0; i < 10; ++i) {
          if (i == 5) {
            BOOST_REQUIRE(b.items[i].match_elements<item_failure>());
            auto& f = b.items[i].get_as<item_failure>(0);
            BOOST_CHECK_EQUAL(f.input.get_as<uint64_t>(0), 5u);
            BOOST_CHECK(f.reason == caf::sec::runtime_error);
          } else {
            BOOST_CHECK_EQUAL(b.items[i].get_as<uint64_t>(0), i * 10);
          }
        }
      },
      fail_on_error());
  // A single call is proxied: the answer, or the processor's error.
  self->request(fan, patience, uint64_t{7})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 70u); },
             fail_on_error());
  self->request(fan, patience, uint64_t{5})
    .receive([](uint64_t) { BOOST_FAIL("a failed call answered a value"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::runtime_error); });
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["requests"], 3);
  BOOST_CHECK_EQUAL(now.stats["failed"], 2);
  BOOST_CHECK_LE(now.stats["peak_in_flight"], 3);
  caf::anon_send(fan, cancel_atom::value);
  final_report();
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_answers_an_empty_batch_with_an_empty_batch) {
  auto proc = sys.actors().spawn(failing_processor, uint64_t{0});
  fanout_config cfg;
  cfg.processors = {proc};
  auto fan = spawn_reporting_fanout(cfg);
  bool answered = false;
  self->request(fan, patience, batch{})
    .receive([&](batch& b) { answered = b.items.empty(); },
             fail_on_error());
  BOOST_CHECK_MESSAGE(answered, "an empty batch gets an empty batch back");
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["calls"], 0);
  caf::anon_send(fan, cancel_atom::value);
  final_report();
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_drain_waits_for_the_calls_in_flight) {
  auto proc = sys.actors().spawn(holding_processor, caf::actor{self});
  fanout_config cfg;
  cfg.processors = {proc};
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 3));
  await_held(*this, 3);
  // A batch request is in flight too when the drain comes.
  auto requester = sys.actors().spawn([](caf::event_based_actor* self, caf::actor fan,
                                         caf::actor observer) {
    self->request(fan, caf::infinite, batch{numbers(10, 12)})
      .then([=](batch& b) { caf::anon_send(observer, std::move(b)); },
            [=](caf::error& e) { caf::anon_send(observer, std::move(e)); });
  }, fan, caf::actor{self});
  await_held(*this, 2);
  up.end();
  caf::anon_send(fan, drain_atom::value);
  for (uint64_t n : {2, 0, 1, 10, 11})
    caf::anon_send(proc, release_atom::value, n);
  auto got = receive_values(*this, 3);
  std::vector<uint64_t> expected{0, 10, 20};
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
  auto answer = receive_one<batch>("the batch's answer");
  BOOST_REQUIRE_EQUAL(answer.items.size(), 2u);
  BOOST_CHECK_EQUAL(answer.items[1].get_as<uint64_t>(0), 110u);
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 3u);
  auto report = final_report();
  BOOST_CHECK(report.stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(report.dropped, 0u);
  BOOST_CHECK_EQUAL(report.stats["succeeded"], 5);
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_gathers_in_input_order_or_in_completion_order) {
  for (auto order : {fanout_config::order_policy::input,
                     fanout_config::order_policy::completion}) {
    BOOST_TEST_MESSAGE("order " << to_string(order));
    auto g = std::make_shared<gate>();
    fanout_config cfg;
    cfg.max_in_flight = 4;
    cfg.runners = 2;
    cfg.order = order;
    cfg.process = tenfold(self, g, 0);
    auto fan = make_fanout(cfg);
    manual_upstream up{self, fan};
    // One round: calls {0, 1} and {2, 3}, one per runner; 0 waits at the
    // gate, and 1 behind it.
    up.push(numbers(0, 4));
    await_held(*this, 3);
    std::vector<uint64_t> got;
    if (order == fanout_config::order_policy::completion)
      got = receive_values(*this, 2);
    g->open();
    for (auto x : receive_values(*this, 4 - got.size()))
      got.push_back(x);
    std::vector<uint64_t> expected = order == fanout_config::order_policy::input
                                       ? std::vector<uint64_t>{0, 10, 20, 30}
                                       : std::vector<uint64_t>{20, 30, 0, 10};
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(),
                                  expected.end());
    up.end();
    BOOST_CHECK_EQUAL(receive_sink_end(*this), 4u);
    auto report = final_report();
    BOOST_CHECK_EQUAL(report.in, 4u);
    BOOST_CHECK_EQUAL(report.out, 4u);
    BOOST_CHECK_EQUAL(report.stats["calls"], 4);
    BOOST_CHECK_EQUAL(report.stats["batches"], 2);
    BOOST_CHECK_EQUAL(report.stats["runners"], 2);
    BOOST_CHECK_EQUAL(report.stats["succeeded"], 4);
    await_held(*this, 1);
  }
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_fails_only_the_item_whose_function_errs_or_throws) {
  fanout_config cfg;
  cfg.max_in_flight = 4;
  cfg.runners = 2;
  cfg.process = tenfold(self, nullptr, no_item, 3, 5);
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(numbers(0, 8));
  up.end();
  for (uint64_t i = 0; i < 8; ++i) {
    auto x = receive_outcome(*this);
    BOOST_CHECK_EQUAL(x.failed, i == 3 || i == 5);
    BOOST_CHECK_EQUAL(x.value, x.failed ? i : i * 10);
    if (i == 3)
      BOOST_CHECK(x.reason == caf::sec::runtime_error);
    if (i == 5)
      BOOST_CHECK(x.reason == errc::job_threw);
  }
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 8u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.out, 8u); // six results and two item_failures
  BOOST_CHECK_EQUAL(report.errors, 2u);
  BOOST_CHECK_EQUAL(report.stats["failed"], 2);
  BOOST_CHECK_EQUAL(report.stats["succeeded"], 6);
  BOOST_CHECK_EQUAL(report.stats["runner_restarts"], 0);
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_answers_batches_and_single_calls_through_its_runners) {
  fanout_config cfg;
  cfg.max_in_flight = 3;
  cfg.runners = 2;
  cfg.process = tenfold(self, nullptr, no_item, 5, 6);
  auto fan = spawn_reporting_fanout(cfg);
  self->request(fan, patience, batch{numbers(0, 10)})
    .receive(
      [&](batch& b) {
        BOOST_REQUIRE_EQUAL(b.items.size(), 10u);
        for (uint64_t i = 0; i < 10; ++i) {
          if (i == 5 || i == 6) {
            BOOST_REQUIRE(b.items[i].match_elements<item_failure>());
            auto& f = b.items[i].get_as<item_failure>(0);
            BOOST_CHECK_EQUAL(f.input.get_as<uint64_t>(0), i);
            BOOST_CHECK(f.reason == (i == 5 ? caf::error{caf::sec::runtime_error}
                                            : make_error(errc::job_threw)));
          } else {
            BOOST_CHECK_EQUAL(b.items[i].get_as<uint64_t>(0), i * 10);
          }
        }
      },
      fail_on_error());
  self->request(fan, patience, uint64_t{7})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 70u); }, fail_on_error());
  self->request(fan, patience, uint64_t{6})
    .receive([](uint64_t) { BOOST_FAIL("a call that threw answered a value"); },
             [](caf::error& e) { BOOST_CHECK(e == errc::job_threw); });
  auto now = status(fan);
  BOOST_CHECK_EQUAL(now.stats["requests"], 3);
  BOOST_CHECK_EQUAL(now.stats["calls"], 12);
  BOOST_CHECK_EQUAL(now.stats["failed"], 3);
  BOOST_CHECK_LE(now.stats["peak_in_flight"], 3);
  caf::anon_send(fan, cancel_atom::value);
  final_report();
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_sends_no_call_above_max_in_flight_and_feeds_every_runner) {
  auto tally = std::make_shared<runner_tally>();
  fanout_config cfg;
  cfg.max_in_flight = 6;
  cfg.runners = 2;
  cfg.process = [tally, me = no_item](item& x) mutable -> caf::expected<item> {
    if (me == no_item)
      me = tally->join();
    tally->count(me);
    return make_item(x.get_as<uint64_t>(0) * 10);
  };
  auto fan = spawn_reporting_fanout(cfg);
  self->request(fan, patience, batch{numbers(0, 20)})
    .receive(
      [&](batch& b) {
        BOOST_REQUIRE_EQUAL(b.items.size(), 20u);
        for (uint64_t i = 0; i < 20; ++i)
          BOOST_CHECK_EQUAL(b.items[i].get_as<uint64_t>(0), i * 10);
      },
      fail_on_error());
  auto now = status(fan);
  // 6 items out at most. The first window, its work not measured yet, is
  // spread over both runners, 3 a call; later ones may leave whole.
  BOOST_CHECK_LE(now.stats["peak_in_flight"], 6);
  BOOST_CHECK_LE(now.stats["largest_batch"], 6);
  BOOST_CHECK_GE(now.stats["batches"], 4);
  {
    std::lock_guard<std::mutex> guard{tally->mx};
    BOOST_REQUIRE_EQUAL(tally->items.size(), 2u);
    BOOST_CHECK_GT(tally->items[0], 0u);
    BOOST_CHECK_GT(tally->items[1], 0u);
    BOOST_CHECK_EQUAL(tally->items[0] + tally->items[1], 20u);
  }
  caf::anon_send(fan, cancel_atom::value);
  final_report();
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_fails_a_timed_out_call_and_sends_the_calls_behind_it_to_a_new_runner) {
  auto g = std::make_shared<gate>();
  fanout_config cfg;
  cfg.max_in_flight = 4;
  cfg.runners = 1;
  cfg.order = fanout_config::order_policy::completion;
  cfg.call_timeout = 50ms;
  cfg.process = tenfold(self, g, 0);
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(0);
  BOOST_CHECK_EQUAL(receive_held(*this), 0u);
  // Item 1 waits behind item 0 in the only runner's mailbox.
  up.push(1);
  auto first = receive_outcome(*this);
  BOOST_CHECK(first.failed);
  BOOST_CHECK_EQUAL(first.value, 0u);
  BOOST_CHECK(first.reason == errc::call_timeout);
  auto second = receive_outcome(*this);
  BOOST_CHECK(!second.failed);
  BOOST_CHECK_EQUAL(second.value, 10u);
  g->open();
  up.end();
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 2u);
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.errors, 1u);
  BOOST_CHECK_EQUAL(report.stats["timeouts"], 1);
  BOOST_CHECK_EQUAL(report.stats["runner_restarts"], 1);
  BOOST_CHECK_EQUAL(report.stats["calls"], 2);
  BOOST_CHECK_EQUAL(report.stats["batches"], 3); // {0}, {1}, {1} again
}

BOOST_AUTO_TEST_CASE(fanout_with_a_function_cancel_stops_at_once_and_kills_its_busy_runner) {
  auto g = std::make_shared<gate>();
  fanout_config cfg;
  cfg.max_in_flight = 4;
  cfg.runners = 1;
  cfg.process = [inner = tenfold(self, g, 0), observer = caf::actor{self},
                 probe = std::shared_ptr<destruction_probe>{}](item& x) mutable {
    if (!probe) {
      probe = std::make_shared<destruction_probe>();
      probe->observer = observer;
    }
    return inner(x);
  };
  auto fan = make_fanout(cfg);
  manual_upstream up{self, fan};
  up.push(0);
  BOOST_CHECK_EQUAL(receive_held(*this), 0u);
  up.push(1); // waits behind item 0 in the runner's mailbox
  caf::anon_send(fan, cancel_atom::value);
  // The final report comes while the runner still works on item 0.
  auto report = final_report();
  BOOST_CHECK_EQUAL(report.in, 2u);
  BOOST_CHECK_EQUAL(report.out, 0u);
  BOOST_CHECK_EQUAL(report.dropped, 2u);
  g->open();
  receive_one<gone_atom>("the runner stopping");
  // Killed ahead of its mailbox: item 1 never ran.
  bool ran = false;
  self->receive([&](held_atom, uint64_t) { ran = true; }, caf::after(0s) >> [] {});
  BOOST_CHECK(!ran);
}

BOOST_AUTO_TEST_CASE(fanout_config_is_validated) {
  auto proc = sys.actors().spawn(failing_processor, uint64_t{0});
  auto reject = [&](fanout_config cfg) {
    return config_rejection([&] { spawn_fanout(sys.actors(), cfg); });
  };
  fanout_config valid;
  valid.processors = {proc};
  {
    auto cfg = valid;
    cfg.max_in_flight = 0;
    BOOST_CHECK(contains(reject(cfg), "max_in_flight is 0"));
  }
  {
    fanout_config cfg;
    BOOST_CHECK(contains(reject(cfg), "set one of them"));
  }
  {
    auto cfg = valid;
    cfg.spawn_processor = [](caf::actor_system&) { return caf::actor{}; };
    BOOST_CHECK(contains(reject(cfg), "set only one"));
  }
  {
    auto cfg = valid;
    cfg.process = [](item& x) -> caf::expected<item> { return x; };
    BOOST_CHECK(contains(reject(cfg), "more than one of processors, spawn_processor "
                                      "and process is set"));
  }
  {
    auto cfg = valid;
    cfg.processors.push_back(caf::actor{});
    BOOST_CHECK(contains(reject(cfg), "processors[1] is not an actor"));
  }
  {
    auto cfg = valid;
    cfg.call_timeout = -1ms;
    BOOST_CHECK(contains(reject(cfg), "call_timeout is negative"));
  }
  caf::anon_send_exit(proc, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
