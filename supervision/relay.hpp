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

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace troupe {

/// (relay_attach_atom, caf::actor): forward to this incarnation from now on.
using relay_attach_atom = caf::atom_constant<caf::atom("trp_rattch")>;

/// (relay_detach_atom, caf::actor_addr): that incarnation is gone; hold
/// messages from now on. The relay also monitors each incarnation itself and
/// acts on whichever news comes first.
using relay_detach_atom = caf::atom_constant<caf::atom("trp_rdetch")>;

/// (relay_close_atom, bool notify_downstream, uint64_t token): the child
/// will not come back. With notify_downstream (it failed), the stream links
/// it fed get end_of_stream with errc::child_unavailable, so that its
/// downstream stages end instead of waiting for it forever. The relay tells
/// the sender (relay_closed_atom, token, uint64_t lost) in a plain message,
/// not a response: a supervisor closes thousands of relays at once, and CAF
/// 0.17 keeps an actor's pending responses in a flat map searched linearly,
/// which made that quadratic. With the token relay_no_answer it says nothing.
using relay_close_atom = caf::atom_constant<caf::atom("trp_rclose")>;

/// The token of a close that wants no answer: one the supervisor sends while
/// everything stops, whose count a later close brings anyway.
constexpr uint64_t relay_no_answer = std::numeric_limits<uint64_t>::max();

/// (relay_closed_atom, uint64_t token, uint64_t lost): a relay closed, with
/// the messages its address could not deliver so far.
using relay_closed_atom = caf::atom_constant<caf::atom("trp_rdone")>;

/// (relay_stop_atom): close, then exit (the supervisor is going away).
using relay_stop_atom = caf::atom_constant<caf::atom("trp_rstop")>;

/// (relay_lost_atom) -> uint64_t lost so far.
using relay_lost_atom = caf::atom_constant<caf::atom("trp_rlost")>;

/// `supervisor` is the one whose drains it forwards (see give_up).
caf::actor spawn_relay(caf::actor_system& sys, std::string child_name,
                       size_t buffer_size, caf::actor_addr supervisor);

} // namespace troupe
