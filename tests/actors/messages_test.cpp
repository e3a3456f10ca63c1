// Every vocabulary type survives serialization inside a caf::message, which
// is what crossing a network needs; errors render with their name.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

using namespace troupe;
using namespace troupe::test;

BOOST_FIXTURE_TEST_SUITE(messages, system_fixture)

BOOST_AUTO_TEST_CASE(stream_messages_survive_serialization) {
  auto items = std::vector<item>{caf::make_message(uint64_t{42}),
                                 caf::make_message(std::string{"x"})};
  auto msg = caf::make_message(link_items{3, 4, 5, items});
  auto back = round_trip(sys, msg);
  BOOST_REQUIRE(back.match_elements<link_items>());
  auto& x = back.get_as<link_items>(0);
  BOOST_CHECK_EQUAL(x.link, 3u);
  BOOST_CHECK_EQUAL(x.epoch, 4u);
  BOOST_CHECK_EQUAL(x.first_seq, 5u);
  BOOST_REQUIRE_EQUAL(x.items.size(), 2u);
  BOOST_CHECK_EQUAL(x.items[0].get_as<uint64_t>(0), 42u);
  BOOST_CHECK_EQUAL(x.items[1].get_as<std::string>(0), "x");

  auto d = round_trip(sys, caf::make_message(demand{1, 2, 3, 4}));
  BOOST_REQUIRE(d.match_elements<demand>());
  BOOST_CHECK_EQUAL(d.get_as<demand>(0).window, 4u);

  auto e = round_trip(sys, caf::make_message(
                             end_of_stream{9, make_error(errc::cancelled)}));
  BOOST_REQUIRE(e.match_elements<end_of_stream>());
  BOOST_CHECK(e.get_as<end_of_stream>(0).reason == errc::cancelled);

  auto b = round_trip(sys, caf::make_message(batch{items}));
  BOOST_REQUIRE(b.match_elements<batch>());
  BOOST_CHECK_EQUAL(b.get_as<batch>(0).items.size(), 2u);

  auto o = round_trip(sys, caf::make_message(link_open{caf::actor{}, 11}));
  BOOST_REQUIRE(o.match_elements<link_open>());
  BOOST_CHECK_EQUAL(o.get_as<link_open>(0).link, 11u);
}

BOOST_AUTO_TEST_CASE(reports_survive_serialization) {
  actor_report child;
  child.name = "sink";
  child.in = 10;
  child.stopped = stop_reason::drained;
  child.state = "open";
  child.stats = {{"batches", 3}, {"tokens", -1}};
  actor_report root;
  root.name = "root";
  root.kind = "supervisor";
  root.children = {child};
  auto back = round_trip(sys, caf::make_message(root, drain_atom::value));
  BOOST_REQUIRE((back.match_elements<actor_report, drain_atom>()));
  auto& r = back.get_as<actor_report>(0);
  BOOST_REQUIRE_EQUAL(r.children.size(), 1u);
  BOOST_CHECK_EQUAL(r.children[0].name, "sink");
  BOOST_CHECK_EQUAL(r.children[0].in, 10u);
  BOOST_CHECK(r.children[0].stopped == stop_reason::drained);
  BOOST_CHECK_EQUAL(r.children[0].state, "open");
  BOOST_CHECK(r.children[0].stats == child.stats);
}

BOOST_AUTO_TEST_CASE(troupe_errors_render_with_their_names) {
  auto text = sys.actors().render(
    make_error(errc::restart_intensity_exceeded, "root"));
  BOOST_CHECK_NE(text.find("restart_intensity_exceeded"), std::string::npos);
  BOOST_CHECK_NE(text.find("root"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(scheduler_threads_default_to_the_core_count) {
  troupe::system defaults;
  auto cores = std::max(1u, std::thread::hardware_concurrency());
  BOOST_CHECK_EQUAL(defaults.actors().scheduler().num_workers(), cores);
  BOOST_CHECK_EQUAL(sys.actors().scheduler().num_workers(), 2u);
}

BOOST_AUTO_TEST_SUITE_END()
