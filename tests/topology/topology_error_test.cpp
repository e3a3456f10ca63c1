#include <troupe/topology/topology_error.hpp>

#include <boost/test/unit_test.hpp>

namespace troupe {

namespace {

// Member by member: g++ 12 warns (wrongly) that an aggregate-initialised
// string may be used uninitialised.
topology_error error_at(const std::string& file, uint32_t line,
                        uint32_t column, const std::string& message) {
  topology_error result;
  result.where.file = file;
  result.where.line = line;
  result.where.column = column;
  result.message = message;
  return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(topology_error_suite)

BOOST_AUTO_TEST_CASE(errors_render_as_compilers_print_them) {
  auto e = error_at("f.toml", 12, 8, "unknown key 'sise'");
  BOOST_CHECK_EQUAL(e.render(), "f.toml:12:8: unknown key 'sise'");
  auto no_column = error_at("f.toml", 3, 0, "x");
  BOOST_CHECK_EQUAL(no_column.render(), "f.toml:3: x");
  auto nowhere = error_at("f.toml", 0, 0, "cannot read");
  BOOST_CHECK_EQUAL(nowhere.render(), "f.toml: cannot read");
}

BOOST_AUTO_TEST_CASE(thrown_errors_list_every_error_in_what) {
  topology_errors all(
    {error_at("f.toml", 1, 2, "one"), error_at("f.toml", 3, 4, "two")});
  BOOST_CHECK_EQUAL(std::string{all.what()}, "f.toml:1:2: one\nf.toml:3:4: two");
  BOOST_CHECK_EQUAL(all.errors().size(), 2u);
}

BOOST_AUTO_TEST_CASE(closest_match_suggests_likely_misspellings) {
  std::vector<std::string> keys{"size", "timeout", "credit", "rate"};
  BOOST_CHECK_EQUAL(closest_match("sise", keys), "size");
  BOOST_CHECK_EQUAL(closest_match("szie", keys), "size");
  BOOST_CHECK_EQUAL(closest_match("timout", keys), "timeout");
  BOOST_CHECK_EQUAL(closest_match("Credit", keys), "credit");
  BOOST_CHECK_EQUAL(closest_match("limiter", {"limitter", "batcher"}),
                    "limitter");
}

BOOST_AUTO_TEST_CASE(closest_match_stays_quiet_for_unrelated_words) {
  std::vector<std::string> keys{"size", "timeout", "credit"};
  BOOST_CHECK_EQUAL(closest_match("colour", keys), "");
  BOOST_CHECK_EQUAL(closest_match("", keys), "");
  BOOST_CHECK_EQUAL(closest_match("x", keys), "");
  BOOST_CHECK_EQUAL(closest_match("sise", {}), "");
  BOOST_CHECK_EQUAL(closest_match(std::string(10000, 's'), keys), "");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
