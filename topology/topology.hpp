#pragma once

// A topology file, loaded and validated: the system settings, the supervision
// tree, the actors with their kinds, configs and wiring, and the nodes they
// are placed on. The file format is in docs/topology.md.

#include "troupe/supervision/child_spec.hpp"
#include "troupe/topology/kind.hpp"
#include "troupe/topology/topology_error.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

/// [system]. (Not system_settings: actors/system.hpp has that name, for
/// the settings a troupe::system is made with.)
struct system_decl {
  /// Scheduler threads; 0: CAF's default (one per core).
  size_t threads = 0;
  /// Default window of a stream link; 0: troupe's default.
  uint32_t credit = 0;
  /// Default window of a link whose two ends run on different nodes: a
  /// window must cover the round trip between processes (about 0.3 ms on
  /// one machine) to keep the link busy; with 128 a link carries a third
  /// of what 2048 lets it.
  uint32_t remote_credit = 2048;
  /// How long a graceful shutdown may take before what is left is killed.
  caf::timespan shutdown = std::chrono::seconds(10);
  /// How often a node tells its peers it is alive (`troupe run --node`).
  caf::timespan heartbeat = std::chrono::milliseconds(200);
  /// How long a silent peer is taken for alive.
  caf::timespan node_timeout = std::chrono::seconds(2);
  /// How long a node waits for the peers it needs when it starts.
  caf::timespan connect_timeout = std::chrono::seconds(30);
};

/// The root ([supervisor]) or a nested supervisor ([supervisors.NAME]).
struct supervisor_decl {
  std::string name;
  /// Empty for the root.
  std::string parent;
  source_position where;
  restart_strategy strategy = restart_strategy::one_for_one;
  enum stop_order stop_order = stop_order::sequential;
  restart_intensity intensity;
  restart_backoff backoff;
  /// As a child of its parent (nested supervisors only).
  restart_type restart = restart_type::permanent;
  caf::timespan shutdown = std::chrono::seconds(30);
  /// Candidate nodes, tried in order; empty: its parent's node (the root:
  /// the first node of the file). The root names at most one.
  std::vector<std::string> node;
};

/// [nodes.NAME]: where actors may be placed (distribution).
struct node_decl {
  std::string name;
  /// The address the node binds to and its peers dial.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  source_position where;
  /// TLS files, resolved against the topology file's folder; all three or
  /// none (and then no node of the file has them).
  std::string certificate;
  std::string key;
  std::string cafile;
  /// The environment variable holding the key's passphrase; empty: the key
  /// is not encrypted. The passphrase itself never is in the file.
  std::string passphrase_env;
};

/// [actors.NAME]
struct actor_decl {
  std::string name;
  std::string kind;
  source_position where;
  const kind_definition* definition = nullptr;
  /// The supervisor's name (the root's when the file names none).
  std::string supervisor;
  restart_type restart = restart_type::transient;
  caf::timespan shutdown = std::chrono::seconds(5);
  /// Candidate nodes, tried in order (on each start); empty: its
  /// supervisor's node.
  std::vector<std::string> node;
  std::vector<std::string> next;
  std::vector<std::string> services;
  /// 0: the system's credit.
  uint32_t credit = 0;
  /// How many actors name this one in their `next`.
  size_t inputs = 0;
  /// Part of the stream: a source, or fed by `next` from one (set by
  /// validation, as are the next two).
  bool stream = false;
  /// Named in another actor's `service`.
  bool serves = false;
  /// A stream actor the run waits for before it drains: every one but a
  /// stream actor that also serves (it answers requests until the final
  /// drain, so its stream ends only then) and whatever it feeds.
  bool awaited = false;
  actor_starter start;
  /// The factories of its inline service tables by key (a pool's
  /// `worker`): what another node starts for it.
  std::map<std::string, child_factory> parts;
};

struct topology {
  std::string file;
  system_decl system;
  supervisor_decl root;
  /// Nested supervisors, in file order.
  std::vector<supervisor_decl> supervisors;
  /// In file order.
  std::vector<actor_decl> actors;
  std::vector<node_decl> nodes;

  /// Null if there is no such actor.
  const actor_decl* find_actor(const std::string& name) const;
  /// Null if there is no such nested supervisor (nor the root).
  const supervisor_decl* find_supervisor(const std::string& name) const;
  /// Null if there is no such node.
  const node_decl* find_node(const std::string& name) const;

  /// The node running the root supervisor; empty for a file without nodes.
  std::string home_node() const;

  /// Where a child runs when its first candidate can be reached: its own
  /// first candidate, else its supervisor's; empty without nodes.
  std::string first_node_of_actor(const actor_decl& a) const;
  std::string first_node_of_supervisor(const supervisor_decl& s) const;

  /// Whether `a` is part of the stream graph (a source, or fed by one):
  /// actor_decl::stream. A run ends by itself once the stream actors it
  /// waits for (actor_decl::awaited) have ended.
  bool in_stream(const actor_decl& a) const {
    return a.stream;
  }
};

/// Parses and validates `text`, naming it `file` in errors. Throws
/// topology_errors listing everything wrong; never anything else, whatever
/// the bytes.
topology parse_topology(std::string_view text, const std::string& file,
                        const kind_registry& registry = kinds());

/// Reads `path` and parses it; an unreadable file is a topology_errors too.
topology load_topology(const std::string& path,
                       const kind_registry& registry = kinds());

/// The root supervisor's spec: nested supervisors as children, each actor a
/// child wired to the stable addresses of what it names, children in an
/// order where what an actor sends to starts before it (so that it stops
/// after it). `on_stream_end`, if set, is called once with an actor's name
/// when an actor the run waits for (actor_decl::awaited) ends normally.
supervisor_spec
build_supervision(const topology& t,
                  std::function<void(const std::string&)> on_stream_end = {});

/// How a tree spread over nodes starts what is placed elsewhere
/// (topology/cluster.hpp implements it for `troupe run --node`).
class placement {
public:
  virtual ~placement();

  /// The node this process is.
  virtual const std::string& here() const = 0;

  /// A factory that starts child `name` (an actor, or with `supervisor` a
  /// nested supervisor and its subtree) on the first of `candidates` that
  /// can be reached: with `local` when that is here(), else through that
  /// node's agent. `names` are the siblings the child may name.
  virtual child_factory place(std::vector<std::string> candidates,
                              std::string name, bool supervisor,
                              std::vector<std::string> names,
                              child_factory local)
    = 0;

  /// A factory for the workers of the pool `pool`, worker i started on
  /// nodes[i % n] (with `local` when that is here()); the factory of its
  /// inline table `key` on the other nodes.
  virtual child_factory spread(std::vector<std::string> nodes,
                               std::string pool, std::string key,
                               child_factory local)
    = 0;
};

/// Builds the root's spec (as above) with the children placed on other
/// nodes started there by `where`; null `where`: all in this process.
supervisor_spec
build_supervision(const topology& t,
                  std::function<void(const std::string&)> on_stream_end,
                  std::shared_ptr<placement> where);

/// The spec of actor or nested supervisor `name` as its supervisor starts
/// it on this node (what a node agent starts when asked); throws
/// std::invalid_argument if there is no such child.
child_spec build_child(const topology& t, const std::string& name,
                       std::function<void(const std::string&)> on_stream_end,
                       std::shared_ptr<placement> where);

} // namespace troupe
