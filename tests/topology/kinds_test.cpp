// The built-in kinds at work: small topology files parsed, started under a
// supervisor, run until their streams ended and drained; the final report
// says what each actor did.

#include "topology/run_fixture.hpp"

#include <troupe/patterns/state.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace std::chrono_literals;

namespace troupe {

using test::find_report;
using test::run_fixture;

namespace {

/// 0 + 1 + ... + (n - 1): the counter's checksum of a generator's n items.
int64_t sum_below(int64_t n) {
  return n * (n - 1) / 2;
}

int64_t stat(const actor_report& r, const std::string& name) {
  auto i = r.stats.find(name);
  BOOST_REQUIRE_MESSAGE(i != r.stats.end(), r.name + " reports no stat " + name);
  return i->second;
}

struct kinds_fixture : run_fixture {
  /// The count a state_count stored under `key` in the state "store" of the
  /// topology under `root`; 0 if there is none.
  uint64_t stored_count(const caf::actor& root, const std::string& key) {
    uint64_t result = 0;
    self->request(address_of(root, "store"), test::patience, state_get(key))
      .receive(
        [&](state_value& x) {
          if (x.found) {
            BOOST_REQUIRE(x.value.match_elements<uint64_t>());
            result = x.value.get_as<uint64_t>(0);
          }
        },
        fail_on_error());
    return result;
  }

  /// Streams 0, 1, 2 from a generator into a file sink with `keys`, started
  /// as incarnation `restarts`; the file's text once the sink ended.
  std::string through_file_sink(const std::string& path, const std::string& keys,
                                uint32_t restarts) {
    auto t = parse(R"(
[actors.source]
kind = "generator"
count = 3
next = "out"

[actors.out]
kind = "file"
path = ")" + path + "\"\n" + keys);
    wiring sink_wiring;
    sink_wiring.links.inputs = 1;
    auto sink = t.find_actor("out")->start(
      spawn_context{sys.actors(), "out", caf::actor{}, caf::actor{}, restarts, {}},
      sink_wiring);
    BOOST_REQUIRE(sink);
    self->monitor(sink);
    wiring source_wiring;
    source_wiring.links.next = {sink};
    BOOST_REQUIRE(t.find_actor("source")->start(spawn_context{sys.actors()}, source_wiring));
    BOOST_CHECK(!wait_down(sink));
    std::ifstream in{path};
    return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  }

  static void write_file(const std::string& path, const std::string& text) {
    std::ofstream out{path};
    out << text;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(kinds_suite, kinds_fixture)

BOOST_AUTO_TEST_CASE(generator_count_reaches_counter) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 1000
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& sink = actor(r, "sink");
  BOOST_CHECK_EQUAL(stat(sink, "items"), 1000);
  BOOST_CHECK_EQUAL(stat(sink, "checksum"), sum_below(1000));
  BOOST_CHECK_EQUAL(actor(r, "source").out, 1000u);
  BOOST_CHECK(actor(r, "source").stopped == stop_reason::completed);
}

BOOST_AUTO_TEST_CASE(generator_starts_at_start) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 5
start = 10
next = "sink"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), 10 + 11 + 12 + 13 + 14);
}

BOOST_AUTO_TEST_CASE(generator_rate_paces_it) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 51
rate = "500/s"
next = "sink"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 51);
  // Item i is due i / 500 s after the start: the last one at 100 ms.
  BOOST_CHECK_GE(elapsed_ms(), 100);
}

BOOST_AUTO_TEST_CASE(batcher_batches) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 1000
next = "batch"

[actors.batch]
kind = "batcher"
size = 100
timeout = "10s"
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& sink = actor(r, "sink");
  BOOST_CHECK_EQUAL(stat(sink, "items"), 1000);
  BOOST_CHECK_EQUAL(stat(sink, "batches"), 10);
  BOOST_CHECK_EQUAL(stat(sink, "checksum"), sum_below(1000));
  BOOST_CHECK_EQUAL(actor(r, "batch").out, 10u);
}

BOOST_AUTO_TEST_CASE(limiter_paces) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 101
next = "limit"

[actors.limit]
kind = "limiter"
rate = "1000/s"
burst = 1
next = "sink"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 101);
  // One permit at once, then one a millisecond.
  BOOST_CHECK_GE(elapsed_ms(), 100);
  BOOST_CHECK_EQUAL(stat(actor(r, "limit"), "passed"), 101);
}

BOOST_AUTO_TEST_CASE(breaker_opens_on_a_failing_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 50
next = "guard"

[actors.guard]
kind = "breaker"
service = "flaky"
consecutive_failures = 3
open_timeout = "1h"
max_concurrent_calls = 1
when_open = "reject"
next = "sink"

[actors.flaky]
kind = "flaky_service"
probability = 1.0
error = "runtime_error"

[actors.sink]
kind = "counter"
)");
  auto& guard = actor(r, "guard");
  BOOST_CHECK_EQUAL(guard.state, "open");
  BOOST_CHECK_EQUAL(stat(guard, "trips"), 1);
  BOOST_CHECK_EQUAL(guard.errors, 3u);
  BOOST_CHECK_EQUAL(guard.dropped, 47u);
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 0);
  BOOST_CHECK_EQUAL(actor(r, "flaky").in, 3u);
}

BOOST_AUTO_TEST_CASE(breaker_passes_answers_of_a_healthy_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 200
next = "guard"

[actors.guard]
kind = "breaker"
service = "svc"
next = "sink"

[actors.svc]
kind = "hash_service"
rounds = 10

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(actor(r, "guard").state, "closed");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(200));
  BOOST_CHECK_EQUAL(stat(actor(r, "svc"), "requests"), 200);
}

BOOST_AUTO_TEST_CASE(pool_over_hash_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 500
next = "workers"

[actors.workers]
kind = "pool"
workers = 3
policy = "pull"
prefetch = 2
worker = { kind = "hash_service", rounds = 50 }
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& sink = actor(r, "sink");
  BOOST_CHECK_EQUAL(stat(sink, "items"), 500);
  BOOST_CHECK_EQUAL(stat(sink, "checksum"), sum_below(500));
  auto& pool = actor(r, "workers");
  BOOST_CHECK_EQUAL(stat(pool, "completed"), 500);
  BOOST_CHECK_EQUAL(pool.children.size(), 3u);
}

BOOST_AUTO_TEST_CASE(stream_actor_that_serves_answers_until_the_final_drain) {
  // `shared` works on the stream of `few` and answers `caller` too: its own
  // stream ends long before the other, and it must not stop with it.
  auto r = run(R"(
[actors.few]
kind = "generator"
count = 5
next = "shared"

[actors.shared]
kind = "pool"
worker = { kind = "hash_service", rounds = 1 }
next = "few_sink"

[actors.few_sink]
kind = "counter"

[actors.many]
kind = "generator"
count = 200
next = "caller"

[actors.caller]
kind = "retry"
service = "shared"
max_attempts = 1
next = "many_sink"

[actors.many_sink]
kind = "counter"
)",
               [this](const caf::actor& root) {
                 // Once what the run waits for ended, it still runs.
                 auto now = status(root);
                 BOOST_CHECK(actor(now, "shared").stopped == stop_reason::running);
                 BOOST_CHECK(actor(now, "few_sink").stopped == stop_reason::running);
                 BOOST_CHECK(actor(now, "many_sink").stopped == stop_reason::completed);
               });
  BOOST_CHECK_EQUAL(actor(r, "caller").errors, 0u);
  BOOST_CHECK_EQUAL(stat(actor(r, "many_sink"), "checksum"), sum_below(200));
  BOOST_CHECK_EQUAL(stat(actor(r, "few_sink"), "checksum"), sum_below(5));
  BOOST_CHECK(actor(r, "shared").stopped == stop_reason::drained);
}

BOOST_AUTO_TEST_CASE(pool_retries_jobs_of_crashed_workers) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 300
next = "workers"

[actors.workers]
kind = "pool"
workers = 2
policy = "pull"
max_attempts = 2
max_restarts = 100
worker = { kind = "flaky_service", probability = 0.0, crash_every = 25 }
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& sink = actor(r, "sink");
  BOOST_CHECK_EQUAL(stat(sink, "items"), 300);
  BOOST_CHECK_EQUAL(stat(sink, "checksum"), sum_below(300));
  auto& pool = actor(r, "workers");
  BOOST_CHECK_GT(stat(pool, "worker_restarts"), 0);
  BOOST_CHECK_GT(stat(pool, "retried"), 0);
  BOOST_CHECK_EQUAL(stat(pool, "failed"), 0);
}

BOOST_AUTO_TEST_CASE(fanout_over_fixed_services) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 300
next = "spread"

[actors.spread]
kind = "fanout"
service = ["a", "b"]
max_in_flight = 8
next = "sink"

[actors.a]
kind = "hash_service"

[actors.b]
kind = "sleep_service"
delay = "1ms"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 300);
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(300));
  BOOST_CHECK_EQUAL(actor(r, "a").in + actor(r, "b").in, 300u);
}

BOOST_AUTO_TEST_CASE(fanout_with_a_processor_per_item) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 100
next = "spread"

[actors.spread]
kind = "fanout"
processor = { kind = "sleep_service", delay = "1ms" }
order = "completion"
max_in_flight = 10
next = "sink"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(100));
  BOOST_CHECK_EQUAL(stat(actor(r, "spread"), "spawned"), 100);
}

BOOST_AUTO_TEST_CASE(join_emits_a_batch_of_every_answer) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 100
next = "both"

[actors.both]
kind = "join"
service = ["a", "b"]
next = "sink"

[actors.a]
kind = "hash_service"

[actors.b]
kind = "sleep_service"
delay = "1ms"

[actors.sink]
kind = "counter"
)");
  auto& sink = actor(r, "sink");
  BOOST_CHECK_EQUAL(stat(sink, "batches"), 100);
  BOOST_CHECK_EQUAL(stat(sink, "items"), 200);
  BOOST_CHECK_EQUAL(stat(sink, "checksum"), 2 * sum_below(100));
}

BOOST_AUTO_TEST_CASE(join_first_error_fails_the_item) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 20
next = "both"

[actors.both]
kind = "join"
mode = "first_error"
service = ["a", "b"]
next = "sink"

[actors.a]
kind = "hash_service"

[actors.b]
kind = "flaky_service"
fail_first = 5
probability = 0.0

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "batches"), 15);
  BOOST_CHECK_EQUAL(actor(r, "both").errors, 5u);
}

BOOST_AUTO_TEST_CASE(retry_recovers_from_a_flaky_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 200
next = "again"

[actors.again]
kind = "retry"
service = "flaky"
max_attempts = 30
initial_backoff = "1ms"
max_backoff = "2ms"
budget = false
next = "sink"

[actors.flaky]
kind = "flaky_service"
probability = 0.3
seed = 42

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 200);
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(200));
  auto& again = actor(r, "again");
  BOOST_CHECK_GT(stat(again, "retries"), 0);
  BOOST_CHECK_EQUAL(stat(again, "gave_up"), 0);
  BOOST_CHECK_GT(stat(actor(r, "flaky"), "failed"), 0);
}

BOOST_AUTO_TEST_CASE(timeout_answers_for_a_late_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 10
next = "again"

[actors.again]
kind = "retry"
service = "deadline"
max_attempts = 2
initial_backoff = "1ms"
budget = false
next = "sink"

[actors.deadline]
kind = "timeout"
service = "slow"
timeout = "5ms"
late_window = "1s"

[actors.slow]
kind = "sleep_service"
delay = "100ms"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 0);
  BOOST_CHECK_EQUAL(actor(r, "again").errors, 10u);
  BOOST_CHECK_EQUAL(stat(actor(r, "deadline"), "timed_out"), 20);
}

BOOST_AUTO_TEST_CASE(crash_is_restarted_and_no_item_is_lost) {
  auto r = run(R"(
[supervisor]
max_restarts = 10

[actors.source]
kind = "generator"
count = 1000
next = "drill"

[actors.drill]
kind = "crash"
every = 100
crashes = 3
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& drill = actor(r, "drill");
  BOOST_CHECK_EQUAL(drill.restarts, 3u);
  // Each incarnation's report is summed by its supervisor, or the last one
  // counts only its own: the three crashed items are errors either way.
  auto items = stat(actor(r, "sink"), "items");
  BOOST_CHECK_EQUAL(items, 1000 - 3);
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"),
                    sum_below(1000) - (99 + 199 + 299));
}

BOOST_AUTO_TEST_CASE(crash_budget_is_whole_in_each_run_of_one_topology) {
  auto t = parse(R"(
[actors.source]
kind = "generator"
count = 100
next = "drill"

[actors.drill]
kind = "crash"
every = 10
crashes = 2
next = "sink"

[actors.sink]
kind = "counter"
)");
  for (int round = 0; round < 2; ++round) {
    BOOST_TEST_CONTEXT("run " << round) {
      auto r = run(t);
      BOOST_CHECK_EQUAL(actor(r, "drill").restarts, 2u);
      BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 100 - 2);
    }
  }
}

BOOST_AUTO_TEST_CASE(fail_counts_errors_and_goes_on) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 1000
next = "lossy"

[actors.lossy]
kind = "fail"
probability = 0.2
seed = 7
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& lossy = actor(r, "lossy");
  auto items = stat(actor(r, "sink"), "items");
  BOOST_CHECK_GT(lossy.errors, 100u);
  BOOST_CHECK_LT(lossy.errors, 300u);
  BOOST_CHECK_EQUAL(static_cast<uint64_t>(items) + lossy.errors, 1000u);
  BOOST_CHECK(lossy.stopped == stop_reason::completed);
}

BOOST_AUTO_TEST_CASE(hash_passes_items_or_their_hashes) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 100
next = ["same", "digest"]

[actors.same]
kind = "hash"
rounds = 10
next = "sink"

[actors.digest]
kind = "hash"
emit = "hash"
next = "hashes"

[actors.sink]
kind = "counter"

[actors.hashes]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(100));
  BOOST_CHECK_EQUAL(stat(actor(r, "hashes"), "items"), 100);
  BOOST_CHECK_NE(stat(actor(r, "hashes"), "checksum"), sum_below(100));
}

BOOST_AUTO_TEST_CASE(sleep_holds_each_item) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 5
next = "nap"

[actors.nap]
kind = "sleep"
delay = "20ms"
next = "sink"

[actors.sink]
kind = "null"
)");
  BOOST_CHECK_EQUAL(actor(r, "sink").in, 5u);
  BOOST_CHECK_GE(elapsed_ms(), 100);
}

BOOST_AUTO_TEST_CASE(file_sink_writes_lines_and_file_lines_reads_them) {
  auto path = temp_path("lines.txt");
  run(R"(
[actors.source]
kind = "generator"
count = 100
next = "out"

[actors.out]
kind = "file"
path = ")" + path + R"("
)");
  std::ifstream in{path};
  std::string line;
  uint64_t lines = 0;
  uint64_t sum = 0;
  while (std::getline(in, line)) {
    sum += std::stoull(line);
    ++lines;
  }
  BOOST_CHECK_EQUAL(lines, 100u);
  BOOST_CHECK_EQUAL(sum, static_cast<uint64_t>(sum_below(100)));
  auto r = run(R"(
[actors.source]
kind = "file_lines"
path = ")" + path + R"("
next = "sink"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 100);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(file_sink_truncates_on_its_first_start_only) {
  auto path = temp_path("truncate.txt");
  write_file(path, "old\n");
  BOOST_CHECK_EQUAL(through_file_sink(path, "", 0), "0\n1\n2\n");
  // A restarted sink goes on after what the last incarnation wrote.
  BOOST_CHECK_EQUAL(through_file_sink(path, "", 1), "0\n1\n2\n0\n1\n2\n");
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(file_sink_with_append_keeps_what_the_file_held) {
  auto path = temp_path("append.txt");
  write_file(path, "old\n");
  BOOST_CHECK_EQUAL(through_file_sink(path, "append = true\n", 0), "old\n0\n1\n2\n");
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(file_lines_of_a_missing_file_fails_its_start) {
  auto r = run_until_root_fails(R"(
[supervisor]
max_restarts = 0

[actors.source]
kind = "file_lines"
path = "/nonexistent/troupe-test"
next = "sink"

[actors.sink]
kind = "counter"
)");
  auto& source = actor(r, "source");
  BOOST_CHECK_MESSAGE(source.error.find("file_lines: cannot open '/nonexistent/troupe-test'")
                        != std::string::npos,
                      source.error);
}

BOOST_AUTO_TEST_CASE(file_kinds_refuse_what_is_not_a_regular_file) {
  // Opening a FIFO would block a scheduler thread until its other end opens;
  // a directory is no file of lines.
  auto fifo = temp_path("fifo");
  BOOST_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  for (auto path : {fifo, std::string{"/tmp"}}) {
    auto r = run_until_root_fails(R"(
[supervisor]
max_restarts = 0

[actors.source]
kind = "file_lines"
path = ")" + path + R"("
next = "sink"

[actors.sink]
kind = "counter"
)");
    auto& source = actor(r, "source");
    BOOST_CHECK_MESSAGE(source.error.find("file_lines: '" + path
                                          + "' is not a regular file")
                          != std::string::npos,
                        source.error);
  }
  auto r = run_until_root_fails(R"(
[supervisor]
max_restarts = 0

[actors.source]
kind = "generator"
next = "out"

[actors.out]
kind = "file"
path = ")" + fifo + R"("
)");
  auto& out = actor(r, "out");
  BOOST_CHECK_MESSAGE(out.error.find("file: '" + fifo + "' is not a regular file")
                        != std::string::npos,
                      out.error);
  std::remove(fifo.c_str());
}

BOOST_AUTO_TEST_CASE(stdin_lines_emits_each_line_until_end_of_input) {
  // The process's one stdin reader starts at the first stdin_lines and reads
  // std::cin: this test gives it lines of its own (no other test reads
  // standard input).
  static std::stringbuf input{"one\ntwo\r\nthree\n"};
  auto saved = std::cin.rdbuf(&input);
  auto r = run(R"(
[actors.source]
kind = "stdin_lines"
next = "out"

[actors.out]
kind = "file"
path = ")" + temp_path("stdin.txt") + R"("
)");
  std::cin.rdbuf(saved);
  BOOST_CHECK_EQUAL(actor(r, "source").out, 3u);
  std::ifstream in{temp_path("stdin.txt")};
  std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  BOOST_CHECK_EQUAL(text, "one\ntwo\nthree\n");
  std::remove(temp_path("stdin.txt").c_str());
}

BOOST_AUTO_TEST_CASE(state_count_updates_a_state) {
  uint64_t seen = 0;
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 100
next = "tally"

[actors.tally]
kind = "state_count"
service = "store"
key = "seen"
next = "sink"

[actors.store]
kind = "state"
shards = 2

[actors.sink]
kind = "counter"
)",
               [&](const caf::actor& root) { seen = stored_count(root, "seen"); });
  BOOST_CHECK_EQUAL(seen, 100u);
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "items"), 100);
  BOOST_CHECK_EQUAL(stat(actor(r, "store"), "updates"), 100);
}

BOOST_AUTO_TEST_CASE(state_count_by_item_counts_each_item_apart) {
  // Two generators of 0..4: each number comes twice.
  std::vector<uint64_t> counts;
  run(R"(
[actors.one]
kind = "generator"
count = 5
next = "tally"

[actors.two]
kind = "generator"
count = 5
next = "tally"

[actors.tally]
kind = "state_count"
service = "store"
key = "n"
by_item = true
next = "sink"

[actors.store]
kind = "state"
shards = 3

[actors.sink]
kind = "counter"
)",
      [&](const caf::actor& root) {
        for (int i = 0; i < 5; ++i)
          counts.push_back(stored_count(root, "n:" + std::to_string(i)));
        counts.push_back(stored_count(root, "n"));
      });
  BOOST_CHECK((counts == std::vector<uint64_t>{2, 2, 2, 2, 2, 0}));
}

BOOST_AUTO_TEST_CASE(blocking_hash_runs_on_the_executor) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 20
next = "work"

[actors.work]
kind = "blocking_hash"
service = "threads"
rounds = 1000
next = "sink"

[actors.threads]
kind = "blocking"
max_threads = 2

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(20));
  BOOST_CHECK_EQUAL(stat(actor(r, "threads"), "completed"), 20);
}

BOOST_AUTO_TEST_CASE(hash_service_skews_every_nth_request) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 100
next = "spread"

[actors.spread]
kind = "fanout"
service = "svc"
next = "sink"

[actors.svc]
kind = "hash_service"
rounds = 1
skew_every = 10
skew_factor = 5

[actors.sink]
kind = "null"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "svc"), "skewed"), 10);
}

BOOST_AUTO_TEST_CASE(limiter_in_front_of_a_service) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 50
next = "spread"

[actors.spread]
kind = "fanout"
service = "limit"
next = "sink"

[actors.limit]
kind = "limiter"
rate = "10000/s"
service = "svc"

[actors.svc]
kind = "hash_service"

[actors.sink]
kind = "counter"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "sink"), "checksum"), sum_below(50));
  BOOST_CHECK_EQUAL(stat(actor(r, "limit"), "passed"), 50);
}

BOOST_AUTO_TEST_CASE(stdout_sink_takes_every_item) {
  auto r = run(R"(
[actors.source]
kind = "generator"
count = 3
next = "print"

[actors.print]
kind = "stdout"
)");
  BOOST_CHECK_EQUAL(stat(actor(r, "print"), "lines"), 3);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
