#include "topology/loader_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>

using namespace std::chrono_literals;

namespace troupe {

using test::loader_fixture;

namespace {

const char* full_file = R"(# every section
[system]
threads = 2
credit = 64
shutdown = "10s"

[supervisor]
name = "top"
strategy = "one_for_all"
max_restarts = 5
period = "2s"
backoff = "10ms"
max_backoff = "1s"
backoff_multiplier = 1.5

[supervisors.ingest]
restart = "transient"
shutdown = "20s"
strategy = "rest_for_one"
stop_order = "concurrent"

[nodes.a]
host = "10.0.0.1"
port = 4242

[actors.source]
kind = "test_source"
supervisor = "ingest"
count = 5
rate = "5000/s"
next = "front"

[actors.front]
kind = "test_front"
service = "db"
credit = 16
next = ["sink", "other"]
node = "a"

[actors.sink]
kind = "test_sink"

[actors.other]
kind = "test_sink"
shutdown = "1s"

[actors.db]
kind = "test_service"
)";

} // namespace

BOOST_FIXTURE_TEST_SUITE(loader, loader_fixture)

BOOST_AUTO_TEST_CASE(every_section_is_read) {
  auto t = load(full_file);
  BOOST_CHECK_EQUAL(t.file, "t.toml");
  BOOST_CHECK_EQUAL(t.system.threads, 2u);
  BOOST_CHECK_EQUAL(t.system.credit, 64u);
  BOOST_CHECK(t.system.shutdown == caf::timespan{10s});
  BOOST_CHECK_EQUAL(t.root.name, "top");
  BOOST_CHECK(t.root.strategy == restart_strategy::one_for_all);
  BOOST_CHECK(t.root.stop_order == stop_order::sequential);
  BOOST_CHECK_EQUAL(t.root.intensity.max_restarts, 5);
  BOOST_CHECK(t.root.intensity.period == caf::timespan{2s});
  BOOST_CHECK(t.root.backoff.initial == caf::timespan{10ms});
  BOOST_CHECK(t.root.backoff.max == caf::timespan{1s});
  BOOST_CHECK_EQUAL(t.root.backoff.multiplier, 1.5);
  BOOST_REQUIRE_EQUAL(t.supervisors.size(), 1u);
  auto& ingest = t.supervisors[0];
  BOOST_CHECK_EQUAL(ingest.name, "ingest");
  BOOST_CHECK_EQUAL(ingest.parent, "top");
  BOOST_CHECK(ingest.restart == restart_type::transient);
  BOOST_CHECK(ingest.shutdown == caf::timespan{20s});
  BOOST_CHECK(ingest.strategy == restart_strategy::rest_for_one);
  BOOST_CHECK(ingest.stop_order == stop_order::concurrent);
  BOOST_CHECK_EQUAL(ingest.where.line, 16u);
  BOOST_REQUIRE_EQUAL(t.nodes.size(), 1u);
  BOOST_CHECK_EQUAL(t.nodes[0].host, "10.0.0.1");
  BOOST_CHECK_EQUAL(t.nodes[0].port, 4242);
}

BOOST_AUTO_TEST_CASE(actors_come_in_file_order_with_their_wiring) {
  auto t = load(full_file);
  BOOST_REQUIRE_EQUAL(t.actors.size(), 5u);
  std::vector<std::string> names;
  for (auto& a : t.actors)
    names.push_back(a.name);
  BOOST_CHECK((names == std::vector<std::string>{"source", "front", "sink",
                                                 "other", "db"}));
  auto& front = *t.find_actor("front");
  BOOST_CHECK_EQUAL(front.kind, "test_front");
  BOOST_REQUIRE(front.definition);
  BOOST_CHECK_EQUAL(front.definition->name, "test_front");
  BOOST_CHECK((front.next == std::vector<std::string>{"sink", "other"}));
  BOOST_CHECK((front.services == std::vector<std::string>{"db"}));
  BOOST_CHECK_EQUAL(front.credit, 16u);
  BOOST_CHECK((front.node == std::vector<std::string>{"a"}));
  BOOST_CHECK_EQUAL(front.supervisor, "top");
  BOOST_CHECK_EQUAL(front.where.line, 33u);
  BOOST_CHECK(front.start);
  BOOST_CHECK_EQUAL(t.find_actor("source")->supervisor, "ingest");
  BOOST_CHECK(t.find_actor("other")->shutdown == caf::timespan{1s});
  BOOST_CHECK(t.find_actor("nobody") == nullptr);
}

BOOST_AUTO_TEST_CASE(inputs_count_the_actors_naming_one_in_next) {
  auto t = load(full_file);
  BOOST_CHECK_EQUAL(t.find_actor("source")->inputs, 0u);
  BOOST_CHECK_EQUAL(t.find_actor("front")->inputs, 1u);
  BOOST_CHECK_EQUAL(t.find_actor("sink")->inputs, 1u);
  BOOST_CHECK_EQUAL(t.find_actor("db")->inputs, 0u);
  auto fan_in = load(R"(
[actors.a]
kind = "test_source"
next = "sink"
[actors.b]
kind = "test_source"
next = "sink"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK_EQUAL(fan_in.find_actor("sink")->inputs, 2u);
}

BOOST_AUTO_TEST_CASE(the_stream_is_what_sources_reach) {
  auto t = load(full_file);
  for (auto name : {"source", "front", "sink", "other"})
    BOOST_CHECK_MESSAGE(t.in_stream(*t.find_actor(name)), name);
  BOOST_CHECK(!t.in_stream(*t.find_actor("db")));
}

BOOST_AUTO_TEST_CASE(a_run_waits_for_the_stream_but_not_for_what_serves_in_it) {
  auto t = load(R"(
[actors.few]
kind = "test_source"
next = "shared"
[actors.shared]
kind = "test_front"
service = "db"
next = "few_sink"
[actors.few_sink]
kind = "test_sink"
[actors.many]
kind = "test_source"
next = "caller"
[actors.caller]
kind = "test_front"
service = "shared"
next = "many_sink"
[actors.many_sink]
kind = "test_sink"
[actors.db]
kind = "test_service"
)");
  for (auto name : {"few", "shared", "few_sink", "many", "caller", "many_sink"})
    BOOST_CHECK_MESSAGE(t.find_actor(name)->stream, name);
  BOOST_CHECK(!t.find_actor("db")->stream);
  BOOST_CHECK(t.find_actor("shared")->serves);
  BOOST_CHECK(t.find_actor("db")->serves);
  BOOST_CHECK(!t.find_actor("caller")->serves);
  // `shared` answers `caller` until the final drain, and feeds `few_sink`.
  for (auto name : {"few", "many", "caller", "many_sink"})
    BOOST_CHECK_MESSAGE(t.find_actor(name)->awaited, name);
  for (auto name : {"shared", "few_sink", "db"})
    BOOST_CHECK_MESSAGE(!t.find_actor(name)->awaited, name);
}

BOOST_AUTO_TEST_CASE(restart_defaults_to_the_kinds_and_stream_actors_stay_transient) {
  auto t = load(full_file);
  BOOST_CHECK(t.find_actor("db")->restart == restart_type::permanent);
  BOOST_CHECK(t.find_actor("front")->restart == restart_type::transient);
  BOOST_CHECK(t.find_actor("sink")->restart == restart_type::transient);
}

BOOST_AUTO_TEST_CASE(defaults_need_no_sections_but_actors) {
  auto t = load("[actors.s]\nkind = \"test_source\"\nnext = \"k\"\n"
                "[actors.k]\nkind = \"test_sink\"\n");
  BOOST_CHECK_EQUAL(t.root.name, "root");
  BOOST_CHECK_EQUAL(t.system.threads, 0u);
  BOOST_CHECK_EQUAL(t.system.credit, 0u);
  BOOST_CHECK_EQUAL(t.find_actor("s")->supervisor, "root");
  BOOST_CHECK(t.supervisors.empty());
}

BOOST_AUTO_TEST_CASE(syntax_errors_come_with_tomls_position) {
  BOOST_CHECK_EQUAL(error_of("[actors.a]\nkind = \"test_sink\nnext = 1\n"),
                    "t.toml:2:18: error while parsing string: unescaped "
                    "control characters other than TAB (U+0009) are "
                    "explicitly prohibited");
}

BOOST_AUTO_TEST_CASE(unknown_kind_suggests_the_closest) {
  BOOST_CHECK_EQUAL(error_of("[actors.a]\nkind = \"test_snk\"\n"),
                    "t.toml:2:8: unknown kind 'test_snk'; did you mean "
                    "'test_sink'?");
}

BOOST_AUTO_TEST_CASE(unknown_key_suggests_closest) {
  BOOST_CHECK_EQUAL(
    error_of("[actors.s]\nkind = \"test_source\"\nnext = \"k\"\ncuont = 5\n"
             "[actors.k]\nkind = \"test_sink\"\n"),
    "t.toml:4:9: unknown key 'cuont' for kind 'test_source'; did you mean "
    "'count'?");
}

BOOST_AUTO_TEST_CASE(reserved_keys_are_suggested_too) {
  BOOST_CHECK_EQUAL(
    error_of("[actors.s]\nkind = \"test_source\"\nnxt = \"k\"\nnext = \"k\"\n"
             "[actors.k]\nkind = \"test_sink\"\n"),
    "t.toml:3:7: unknown key 'nxt' for kind 'test_source'; did you mean "
    "'next'?");
}

BOOST_AUTO_TEST_CASE(every_error_is_reported_in_file_order) {
  auto all = errors_of(R"([actors.s]
kind = "test_source"
count = -1
next = "sinkk"
[system]
threads = "two"
[actors.k]
kind = "test_sink"
expect = "x"
)");
  BOOST_REQUIRE_EQUAL(all.size(), 4u);
  BOOST_CHECK_EQUAL(all[0], "t.toml:3:9: 'count' must be between 0 and "
                            "1000000000, got -1");
  BOOST_CHECK_EQUAL(all[1], "t.toml:4:8: 'next' names 'sinkk', which is not "
                            "an actor");
  BOOST_CHECK_EQUAL(all[2], "t.toml:6:11: 'threads' must be an integer, not "
                            "a string");
  BOOST_CHECK_EQUAL(all[3], "t.toml:9:10: 'expect' must be an integer, not "
                            "a string");
}

BOOST_AUTO_TEST_CASE(a_misspelt_next_is_not_also_reported_as_a_missing_input) {
  auto all = errors_of("[actors.s]\nkind = \"test_source\"\nnext = \"snk\"\n"
                       "[actors.sink]\nkind = \"test_sink\"\n");
  BOOST_REQUIRE_EQUAL(all.size(), 1u);
  BOOST_CHECK_EQUAL(all[0], "t.toml:3:8: 'next' names 'snk', which is not an "
                            "actor; did you mean 'sink'?");
}

BOOST_AUTO_TEST_CASE(a_kind_that_throws_is_reported_at_the_actor) {
  registry.add(sink_kind("thrower", "throws", [](kind_config&) -> actor_starter {
    throw std::logic_error("bad day");
  }));
  auto all = errors_of("[actors.s]\nkind = \"test_source\"\nnext = \"x\"\n"
                       "[actors.x]\nkind = \"thrower\"\nsome = 1\n");
  BOOST_REQUIRE_EQUAL(all.size(), 1u);
  BOOST_CHECK_EQUAL(all[0], "t.toml:4:1: kind 'thrower' rejected the "
                            "configuration of 'x': bad day");
}

BOOST_AUTO_TEST_CASE(a_file_that_cannot_be_read_is_an_error_too) {
  try {
    load_topology("/nonexistent/dir/t.toml", registry);
    BOOST_FAIL("loaded a missing file");
  } catch (const topology_errors& e) {
    BOOST_REQUIRE_EQUAL(e.errors().size(), 1u);
    BOOST_CHECK_EQUAL(e.errors()[0].render().find(
                        "/nonexistent/dir/t.toml: cannot read the file"),
                      0u);
  }
  BOOST_CHECK_THROW(load_topology("/", registry), topology_errors);
}

BOOST_AUTO_TEST_CASE(load_topology_reads_a_file) {
  auto path = std::string{"loader_test_file.toml"};
  {
    std::ofstream out(path);
    out << full_file;
  }
  auto t = load_topology(path, registry);
  std::remove(path.c_str());
  BOOST_CHECK_EQUAL(t.file, path);
  BOOST_CHECK_EQUAL(t.actors.size(), 5u);
}

BOOST_AUTO_TEST_CASE(next_from_outside_the_stream_into_it_is_refused) {
  // `front` answers requests only; `relay` is fed by it alone, so neither
  // ever ends before the drain, and `sink` would wait for `relay` forever.
  auto error = error_of(R"([actors.source]
kind = "test_source"
next = "sink"
[actors.front]
kind = "test_front"
service = "db"
next = "relay"
[actors.relay]
kind = "test_stage"
next = "sink"
[actors.db]
kind = "test_service"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK_EQUAL(error, "t.toml:10:8: 'relay' is not fed by a source, so its 'next' "
                           "would never end and 'sink' would wait for it forever; "
                           "feed 'relay' from the stream (name it in a 'next'), or "
                           "drop its 'next'");
}

BOOST_AUTO_TEST_CASE(thousands_of_dangling_names_are_reported_quickly) {
  // A suggestion compares a name with every actor's: for each of 12000
  // dangling names among 12000 actors that took 30 s, for errors of which
  // only the first 200 are shown. The bound fails only on such a regression.
  constexpr size_t n = 12000;
  std::string text = "[actors.source]\nkind = \"test_source\"\nnext = [";
  for (size_t i = 0; i < n; ++i)
    text += (i == 0 ? "\"y" : ", \"y") + std::to_string(i) + "\"";
  text += "]\n";
  for (size_t i = 0; i < n; ++i)
    text += "[actors.x" + std::to_string(i) + "]\nkind = \"test_stage\"\nnext = \"x"
            + std::to_string(i + 1 < n ? i + 1 : 0) + "\"\n";
  auto began = std::chrono::steady_clock::now();
  auto all = errors_of(text);
  auto took = std::chrono::steady_clock::now() - began;
  BOOST_REQUIRE_EQUAL(all.size(), 201u);
  BOOST_CHECK_EQUAL(all[0], "t.toml:3:9: 'next' names 'y0', which is not an actor; "
                            "did you mean 'x0'?");
  BOOST_CHECK_MESSAGE(took < test::linear_load_bound,
                      "loading took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms");
}

BOOST_AUTO_TEST_CASE(supervisors_nest_at_most_3999_levels_deep) {
  // Deeper trees would exhaust the stack when built and run.
  auto nested = [](size_t levels) {
    std::string text = "[actors.a]\nkind = \"test_service\"\n";
    for (size_t s = 1; s <= levels; ++s)
      text += "[supervisors.s" + std::to_string(s) + "]\nparent = \""
              + (s == 1 ? std::string{"root"} : "s" + std::to_string(s - 1)) + "\"\n";
    return text;
  };
  BOOST_CHECK(errors_of(nested(3999)).empty());
  BOOST_CHECK_EQUAL(error_of(nested(4000)),
                    "t.toml:8002:10: supervisor 's4000' is nested 4000 levels below "
                    "the root; supervisors nest at most 3999 levels deep");
}

BOOST_AUTO_TEST_CASE(next_on_a_sink_is_one_error_not_two) {
  // The refused `next` is the mistake; `other` getting no input follows.
  BOOST_CHECK_EQUAL(error_of(R"([actors.source]
kind = "test_source"
next = "sink"
[actors.sink]
kind = "test_sink"
next = "other"
[actors.other]
kind = "test_sink"
)"),
                    "t.toml:6:8: kind 'test_sink' emits nothing, so it takes no 'next'");
}

BOOST_AUTO_TEST_CASE(huge_and_non_utf8_files_are_refused_with_a_message) {
  auto huge = errors_of(std::string(9 * 1024 * 1024, '#'));
  BOOST_REQUIRE_EQUAL(huge.size(), 1u);
  BOOST_CHECK(huge[0].find("a topology file may have at most") != std::string::npos);
  auto bad = errors_of("[actors.a]\nkind = \"\xff\xfe\"\n");
  BOOST_REQUIRE_EQUAL(bad.size(), 1u);
  BOOST_CHECK(bad[0].find("utf-8") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(placement_keys_are_read_with_their_defaults) {
  auto t = load(R"([system]
heartbeat = "100ms"
node_timeout = "1s"
connect_timeout = "5s"
[supervisor]
node = "b"
[supervisors.ingest]
node = ["a", "b"]
[nodes.a]
port = 4000
certificate = "certs/a.pem"
key = "/etc/a.key"
cafile = "ca.pem"
passphrase_env = "A_PASS"
[nodes.b]
host = "0.0.0.0"
port = 4001
certificate = "b.pem"
key = "b.key"
cafile = "ca.pem"
[actors.source]
kind = "test_source"
supervisor = "ingest"
next = "sink"
[actors.sink]
kind = "test_sink"
node = ["a", "b"]
)");
  BOOST_CHECK(t.system.heartbeat == std::chrono::milliseconds(100));
  BOOST_CHECK(t.system.node_timeout == std::chrono::seconds(1));
  BOOST_CHECK(t.system.connect_timeout == std::chrono::seconds(5));
  BOOST_CHECK_EQUAL(t.home_node(), "b");
  BOOST_CHECK((t.find_actor("sink")->node == std::vector<std::string>{"a", "b"}));
  // Without its own, an actor runs where its supervisor does.
  BOOST_CHECK_EQUAL(t.first_node_of_actor(*t.find_actor("source")), "a");
  auto& a = *t.find_node("a");
  // TLS paths are relative to the file ("t.toml": the current folder).
  BOOST_CHECK_EQUAL(a.certificate, "certs/a.pem");
  BOOST_CHECK_EQUAL(a.key, "/etc/a.key");
  BOOST_CHECK_EQUAL(a.passphrase_env, "A_PASS");
  BOOST_CHECK_EQUAL(t.find_node("b")->host, "0.0.0.0");
}

BOOST_AUTO_TEST_CASE(the_home_node_is_the_first_node_by_default) {
  auto t = load(R"([nodes.x]
port = 4000
[nodes.y]
port = 4001
[actors.source]
kind = "test_source"
next = "sink"
node = "y"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK_EQUAL(t.home_node(), "x");
  BOOST_CHECK_EQUAL(t.first_node_of_actor(*t.find_actor("sink")), "x");
  BOOST_CHECK(t.system.connect_timeout == std::chrono::seconds(30));
  BOOST_CHECK(t.system.heartbeat == std::chrono::milliseconds(200));
}

BOOST_AUTO_TEST_CASE(worker_nodes_must_name_nodes) {
  auto errors = [](const std::string& text) {
    std::vector<std::string> result;
    try {
      parse_topology(text, "t.toml");
    } catch (const topology_errors& e) {
      for (auto& x : e.errors())
        result.push_back(x.render());
    }
    return result;
  };
  auto text = std::string{R"([nodes.a]
port = 4000
[nodes.b]
port = 4001
[actors.source]
kind = "generator"
next = "pool"
[actors.pool]
kind = "pool"
worker = { kind = "hash_service" }
worker_nodes = )"};
  BOOST_CHECK(errors(text + "[\"a\", \"b\"]\nnext = \"sink\"\n[actors.sink]\nkind = \"counter\"\n").empty());
  auto bad = errors(text + "[\"a\", \"c\"]\nnext = \"sink\"\n[actors.sink]\nkind = \"counter\"\n");
  BOOST_REQUIRE_EQUAL(bad.size(), 1u);
  BOOST_CHECK_EQUAL(bad[0], "t.toml:11:22: 'worker_nodes' names 'c', which is not a node "
                            "([nodes.NAME]); did you mean 'a'?");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
