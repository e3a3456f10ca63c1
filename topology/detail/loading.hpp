#pragma once

// Internal to the topology library (not installed): a topology while it is
// loaded. loader.cpp reads the TOML into it; validate.cpp checks the graph,
// with the positions of the values that name things, for its errors.

#include "troupe/topology/topology.hpp"
#include "troupe/topology/detail/kind_config_state.hpp"
#include "troupe/topology/topology_error.hpp"

#include <memory>
#include <string>
#include <vector>

namespace troupe::detail {

/// Where an actor's reserved keys are, for errors about what they name.
struct actor_positions {
  source_position supervisor;
  source_position restart;
  source_position node;
  source_position next;
  source_position service;
  /// One per name in actor_decl::next / services.
  std::vector<source_position> next_items;
  std::vector<source_position> service_items;
  /// Whether the file sets `restart` (else it is the kind's default).
  bool restart_given = false;
  /// Whether `next` is there but was refused (not a string or an array, or
  /// on a kind that emits nothing), which is reported: what it named is
  /// unknown.
  bool next_invalid = false;
};

struct supervisor_positions {
  source_position parent;
  source_position restart;
};

struct loading {
  topology result;
  /// Parallel to result.actors and result.supervisors.
  std::vector<actor_positions> actors;
  std::vector<supervisor_positions> supervisors;
  std::shared_ptr<std::vector<topology_error>> errors
    = std::make_shared<std::vector<topology_error>>();
  /// Every node name a `node` or kind key (worker_nodes) gives, for
  /// validation.
  std::shared_ptr<std::vector<node_ref>> node_refs
    = std::make_shared<std::vector<node_ref>>();

  void fail(source_position where, std::string message) {
    errors->push_back(error_at(std::move(where), std::move(message)));
  }
};

/// Checks what the actors and supervisors name (dangling, misplaced and
/// cyclic references, shapes of kinds), fills in each actor's `inputs` and
/// stream restarts, and records every error found.
void validate(loading& x);

} // namespace troupe::detail
