#include <troupe/topology/duration.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>

using namespace std::chrono_literals;

namespace troupe {

BOOST_AUTO_TEST_SUITE(duration)

BOOST_AUTO_TEST_CASE(durations_read_every_unit) {
  BOOST_CHECK(parse_duration("250ms") == caf::timespan{250ms});
  BOOST_CHECK(parse_duration("5s") == caf::timespan{5s});
  BOOST_CHECK(parse_duration("2m") == caf::timespan{2min});
  BOOST_CHECK(parse_duration("1h") == caf::timespan{1h});
  BOOST_CHECK(parse_duration("100us") == caf::timespan{100us});
  BOOST_CHECK(parse_duration("7ns") == caf::timespan{7ns});
  BOOST_CHECK(parse_duration("0") == caf::timespan{0});
  BOOST_CHECK(parse_duration("0ms") == caf::timespan{0});
}

BOOST_AUTO_TEST_CASE(duration_fractions_are_exact) {
  BOOST_CHECK(parse_duration("1.5s") == caf::timespan{1500ms});
  BOOST_CHECK(parse_duration("0.25ms") == caf::timespan{250us});
  BOOST_CHECK(parse_duration("0.001s") == caf::timespan{1ms});
}

BOOST_AUTO_TEST_CASE(durations_reject_anything_else) {
  for (auto text : {"", "5", "5 s", " 5s", "5s ", "-5s", "+5s", "5sec", "5S",
                    "s", ".5s", "5.s", "1e3ms", "5d", "0.0", "00", "5ms5",
                    "99999999999999999999s", "9223372036854775808ns",
                    "3000000h"})
    BOOST_CHECK_MESSAGE(!parse_duration(text), "accepted \"" << text << "\"");
}

BOOST_AUTO_TEST_CASE(formatted_durations_read_back) {
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{0}), "0");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{250ms}), "250ms");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{5s}), "5s");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{1500ms}), "1500ms");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{2min}), "2m");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{3h}), "3h");
  BOOST_CHECK_EQUAL(format_duration(caf::timespan{1001ns}), "1001ns");
  for (auto x : {caf::timespan{1234567ns}, caf::timespan{90s},
                 caf::timespan{7us}, caf::timespan::max()})
    BOOST_CHECK(parse_duration(format_duration(x)) == x);
}

BOOST_AUTO_TEST_CASE(rates_read_every_unit) {
  BOOST_CHECK_EQUAL(*parse_rate("1000/s"), 1000.0);
  BOOST_CHECK_EQUAL(*parse_rate("50/ms"), 50000.0);
  BOOST_CHECK_EQUAL(*parse_rate("600/m"), 10.0);
  BOOST_CHECK_EQUAL(*parse_rate("3600/h"), 1.0);
  BOOST_CHECK_EQUAL(*parse_rate("2/us"), 2e6);
  BOOST_CHECK_EQUAL(*parse_rate("1/ns"), 1e9);
  BOOST_CHECK_EQUAL(*parse_rate("0.5/s"), 0.5);
  BOOST_CHECK_EQUAL(*parse_rate("0/s"), 0.0);
}

BOOST_AUTO_TEST_CASE(rates_reject_anything_else) {
  for (auto text : {"", "1000", "1000/", "/s", "1000 /s", "1000/ s",
                    "1000/sec", "-5/s", "5/d", "1000/s ", "1e3/s", "5//s"})
    BOOST_CHECK_MESSAGE(!parse_rate(text), "accepted \"" << text << "\"");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
