#pragma once

// Kinds: what an actor in a topology file can be. A kind reads its keys (a
// kind_config) and says how to start one incarnation of the actor once its
// wiring is resolved. The built-in kinds (docs/topology.md lists them) and a
// user's own are registered the same way, and are used from files alike:
//
//   troupe::register_kind(troupe::stage_kind(
//     "upper", "upper-cases strings", [](troupe::kind_config& c) {
//       auto repeat = c.integer("repeat", 1, 1, 10);
//       return [repeat](const troupe::spawn_context& ctx, const troupe::wiring& w) {
//         return troupe::spawn_stage(ctx, w.links, [repeat](troupe::item& x, troupe::emitter& out) { ... });
//       };
//     }));

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/supervision/child_spec.hpp"
#include "troupe/topology/kind_config.hpp"

#include <caf/actor.hpp>

#include <any>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe {

class placement;

/// An actor's connections, resolved to stable addresses when it starts.
struct wiring {
  /// `next` as addresses, `inputs` = how many actors name this one in their
  /// `next` (one more for a stream actor also named in a `service`: an
  /// input only the drain ends, so that it answers requests until the final
  /// drain), `credit` from the file or the system, `kind` = the kind's name.
  stage_config links;
  /// The actors named by `service`, in the file's order.
  std::vector<caf::actor> services;
  /// Shared by the incarnations of this actor that one build_supervision
  /// (one run) starts, and empty at first: where a kind keeps what must
  /// outlive a restart but not the run (crash's count of crashes left).
  /// Null for an actor no build_supervision starts (an inline table's).
  std::shared_ptr<std::any> per_run;
  /// How parts of the actor placed on other nodes start (a pool's
  /// worker_nodes); null when the run is not spread over nodes
  /// (topology.hpp).
  std::shared_ptr<troupe::placement> placement;
};

/// Starts one incarnation of a configured actor.
using actor_starter =
  std::function<caf::actor(const spawn_context& ctx, const wiring& w)>;

/// Reads a kind's keys; returns how to start it (may return an empty
/// function when the config had errors, which kind_config recorded).
using kind_parser = std::function<actor_starter(kind_config& cfg)>;

struct kind_definition {
  std::string name;
  /// One line: what it does.
  std::string summary;
  /// Produces items from outside the stream graph: has no upstream, needs a
  /// `next`, gets the intake signal first on a graceful shutdown.
  bool source = false;
  /// May be named in another actor's `next`.
  bool takes_input = false;
  /// Emits items: `next` is allowed, and required when it has an upstream.
  bool emits = false;
  /// May be named in another actor's `service` (answers requests).
  bool answers_requests = false;
  /// With answers_requests and min_services 0: it answers requests only
  /// when its own `service` names one (a limiter without one paces a stream,
  /// and would fail every request). Then it may be named in a `service` only
  /// if it has its own, and cannot be an inline table, which names none.
  bool answers_only_with_service = false;
  /// How many actors its `service` key must name; 0 and 0: no such key.
  size_t min_services = 0;
  size_t max_services = 0;
  /// The kinds its `service` may name, when it sends requests only one
  /// kind understands (state_count needs a `state`); empty: any kind that
  /// answers requests.
  std::vector<std::string> service_kinds;
  /// Whether it may be part of a cycle of `next` links.
  bool allows_cycles = false;
  /// How it restarts unless the file says otherwise.
  restart_type default_restart = restart_type::transient;
  /// How `troupe graph` draws it: "source", "stage", "sink", "service" or
  /// "pattern".
  std::string graph_group = "stage";
  kind_parser parse;
};

/// A source (no input, needs `next`), a stage (input and `next`), a sink
/// (input, no `next`) and a service (answers requests; permanent): the four
/// common shapes, for register_kind.
kind_definition source_kind(std::string name, std::string summary,
                            kind_parser parse);
kind_definition stage_kind(std::string name, std::string summary,
                           kind_parser parse);
kind_definition sink_kind(std::string name, std::string summary,
                          kind_parser parse);
kind_definition service_kind(std::string name, std::string summary,
                             kind_parser parse);

class kind_registry {
public:
  /// Throws config_error if the name is empty or taken, or `parse` is empty.
  void add(kind_definition def);

  /// Null if there is no such kind.
  const kind_definition* find(const std::string& name) const;

  /// All names, sorted.
  std::vector<std::string> names() const;

private:
  std::map<std::string, kind_definition> kinds_;
};

/// The process-wide registry, holding the built-in kinds from its first use.
kind_registry& kinds();

/// Makes `def` usable from topology files, like a built-in kind: the one call
/// a user makes (before loading the file). Throws config_error as add() does.
void register_kind(kind_definition def);

} // namespace troupe
