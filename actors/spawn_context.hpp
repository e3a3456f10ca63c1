#pragma once

// What a troupe actor is told when it is spawned: the system, its name, the
// stable address others reach it at, and whom it reports to. A supervisor
// builds one per child start; standalone code passes the actor system and gets
// an unsupervised actor that is its own address.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace troupe {

class system;

/// How a supervisor stops a child and whether it gets the intake signal. Troupe
/// spawn functions declare it through spawn_context::declare(); anything else
/// is a plain actor, stopped with an exit message.
struct child_protocol {
  /// Understands drain_atom, cancel_atom and status_atom, and reports its
  /// counters to its supervisor when it stops.
  bool troupe_aware = false;
  /// Produces data from outside the stream graph; gets stop_intake_atom in the
  /// first phase of a graceful shutdown.
  bool intake = false;
};

class spawn_context {
public:
  /// Looks up the stable address of a sibling by name; a null actor if none.
  using lookup_function = std::function<caf::actor(const std::string&)>;

  /// An unsupervised actor: reachable only at its own handle, reporting to
  /// nobody.
  spawn_context(caf::actor_system& sys); // NOLINT: implicit on purpose
  spawn_context(troupe::system& sys);    // NOLINT: implicit on purpose

  spawn_context(caf::actor_system& sys, std::string name, caf::actor address,
                caf::actor supervisor, uint32_t restarts,
                lookup_function lookup);

  caf::actor_system& system() const noexcept {
    return *sys_;
  }

  const std::string& name() const noexcept {
    return name_;
  }

  /// The address the actor's peers should use: its relay when supervised. A
  /// null handle when unsupervised, meaning the actor itself.
  const caf::actor& address() const noexcept {
    return address_;
  }

  /// Where the actor sends its final actor_report; null when unsupervised.
  const caf::actor& supervisor() const noexcept {
    return supervisor_;
  }

  /// Sends the actor's final actor_report to `observer` when it stops: how a
  /// program gets the report of a root supervisor, whoever shut it down.
  spawn_context& report_to(caf::actor observer) {
    supervisor_ = std::move(observer);
    return *this;
  }

  /// How many times this child was restarted before this start.
  uint32_t restarts() const noexcept {
    return restarts_;
  }

  /// Stable address of the sibling `name`, or a null actor.
  caf::actor sibling(const std::string& name) const;

  /// Called by troupe spawn functions; read by the supervisor after the
  /// factory returned. Copies of a context share what was declared.
  void declare(child_protocol protocol) const;
  child_protocol declared() const;

private:
  caf::actor_system* sys_;
  std::string name_;
  caf::actor address_;
  caf::actor supervisor_;
  uint32_t restarts_ = 0;
  lookup_function lookup_;
  std::shared_ptr<child_protocol> protocol_;
};

/// `address` if set, else `self`: the handle an actor gives out as its own.
caf::actor address_or(const spawn_context& ctx, const caf::actor& self);

} // namespace troupe
