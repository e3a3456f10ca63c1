#pragma once

// A supervised child's stable address (internal to the supervisor).
//
// The relay lives as long as the supervisor and forwards every message, with
// its original sender and request id, to the child's current incarnation. It
// does so as the message is delivered to it, on the sender's thread (it is
// not a scheduled actor), so the stable address adds no hop.
// While the child restarts it holds messages (up to the child's
// restart_buffer) and delivers them, in order, to the next incarnation. It
// replays the link_open and end_of_stream messages it has seen, so that a
// restarted stage rejoins its upstream links by itself; stream items that
// arrive while the child is down are dropped, because their upstream keeps
// them and sends them again. What cannot be delivered (a full buffer, a child
// that will not come back) is counted as lost, and requests among it are
// answered with errc::child_unavailable.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace troupe {

/// (relay_attach_atom, caf::actor): forward to this incarnation from now on.
using relay_attach_atom = caf::atom_constant<caf::atom("trp_rattch")>;

/// (relay_detach_atom, caf::actor_addr): that incarnation is gone; hold
/// messages from now on. The relay also monitors each incarnation itself and
/// acts on whichever news comes first.
using relay_detach_atom = caf::atom_constant<caf::atom("trp_rdetch")>;

/// (relay_lost_atom) -> uint64_t lost so far.
using relay_lost_atom = caf::atom_constant<caf::atom("trp_rlost")>;

/// `supervisor` is the one whose drains it forwards (see give_up).
caf::actor spawn_relay(caf::actor_system& sys, std::string child_name,
                       size_t buffer_size, caf::actor_addr supervisor);

/// The child will not come back: `relay` (made by spawn_relay) stops holding
/// messages and counts what reaches it from now on as lost. With
/// notify_downstream (the child failed), the stream links it fed get
/// end_of_stream with errc::child_unavailable, so that its downstream stages
/// end instead of waiting for it forever. Returns the messages the address
/// could not deliver so far (cumulative). A function call on the caller's
/// thread, not a message: the relay does its work inside enqueue anyway, and
/// a supervisor closes thousands of relays as everything stops, which as
/// messages cost an allocation each way and a turn of the supervisor per
/// answer. `ctx` is the caller's execution unit (for what the close sends).
uint64_t close_relay(const caf::actor& relay, bool notify_downstream,
                     caf::execution_unit* ctx);

/// Closes `relay` (made by spawn_relay) and ends it: the supervisor is going
/// away. Messages to the address bounce from then on.
void stop_relay(const caf::actor& relay, caf::execution_unit* ctx);

} // namespace troupe
