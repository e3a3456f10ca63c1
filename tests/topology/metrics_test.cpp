#include "fixture.hpp"
#include "topology/run_kinds.hpp"

#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>
#include <troupe/topology/metrics.hpp>
#include <troupe/topology/run.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <sstream>
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

BOOST_FIXTURE_TEST_CASE(every_series_is_exported_once, metrics_fixture) {
  // Two states each have a shard-0 and a shard-1; a nested supervisor's
  // actors are named by their place too.
  auto root = start(R"(
[supervisors.work]

[actors.counts]
kind = "state"
shards = 2

[actors.sessions]
kind = "state"
shards = 2
supervisor = "work"
)");
  metrics_server server{sys.actors(), "127.0.0.1:0"};
  server.serve(root);
  await_child(root, "counts", [](const actor_report& r) { return r.children.size() == 2; },
              "reports its shards");
  auto body = get(server, "/metrics");
  std::istringstream lines{body};
  std::map<std::string, int> series;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() != '#')
      ++series[line.substr(0, line.rfind(' '))];
  for (auto& [name, count] : series)
    BOOST_CHECK_MESSAGE(count == 1, name << " " << count << " times");
  BOOST_CHECK(contains(body, "troupe_actor_in_total{actor=\"counts/shard-0\","));
  BOOST_CHECK(contains(body, "troupe_actor_in_total{actor=\"work/sessions/shard-1\","));
  BOOST_CHECK(contains(body, "troupe_actor_in_total{actor=\"work/sessions\",kind=\"state\"}"));
  BOOST_CHECK(contains(body, "troupe_actor_in_total{actor=\"work\",kind=\"supervisor\"}"));
  troupe::shutdown(sys.actors(), root);
}

BOOST_FIXTURE_TEST_CASE(scrapes_are_prepared_as_the_runner_asks, metrics_fixture) {
  auto root = start(chain);
  metrics_server server{sys.actors(), "127.0.0.1:0"};
  server.serve(root, [](actor_report& r) { r.kind = "prepared"; });
  BOOST_CHECK(contains(get(server, "/metrics"), "{actor=\"root\",kind=\"prepared\"}"));
  troupe::shutdown(sys.actors(), root);
}

BOOST_FIXTURE_TEST_CASE(a_kept_alive_connection_holds_up_no_other_scrape, metrics_fixture) {
  auto root = start(chain);
  auto idle = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE_GE(idle, 0);
  auto server = std::make_unique<metrics_server>(sys.actors(), "127.0.0.1:0");
  server->serve(root);
  // A scraper that keeps its connection open, and one that connects and
  // says nothing: with one server thread either held the next scrape for
  // the keep-alive timeout (5 s).
  httplib::Client kept{server->host(), server->port()};
  kept.set_keep_alive(true);
  auto first = kept.Get("/metrics");
  BOOST_REQUIRE(first);
  BOOST_CHECK_EQUAL(first->status, 200);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server->port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE_EQUAL(::connect(idle, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  for (int i = 0; i < 2; ++i) {
    httplib::Client other{server->host(), server->port()};
    other.set_read_timeout(std::chrono::seconds(3));
    auto res = other.Get("/metrics");
    BOOST_REQUIRE_MESSAGE(res, "scrape " << i << " got no answer within 3 s");
    BOOST_CHECK_EQUAL(res->status, 200);
  }
  auto again = kept.Get("/metrics");
  BOOST_REQUIRE(again);
  BOOST_CHECK_EQUAL(again->status, 200);
  // Stopping waits for the idle connection's thread, 1 s at most.
  auto stopping = std::chrono::steady_clock::now();
  server.reset();
  BOOST_CHECK(std::chrono::steady_clock::now() - stopping < std::chrono::seconds(3));
  ::close(idle);
  troupe::shutdown(sys.actors(), root);
}

BOOST_FIXTURE_TEST_CASE(the_url_names_the_address_bound, metrics_fixture) {
  metrics_server server{sys.actors(), "0:0"};
  BOOST_CHECK_EQUAL(server.host(), "0.0.0.0");
  BOOST_CHECK_NE(server.port(), 0);
  BOOST_CHECK_EQUAL(server.url(), "http://0.0.0.0:" + std::to_string(server.port())
                                    + "/metrics");
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
