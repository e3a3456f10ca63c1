#include <troupe/topology/live_view.hpp>

#include <boost/test/unit_test.hpp>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace troupe {

namespace {

actor_report tree(uint64_t out) {
  actor_report root;
  root.name = "root";
  root.kind = "supervisor";
  actor_report src;
  src.name = "src";
  src.kind = "generator";
  src.out = out;
  actor_report batch;
  batch.name = "batch";
  batch.kind = "batcher";
  batch.in = out;
  batch.out = out / 10;
  batch.stats["held"] = 3;
  batch.state = "open";
  root.children = {src, batch};
  return root;
}

std::string line_of(const std::string& table, const std::string& name) {
  std::istringstream in{table};
  std::string line;
  while (std::getline(in, line))
    if (line.find("  " + name + " ") == 0)
      return line;
  return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(live_view_suite)

BOOST_AUTO_TEST_CASE(a_frame_has_a_line_per_actor_with_rate_and_queue) {
  std::ostringstream sink;
  live_view view{sink, false, "test"};
  auto t0 = live_view::clock::now();
  auto first = view.table(tree(1000), t0);
  BOOST_CHECK(first.find("actor") == 0);
  BOOST_CHECK(first.find("rate/s") != std::string::npos);
  auto second = view.table(tree(3000), t0 + std::chrono::seconds(2));
  auto src = line_of(second, "src");
  BOOST_REQUIRE(!src.empty());
  BOOST_CHECK(src.find("generator") != std::string::npos);
  BOOST_CHECK(src.find(" 1000 ") != std::string::npos); // 2000 in 2 s
  auto batch = line_of(second, "batch");
  BOOST_CHECK(batch.find(" 3 ") != std::string::npos);    // held
  BOOST_CHECK(batch.find("open") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_placeholder_frame_gets_no_rate_and_no_jump_after_it) {
  std::ostringstream sink;
  live_view view{sink, false, "test"};
  auto t0 = live_view::clock::now();
  view.table(tree(1000), t0);
  // The supervisor's placeholder for "src": earlier incarnations' counts.
  auto placeholder = view.table(tree(0), t0 + std::chrono::seconds(1), {"src"});
  BOOST_CHECK(line_of(placeholder, "src").find(" - ") != std::string::npos);
  // 2000 more in the 2 s since the last real counts, not 3000 in 1 s.
  auto after = view.table(tree(3000), t0 + std::chrono::seconds(2));
  BOOST_CHECK_MESSAGE(line_of(after, "src").find(" 1000 ") != std::string::npos,
                      after);
}

BOOST_AUTO_TEST_CASE(counts_that_went_backwards_get_no_rate_and_no_jump_after_them) {
  std::ostringstream sink;
  live_view view{sink, false, "test"};
  auto t0 = live_view::clock::now();
  view.table(tree(1000), t0);
  auto stale = view.table(tree(10), t0 + std::chrono::seconds(1));
  BOOST_CHECK(line_of(stale, "src").find(" - ") != std::string::npos);
  auto after = view.table(tree(3000), t0 + std::chrono::seconds(2));
  BOOST_CHECK_MESSAGE(line_of(after, "src").find(" 1000 ") != std::string::npos,
                      after);
}

BOOST_AUTO_TEST_CASE(rates_are_kept_per_place_in_the_tree) {
  // Two pools each with a "worker-0": each row has its own rate.
  auto pools = [](uint64_t a, uint64_t b) {
    actor_report root;
    root.name = "root";
    root.kind = "supervisor";
    for (auto [name, out] : {std::pair{"a", a}, std::pair{"b", b}}) {
      actor_report pool;
      pool.name = name;
      pool.kind = "pool";
      actor_report worker;
      worker.name = "worker-0";
      worker.kind = "worker";
      worker.out = out;
      pool.children = {worker};
      root.children.push_back(pool);
    }
    return root;
  };
  std::ostringstream sink;
  live_view view{sink, false, "test"};
  auto t0 = live_view::clock::now();
  view.table(pools(100, 5000), t0);
  auto second = view.table(pools(300, 5000), t0 + std::chrono::seconds(1));
  std::istringstream lines{second};
  std::vector<std::string> workers;
  for (std::string line; std::getline(lines, line);)
    if (line.find("worker-0") != std::string::npos)
      workers.push_back(line);
  BOOST_REQUIRE_EQUAL(workers.size(), 2u);
  BOOST_CHECK_MESSAGE(workers[0].find(" 200 ") != std::string::npos, second);
  BOOST_CHECK_MESSAGE(workers[1].find(" 0 ") != std::string::npos, second);
}

BOOST_AUTO_TEST_CASE(in_place_frames_replace_the_one_before) {
  std::ostringstream out;
  live_view view{out, true, "test"};
  auto t0 = live_view::clock::now();
  view.draw(tree(10), t0);
  BOOST_CHECK(out.str().find("\x1b[") == std::string::npos);
  view.draw(tree(20), t0 + std::chrono::seconds(1));
  // Title, heading and three rows: five lines up, then clear.
  BOOST_CHECK(out.str().find("\x1b[5A\x1b[J") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(plain_frames_are_timestamped_blocks) {
  std::ostringstream out;
  live_view view{out, false, "test"};
  view.draw(tree(10), live_view::clock::now());
  auto text = out.str();
  BOOST_CHECK(text.front() == '[');
  BOOST_CHECK(text.find("] test (") != std::string::npos);
  BOOST_CHECK(text.find("\x1b") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
