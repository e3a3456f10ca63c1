#pragma once

// Reads kind_config values from TOML text, as the loader would from an
// actor's table, and collects the errors it records.

#include <troupe/topology/detail/kind_config_state.hpp>
#include <troupe/topology/kind.hpp>
#include <troupe/topology/kind_config.hpp>

#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>
#include <vector>

namespace troupe::test {

struct config_fixture {
  toml::table doc;
  std::shared_ptr<std::vector<topology_error>> errors
    = std::make_shared<std::vector<topology_error>>();
  std::shared_ptr<kind_config::state> state;

  /// A kind_config over `text`, a table's keys, for actor "a" of kind "k".
  kind_config read(const std::string& text,
                   const kind_registry* registry = nullptr) {
    doc = toml::parse(std::string_view{text}, std::string_view{"t.toml"});
    state = detail::make_state(doc, {"t.toml", 1, 1}, "t.toml", errors);
    state->actor = "a";
    state->kind = "k";
    state->context = "for kind 'k'";
    state->registry = registry;
    return kind_config{state};
  }

  /// The only error recorded, rendered; fails if there is not exactly one.
  std::string only_error() {
    BOOST_REQUIRE_EQUAL(errors->size(), 1u);
    return errors->front().render();
  }
};

} // namespace troupe::test
