#include "topology/config_fixture.hpp"

#include <troupe/actors/stage.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>

using namespace std::chrono_literals;

namespace troupe {

using test::config_fixture;

BOOST_FIXTURE_TEST_SUITE(kind_config_suite, config_fixture)

BOOST_AUTO_TEST_CASE(getters_read_values_of_their_type) {
  auto c = read("n = 5\nx = 2.5\nb = true\ns = \"hi\"\nd = \"250ms\"\n"
                "r = \"50/ms\"\nl = [\"a\", \"b\"]\no = \"one\"\nf = 3");
  BOOST_CHECK_EQUAL(c.integer("n", 0, 1, 10), 5);
  BOOST_CHECK_EQUAL(c.number("x", 0, 0, 10), 2.5);
  BOOST_CHECK_EQUAL(c.number("f", 0, 0, 10), 3.0);
  BOOST_CHECK_EQUAL(c.boolean("b", false), true);
  BOOST_CHECK_EQUAL(c.string("s", ""), "hi");
  BOOST_CHECK(c.duration("d", 1s, 0s, 1h) == caf::timespan{250ms});
  BOOST_CHECK_EQUAL(c.rate("r", 0, 0, 1e9), 50000.0);
  BOOST_CHECK((c.strings("l") == std::vector<std::string>{"a", "b"}));
  BOOST_CHECK_EQUAL(c.choice("o", "two", {"one", "two"}), "one");
  BOOST_CHECK(c.ok());
  BOOST_CHECK(errors->empty());
}

BOOST_AUTO_TEST_CASE(absent_keys_give_the_fallback) {
  auto c = read("");
  BOOST_CHECK_EQUAL(c.integer("n", 7, 1, 10), 7);
  BOOST_CHECK_EQUAL(c.string("s", "x"), "x");
  BOOST_CHECK(c.duration("d", 1s, 0s, 1h) == caf::timespan{1s});
  BOOST_CHECK(c.strings("l").empty());
  BOOST_CHECK(!c.has("n"));
  BOOST_CHECK(c.ok());
}

BOOST_AUTO_TEST_CASE(a_plain_string_reads_as_a_list_of_one) {
  auto c = read("next = \"sink\"");
  BOOST_CHECK((c.strings("next") == std::vector<std::string>{"sink"}));
}

BOOST_AUTO_TEST_CASE(rates_read_plain_numbers_as_per_second) {
  auto c = read("a = 100\nb = 0.5");
  BOOST_CHECK_EQUAL(c.rate("a", 0, 0, 1e9), 100.0);
  BOOST_CHECK_EQUAL(c.rate("b", 0, 0, 1e9), 0.5);
}

BOOST_AUTO_TEST_CASE(wrong_type_is_reported_at_the_value) {
  auto c = read("x = 1\nsize = \"big\"");
  BOOST_CHECK_EQUAL(c.integer("size", 4, 1, 1000000), 4);
  BOOST_CHECK_EQUAL(only_error(),
                    "t.toml:2:8: 'size' must be an integer, not a string");
  BOOST_CHECK(!c.ok());
}

BOOST_AUTO_TEST_CASE(out_of_range_is_reported_with_the_range) {
  auto c = read("size = 0");
  c.integer("size", 4, 1, 1000000);
  BOOST_CHECK_EQUAL(only_error(),
                    "t.toml:1:8: 'size' must be between 1 and 1000000, got 0");
}

BOOST_AUTO_TEST_CASE(one_sided_ranges_say_so) {
  auto c = read("a = -1\nb = 0.5");
  c.integer("a", 0, 0, std::numeric_limits<int64_t>::max());
  c.number("b", 2, 1, std::numeric_limits<double>::max());
  BOOST_REQUIRE_EQUAL(errors->size(), 2u);
  BOOST_CHECK_EQUAL((*errors)[0].message, "'a' must be at least 0, got -1");
  BOOST_CHECK_EQUAL((*errors)[1].message, "'b' must be at least 1, got 0.5");
}

BOOST_AUTO_TEST_CASE(bad_durations_say_how_to_write_one) {
  auto c = read("timeout = \"5 sec\"");
  c.duration("timeout", 1s, 0s, 1h);
  BOOST_CHECK_EQUAL(only_error(),
                    "t.toml:1:11: 'timeout' is not a duration: \"5 sec\" "
                    "(write e.g. \"250ms\", \"5s\")");
}

BOOST_AUTO_TEST_CASE(duration_ranges_print_as_durations) {
  auto c = read("timeout = \"2h\"");
  c.duration("timeout", 1s, 1ms, 1h);
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:11: 'timeout' must be between "
                                  "1ms and 1h, got 2h");
}

BOOST_AUTO_TEST_CASE(bad_rates_say_how_to_write_one) {
  auto c = read("rate = \"5000 per s\"");
  c.rate("rate", 1, 0, 1e9);
  BOOST_CHECK_EQUAL(only_error(),
                    "t.toml:1:8: 'rate' is not a rate: \"5000 per s\" "
                    "(write e.g. \"1000/s\", \"50/ms\")");
}

BOOST_AUTO_TEST_CASE(choices_list_options_and_suggest) {
  auto c = read("mode = \"rejct\"");
  BOOST_CHECK_EQUAL(c.choice("mode", "delay", {"delay", "reject"}), "delay");
  BOOST_CHECK_EQUAL(only_error(),
                    "t.toml:1:8: 'mode' must be one of delay, reject, not "
                    "\"rejct\"; did you mean 'reject'?");
}

BOOST_AUTO_TEST_CASE(a_bad_element_of_a_list_is_reported_at_the_element) {
  auto c = read("next = [\"a\", 5, \"b\"]");
  BOOST_CHECK((c.strings("next") == std::vector<std::string>{"a", "b"}));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:14: 'next' must be a string or "
                                  "an array of strings; this element is an "
                                  "integer");
}

BOOST_AUTO_TEST_CASE(require_reports_a_missing_key_at_the_table) {
  auto c = read("x = 1");
  c.require("count");
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:1: missing key 'count' for kind 'k'");
}

BOOST_AUTO_TEST_CASE(fail_points_at_the_key_or_the_table) {
  auto c = read("\nlow = 5\n");
  c.fail("low", "'low' must be below 'high'");
  c.fail("absent", "about absent");
  c.fail("about the table");
  BOOST_REQUIRE_EQUAL(errors->size(), 3u);
  BOOST_CHECK_EQUAL((*errors)[0].render(), "t.toml:2:7: 'low' must be below 'high'");
  BOOST_CHECK_EQUAL((*errors)[1].render(), "t.toml:1:1: about absent");
  BOOST_CHECK_EQUAL((*errors)[2].render(), "t.toml:1:1: about the table");
}

BOOST_AUTO_TEST_CASE(keys_never_asked_for_are_unknown) {
  auto c = read("size = 5\nsise = 6\ntimeout = \"1s\"");
  c.integer("size", 1, 1, 10);
  c.has("timeout");
  detail::report_unknown_keys(*state, "for kind 'k'");
  BOOST_CHECK_EQUAL(only_error(), "t.toml:2:8: unknown key 'sise' for kind "
                                  "'k'; did you mean 'size'?");
}

BOOST_AUTO_TEST_CASE(keys_that_failed_to_read_still_count_as_known) {
  auto c = read("size = \"x\"");
  c.integer("size", 1, 1, 10);
  detail::report_unknown_keys(*state, "for kind 'k'");
  BOOST_CHECK_EQUAL(errors->size(), 1u);
}

BOOST_AUTO_TEST_CASE(messages_escape_what_the_file_holds) {
  auto c = read("mode = \"a\\u0007b\"");
  c.choice("mode", "x", {"x"});
  BOOST_CHECK(only_error().find("\"a\\x07b\"") != std::string::npos);
}

namespace {

kind_registry service_registry() {
  kind_registry result;
  result.add(service_kind("echo", "answers requests", [](kind_config& c) {
    auto delay = c.duration("delay", 0s, 0s, 1h);
    return actor_starter{[delay](const spawn_context&, const wiring&) {
      return caf::actor{};
    }};
  }));
  result.add(sink_kind("drop", "drops", [](kind_config&) {
    return actor_starter{
      [](const spawn_context&, const wiring&) { return caf::actor{}; }};
  }));
  result.add(service_kind("broken", "throws", [](kind_config&) -> actor_starter {
    throw std::runtime_error("no good");
  }));
  return result;
}

} // namespace

BOOST_AUTO_TEST_CASE(service_factory_reads_an_inline_kind_table) {
  auto registry = service_registry();
  auto c = read("worker = { kind = \"echo\", delay = \"5ms\" }", &registry);
  BOOST_CHECK(c.service_factory("worker", true));
  BOOST_CHECK(errors->empty());
}

BOOST_AUTO_TEST_CASE(service_factory_reports_the_inline_tables_own_errors) {
  auto registry = service_registry();
  auto c = read("worker = { kind = \"echo\", dealy = \"5ms\" }", &registry);
  BOOST_CHECK(!c.service_factory("worker", true));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:35: unknown key 'dealy' for kind "
                                  "'echo'; did you mean 'delay'?");
  BOOST_CHECK(!c.ok());
}

BOOST_AUTO_TEST_CASE(service_factory_wants_a_kind_that_answers_requests) {
  auto registry = service_registry();
  auto c = read("worker = { kind = \"drop\" }", &registry);
  BOOST_CHECK(!c.service_factory("worker", true));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:19: 'worker' needs a kind that "
                                  "answers requests; 'drop' does not");
}

BOOST_AUTO_TEST_CASE(service_factory_suggests_a_known_kind) {
  auto registry = service_registry();
  auto c = read("worker = { kind = \"ecko\" }", &registry);
  BOOST_CHECK(!c.service_factory("worker", true));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:19: unknown kind 'ecko'; did you "
                                  "mean 'echo'?");
}

BOOST_AUTO_TEST_CASE(service_factory_reports_a_throwing_kind_at_the_table) {
  auto registry = service_registry();
  auto c = read("worker = { kind = \"broken\" }", &registry);
  BOOST_CHECK(!c.service_factory("worker", true));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:10: kind 'broken' rejected the "
                                  "configuration of 'a': no good");
}

BOOST_AUTO_TEST_CASE(service_factory_requires_the_key_when_asked_to) {
  auto registry = service_registry();
  auto c = read("", &registry);
  BOOST_CHECK(!c.service_factory("worker", false));
  BOOST_CHECK(errors->empty());
  BOOST_CHECK(!c.service_factory("worker", true));
  BOOST_CHECK_EQUAL(only_error(), "t.toml:1:1: missing key 'worker' for kind 'k'");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
