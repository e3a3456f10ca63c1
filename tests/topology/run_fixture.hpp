#pragma once

// Runs a topology text in the test's actor system as `troupe run` would:
// parse, build the supervision tree, wait until every stream actor ended,
// then drain the root and return its final report.

#include "fixture.hpp"

#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <unistd.h>

namespace troupe::test {

using stream_end_atom = caf::atom_constant<caf::atom("streamend")>;

struct run_fixture : system_fixture {
  /// How long the last run took from its start until its streams ended.
  caf::timespan elapsed{0};

  int64_t elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  }

  /// Parses `text`, failing the test with the errors if it is invalid.
  topology parse(const std::string& text) {
    try {
      return parse_topology(text, "t.toml");
    } catch (const topology_errors& e) {
      std::string all;
      for (auto& x : e.errors())
        all += x.render() + "\n";
      BOOST_FAIL("invalid topology:\n" + all);
    }
    return {};
  }

  /// Runs `text` until its streams ended, then drains it: the final report.
  /// `before_drain`, if set, is called with the root once the streams ended.
  actor_report run(const std::string& text,
                   std::function<void(const caf::actor&)> before_drain = {}) {
    return run(parse(text), std::move(before_drain));
  }

  /// Runs `t` as run(text) does (one topology may run several times).
  actor_report run(const topology& t,
                   std::function<void(const caf::actor&)> before_drain = {}) {
    size_t stream_actors = 0;
    for (auto& a : t.actors)
      if (a.awaited)
        ++stream_actors;
    auto me = caf::actor_cast<caf::actor>(self);
    auto spec = build_supervision(t, [me](const std::string& name) {
      caf::anon_send(me, stream_end_atom::value, name);
    });
    auto began = std::chrono::steady_clock::now();
    auto root = spawn_supervisor(spawn_context{sys.actors()}, std::move(spec));
    for (size_t i = 0; i < stream_actors; ++i)
      self->receive([](stream_end_atom, const std::string&) {},
                    caf::after(patience) >> [] { BOOST_FAIL("the stream did not end"); });
    elapsed = std::chrono::steady_clock::now() - began;
    if (before_drain)
      before_drain(root);
    auto report = shutdown(sys.actors(), root, shutdown_mode::graceful);
    if (!report)
      BOOST_FAIL("shutdown failed: " + sys.actors().render(report.error()));
    return *report;
  }

  /// Runs `text`, expecting its root supervisor to give up: its final report.
  actor_report run_until_root_fails(const std::string& text) {
    auto t = parse(text);
    spawn_context ctx{sys.actors()};
    ctx.report_to(caf::actor_cast<caf::actor>(self));
    auto root = spawn_supervisor(ctx, build_supervision(t));
    self->monitor(root);
    auto reason = wait_down(root);
    BOOST_CHECK(reason);
    return receive_one<actor_report>("the root's final report");
  }

  /// The report of actor `name` in `root`'s tree; fails if there is none.
  const actor_report& actor(const actor_report& root, const std::string& name) {
    auto found = find_report(root, name);
    BOOST_REQUIRE_MESSAGE(found != nullptr, "no report of " + name);
    return *found;
  }

  /// A path for a scratch file of this test process.
  static std::string temp_path(const std::string& name) {
    return "/tmp/troupe-test-" + std::to_string(::getpid()) + "-" + name;
  }
};

} // namespace troupe::test
