#pragma once

// Test children that tell an observer what happens to them: each start (with
// the incarnation number) and each stop, so that tests can check which
// children restart and in which order, by messages alone.

#include "fixture.hpp"

#include <troupe/supervision/supervisor.hpp>

#include <string>

namespace troupe::test {

using started_atom = caf::atom_constant<caf::atom("started")>;
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using note_atom = caf::atom_constant<caf::atom("note")>;
using whoami_atom = caf::atom_constant<caf::atom("whoami")>;

struct observed_state {
  std::string name;
  uint32_t incarnation = 0;
  uint64_t notes = 0;
  static inline const char* name_ = "observed";
};

/// A plain actor: (crash_atom) exits with an error, (finish_atom) exits
/// normally, (note_atom) is counted, (whoami_atom) -> (name, incarnation,
/// notes). Its start and stop are sent to `observer`.
inline caf::behavior observed(caf::stateful_actor<observed_state>* self,
                              std::string name, uint32_t incarnation,
                              caf::actor observer) {
  self->state.name = name;
  self->state.incarnation = incarnation;
  self->attach_functor([name, observer](const caf::error& reason) {
    caf::anon_send(observer, stopped_atom::value, name, reason);
  });
  return {
    [self](crash_atom) {
      self->quit(caf::make_error(caf::sec::runtime_error, "crash on request"));
    },
    [self](finish_atom) { self->quit(); },
    [self](note_atom) { ++self->state.notes; },
    [self](whoami_atom) {
      return caf::make_message(self->state.name, self->state.incarnation,
                               self->state.notes);
    },
  };
}

inline child_spec observed_child(const std::string& name, caf::actor observer,
                                 restart_type restart = restart_type::permanent) {
  child_spec spec;
  spec.name = name;
  spec.restart = restart;
  spec.shutdown = std::chrono::seconds(5);
  spec.start = [name, observer](const spawn_context& ctx) {
    auto handle = ctx.system().spawn(observed, name, ctx.restarts(), observer);
    caf::anon_send(observer, started_atom::value, name, ctx.restarts(), handle);
    return handle;
  };
  return spec;
}

/// What the observer saw: "+a0" for a start of a's incarnation 0, "-a" for a
/// stop of a.
struct event_log : system_fixture {
  std::string next_event() {
    std::string result;
    self->receive(
      [&](started_atom, const std::string& name, uint32_t incarnation,
          const caf::actor&) { result = "+" + name + std::to_string(incarnation); },
      [&](stopped_atom, const std::string& name, const caf::error&) {
        result = "-" + name;
      },
      caf::after(patience) >> [] { BOOST_FAIL("no start or stop event"); });
    return result;
  }

  std::vector<std::string> next_events(size_t n) {
    std::vector<std::string> result;
    for (size_t i = 0; i < n; ++i)
      result.push_back(next_event());
    return result;
  }

  /// Starts one of the observed children, returning its incarnation.
  caf::actor expect_start(const std::string& name, uint32_t incarnation) {
    caf::actor result;
    self->receive(
      [&](started_atom, const std::string& who, uint32_t n, caf::actor& h) {
        BOOST_CHECK_EQUAL(who, name);
        BOOST_CHECK_EQUAL(n, incarnation);
        result = h;
      },
      caf::after(patience) >> [] { BOOST_FAIL("no start event"); });
    return result;
  }

  /// Asserts that nothing else happened up to now: a status round trip to the
  /// supervisor orders this after everything it did before.
  void expect_quiet(const caf::actor& sup) {
    status(sup);
    self->receive(
      [&](started_atom, const std::string& name, uint32_t, const caf::actor&) {
        BOOST_ERROR("unexpected start of " + name);
      },
      [&](stopped_atom, const std::string& name, const caf::error&) {
        BOOST_ERROR("unexpected stop of " + name);
      },
      caf::after(std::chrono::seconds(0)) >> [] {});
  }

  /// Crashes the child `name` of `sup` and returns once the supervisor has
  /// handled its exit, which it tells the child's address first: what the
  /// test sends next is held for the next incarnation (or counted as lost),
  /// never sent into the dead one.
  void crash_and_wait(const caf::actor& sup, const std::string& name) {
    self->send(address_of(sup, name), crash_atom::value);
    BOOST_CHECK_EQUAL(next_event(), "-" + name);
    await_child(sup, name, stopped, "stopped");
  }
};

} // namespace troupe::test
