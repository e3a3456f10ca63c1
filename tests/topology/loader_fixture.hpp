#pragma once

// Loads topology text with the test kinds and returns what came out: the
// topology, or the errors rendered as `troupe check` prints them.

#include "topology/test_kinds.hpp"

#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace troupe::test {

/// Failure bound of the tests that guard against quadratic loading: far
/// beyond a linear run, well below a quadratic one. ASan makes the linear
/// run ~20 times slower, so the bound grows under it.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr auto linear_load_bound = std::chrono::seconds(120);
#else
inline constexpr auto linear_load_bound = std::chrono::seconds(10);
#endif

struct loader_fixture {
  std::shared_ptr<test_counters> counters = std::make_shared<test_counters>();
  kind_registry registry = test_registry(counters);

  topology load(const std::string& text) {
    try {
      return parse_topology(text, "t.toml", registry);
    } catch (const topology_errors& e) {
      BOOST_FAIL("unexpected errors:\n" << e.what());
    }
    return {};
  }

  std::vector<std::string> errors_of(const std::string& text) {
    std::vector<std::string> result;
    try {
      parse_topology(text, "t.toml", registry);
    } catch (const topology_errors& e) {
      for (auto& x : e.errors())
        result.push_back(x.render());
    }
    return result;
  }

  /// The only error `text` has; fails if it has none or several.
  std::string error_of(const std::string& text) {
    auto all = errors_of(text);
    std::string listed;
    for (auto& x : all)
      listed += "\n  " + x;
    BOOST_REQUIRE_MESSAGE(all.size() == 1, "expected one error, got "
                                             << all.size() << ":" << listed);
    return all.front();
  }
};

} // namespace troupe::test
