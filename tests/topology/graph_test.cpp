#include "topology/run_kinds.hpp"

#include <troupe/topology/graph.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

namespace troupe {

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

topology parse(const std::string& text) {
  test::register_run_kinds();
  return parse_topology(text, "graph.toml");
}

} // namespace

BOOST_AUTO_TEST_SUITE(graph_suite)

BOOST_AUTO_TEST_CASE(supervisors_are_nested_clusters) {
  auto dot = to_dot(parse(R"(
[supervisors.outer]
[supervisors.inner]
parent = "outer"

[actors.numbers]
kind = "test_numbers"
supervisor = "inner"
next = "sink"

[actors.sink]
kind = "test_sink"
)"));
  BOOST_CHECK(contains(dot, "digraph \"graph.toml\" {"));
  auto root = dot.find("subgraph \"cluster_root\"");
  auto outer = dot.find("subgraph \"cluster_outer\"");
  auto inner = dot.find("subgraph \"cluster_inner\"");
  BOOST_REQUIRE(root != std::string::npos && outer != std::string::npos
                && inner != std::string::npos);
  BOOST_CHECK(root < outer && outer < inner);
  BOOST_CHECK(contains(dot, "a0 -> a1;"));
  BOOST_CHECK(contains(dot, "shape=invhouse"));
  BOOST_CHECK(contains(dot, "shape=house"));
}

BOOST_AUTO_TEST_CASE(service_edges_are_dashed) {
  auto dot = to_dot(parse(R"(
[actors.numbers]
kind = "test_numbers"
next = "call"

[actors.call]
kind = "test_call"
service = "echo"
next = "sink"

[actors.echo]
kind = "test_echo"

[actors.sink]
kind = "test_sink"
)"));
  BOOST_CHECK(contains(dot, "a1 -> a2 [style=dashed"));
  BOOST_CHECK(contains(dot, "shape=box3d"));
}

BOOST_AUTO_TEST_CASE(names_are_quoted_and_escaped) {
  // The loader allows only plain names, but file names and the names of a
  // topology built in code may hold anything.
  auto t = parse(R"(
[actors.numbers]
kind = "test_numbers"
next = "sink"

[actors.sink]
kind = "test_sink"
)");
  t.file = "my \"odd\" file.toml";
  t.actors[0].name = "say \"hi\" \\ now\x01";
  auto dot = to_dot(t);
  BOOST_CHECK(contains(dot, R"(digraph "my \"odd\" file.toml" {)"));
  BOOST_CHECK(contains(dot, R"(label="say \"hi\" \\ now\\x01\ntest_numbers")"));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
