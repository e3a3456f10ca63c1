// troupe::item holds a small value inline and anything else in a
// caf::message, and reads the same either way: in logic, on the wire and in
// text.

#include "fixture.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

struct point {
  int32_t x = 0;
  int32_t y = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("point"), p.x, p.y);
}

struct too_big {
  uint64_t a = 0;
  uint64_t b = 0;
  uint64_t c = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, too_big& x) {
  return f(caf::meta::type_name("too_big"), x.a, x.b, x.c);
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(items, system_fixture)

BOOST_AUTO_TEST_CASE(small_trivially_copyable_values_are_held_inline) {
  auto n = make_item(uint64_t{42});
  BOOST_CHECK(n.is_inline());
  BOOST_CHECK_EQUAL(n.size(), 1u);
  BOOST_CHECK(n.match_elements<uint64_t>());
  BOOST_CHECK(n.match_element<uint64_t>(0));
  BOOST_CHECK(!n.match_elements<int64_t>());
  BOOST_CHECK(!n.match_element<uint64_t>(1));
  BOOST_CHECK((!n.match_elements<uint64_t, uint64_t>()));
  BOOST_CHECK_EQUAL(n.get_as<uint64_t>(0), 42u);
  auto p = make_item(point{3, -4});
  BOOST_CHECK(p.is_inline());
  BOOST_CHECK(p.match_elements<point>());
  BOOST_CHECK_EQUAL(p.get_as<point>(0).y, -4);
}

BOOST_AUTO_TEST_CASE(an_inline_value_has_the_type_its_message_would_have) {
  // caf::make_message squashes integer types and unboxes atom constants;
  // an inline item does the same, so it reads alike here and on another
  // node.
  auto check = [&](const item& x) {
    BOOST_REQUIRE(x.match_elements<uint64_t>());
    BOOST_CHECK(x.match_elements<unsigned long long>());
    BOOST_CHECK_EQUAL(x.get_as<uint64_t>(0), 42u);
  };
  auto inline_ull = make_item(42ull);
  BOOST_CHECK(inline_ull.is_inline());
  check(inline_ull);
  check(caf::make_message(42ull));
  check(round_trip(sys, inline_ull.to_message()));
  auto c = make_item('c');
  BOOST_CHECK(c.is_inline());
  BOOST_CHECK(c.match_elements<int8_t>());
  BOOST_CHECK(item{round_trip(sys, c.to_message())}.match_elements<int8_t>());
  auto ok = make_item(caf::ok_atom::value);
  BOOST_CHECK(ok.is_inline());
  BOOST_REQUIRE(ok.match_elements<caf::atom_value>());
  BOOST_CHECK(ok.get_as<caf::atom_value>(0) == caf::ok_atom::value);
  BOOST_CHECK(item{round_trip(sys, ok.to_message())}.match_elements<caf::atom_value>());
}

BOOST_AUTO_TEST_CASE(other_values_are_held_in_a_message) {
  BOOST_CHECK(!make_item(std::string{"text"}).is_inline());
  BOOST_CHECK(!make_item(too_big{1, 2, 3}).is_inline());
  item from_message = caf::make_message(uint64_t{7});
  BOOST_CHECK(!from_message.is_inline());
  BOOST_CHECK(item{}.empty());
  BOOST_CHECK_EQUAL(item{}.size(), 0u);
}

BOOST_AUTO_TEST_CASE(an_item_reads_the_same_inline_or_in_a_message) {
  auto held = make_item(uint64_t{9});
  item wrapped = caf::make_message(uint64_t{9});
  for (auto* x : {&held, &wrapped}) {
    BOOST_CHECK(x->match_elements<uint64_t>());
    BOOST_CHECK_EQUAL(x->get_as<uint64_t>(0), 9u);
    auto msg = x->to_message();
    BOOST_REQUIRE(msg.match_elements<uint64_t>());
    BOOST_CHECK_EQUAL(msg.get_as<uint64_t>(0), 9u);
    BOOST_CHECK_EQUAL(to_string(*x), "(9)");
    BOOST_CHECK_EQUAL(caf::deep_to_string(*x), "(9)");
  }
  auto s = make_item(std::string{"x"});
  BOOST_CHECK(s.match_elements<std::string>());
  BOOST_CHECK_EQUAL(s.get_as<std::string>(0), "x");
}

BOOST_AUTO_TEST_CASE(a_message_holding_just_an_item_is_that_item) {
  // What an actor's handler that returns make_item(...) answers.
  item x = caf::make_message(make_item(uint64_t{5}));
  BOOST_CHECK(x.match_elements<uint64_t>());
  BOOST_CHECK_EQUAL(x.get_as<uint64_t>(0), 5u);
  item pair = caf::make_message(make_item(uint64_t{5}), 1);
  BOOST_CHECK((pair.match_elements<item, int>()));
}

BOOST_AUTO_TEST_CASE(copies_do_not_share_changes) {
  auto a = make_item(uint64_t{1});
  auto b = a;
  b.get_mutable_as<uint64_t>(0) = 2;
  BOOST_CHECK_EQUAL(a.get_as<uint64_t>(0), 1u);
  item c = caf::make_message(uint64_t{1});
  auto d = c;
  d.get_mutable_as<uint64_t>(0) = 2;
  BOOST_CHECK_EQUAL(c.get_as<uint64_t>(0), 1u);
  BOOST_CHECK_EQUAL(d.get_as<uint64_t>(0), 2u);
}

BOOST_AUTO_TEST_CASE(an_item_can_take_a_value_from_inside_itself) {
  item outer = caf::make_message(make_item(std::string{"inner"}), 1);
  outer = outer.get_as<item>(0);
  BOOST_REQUIRE(outer.match_elements<std::string>());
  BOOST_CHECK_EQUAL(outer.get_as<std::string>(0), "inner");
  item moved = caf::make_message(make_item(uint64_t{4}), 2);
  moved = std::move(moved.get_mutable_as<item>(0));
  BOOST_REQUIRE(moved.match_elements<uint64_t>());
  BOOST_CHECK_EQUAL(moved.get_as<uint64_t>(0), 4u);
}

BOOST_AUTO_TEST_CASE(items_survive_serialization_in_either_form) {
  link_items sent{1, 2, 3,
                  {make_item(uint64_t{42}), make_item(std::string{"s"}),
                   caf::make_message(int32_t{-1}, std::string{"pair"}), item{}}};
  auto back = round_trip(sys, caf::make_message(sent));
  BOOST_REQUIRE(back.match_elements<link_items>());
  auto& got = back.get_as<link_items>(0).items;
  BOOST_REQUIRE_EQUAL(got.size(), 4u);
  BOOST_REQUIRE(got[0].match_elements<uint64_t>());
  BOOST_CHECK_EQUAL(got[0].get_as<uint64_t>(0), 42u);
  BOOST_REQUIRE(got[1].match_elements<std::string>());
  BOOST_CHECK_EQUAL(got[1].get_as<std::string>(0), "s");
  BOOST_REQUIRE((got[2].match_elements<int32_t, std::string>()));
  BOOST_CHECK_EQUAL(got[2].get_as<std::string>(1), "pair");
  BOOST_CHECK(got[3].empty());
}

BOOST_AUTO_TEST_CASE(an_item_in_a_message_is_a_registered_type) {
  // (key, item) is how a state actor is told to set a value, also from
  // another node.
  auto back = round_trip(sys, caf::make_message(std::string{"k"}, make_item(uint64_t{3})));
  BOOST_REQUIRE((back.match_elements<std::string, item>()));
  BOOST_CHECK_EQUAL(back.get_as<item>(1).get_as<uint64_t>(0), 3u);
}

BOOST_AUTO_TEST_SUITE_END()
