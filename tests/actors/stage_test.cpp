// Stages as actors: credit bounds what is in flight, order holds, end of
// stream flushes and stops everything, and a throwing logic is a crash that
// stays inside its actor.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/actors/stage.hpp>

#include <atomic>
#include <thread>

using namespace troupe;
using namespace troupe::test;

namespace {

using done_atom = caf::atom_constant<caf::atom("done")>;

// A source of the integers 0..n-1 that counts what it produced.
produce_function counting_source(uint64_t n, std::shared_ptr<std::atomic<uint64_t>> produced) {
  auto next = std::make_shared<uint64_t>(0);
  return [=](emitter& out, size_t max) {
    for (size_t k = 0; k < max && *next < n; ++k) {
      produced->fetch_add(1);
      out.push(caf::make_message((*next)++));
    }
    return *next < n;
  };
}

// A sink that checks order and how far the source got ahead of it, then tells
// `observer` what it saw when its input ends.
class checking_sink final : public stage_logic {
public:
  checking_sink(caf::actor observer, std::shared_ptr<std::atomic<uint64_t>> produced,
                std::chrono::microseconds per_item)
    : observer_(std::move(observer)), produced_(std::move(produced)),
      per_item_(per_item) {
  }

  void on_item(item& x, emitter&) override {
    auto v = x.get_as<uint64_t>(0);
    if (v != expected_)
      ++out_of_order_;
    expected_ = v + 1;
    ++consumed_;
    ahead_ = std::max(ahead_, produced_->load() - consumed_);
    if (per_item_.count() > 0)
      std::this_thread::sleep_for(per_item_); // a slow consumer
  }

  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, done_atom::value, consumed_, out_of_order_, ahead_);
  }

private:
  caf::actor observer_;
  std::shared_ptr<std::atomic<uint64_t>> produced_;
  std::chrono::microseconds per_item_;
  uint64_t expected_ = 0;
  uint64_t consumed_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t ahead_ = 0;
};

struct run_result {
  uint64_t consumed = 0;
  uint64_t out_of_order = 0;
  uint64_t ahead = 0;
};

run_result run_source_to_sink(system_fixture& f, uint64_t n, uint32_t credit,
                              std::chrono::microseconds per_item) {
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  stage_config sink_cfg;
  sink_cfg.credit = credit;
  auto sink = spawn_stage(f.sys, sink_cfg,
                          std::make_unique<checking_sink>(f.self, produced, per_item));
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto source = spawn_source(f.sys, src_cfg, counting_source(n, produced));
  f.self->monitor(source);
  f.self->monitor(sink);
  run_result r;
  f.self->receive(
    [&](done_atom, uint64_t consumed, uint64_t out_of_order, uint64_t ahead) {
      r = run_result{consumed, out_of_order, ahead};
    },
    caf::after(patience) >> [] { BOOST_FAIL("sink never saw end of stream"); });
  // Both ends stop by themselves once the stream ended.
  for (int i = 0; i < 2; ++i)
    f.self->receive([](caf::down_msg& x) { BOOST_CHECK(!x.reason); },
                    caf::after(patience) >> [] { BOOST_FAIL("stage did not stop"); });
  return r;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(stage, system_fixture)

BOOST_AUTO_TEST_CASE(fast_source_slow_sink_stays_within_default_credit) {
  BOOST_REQUIRE_EQUAL(default_credit(sys), 128u);
  auto r = run_source_to_sink(*this, 5000, 0, std::chrono::microseconds(20));
  BOOST_CHECK_EQUAL(r.consumed, 5000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 128u);
  // The slow sink made the source wait at the bound, not below it.
  BOOST_CHECK_GE(r.ahead, 64u);
}

BOOST_AUTO_TEST_CASE(credit_bound_is_configurable_per_link) {
  auto r = run_source_to_sink(*this, 2000, 16, std::chrono::microseconds(20));
  BOOST_CHECK_EQUAL(r.consumed, 2000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 16u);
}

BOOST_AUTO_TEST_CASE(order_holds_at_full_speed) {
  auto r = run_source_to_sink(*this, 200000, 0, std::chrono::microseconds(0));
  BOOST_CHECK_EQUAL(r.consumed, 200000u);
  BOOST_CHECK_EQUAL(r.out_of_order, 0u);
  BOOST_CHECK_LE(r.ahead, 128u);
}

BOOST_AUTO_TEST_CASE(stage_flushes_what_it_holds_at_end_of_stream) {
  // A stage that holds everything and emits one sum at the end.
  class summing final : public stage_logic {
  public:
    void on_item(item& x, emitter&) override {
      sum_ += x.get_as<uint64_t>(0);
    }
    void on_end(emitter& out, const caf::error&) override {
      out.push(caf::make_message(sum_));
    }

  private:
    uint64_t sum_ = 0;
  };
  auto sums = std::make_shared<std::vector<uint64_t>>();
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [this](item& x, emitter&) {
    caf::anon_send(self, done_atom::value, x.get_as<uint64_t>(0));
  });
  stage_config mid_cfg;
  mid_cfg.next = {sink};
  auto mid = spawn_stage(sys, mid_cfg, std::make_unique<summing>());
  stage_config src_cfg;
  src_cfg.next = {mid};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(1000, produced));
  self->monitor(mid);
  self->receive([](done_atom, uint64_t sum) { BOOST_CHECK_EQUAL(sum, 499500u); },
                caf::after(patience) >> [] { BOOST_FAIL("no flushed sum"); });
  self->send(mid, status_atom::value);
  auto reason = wait_down(mid);
  BOOST_CHECK(!reason);
}

BOOST_AUTO_TEST_CASE(status_reports_counters_of_a_running_stage) {
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [](item&, emitter&) {});
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(300, produced));
  self->monitor(sink);
  wait_down(sink);
  // The source has stopped too, but a fresh stage answers status.
  auto idle = spawn_stage(sys, sink_cfg, [](item&, emitter&) {});
  auto r = status(idle);
  BOOST_CHECK_EQUAL(r.kind, "sink");
  BOOST_CHECK(r.stopped == stop_reason::running);
  self->send(idle, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(throwing_logic_crashes_only_its_stage) {
  stage_config sink_cfg;
  auto sink = spawn_stage(sys, sink_cfg, [](item& x, emitter&) {
    if (x.get_as<uint64_t>(0) == 7)
      throw std::runtime_error("bad item 7");
  });
  stage_config src_cfg;
  src_cfg.next = {sink};
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  auto src = spawn_source(sys, src_cfg, counting_source(100, produced));
  self->monitor(sink);
  auto reason = wait_down(sink);
  BOOST_CHECK(reason == caf::sec::runtime_error);
  BOOST_CHECK_NE(sys.actors().render(reason).find("bad item 7"), std::string::npos);
  // The process and other actors live on: the source still answers.
  auto r = status(src);
  BOOST_CHECK_EQUAL(r.kind, "source");
  self->send(src, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(invalid_stage_config_names_the_field) {
  stage_config cfg; // a source without a downstream
  auto produced = std::make_shared<std::atomic<uint64_t>>(0);
  try {
    spawn_source(sys, cfg, counting_source(1, produced));
    BOOST_FAIL("expected config_error");
  } catch (const config_error& e) {
    BOOST_CHECK_NE(std::string{e.what()}.find("next"), std::string::npos);
  }
  stage_config zero_inputs;
  zero_inputs.inputs = 0;
  BOOST_CHECK_THROW(spawn_stage(sys, zero_inputs, [](item&, emitter&) {}),
                    config_error);
}

namespace {

using answer_atom = caf::atom_constant<caf::atom("answer")>;
using unknown_atom = caf::atom_constant<caf::atom("unknown")>;

// Answers a number with its double (13 with an error, 99 by throwing), a
// string with nothing, a batch with its size and (answer_atom) with "atom".
class answering_logic final : public stage_logic {
public:
  void on_item(item&, emitter&) override {
  }
  caf::result<caf::message> on_request(caf::message& x) override {
    if (x.match_elements<uint64_t>()) {
      auto n = x.get_as<uint64_t>(0);
      if (n == 13)
        return caf::make_error(caf::sec::invalid_argument, "13");
      if (n == 99)
        throw std::runtime_error("request 99");
      return caf::make_message(n * 2);
    }
    if (x.match_elements<std::string>())
      return caf::message{};
    if (x.match_elements<batch>())
      return caf::make_message(static_cast<uint64_t>(x.get_as<batch>(0).items.size()));
    if (x.match_elements<answer_atom>())
      return caf::make_message(std::string{"atom"});
    return stage_logic::on_request(x);
  }
};

caf::actor spawn_answering(caf::actor_system& sys) {
  return spawn_stage(sys, stage_config{}, std::make_unique<answering_logic>());
}

// Sends (async) 21 and "quiet" to `target` and passes on what comes back.
caf::behavior async_sender(caf::event_based_actor* self, caf::actor target,
                           caf::actor observer) {
  self->send(target, uint64_t{21});
  self->send(target, std::string{"quiet"});
  return {
    [=](uint64_t x) { self->send(observer, answer_atom::value, x); },
    [=](const std::string& x) { self->send(observer, answer_atom::value, x); },
    [](caf::ok_atom) { return caf::ok_atom::value; },
  };
}

struct gate_state {
  caf::response_promise waiting;
  bool open = false;
};

// Answers (get_atom) with ok_atom once told (ok_atom), which may come first.
// (`open` is a spawn argument, since CAF 0.17 spawning a function without
// one trips UBSan.)
caf::behavior gate(caf::stateful_actor<gate_state>* self, bool open) {
  self->state.open = open;
  return {
    [=](caf::get_atom) -> caf::result<caf::ok_atom> {
      if (self->state.open)
        return caf::ok_atom::value;
      self->state.waiting = self->make_response_promise();
      return caf::delegated<caf::ok_atom>{};
    },
    [=](caf::ok_atom) {
      self->state.open = true;
      if (self->state.waiting.pending())
        self->state.waiting.deliver(caf::ok_atom::value);
    },
  };
}

// Awaits the gate's answer as it starts; answers a number with whether the
// gate had answered by then.
class awaiting_logic final : public stage_logic {
public:
  explicit awaiting_logic(caf::actor gate) : gate_(std::move(gate)) {
  }
  void on_start(stage_control& ctl) override {
    ctl.self()
      ->request(gate_, patience, caf::get_atom::value)
      .await([this](caf::ok_atom) { open_ = true; }, [](caf::error&) {});
  }
  void on_item(item&, emitter&) override {
  }
  caf::result<caf::message> on_request(caf::message& x) override {
    if (x.match_elements<uint64_t>())
      return caf::make_message(open_);
    return stage_logic::on_request(x);
  }

private:
  caf::actor gate_;
  bool open_ = false;
};

} // namespace

BOOST_AUTO_TEST_CASE(requests_wait_while_the_logic_awaits_a_response) {
  auto g = sys.actors().spawn(gate, false);
  auto stage = spawn_stage(sys, stage_config{}, std::make_unique<awaiting_logic>(g));
  // Queued before the gate opens: taken only once the awaited answer came.
  auto answer = self->request(stage, patience, uint64_t{1});
  self->send(g, caf::ok_atom::value);
  std::move(answer).receive([](bool open) { BOOST_CHECK(open); }, fail_on_error());
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
  self->send(stage, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(requests_of_any_shape_get_the_logics_answer) {
  auto stage = spawn_answering(sys);
  self->request(stage, patience, uint64_t{21})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 42u); }, fail_on_error());
  self->request(stage, patience, uint64_t{13})
    .receive([](uint64_t) { BOOST_ERROR("13 answered with a value"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::invalid_argument); });
  batch three;
  three.items.resize(3);
  self->request(stage, patience, std::move(three))
    .receive([](uint64_t n) { BOOST_CHECK_EQUAL(n, 3u); }, fail_on_error());
  self->request(stage, patience, answer_atom::value)
    .receive([](const std::string& x) { BOOST_CHECK_EQUAL(x, "atom"); },
             fail_on_error());
  self->request(stage, patience, unknown_atom::value, uint64_t{1})
    .receive([]() { BOOST_ERROR("an unknown message answered"); },
             [](caf::error& e) { BOOST_CHECK(e == caf::sec::unexpected_message); });
  self->send(stage, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(an_async_message_gets_its_answer_as_a_message_unless_it_is_empty) {
  auto stage = spawn_answering(sys);
  auto sender = sys.actors().spawn(async_sender, stage, caf::actor{self});
  self->receive([](answer_atom, uint64_t x) { BOOST_CHECK_EQUAL(x, 42u); },
                caf::after(patience) >> [] { BOOST_FAIL("no answer"); });
  // The string's empty answer sends nothing. The stage handles the string
  // before a request sent now (it was queued before 21 was answered), so
  // had it answered, the answer would be in the sender's mailbox before the
  // sender answers the second request, and passed on first.
  self->request(stage, patience, uint64_t{1})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 2u); }, fail_on_error());
  self->request(sender, patience, caf::ok_atom::value)
    .receive([](caf::ok_atom) {}, fail_on_error());
  self->receive(
    [](answer_atom, const std::string& x) { BOOST_ERROR("empty answer sent: " << x); },
    caf::after(std::chrono::milliseconds(0)) >> [] {});
  caf::anon_send_exit(sender, caf::exit_reason::user_shutdown);
  self->send(stage, cancel_atom::value);
}

BOOST_AUTO_TEST_CASE(a_request_whose_answer_throws_crashes_the_stage_and_gets_the_reason) {
  auto stage = spawn_answering(sys);
  self->monitor(stage);
  self->request(stage, patience, uint64_t{99})
    .receive([](uint64_t) { BOOST_ERROR("99 answered with a value"); },
             [&](caf::error& e) {
               BOOST_CHECK(e == caf::sec::runtime_error);
               BOOST_CHECK_NE(sys.actors().render(e).find("request 99"),
                              std::string::npos);
             });
  auto reason = wait_down(stage);
  BOOST_CHECK(reason == caf::sec::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()
