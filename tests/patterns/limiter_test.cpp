// The rate limiter: a full bucket's burst passes at once, then the rate holds;
// reject mode drops and counts; keys do not delay each other; in front of a
// service it answers like the service, or with rate_limited.

#include "patterns/streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/limiter.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <optional>
#include <set>
#include <stdexcept>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

// Answers x with 2x.
caf::behavior doubling_service(caf::event_based_actor*, int) {
  return {[](uint64_t x) { return x * 2; }};
}

struct limiter_fixture : system_fixture {
  caf::actor sink = spawn_reporting_sink(sys, self);
  caf::actor service = sys.actors().spawn(doubling_service, 0);
  caf::actor last;

  ~limiter_fixture() {
    for (auto& a : {sink, service, last})
      if (a)
        self->send_exit(a, caf::exit_reason::kill);
  }

  caf::actor stream_limiter(limiter_config cfg) {
    stage_config links;
    links.next = {sink};
    last = spawn_limiter(sys, std::move(cfg), links);
    return last;
  }

  caf::actor service_limiter(limiter_config cfg) {
    last = spawn_limiter(sys, std::move(cfg), stage_config{}, service);
    return last;
  }
};

std::string key_of_parity(const item& x) {
  return x.get_as<uint64_t>(0) % 2 == 0 ? "even" : "odd";
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(limiter, limiter_fixture)

BOOST_AUTO_TEST_CASE(burst_passes_at_once_then_the_rate_holds) {
  limiter_config cfg;
  cfg.rate = 200;
  cfg.burst = 10;
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  auto start = now_ns();
  up.push(numbers(0, 30));
  for (uint64_t k = 0; k < 30; ++k) {
    auto s = receive_sunk(*this);
    BOOST_REQUIRE_EQUAL(s.value.get_as<uint64_t>(0), k);
    if (k >= cfg.burst) {
      // The bucket holds `burst` permits and gains one every 1/rate s.
      auto earliest = static_cast<int64_t>((k - cfg.burst + 1) * 1e9 / cfg.rate);
      BOOST_CHECK_GE(s.at_ns - start, earliest);
    }
  }
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.stats["passed"], 30);
  BOOST_CHECK_EQUAL(r.stats["delayed"], 20);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 0);
  BOOST_CHECK_EQUAL(r.state, "open");
  up.end();
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 30u);
}

BOOST_AUTO_TEST_CASE(no_10ms_window_lets_through_more_than_burst_plus_rate) {
  limiter_config cfg;
  cfg.rate = 4000;
  cfg.burst = 20;
  // Stamped in the limiter as each item passes; read after the sink ended.
  auto stamps = std::make_shared<std::vector<int64_t>>();
  cfg.on_pass = [stamps](const item&) { stamps->push_back(now_ns()); };
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  const uint64_t n = 1000;
  for (uint64_t k = 0; k < n; k += 100) {
    up.push(numbers(k, k + 100));
    up.await_credit(k + 100);
  }
  up.end();
  BOOST_REQUIRE_EQUAL(receive_sink_end(*this), n);
  BOOST_REQUIRE_EQUAL(stamps->size(), n);
  // A bucket of `burst` gaining `rate` per second passes at most
  // burst + rate * 10 ms in any 10 ms. The stamps are taken just after the
  // bucket reads the clock: allow them 2 ms of scheduling jitter.
  size_t most = 0;
  for (size_t lo = 0, hi = 0; hi < n; ++hi) {
    while ((*stamps)[hi] - (*stamps)[lo] >= 10'000'000)
      ++lo;
    most = std::max(most, hi - lo + 1);
  }
  BOOST_CHECK_LE(most, static_cast<size_t>(cfg.burst + cfg.rate * 0.012));
  // And the steady rate holds: the last item cannot pass before
  // (n - burst) / rate after the first.
  auto span = stamps->back() - stamps->front();
  BOOST_CHECK_GE(span, static_cast<int64_t>((n - cfg.burst) / cfg.rate * 1e9) - 1'000'000);
}

BOOST_AUTO_TEST_CASE(reject_mode_drops_what_has_no_permit_and_counts_it) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 5;
  cfg.mode = limit_mode::reject;
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  up.push(numbers(0, 20));
  up.end();
  for (uint64_t k = 0; k < 5; ++k)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), k);
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 5u);
}

BOOST_AUTO_TEST_CASE(rejected_items_show_in_the_report) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 5;
  cfg.mode = limit_mode::reject;
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  up.push(numbers(0, 20));
  up.await_credit(20);
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.in, 20u);
  BOOST_CHECK_EQUAL(r.out, 5u);
  BOOST_CHECK_EQUAL(r.dropped, 15u);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 15);
  BOOST_CHECK_EQUAL(r.stats["passed"], 5);
}

BOOST_AUTO_TEST_CASE(a_waiting_key_does_not_delay_another_key) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 3;
  cfg.key_of = key_of_parity;
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  up.push(numbers(0, 20, 2)); // ten even items: seven must wait
  up.push(numbers(1, 7, 2));  // three odd ones have their own bucket
  std::set<uint64_t> first_six;
  for (int k = 0; k < 6; ++k)
    first_six.insert(receive_sunk(*this).value.get_as<uint64_t>(0));
  BOOST_CHECK((first_six == std::set<uint64_t>{0, 1, 2, 3, 4, 5}));
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.stats["keys"], 2);
  BOOST_CHECK_EQUAL(r.stats["held"], 7);
  BOOST_CHECK_EQUAL(r.state, "limiting");
}

BOOST_AUTO_TEST_CASE(new_key_beyond_max_keys_is_rejected_when_no_bucket_is_idle) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 1;
  cfg.max_keys = 2;
  cfg.key_of = [](const item& x) { return std::to_string(x.get_as<uint64_t>(0) % 3); };
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  // Keys 0 and 1 each pass one item and hold one; key 2 finds no bucket.
  up.push(numbers(0, 5));
  up.await_credit(5);
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.stats["keys"], 2);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 1);
  BOOST_CHECK_EQUAL(r.stats["passed"], 2);
  BOOST_CHECK_EQUAL(r.stats["held"], 2);
  BOOST_CHECK_EQUAL(r.dropped, 1u);
}

BOOST_AUTO_TEST_CASE(idle_full_buckets_make_room_for_new_keys) {
  limiter_config cfg;
  cfg.rate = 1e12; // refills within a nanosecond: every bucket is idle at once
  cfg.burst = 1;
  cfg.max_keys = 1;
  cfg.key_of = [](const item& x) { return std::to_string(x.get_as<uint64_t>(0)); };
  auto l = stream_limiter(cfg);
  manual_upstream up{self, l};
  up.push(numbers(0, 10));
  for (uint64_t k = 0; k < 10; ++k)
    BOOST_CHECK_EQUAL(receive_sunk(*this).value.get_as<uint64_t>(0), k);
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.stats["keys"], 1);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 0);
}

BOOST_AUTO_TEST_CASE(requests_pass_through_to_the_service) {
  limiter_config cfg;
  cfg.rate = 20;
  cfg.burst = 1;
  auto l = service_limiter(cfg);
  auto start = now_ns();
  for (uint64_t k = 0; k < 3; ++k)
    self->request(l, patience, k).receive(
      [&](uint64_t y) { BOOST_CHECK_EQUAL(y, 2 * k); },
      fail_on_error());
  // One permit at once, then one each 50 ms.
  BOOST_CHECK_GE(now_ns() - start, 100'000'000);
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.in, 3u);
  BOOST_CHECK_EQUAL(r.out, 3u);
}

BOOST_AUTO_TEST_CASE(held_requests_are_answered_in_order) {
  limiter_config cfg;
  cfg.rate = 50;
  cfg.burst = 1;
  auto l = service_limiter(cfg);
  for (uint64_t k = 0; k < 5; ++k)
    self->send(l, k);
  // Async sends: the service's answers come back as plain messages.
  for (uint64_t k = 0; k < 5; ++k)
    self->receive([&](uint64_t y) { BOOST_CHECK_EQUAL(y, 2 * k); },
                  caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
}

BOOST_AUTO_TEST_CASE(reject_mode_answers_rate_limited) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 2;
  cfg.mode = limit_mode::reject;
  auto l = service_limiter(cfg);
  std::vector<caf::error> errors;
  std::vector<uint64_t> answers;
  for (uint64_t k = 0; k < 4; ++k)
    self->request(l, patience, k).receive(
      [&](uint64_t y) { answers.push_back(y); },
      [&](caf::error& e) { errors.push_back(e); });
  BOOST_CHECK((answers == std::vector<uint64_t>{0, 2}));
  BOOST_REQUIRE_EQUAL(errors.size(), 2u);
  for (auto& e : errors)
    BOOST_CHECK_MESSAGE(e == errc::rate_limited, sys.actors().render(e));
}

BOOST_AUTO_TEST_CASE(full_delay_queue_answers_rate_limited) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 1;
  cfg.max_queue = 2;
  auto l = service_limiter(cfg);
  self->request(l, patience, uint64_t{1}).receive(
    [](uint64_t) {}, fail_on_error());
  // Two wait (no answer for a long time), the fourth finds the queue full.
  self->send(l, uint64_t{2});
  self->send(l, uint64_t{3});
  self->request(l, patience, uint64_t{4}).receive(
    [](uint64_t) { BOOST_FAIL("a full queue took a request"); },
    [](caf::error& e) { BOOST_CHECK(e == errc::rate_limited); });
  auto r = status(l);
  BOOST_CHECK_EQUAL(r.stats["held"], 2);
  BOOST_CHECK_EQUAL(r.stats["rejected"], 1);
}

BOOST_AUTO_TEST_CASE(held_request_is_answered_when_the_limiter_is_cancelled) {
  limiter_config cfg;
  cfg.rate = 0.01;
  cfg.burst = 1;
  auto l = service_limiter(cfg);
  self->request(l, patience, uint64_t{1}).receive(
    [](uint64_t) {}, fail_on_error());
  auto held = self->request(l, patience, uint64_t{2});
  self->send(l, cancel_atom::value);
  held.receive([](uint64_t) { BOOST_ERROR("a held request passed"); },
               [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
}

BOOST_AUTO_TEST_CASE(invalid_limiter_config_names_the_field) {
  auto rejects = [&](limiter_config cfg, const std::string& field) {
    auto why = config_rejection([&] { stream_limiter(cfg); });
    BOOST_CHECK_MESSAGE(contains(why, field), why);
  };
  limiter_config c;
  c.rate = 0;
  rejects(c, "rate");
  c.rate = -5;
  rejects(c, "rate");
  c = limiter_config{};
  c.burst = 0.5;
  rejects(c, "burst");
  c = limiter_config{};
  c.max_queue = 0;
  rejects(c, "max_queue");
  c = limiter_config{};
  c.key_of = key_of_parity;
  c.max_keys = 0;
  rejects(c, "max_keys");
}

BOOST_AUTO_TEST_CASE(supervised_limiter_drains_with_nothing_lost) {
  supervisor_spec spec;
  spec.name = "ingest";
  child_spec limiter_child;
  limiter_child.name = "limiter";
  limiter_child.restart = restart_type::transient;
  limiter_child.start = [](const spawn_context& ctx) {
    limiter_config cfg;
    cfg.rate = 20000;
    cfg.burst = 100;
    stage_config links;
    links.next = {ctx.sibling("transform")};
    return spawn_limiter(ctx, cfg, links);
  };
  spec.children = {counter_source("limiter"), limiter_child, transform_stage("sink"),
                   summing_sink_child(self, 1000)};
  auto root = spawn_supervisor(sys, spec);
  await_progress(*this);
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  auto [count, sum] = receive_sink_done(*this);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto source = find_report(*report, "source");
  auto l = find_report(*report, "limiter");
  BOOST_REQUIRE(source && l);
  BOOST_CHECK_EQUAL(count, source->out);
  BOOST_CHECK_EQUAL(sum, transformed_sum(source->out));
  BOOST_CHECK(l->stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(l->stats.at("passed"), static_cast<int64_t>(source->out));
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
}

BOOST_AUTO_TEST_CASE(restarted_limiter_keeps_serving_at_its_stable_address) {
  supervisor_spec spec;
  spec.name = "limited";
  child_spec service_child;
  service_child.name = "service";
  service_child.start = [](const spawn_context& ctx) {
    return ctx.system().spawn(doubling_service, 0);
  };
  child_spec limiter_child;
  limiter_child.name = "limiter";
  limiter_child.start = [](const spawn_context& ctx) {
    limiter_config cfg;
    cfg.rate = 1000;
    cfg.burst = 10;
    // The first incarnation crashes on the request 13.
    bool first = ctx.restarts() == 0;
    cfg.key_of = [first](const item& x) {
      if (first && x.match_elements<uint64_t>() && x.get_as<uint64_t>(0) == 13)
        throw std::runtime_error("cannot key 13");
      return std::string{};
    };
    return spawn_limiter(ctx, cfg, stage_config{}, ctx.sibling("service"));
  };
  spec.children = {service_child, limiter_child};
  auto root = spawn_supervisor(sys, spec);
  auto address = address_of(root, "limiter");
  auto ask = [&](uint64_t x) {
    std::optional<uint64_t> result;
    self->request(address, patience, x)
      .receive([&](uint64_t y) { result = y; }, [](caf::error&) {});
    return result;
  };
  BOOST_CHECK_EQUAL(ask(1).value_or(0), 2u);
  BOOST_CHECK(!ask(13));
  // A request sent before the relay learns of the crash bounces (the caller
  // gets request_receiver_down); once the supervisor restarted the limiter,
  // callers reach it at the same address.
  await_child(root, "limiter",
              [](const actor_report& r) { return r.restarts == 1 && !stopped(r); },
              "restarted");
  auto answer = ask(5);
  BOOST_REQUIRE(answer);
  BOOST_CHECK_EQUAL(*answer, 10u);
  auto r = status(address);
  BOOST_CHECK_EQUAL(r.restarts, 1u);
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  BOOST_CHECK_EQUAL(totals(*report).lost, 0u);
}

BOOST_AUTO_TEST_SUITE_END()
