// The keys of the built-in kinds: every kind is registered with the right
// shape, reads its keys, and reports the rules that span several keys.

#include "topology/config_fixture.hpp"

#include <troupe/topology/kind.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <set>
#include <string>
#include <vector>

namespace troupe {

namespace {

struct kinds_config_fixture : test::config_fixture {
  /// Reads `text` as the table of an actor of `kind` with that kind's parse
  /// function, unknown keys reported as the loader does; returns the errors
  /// rendered, one per line.
  std::string parse(const std::string& kind, const std::string& text) {
    auto def = kinds().find(kind);
    BOOST_REQUIRE_MESSAGE(def != nullptr, "no kind " + kind);
    auto cfg = read(text, &kinds());
    state->kind = kind;
    state->context = "for kind '" + kind + "'";
    bool threw = false;
    auto starter = detail::run_parse(*def, cfg, *state, threw);
    if (!threw)
      detail::report_unknown_keys(*state, "for kind '" + kind + "'");
    std::string result;
    for (auto& e : *errors)
      result += e.render() + "\n";
    if (result.empty())
      BOOST_CHECK(starter);
    return result;
  }
};

// The global registry holds these, and whatever other tests registered.
const std::vector<std::string> builtin_kind_names{
  "batcher",      "blocking",      "blocking_hash", "breaker",     "counter",
  "crash",        "fail",          "fanout",        "file",        "file_lines",
  "flaky_service", "generator",    "hash",          "hash_service", "join",
  "limiter",      "null",          "pool",          "retry",       "sleep",
  "sleep_service", "state",        "state_count",   "stdin_lines", "stdout",
  "timeout"};

const kind_definition& kind(const std::string& name) {
  auto def = kinds().find(name);
  BOOST_REQUIRE_MESSAGE(def != nullptr, "no kind " + name);
  return *def;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(kinds_config_suite, kinds_config_fixture)

BOOST_AUTO_TEST_CASE(every_builtin_kind_is_registered) {
  auto names = kinds().names();
  for (auto& name : builtin_kind_names)
    BOOST_CHECK_MESSAGE(std::find(names.begin(), names.end(), name) != names.end(),
                        "missing kind " + name);
}

BOOST_AUTO_TEST_CASE(kinds_have_the_shape_of_what_they_are) {
  BOOST_CHECK(kind("generator").source);
  BOOST_CHECK(!kind("generator").takes_input);
  BOOST_CHECK(kind("counter").takes_input && !kind("counter").emits);
  BOOST_CHECK(kind("hash").takes_input && kind("hash").emits);
  BOOST_CHECK(kind("hash_service").answers_requests && !kind("hash_service").takes_input);
  BOOST_CHECK(kind("hash_service").default_restart == restart_type::permanent);
  BOOST_CHECK(kind("breaker").takes_input && kind("breaker").answers_requests);
  BOOST_CHECK_EQUAL(kind("breaker").min_services, 1u);
  BOOST_CHECK_EQUAL(kind("limiter").min_services, 0u);
  BOOST_CHECK_EQUAL(kind("limiter").max_services, 1u);
  BOOST_CHECK_EQUAL(kind("join").min_services, 2u);
  BOOST_CHECK(!kind("timeout").takes_input);
  BOOST_CHECK(!kind("batcher").answers_requests);
  for (auto name : {"batcher", "limiter", "breaker", "pool", "fanout", "join", "retry",
                    "timeout", "state", "blocking"})
    BOOST_CHECK_EQUAL(kind(name).graph_group, "pattern");
  for (auto name : {"generator", "hash", "counter", "limiter", "pool", "retry"})
    BOOST_CHECK(kind(name).default_restart == restart_type::transient);
}

BOOST_AUTO_TEST_CASE(state_count_and_blocking_hash_need_their_service_kind) {
  BOOST_CHECK((kind("state_count").service_kinds == std::vector<std::string>{"state"}));
  BOOST_CHECK((kind("blocking_hash").service_kinds == std::vector<std::string>{"blocking"}));
  for (auto name : {"state_count", "blocking_hash"}) {
    auto text = std::string{"[actors.src]\nkind = \"generator\"\nnext = \"work\"\n"
                            "[actors.work]\nkind = \""} + name
                + "\"\nservice = \"h\"\nnext = \"sink\"\n"
                  "[actors.h]\nkind = \"hash_service\"\n"
                  "[actors.sink]\nkind = \"counter\"\n";
    std::string rendered;
    try {
      parse_topology(text, "t.toml");
    } catch (const topology_errors& e) {
      for (auto& x : e.errors())
        rendered += x.render() + "\n";
    }
    BOOST_CHECK_MESSAGE(rendered.find("t.toml:6:11: 'service' names 'h', a 'hash_service', "
                                      "but kind '" + std::string{name} + "' needs a")
                          != std::string::npos,
                        rendered);
  }
}

BOOST_AUTO_TEST_CASE(keys_of_a_kind_are_read) {
  BOOST_CHECK_EQUAL(parse("generator", "count = 10\nrate = \"100/s\"\nstart = 5"), "");
  BOOST_CHECK_EQUAL(parse("breaker", "consecutive_failures = 2\nopen_timeout = \"1s\"\n"
                                     "when_open = \"reject\""),
                    "");
}

BOOST_AUTO_TEST_CASE(every_key_of_every_kind_is_read_and_checked) {
  // One wrong value per documented key (docs/topology.md): the error names
  // the key, so the kind reads it and checks it (an unread key would be
  // "unknown"). What the values do is up to the runs of kinds_test.cpp.
  struct wrong {
    const char* kind;
    const char* key;
    const char* value;
  };
  const std::vector<wrong> cases{
    {"generator", "count", "-1"}, {"generator", "rate", "\"fast\""},
    {"generator", "start", "-1"}, {"file_lines", "path", "1"},
    {"hash", "rounds", "-1"}, {"hash", "emit", "\"both\""},
    {"sleep", "delay", "\"soon\""}, {"fail", "probability", "2"},
    {"fail", "seed", "-1"}, {"crash", "every", "0"}, {"crash", "crashes", "-1"},
    {"file", "path", "1"}, {"file", "append", "\"yes\""},
    {"hash_service", "rounds", "-1"}, {"hash_service", "skew_every", "-1"},
    {"hash_service", "skew_factor", "0"}, {"flaky_service", "probability", "2"},
    {"flaky_service", "seed", "-1"}, {"flaky_service", "fail_first", "-1"},
    {"flaky_service", "latency", "\"late\""}, {"flaky_service", "error", "\"oops\""},
    {"flaky_service", "message", "1"}, {"flaky_service", "crash_every", "-1"},
    {"sleep_service", "delay", "\"soon\""}, {"batcher", "size", "0"},
    {"batcher", "timeout", "\"soon\""}, {"batcher", "max_bytes", "-1"},
    {"limiter", "rate", "\"fast\""}, {"limiter", "burst", "0"},
    {"limiter", "mode", "\"drop\""}, {"limiter", "max_queue", "0"},
    {"breaker", "consecutive_failures", "0"}, {"breaker", "failure_rate", "2"},
    {"breaker", "window_size", "0"}, {"breaker", "minimum_calls", "0"},
    {"breaker", "call_timeout", "\"soon\""}, {"breaker", "open_timeout", "\"soon\""},
    {"breaker", "half_open_probes", "0"}, {"breaker", "backoff_multiplier", "0"},
    {"breaker", "max_open_timeout", "\"soon\""}, {"breaker", "max_concurrent_calls", "0"},
    {"breaker", "when_open", "\"drop\""}, {"pool", "worker", "1"}, {"pool", "workers", "0"},
    {"pool", "policy", "\"random\""}, {"pool", "queue_capacity", "0"},
    {"pool", "prefetch", "0"}, {"pool", "max_attempts", "0"},
    {"pool", "job_timeout", "\"soon\""}, {"pool", "max_restarts", "-1"},
    {"pool", "period", "\"soon\""}, {"pool", "worker_nodes", "1"},
    {"pool", "rejoin_interval", "\"0s\""},
    {"fanout", "processor", "1"},
    {"fanout", "max_in_flight", "0"}, {"fanout", "order", "\"random\""},
    {"fanout", "call_timeout", "\"soon\""}, {"join", "mode", "\"any\""},
    {"join", "timeout", "\"soon\""}, {"join", "max_in_flight", "0"},
    {"retry", "max_attempts", "0"}, {"retry", "initial_backoff", "\"soon\""},
    {"retry", "multiplier", "0"}, {"retry", "max_backoff", "\"soon\""},
    {"retry", "jitter", "\"some\""}, {"retry", "seed", "-1"},
    {"retry", "attempt_timeout", "\"soon\""}, {"retry", "budget", "\"yes\""},
    {"retry", "budget_window", "\"soon\""}, {"retry", "min_retries_per_second", "-1"},
    {"retry", "retry_ratio", "-1"}, {"retry", "max_concurrent_calls", "0"},
    {"timeout", "timeout", "\"soon\""}, {"timeout", "late_window", "\"soon\""},
    {"state", "shards", "0"}, {"state", "hold_timeout", "\"soon\""},
    {"state", "restart_buffer", "0"}, {"state", "max_deferred", "0"},
    {"state", "max_write_wait", "\"soon\""}, {"state", "max_restarts", "-1"},
    {"state", "period", "\"soon\""}, {"state_count", "key", "1"},
    {"state_count", "by_item", "\"yes\""}, {"state_count", "timeout", "\"soon\""},
    {"state_count", "max_in_flight", "0"}, {"blocking", "max_threads", "0"},
    {"blocking", "queue_capacity", "-1"}, {"blocking", "job_timeout", "\"soon\""},
    {"blocking", "max_restarts", "-1"}, {"blocking", "period", "\"soon\""},
    {"blocking_hash", "rounds", "-1"}, {"blocking_hash", "emit", "\"both\""},
    {"blocking_hash", "timeout", "\"soon\""}, {"blocking_hash", "max_in_flight", "0"},
  };
  // Keys a kind needs besides the one under test, so that it parses.
  auto needed = [](const std::string& kind, const std::string& key) {
    std::string text;
    if ((kind == "file_lines" || kind == "file") && key != "path")
      text += "path = \"/tmp/x\"\n";
    if (kind == "limiter" && key != "rate")
      text += "rate = \"10/s\"\n";
    if (kind == "pool" && key != "worker")
      text += "worker = { kind = \"hash_service\" }\n";
    if (kind == "pool" && key == "prefetch")
      text += "policy = \"pull\"\n";
    if (kind == "fanout" && key != "processor")
      text += "processor = { kind = \"hash_service\" }\n";
    if (kind == "hash_service" && key == "skew_factor")
      text += "skew_every = 2\n";
    return text;
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.kind << "." << c.key) {
      errors->clear();
      auto text = needed(c.kind, c.key) + c.key + " = " + c.value;
      auto found = parse(c.kind, text);
      BOOST_CHECK_MESSAGE(found.find("'" + std::string{c.key} + "'") != std::string::npos,
                          found);
      BOOST_CHECK_MESSAGE(found.find("unknown key") == std::string::npos, found);
    }
  }
  // And the list has every key each kind reads, no more.
  for (auto& name : builtin_kind_names) {
    BOOST_TEST_CONTEXT(name) {
      errors->clear();
      parse(name, "");
      std::set<std::string> read(state->known.begin(), state->known.end());
      // A fanout looks at `service`, a reserved key, to tell its two forms.
      read.erase("service");
      std::set<std::string> listed;
      for (auto& c : cases)
        if (c.kind == name)
          listed.insert(c.key);
      BOOST_CHECK_EQUAL_COLLECTIONS(read.begin(), read.end(), listed.begin(), listed.end());
    }
  }
}

BOOST_AUTO_TEST_CASE(misspelled_key_is_unknown_with_a_suggestion) {
  BOOST_CHECK_EQUAL(parse("batcher", "sise = 10"),
                    "t.toml:1:8: unknown key 'sise' for kind 'batcher'; did you mean 'size'?\n");
}

BOOST_AUTO_TEST_CASE(limiter_needs_a_rate) {
  BOOST_CHECK_EQUAL(parse("limiter", "burst = 5"),
                    "t.toml:1:1: missing key 'rate' for kind 'limiter'\n");
}

BOOST_AUTO_TEST_CASE(limiter_rate_reads_as_people_write_it) {
  BOOST_CHECK_EQUAL(parse("limiter", "rate = \"5000/s\""), "");
  BOOST_CHECK(test::config_fixture::errors->empty());
}

BOOST_AUTO_TEST_CASE(breaker_minimum_calls_within_window) {
  BOOST_CHECK_EQUAL(parse("breaker", "window_size = 5\nminimum_calls = 6"),
                    "t.toml:2:17: 'minimum_calls' (6) must not exceed 'window_size' (5)\n");
}

BOOST_AUTO_TEST_CASE(fanout_needs_service_or_processor) {
  BOOST_CHECK_EQUAL(parse("fanout", "max_in_flight = 4"),
                    "t.toml:1:1: a fanout needs 'service' (fixed processors) or "
                    "'processor' (an inline service table, one actor per item)\n");
}

BOOST_AUTO_TEST_CASE(fanout_takes_processor_or_service_not_both) {
  auto errors = parse("fanout", "service = [\"a\"]\nprocessor = { kind = \"hash_service\" }");
  BOOST_CHECK_EQUAL(errors, "t.toml:2:13: set either 'service' (fixed processors) or "
                            "'processor' (one per item), not both\n");
}

BOOST_AUTO_TEST_CASE(fanout_processor_is_an_inline_service) {
  BOOST_CHECK_EQUAL(parse("fanout", "processor = { kind = \"hash_service\", rounds = 5 }"), "");
}

BOOST_AUTO_TEST_CASE(pool_needs_a_worker) {
  BOOST_CHECK_EQUAL(parse("pool", "workers = 2"),
                    "t.toml:1:1: missing key 'worker' for kind 'pool'\n");
}

BOOST_AUTO_TEST_CASE(pool_worker_keys_are_checked_by_its_kind) {
  BOOST_CHECK_EQUAL(parse("pool", "worker = { kind = \"hash_service\", round = 5 }"),
                    "t.toml:1:43: unknown key 'round' for kind 'hash_service'; "
                    "did you mean 'rounds'?\n");
}

BOOST_AUTO_TEST_CASE(pool_worker_must_answer_requests) {
  BOOST_CHECK_EQUAL(parse("pool", "worker = { kind = \"counter\" }"),
                    "t.toml:1:19: 'worker' needs a kind that answers requests; "
                    "'counter' does not\n");
}

BOOST_AUTO_TEST_CASE(limiter_answers_requests_only_with_a_service_of_its_own) {
  BOOST_CHECK(kind("limiter").answers_only_with_service);
  BOOST_CHECK_EQUAL(parse("pool", "worker = { kind = \"limiter\", rate = \"1000/s\" }"),
                    "t.toml:1:19: 'worker' cannot be a 'limiter': it answers requests "
                    "only in front of a service, which an inline table cannot name; "
                    "declare it as an actor with a 'service' and name that one\n");
}

BOOST_AUTO_TEST_CASE(prefetch_needs_pull_policy) {
  BOOST_CHECK_EQUAL(parse("pool", "worker = { kind = \"hash_service\" }\nprefetch = 4"),
                    "t.toml:2:12: 'prefetch' applies to policy \"pull\" only\n");
  BOOST_CHECK_EQUAL(errors->size(), 1u);
}

BOOST_AUTO_TEST_CASE(skew_factor_needs_skew_every) {
  BOOST_CHECK_EQUAL(parse("hash_service", "skew_factor = 5"),
                    "t.toml:1:15: 'skew_factor' needs 'skew_every' (which requests cost more)\n");
}

BOOST_AUTO_TEST_CASE(skewed_hash_service_rounds_are_bounded) {
  BOOST_CHECK_EQUAL(parse("hash_service", "rounds = 1000000\nskew_every = 10\n"
                                          "skew_factor = 10000"),
                    "t.toml:3:15: 'rounds' (1000000) times 'skew_factor' (10000) is more "
                    "than 1000000000 rounds for a skewed request; lower one of them\n");
}

BOOST_AUTO_TEST_CASE(skewed_hash_service_rounds_may_reach_the_bound) {
  BOOST_CHECK_EQUAL(parse("hash_service", "rounds = 100000\nskew_every = 10\n"
                                          "skew_factor = 10000"),
                    "");
}

BOOST_AUTO_TEST_CASE(file_kinds_need_a_path) {
  BOOST_CHECK_EQUAL(parse("file_lines", ""),
                    "t.toml:1:1: missing key 'path' for kind 'file_lines'\n");
}

BOOST_AUTO_TEST_CASE(retry_backoffs_in_order) {
  BOOST_CHECK_EQUAL(parse("retry", "initial_backoff = \"2s\"\nmax_backoff = \"1s\""),
                    "t.toml:2:15: 'max_backoff' must be at least 'initial_backoff'\n");
}

BOOST_AUTO_TEST_CASE(choices_list_their_options) {
  auto errors = parse("fanout", "service = [\"a\"]\norder = \"random\"");
  BOOST_CHECK_MESSAGE(errors.find("'order'") != std::string::npos, errors);
  BOOST_CHECK_MESSAGE(errors.find("completion") != std::string::npos, errors);
}

BOOST_AUTO_TEST_CASE(probabilities_are_between_0_and_1) {
  auto errors = parse("fail", "probability = 1.5");
  BOOST_CHECK_MESSAGE(errors.find("'probability' must be between 0") != std::string::npos,
                      errors);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
