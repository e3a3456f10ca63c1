#include "fixture.hpp"
#include "topology/run_kinds.hpp"

#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>
#include <troupe/topology/metrics.hpp>
#include <troupe/topology/run.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <httplib.h>

#include <string>

namespace troupe {

using test::contains;

namespace {

struct metrics_fixture : test::system_fixture {
  /// The root supervisor of `text`, running in the fixture's system.
  caf::actor start(const std::string& text) {
    test::register_run_kinds();
    auto t = parse_topology(text, "metrics.toml");
    return spawn_supervisor(spawn_context{sys.actors()}, build_supervision(t));
  }

  std::string get(const metrics_server& server, const std::string& path,
                  int* status = nullptr) {
    httplib::Client client{server.host(), server.port()};
    client.set_read_timeout(std::chrono::seconds(30));
    auto res = client.Get(path.c_str());
    BOOST_REQUIRE_MESSAGE(res, "no answer from " + server.url());
    if (status)
      *status = res->status;
    return res->body;
  }
};

const std::string chain = R"(
[actors.numbers]
kind = "test_numbers"
count = 40
next = "sink"

[actors.sink]
kind = "test_sink"
)";

} // namespace

BOOST_AUTO_TEST_SUITE(metrics_suite)

BOOST_AUTO_TEST_CASE(addresses_default_to_localhost) {
  auto a = parse_metrics_address("9100");
  BOOST_CHECK_EQUAL(a.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(a.port, 9100);
  a = parse_metrics_address(":0");
  BOOST_CHECK_EQUAL(a.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(a.port, 0);
  a = parse_metrics_address("0.0.0.0:80");
  BOOST_CHECK_EQUAL(a.host, "0.0.0.0");
  a = parse_metrics_address("[::1]:9100");
  BOOST_CHECK_EQUAL(a.host, "::1");
  BOOST_CHECK_EQUAL(a.port, 9100);
  for (auto bad : {"", "x", "host:", "host:65536", "host:-1", "::1:80", "[::1]",
                   "[::1]9100", ":9100x"})
    BOOST_CHECK_THROW(parse_metrics_address(bad), run_error);
}

BOOST_FIXTURE_TEST_CASE(a_scrape_gets_every_actors_series, metrics_fixture) {
  auto root = start(chain);
  metrics_server server{sys.actors(), "127.0.0.1:0"};
  BOOST_CHECK_NE(server.port(), 0);
  BOOST_CHECK_EQUAL(server.url(), "http://127.0.0.1:" + std::to_string(server.port())
                                    + "/metrics");
  BOOST_CHECK(contains(get(server, "/metrics"), "troupe_up 0"));
  server.serve(root);
  // The counts grow until the source ran dry; then they stay.
  await_child(root, "sink", [](const actor_report& r) { return r.in == 40; },
              "took all items");
  int status = 0;
  auto body = get(server, "/metrics", &status);
  BOOST_CHECK_EQUAL(status, 200);
  BOOST_CHECK(contains(body, "troupe_up 1\n"));
  BOOST_CHECK(contains(body, "# TYPE troupe_actor_in_total counter\n"));
  BOOST_CHECK(contains(body,
                       "troupe_actor_out_total{actor=\"numbers\",kind=\"test_numbers\"} 40\n"));
  BOOST_CHECK(contains(body,
                       "troupe_actor_in_total{actor=\"sink\",kind=\"test_sink\"} 40\n"));
  for (auto family : {"troupe_actor_dropped_total{actor=\"sink\"",
                      "troupe_actor_errors_total{actor=\"sink\"",
                      "troupe_actor_restarts_total{actor=\"sink\"",
                      "troupe_actor_lost_total{actor=\"sink\"",
                      "troupe_actor_state{actor=\"sink\""})
    BOOST_CHECK_MESSAGE(contains(body, family), family);
  get(server, "/nothing", &status);
  BOOST_CHECK_EQUAL(status, 404);
  troupe::shutdown(sys.actors(), root);
}

BOOST_FIXTURE_TEST_CASE(a_port_in_use_is_an_error, metrics_fixture) {
  metrics_server first{sys.actors(), ":0"};
  auto address = "127.0.0.1:" + std::to_string(first.port());
  BOOST_CHECK_THROW(metrics_server(sys.actors(), address), run_error);
}

BOOST_AUTO_TEST_CASE(labels_and_stats_are_escaped) {
  actor_report r;
  r.name = "root";
  r.kind = "supervisor";
  actor_report child;
  child.name = "a \"quoted\"\\name\n";
  child.kind = "batcher";
  child.stats["held"] = 7;
  child.state = "open";
  r.children.push_back(child);
  auto text = prometheus_text(&r);
  BOOST_CHECK(contains(text, "actor=\"a \\\"quoted\\\"\\\\name\\n\""));
  BOOST_CHECK(contains(text, ",stat=\"held\"} 7\n"));
  BOOST_CHECK(contains(text, ",state=\"open\"} 1\n"));
  BOOST_CHECK(contains(text, "troupe_actor_restarts_total{actor=\"root\",kind=\"supervisor\"} 0\n"));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
