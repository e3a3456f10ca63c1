#pragma once

// One node's part of a topology spread over nodes (`troupe run --node`).
// Every node loads the whole file, opens its port (actors/node.hpp) and
// publishes its *node agent* as "troupe.node". The home node (the root's)
// builds the supervision tree; a child placed on another node starts there:
// its factory reaches that node's agent and asks it to start the child from
// its own copy of the file, then returns the remote handle, which the
// supervisor monitors like any child. docs/distribution.md has the rules.
//
// Messages a node agent understands:
//   (place_atom, remote_start) -> (caf::actor, bool troupe_aware, bool intake)
//       Starts a child (or a pool's worker) here; an error if its start
//       failed.
//   (node_signal_atom, int signal)   a signal a node took, for the home node:
//       the run handles it as its own (a graceful shutdown, then a cancel).
//   (node_stop_atom) -> void         the home node's run has ended: stop.
//   (node_hello_atom, caf::actor home_agent)
//       The home node reached this one. Only the home node dials the other
//       nodes (and a node dials those it places children on): CAF 0.17
//       breaks a pair of nodes that dial each other, so a node learns the
//       home node's agent from its hello instead of dialing it.

#include "troupe/actors/node.hpp"
#include "troupe/topology/topology.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace troupe {

using place_atom = caf::atom_constant<caf::atom("place")>;
using node_signal_atom = caf::atom_constant<caf::atom("nodesignal")>;
using node_stop_atom = caf::atom_constant<caf::atom("nodestop")>;
using node_hello_atom = caf::atom_constant<caf::atom("nodehello")>;
/// An actor the run waits for ended normally: (stream_end_atom, name), to
/// the home node's runner, from whichever node the actor ran on.
using stream_end_atom = caf::atom_constant<caf::atom("streamend")>;

/// What a node agent is asked to start, with the spawn_context of the
/// start (the supervisor's side resolved the siblings it names).
struct remote_start {
  /// The actor or nested supervisor of the file; for a part, its actor.
  std::string name;
  /// A part of that actor (a pool's "worker"); empty: the child itself.
  std::string part;
  /// The spawn_context's fields.
  std::string context_name;
  caf::actor address;
  caf::actor supervisor;
  uint32_t restarts = 0;
  std::vector<std::string> sibling_names;
  std::vector<caf::actor> siblings;
  /// Where stream_end_atom goes for the actors the run waits for.
  caf::actor observer;
  /// The home node's agent: a node learns it from the first start, if that
  /// comes before the home node's hello, rather than dialing it.
  caf::actor home;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, remote_start& x) {
  return f(caf::meta::type_name("troupe::remote_start"), x.name, x.part,
           x.context_name, x.address, x.supervisor, x.restarts,
           x.sibling_names, x.siblings, x.observer, x.home);
}

/// Registers what nodes send each other; with enable_distribution() on
/// every node's config.
void register_cluster_types(caf::actor_system_config& cfg);

/// The settings of node `name` of `t` for enable_distribution(): its host
/// and port, the heartbeat and timeout of [system], TLS with the passphrase
/// from the environment. Throws node_error (an unset passphrase variable).
node_settings node_settings_of(const topology& t, const std::string& name);

/// This process as node `name` of `t`: its port, its agent, and the
/// factories of the children placed elsewhere.
class cluster_member : public placement,
                       public std::enable_shared_from_this<cluster_member> {
public:
  /// Opens the port and publishes the agent; throws node_error.
  cluster_member(const topology& t, const std::string& name,
                 caf::actor_system& sys, std::ostream* log);
  ~cluster_member() override;

  const std::string& here() const override {
    return name_;
  }

  bool home() const {
    return name_ == t_.home_node();
  }

  child_factory place(std::vector<std::string> candidates, std::string name,
                      bool supervisor, std::vector<std::string> names,
                      child_factory local) override;

  child_factory spread(std::vector<std::string> nodes, std::string pool,
                       std::string key, child_factory local) override;

  /// Spawns the agent and publishes it; `on_stop` is called when the home
  /// node says the run has ended, `on_hello` with the home node's agent
  /// when it reached this node.
  void start_agent(std::function<void()> on_stop,
                   std::function<void(caf::actor)> on_hello);

  /// The home node: keeps reaching the other nodes on a thread of its own
  /// and greets each (again after it was gone and came back), until
  /// close().
  void greet_peers();

  /// Where the agent sends a signal another node took (the home node's
  /// runner).
  void on_remote_signal(std::function<void(int)> f);

  /// Where stream_end_atom goes for actors started here by the tree built
  /// here (the home node's runner).
  void set_observer(caf::actor observer);

  /// The agent of node `name`, waiting up to `patience` (progress on the
  /// log); errc::node_unreachable if it cannot be reached.
  caf::expected<caf::actor> agent_of(const std::string& name,
                                     caf::timespan patience);

  /// Tells every other node that can be reached that the run has ended.
  void stop_peers();

  /// Stops what the agent started here (the home node is gone).
  void stop_started();

  /// Stops the agent and closes the port; call while the actor system
  /// lives (the destructor does it otherwise).
  void close();

  const caf::actor& agent() const {
    return agent_;
  }

  struct shared;

private:
  /// The home node's agent as far as this node knows it (null: not yet).
  caf::actor home_agent();

  caf::actor start_remote(const std::string& node, remote_start what,
                          const spawn_context& ctx, caf::timespan patience,
                          std::string& why);

  const topology& t_;
  std::string name_;
  caf::actor_system& sys_;
  std::ostream* log_;
  std::unique_ptr<node> node_;
  caf::actor agent_;
  std::shared_ptr<shared> shared_;
  std::atomic<bool> closing_{false};
  std::thread greeter_;
};

} // namespace troupe
