// An invalid supervisor spec is rejected when the supervisor is built, with a
// message that names the field.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/supervision/supervisor.hpp>

using namespace troupe;
using namespace troupe::test;

namespace {

child_spec noop_child(const std::string& name) {
  child_spec spec;
  spec.name = name;
  spec.start = [](const spawn_context& ctx) {
    return ctx.system().spawn(
      [](caf::event_based_actor*, std::string) -> caf::behavior {
        return {[](int) {}};
      },
      ctx.name());
  };
  return spec;
}

// The message of the config_error that validating `spec` throws.
std::string rejection(const supervisor_spec& spec) {
  return config_rejection([&] { validate(spec); });
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(child_spec_validation, system_fixture)

BOOST_AUTO_TEST_CASE(valid_spec_is_accepted) {
  supervisor_spec spec;
  spec.children = {noop_child("a"), noop_child("b")};
  BOOST_CHECK_EQUAL(rejection(spec), "(accepted)");
}

BOOST_AUTO_TEST_CASE(duplicate_child_names_are_rejected) {
  supervisor_spec spec;
  spec.children = {noop_child("a"), noop_child("a")};
  auto msg = rejection(spec);
  BOOST_CHECK_MESSAGE(mentions(msg, "children[1].name") && mentions(msg, "'a'"), msg);
}

BOOST_AUTO_TEST_CASE(zero_period_is_rejected) {
  supervisor_spec spec;
  spec.intensity.period = caf::timespan{0};
  BOOST_CHECK(mentions(rejection(spec), "intensity.period"));
}

BOOST_AUTO_TEST_CASE(negative_limits_are_rejected) {
  supervisor_spec spec;
  spec.intensity.max_restarts = -1;
  BOOST_CHECK(mentions(rejection(spec), "intensity.max_restarts"));
  supervisor_spec timeout;
  timeout.children = {noop_child("a")};
  timeout.children[0].shutdown = -std::chrono::seconds(1);
  BOOST_CHECK(mentions(rejection(timeout), "children[0].shutdown"));
  supervisor_spec backoff;
  backoff.backoff.multiplier = 0.5;
  BOOST_CHECK(mentions(rejection(backoff), "backoff.multiplier"));
}

BOOST_AUTO_TEST_CASE(empty_factory_and_name_are_rejected) {
  supervisor_spec spec;
  spec.children = {noop_child("a")};
  spec.children[0].start = nullptr;
  BOOST_CHECK(mentions(rejection(spec), "children[0].start"));
  supervisor_spec unnamed;
  unnamed.children = {noop_child("")};
  BOOST_CHECK(mentions(rejection(unnamed), "children[0].name"));
}

BOOST_AUTO_TEST_CASE(spawn_refuses_an_invalid_spec) {
  supervisor_spec spec;
  spec.children = {noop_child("a"), noop_child("a")};
  BOOST_CHECK_THROW(spawn_supervisor(sys, spec), config_error);
}

BOOST_AUTO_TEST_SUITE_END()
