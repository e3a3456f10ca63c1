#include "topology/run_kinds.hpp"

#include <troupe/topology/report_tree.hpp>
#include <troupe/topology/run.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include <string>

namespace troupe {

namespace {

topology parse(const std::string& text) {
  test::register_run_kinds();
  return parse_topology(text, "test.toml");
}

run_result run(const topology& t) {
  run_options opts;
  opts.handle_signals = false;
  return run_topology(t, opts);
}

const actor_report* find(const actor_report& r, const std::string& name) {
  if (r.name == name)
    return &r;
  for (auto& child : r.children)
    if (auto found = find(child, name))
      return found;
  return nullptr;
}

const std::string chain = R"(
[system]
threads = 2

[actors.numbers]
kind = "test_numbers"
count = 5000
next = "pass"

[actors.pass]
kind = "test_pass"
next = "sink"

[actors.sink]
kind = "test_sink"
)";

} // namespace

BOOST_AUTO_TEST_SUITE(run_suite)

BOOST_AUTO_TEST_CASE(a_stream_that_ends_drains_with_nothing_lost) {
  auto t = parse(chain);
  auto r = run(t);
  BOOST_CHECK_EQUAL(r.exit_code, 0);
  BOOST_CHECK_EQUAL(r.outcome, "drained");
  BOOST_CHECK_EQUAL(r.lost, 0u);
  BOOST_CHECK(r.report.stopped == stop_reason::drained);
  auto numbers = find(r.report, "numbers");
  auto sink = find(r.report, "sink");
  BOOST_REQUIRE(numbers && sink);
  BOOST_CHECK_EQUAL(numbers->out, 5000u);
  BOOST_CHECK_EQUAL(find(r.report, "pass")->in, 5000u);
  BOOST_CHECK_EQUAL(sink->in, 5000u);
  BOOST_CHECK(sink->stopped == stop_reason::completed);
}

BOOST_AUTO_TEST_CASE(a_root_that_gives_up_exits_with_1) {
  auto t = parse(R"(
[supervisor]
max_restarts = 1
period = "1m"

[actors.numbers]
kind = "test_numbers"
count = 100
next = "crash"

[actors.crash]
kind = "test_crash"
next = "sink"

[actors.sink]
kind = "test_sink"
)");
  auto r = run(t);
  BOOST_CHECK_EQUAL(r.exit_code, 1);
  BOOST_CHECK(r.report.stopped == stop_reason::crashed);
  BOOST_CHECK(r.outcome.find("gave up") != std::string::npos);
  BOOST_CHECK_GE(find(r.report, "crash")->restarts, 1u);
}

BOOST_AUTO_TEST_CASE(the_json_report_has_totals_and_every_actor) {
  auto t = parse(R"(
[system]
threads = 2

[supervisors.work]

[actors.numbers]
kind = "test_numbers"
supervisor = "work"
count = 300
next = "pass"

[actors.pass]
kind = "test_pass"
supervisor = "work"
next = "sink"

[actors.sink]
kind = "test_sink"
)");
  auto r = run(t);
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  auto doc = nlohmann::json::parse(report_json(t, r));
  BOOST_CHECK_EQUAL(doc["file"], "test.toml");
  BOOST_CHECK_EQUAL(doc["outcome"], "drained");
  BOOST_CHECK_EQUAL(doc["exit_code"], 0);
  BOOST_CHECK_EQUAL(doc["lost"], 0);
  auto& totals = doc["totals"];
  BOOST_CHECK_EQUAL(totals["emitted"], 300);
  BOOST_CHECK_EQUAL(totals["consumed"], 300);
  BOOST_CHECK_EQUAL(totals["actors"], 3);
  BOOST_CHECK_EQUAL(totals["in"], 600);
  BOOST_CHECK_EQUAL(totals["out"], 600);
  for (auto key : {"dropped", "errors", "restarts", "unconfirmed", "crashed",
                   "killed"})
    BOOST_CHECK_MESSAGE(totals.contains(key), key);
  std::map<std::string, nlohmann::json> by_name;
  for (auto& a : doc["actors"])
    by_name[a["name"].get<std::string>()] = a;
  BOOST_REQUIRE_EQUAL(by_name.size(), 5u); // root, work and three actors
  BOOST_CHECK_EQUAL(by_name["root"]["kind"], "supervisor");
  BOOST_CHECK(by_name["root"]["supervisor"].is_null());
  BOOST_CHECK_EQUAL(by_name["work"]["kind"], "supervisor");
  auto& pass = by_name["pass"];
  BOOST_CHECK_EQUAL(pass["kind"], "test_pass");
  BOOST_CHECK_EQUAL(pass["supervisor"], "work");
  BOOST_CHECK((pass["path"] == nlohmann::json{"root", "work"}));
  BOOST_CHECK_EQUAL(pass["in"], 300);
  BOOST_CHECK_EQUAL(pass["out"], 300);
  BOOST_CHECK_EQUAL(pass["stopped"], "completed");
  for (auto key : {"dropped", "errors", "restarts", "lost", "error", "state",
                   "stats"})
    BOOST_CHECK_MESSAGE(pass.contains(key), key);
}

BOOST_AUTO_TEST_CASE(the_json_finds_file_actors_by_place_not_by_name) {
  // The sink is named like a shard of the state: a shard is no sink, and
  // the state's own children keep their kind.
  auto t = parse(R"(
[system]
threads = 2

[actors.numbers]
kind = "generator"
count = 300
next = "tally"

[actors.tally]
kind = "state_count"
service = "counts"
by_item = true
next = "shard-0"

[actors.shard-0]
kind = "counter"

[actors.counts]
kind = "state"
shards = 2
)");
  auto r = run(t);
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  auto doc = nlohmann::json::parse(report_json(t, r));
  BOOST_CHECK_EQUAL(doc["totals"]["emitted"], 300);
  BOOST_CHECK_EQUAL(doc["totals"]["consumed"], 300);
  size_t shards = 0;
  for (auto& a : doc["actors"]) {
    if (a["name"] != "shard-0")
      continue;
    if (a["supervisor"] == "root") {
      BOOST_CHECK_EQUAL(a["kind"], "counter");
      BOOST_CHECK_EQUAL(a["in"], 300);
    } else {
      BOOST_CHECK_EQUAL(a["supervisor"], "counts");
      BOOST_CHECK_EQUAL(a["kind"], "state_shard");
      ++shards;
    }
  }
  BOOST_CHECK_EQUAL(shards, 1u);
}

BOOST_AUTO_TEST_CASE(an_actor_without_a_report_of_its_own_has_its_declared_kind) {
  // A plain CAF service: its supervisor's report on it is a placeholder.
  auto t = parse(chain + R"(
[actors.echo]
kind = "test_echo"
)");
  auto r = run(t);
  BOOST_REQUIRE_EQUAL(r.exit_code, 0);
  BOOST_CHECK_EQUAL(find(r.report, "echo")->kind, "test_echo");
  auto doc = nlohmann::json::parse(report_json(t, r));
  for (auto& a : doc["actors"])
    if (a["name"] == "echo")
      BOOST_CHECK_EQUAL(a["kind"], "test_echo");
}

BOOST_AUTO_TEST_CASE(without_a_final_report_lost_is_unknown) {
  auto t = parse(chain);
  run_result r;
  r.exit_code = 1;
  r.outcome = "no final report from the root supervisor";
  r.report_missing = true;
  r.report.name = "root";
  r.report.kind = "supervisor";
  auto doc = nlohmann::json::parse(report_json(t, r));
  BOOST_CHECK(doc["lost"].is_null());
  BOOST_CHECK_EQUAL(doc["report_missing"], true);
  BOOST_CHECK_EQUAL(doc["exit_code"], 1);
  auto ok = run(t);
  doc = nlohmann::json::parse(report_json(t, ok));
  BOOST_CHECK_EQUAL(doc["report_missing"], false);
  BOOST_CHECK_EQUAL(doc["lost"], 0);
}

BOOST_AUTO_TEST_CASE(lost_counts_what_was_sent_and_never_confirmed) {
  actor_report root;
  root.name = "root";
  root.kind = "supervisor";
  actor_report source;
  source.name = "source";
  source.out = 100;
  source.unconfirmed = 7;
  actor_report stage;
  stage.name = "stage";
  stage.lost = 2;
  stage.unconfirmed = 1;
  root.children = {source, stage};
  BOOST_CHECK_EQUAL(total_lost(root), 10u);
}

BOOST_AUTO_TEST_CASE(a_bad_metrics_address_stops_the_run_before_it_starts) {
  auto t = parse(chain);
  run_options opts;
  opts.handle_signals = false;
  for (auto address : {"localhost:http", "1.2.3.4:99999", "::1:80", "host:"}) {
    opts.metrics = address;
    BOOST_CHECK_THROW(run_topology(t, opts), run_error);
  }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
