#pragma once

// A supervisor: starts its children from child specs, restarts them by its
// strategy within its restart intensity, and stops them in order.
//
// Messages it understands:
//   (drain_atom [, caf::timespan deadline]) -> actor_report
//       Graceful shutdown of the subtree: sources stop producing, data drains
//       by end-of-stream, then children stop in reverse start order (all at
//       once with stop_order::concurrent), each within its shutdown timeout;
//       whatever is left at the deadline (default: the system's
//       troupe.shutdown-deadline) is killed. The answer is the report of the
//       whole subtree; then the supervisor stops.
//   (cancel_atom) -> actor_report
//       Stop everything now, in the same order, without draining.
//   (stop_intake_atom)       passed on to the children that produce data.
//   (status_atom) -> actor_report   the subtree's counters so far.
//   (caf::get_atom, std::string name) -> caf::actor
//       The stable address of a child: messages to it reach the current
//       incarnation, across restarts.
// When the supervisor exits, it sends its subtree report to its own supervisor
// (if any), and its children are stopped with it.

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>

namespace troupe {

/// Validates `spec` (throws config_error) and spawns the supervisor, which
/// starts its children at once, in order.
caf::actor spawn_supervisor(spawn_context ctx, supervisor_spec spec);

/// A child spec that runs a nested supervisor. `shutdown` bounds the graceful
/// shutdown of its whole subtree.
child_spec supervisor_child(supervisor_spec spec,
                            restart_type restart = restart_type::permanent,
                            caf::timespan shutdown = std::chrono::seconds(30));

} // namespace troupe
