// The batcher: a batch leaves at `size` items or `timeout` after its own first
// item, whichever comes first; stale timers of batches that already left do
// nothing; end of stream and a graceful shutdown flush the partial batch.

#include "patterns/streams.hpp"
#include "supervision/pipeline.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/batcher.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <stdexcept>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

std::vector<uint64_t> values_of(const item& x) {
  BOOST_REQUIRE(x.match_elements<batch>());
  std::vector<uint64_t> result;
  for (auto& y : x.get_as<batch>(0).items)
    result.push_back(y.get_as<uint64_t>(0));
  return result;
}

using values = std::vector<uint64_t>;

struct batcher_fixture : system_fixture {
  caf::actor sink = spawn_reporting_sink(sys, self);
  caf::actor last_batcher;

  // The system waits for every actor before it goes: stop the streams that a
  // test left open.
  ~batcher_fixture() {
    for (auto& a : {sink, last_batcher})
      if (a)
        self->send_exit(a, caf::exit_reason::kill);
  }

  caf::actor batcher(batcher_config cfg) {
    stage_config links;
    links.next = {sink};
    last_batcher = spawn_batcher(sys, std::move(cfg), links);
    return last_batcher;
  }

  std::chrono::nanoseconds since(int64_t start_ns, const sunk& s) {
    return std::chrono::nanoseconds{s.at_ns - start_ns};
  }
};

// Sums the items of the batches it takes; tells the observer at the end.
class batch_summing_sink final : public stage_logic {
public:
  explicit batch_summing_sink(caf::actor observer) : observer_(std::move(observer)) {
  }
  void on_item(item& x, emitter&) override {
    for (auto& y : x.get_as<batch>(0).items) {
      ++count_;
      sum_ += y.get_as<uint64_t>(0);
    }
    if (!progressed_ && count_ >= 1000) {
      progressed_ = true;
      caf::anon_send(observer_, progress_atom::value);
    }
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, sink_done_atom::value, count_, sum_);
  }

private:
  caf::actor observer_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  bool progressed_ = false;
};

child_spec batcher_child(batcher_config cfg) {
  child_spec spec;
  spec.name = "batcher";
  spec.restart = restart_type::transient;
  spec.start = [cfg](const spawn_context& ctx) {
    stage_config links;
    links.next = {ctx.sibling("sink")};
    return spawn_batcher(ctx, cfg, links);
  };
  return spec;
}

child_spec batch_sink_child(caf::actor observer) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer](const spawn_context& ctx) {
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<batch_summing_sink>(observer));
  };
  return spec;
}

uint64_t sum_below(uint64_t n) {
  return n == 0 ? 0 : n * (n - 1) / 2;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(batcher, batcher_fixture)

BOOST_AUTO_TEST_CASE(batch_leaves_when_full_and_end_of_stream_flushes_the_rest) {
  batcher_config cfg;
  cfg.size = 3;
  cfg.timeout = 1h; // only size and end of stream can close a batch here
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  up.push(numbers({0, 1, 2, 3, 4, 5, 6}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{0, 1, 2}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{3, 4, 5}));
  up.end();
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{6}));
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 3u);
}

BOOST_AUTO_TEST_CASE(batch_timer_starts_at_the_first_item_of_each_batch) {
  batcher_config cfg;
  cfg.size = 100;
  cfg.timeout = 40ms;
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  // Each round starts at an arbitrary moment: a free-running interval would
  // let some batch leave early. Two items of one round share one timer.
  for (uint64_t round = 0; round < 5; ++round) {
    auto start = now_ns();
    up.push(round * 2);
    up.push(round * 2 + 1);
    auto s = receive_sunk(*this);
    BOOST_CHECK(values_of(s.value) == (values{round * 2, round * 2 + 1}));
    BOOST_CHECK_GE(since(start, s).count(), std::chrono::nanoseconds{cfg.timeout}.count());
  }
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["timed_out"], 5);
  BOOST_CHECK_EQUAL(r.stats["full_batches"], 0);
  BOOST_CHECK_EQUAL(r.out, 5u);
  BOOST_CHECK_EQUAL(r.stats["items_out"], 10);
}

BOOST_AUTO_TEST_CASE(stale_timer_of_a_full_batch_does_not_cut_the_next_short) {
  batcher_config cfg;
  cfg.size = 2;
  cfg.timeout = 60ms;
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  auto first = now_ns();
  up.push(numbers({1, 2}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{1, 2}));
  // The full batch's timer is still pending; the next batch has its own.
  auto second = now_ns();
  up.push(3);
  auto s = receive_sunk(*this);
  BOOST_CHECK(values_of(s.value) == (values{3}));
  BOOST_CHECK_GE(since(second, s).count(), std::chrono::nanoseconds{cfg.timeout}.count());
  BOOST_CHECK_GE(s.at_ns - first, std::chrono::nanoseconds{cfg.timeout}.count());
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["full_batches"], 1);
  BOOST_CHECK_EQUAL(r.stats["timed_out"], 1);
}

BOOST_AUTO_TEST_CASE(size_wins_over_a_running_timer) {
  batcher_config cfg;
  cfg.size = 4;
  cfg.timeout = 1h;
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  up.push(0);
  up.push(numbers({1, 2}));
  up.push(3);
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{0, 1, 2, 3}));
  auto r = status(b);
  BOOST_CHECK_EQUAL(r.stats["full_batches"], 1);
  BOOST_CHECK_EQUAL(r.stats["held"], 0);
}

BOOST_AUTO_TEST_CASE(byte_cap_starts_a_new_batch_before_it_is_exceeded) {
  batcher_config cfg;
  cfg.size = 100;
  cfg.timeout = 1h;
  cfg.max_bytes = 10;
  cfg.bytes_of = [](const item& x) { return static_cast<size_t>(x.get_as<uint64_t>(0)); };
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  up.push(numbers({4, 4, 4, 6, 30, 1}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{4, 4}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{4, 6}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{30}));
  up.end();
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{1}));
  BOOST_CHECK_EQUAL(receive_sink_end(*this), 4u);
}

BOOST_AUTO_TEST_CASE(default_byte_weight_is_the_serialized_size) {
  batcher_config cfg;
  cfg.size = 100;
  cfg.timeout = 1h;
  cfg.max_bytes = 1; // every item is larger: each leaves alone
  auto b = batcher(cfg);
  manual_upstream up{self, b};
  up.push(numbers({7, 8}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{7}));
  BOOST_CHECK(values_of(receive_sunk(*this).value) == (values{8}));
}

BOOST_AUTO_TEST_CASE(invalid_batcher_config_names_the_field) {
  auto rejects = [&](batcher_config cfg, const std::string& field) {
    auto why = config_rejection([&] { batcher(cfg); });
    BOOST_CHECK_MESSAGE(contains(why, field), why);
  };
  batcher_config zero_size;
  zero_size.size = 0;
  rejects(zero_size, "size");
  batcher_config zero_timeout;
  zero_timeout.timeout = caf::timespan{0};
  rejects(zero_timeout, "timeout");
}

BOOST_AUTO_TEST_CASE(supervised_batcher_drains_its_partial_batch_on_shutdown) {
  supervisor_spec spec;
  spec.name = "ingest";
  batcher_config cfg;
  cfg.size = 64;
  cfg.timeout = 1h; // the last partial batch leaves only by the drain
  spec.children = {counter_source("batcher"), batcher_child(cfg), batch_sink_child(self)};
  auto root = spawn_supervisor(sys, spec);
  await_progress(*this);
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  auto [count, sum] = receive_sink_done(*this);
  auto source = find_report(*report, "source");
  auto b = find_report(*report, "batcher");
  BOOST_REQUIRE(source && b);
  BOOST_TEST_MESSAGE(to_text(*report));
  BOOST_CHECK_EQUAL(count, source->out);
  BOOST_CHECK_EQUAL(sum, sum_below(source->out));
  BOOST_CHECK_EQUAL(b->in, source->out);
  BOOST_CHECK_EQUAL(b->stats.at("items_out"), static_cast<int64_t>(source->out));
  BOOST_CHECK(b->stopped == stop_reason::drained);
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_EQUAL(t.dropped, 0u);
}

BOOST_AUTO_TEST_CASE(restarted_batcher_keeps_its_place_in_the_stream) {
  supervisor_spec spec;
  spec.name = "ingest";
  batcher_config cfg;
  cfg.size = 16;
  cfg.timeout = 5ms;
  // The first incarnation fails while weighing item 500: a crash mid-batch.
  auto first_start = std::make_shared<std::atomic<bool>>(true);
  auto crashing = batcher_child(cfg);
  crashing.start = [cfg, first_start](const spawn_context& ctx) mutable {
    auto mine = cfg;
    mine.max_bytes = 1 << 20;
    bool first = first_start->exchange(false);
    mine.bytes_of = [first](const item& x) -> size_t {
      if (first && x.get_as<uint64_t>(0) == 500)
        throw std::runtime_error("cannot weigh 500");
      return 8;
    };
    stage_config links;
    links.next = {ctx.sibling("sink")};
    return spawn_batcher(ctx, mine, links);
  };
  spec.children = {counter_source("batcher", 5000), crashing, batch_sink_child(self)};
  auto root = spawn_supervisor(sys, spec);
  auto count = receive_sink_done(*this).count;
  auto report = troupe::shutdown(sys, root, shutdown_mode::graceful);
  BOOST_REQUIRE(report);
  BOOST_TEST_MESSAGE(to_text(*report));
  auto b = find_report(*report, "batcher");
  BOOST_REQUIRE(b);
  BOOST_CHECK_EQUAL(b->restarts, 1u);
  // Items the crashed incarnation held in its partial batch are counted as
  // dropped (with the crashing item as an error); everything else arrives.
  auto t = totals(*report);
  BOOST_CHECK_EQUAL(t.lost, 0u);
  BOOST_CHECK_GE(count, 5000u - 16u);
  BOOST_CHECK_EQUAL(count + t.dropped + t.errors, 5000u);
}

BOOST_AUTO_TEST_SUITE_END()
