#pragma once

// The message vocabulary every troupe actor shares. Every type here is
// inspectable and registered by register_message_types(), so any message can
// cross a network boundary unchanged. Messages hold values and actor handles
// only, never pointers or references.

#include "troupe/actors/item.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace troupe {

// Control messages. A troupe actor understands all four; what each means for
// a given kind (source, stage, sink, supervisor) is in docs/shutdown.md.

/// Graceful stop: take no new input, finish and flush what is held, send
/// end-of-stream downstream, then stop.
using drain_atom = caf::atom_constant<caf::atom("drain")>;

/// Stop now; whatever is held is counted as dropped.
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;

/// Ask for an actor_report of an actor that keeps running.
using status_atom = caf::atom_constant<caf::atom("status")>;

/// First phase of a graceful shutdown: sources stop producing and end their
/// streams; everything else keeps working until its inputs end.
using stop_intake_atom = caf::atom_constant<caf::atom("stopintake")>;

/// Sent by an observer to a pattern with states (a circuit breaker): from now
/// on, the observer receives a state_change for each transition.
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;

/// Ends a subscription; an observer that stops is removed by itself.
using unsubscribe_atom = caf::atom_constant<caf::atom("unsubscr")>;

/// Several items handed on as one value, e.g. the batcher's output.
struct batch {
  std::vector<item> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
  return f(caf::meta::type_name("troupe::batch"), x.items);
}

// The stream-link protocol (see actors/stream_link.hpp for the rules).
//
// A link carries items from one upstream to one downstream. The downstream
// grants credit with `demand`; the upstream never has more items in flight
// than the window allows. Items are numbered per link, and the upstream keeps
// the unacknowledged ones, so that a restarted downstream gets them again.

/// Upstream -> downstream: opens a link. `upstream` is the upstream's stable
/// address (a supervised child's relay), where demand is sent.
struct link_open {
  caf::actor upstream;
  uint64_t link = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_open& x) {
  return f(caf::meta::type_name("troupe::link_open"), x.upstream, x.link);
}

/// Upstream -> downstream: items `first_seq`, `first_seq + 1`, ... of a link,
/// sent under credit granted by the downstream incarnation `epoch`.
struct link_items {
  uint64_t link = 0;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  std::vector<item> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_items& x) {
  return f(caf::meta::type_name("troupe::link_items"), x.link, x.epoch,
           x.first_seq, x.items);
}

/// Downstream -> upstream: credit. Items before `acked` are consumed; items
/// before `acked + window` may be sent. `epoch` names the downstream
/// incarnation: a new epoch means the downstream restarted, and the upstream
/// sends its unacknowledged items again.
struct demand {
  uint64_t link = 0;
  uint64_t epoch = 0;
  uint64_t acked = 0;
  uint32_t window = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, demand& x) {
  return f(caf::meta::type_name("troupe::demand"), x.link, x.epoch, x.acked,
           x.window);
}

/// Upstream -> downstream: the link is closed; sent only once every item on it
/// was acknowledged. An empty `reason` is a normal end.
struct end_of_stream {
  uint64_t link = 0;
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, end_of_stream& x) {
  return f(caf::meta::type_name("troupe::end_of_stream"), x.link, x.reason);
}

/// A pattern changed state, e.g. a breaker from "closed" to "open"; sent to
/// its subscribers. `at_ns` is the time on the sender's steady clock.
struct state_change {
  std::string name; ///< the pattern's name (its spawn_context name)
  std::string from;
  std::string to;
  int64_t at_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_change& x) {
  return f(caf::meta::type_name("troupe::state_change"), x.name, x.from,
           x.to, x.at_ns);
}

/// An item whose processing failed, emitted in its place (a fan-out's
/// processor answered with an error or died) so that nothing is lost silently.
struct item_failure {
  item input;
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item_failure& x) {
  return f(caf::meta::type_name("troupe::item_failure"), x.input, x.reason);
}

/// How an actor stopped, as shown in reports.
enum class stop_reason : uint8_t {
  running,   ///< not stopped (a status report)
  completed, ///< ended by itself: its inputs ended, or its source ran dry
  drained,   ///< stopped by a graceful shutdown after flushing what it held
  cancelled, ///< stopped by a cancel; what it held is counted as dropped
  killed,    ///< missed its shutdown deadline and was killed
  crashed,   ///< failed and was not restarted
  stopped,   ///< stopped by its supervisor (a sibling's restart, escalation)
};

std::string to_string(stop_reason x);

/// True if an actor that stopped so lost what it held (a cancel, crash, kill
/// or stop by its supervisor), which its report counts as dropped.
inline bool lost_what_it_held(stop_reason x) {
  return x != stop_reason::running && x != stop_reason::completed
         && x != stop_reason::drained;
}

/// How an actor that exited with `reason` stopped; `draining` says whether it
/// had been asked to drain (so a normal exit counts as drained).
stop_reason stop_reason_of(const caf::error& reason, bool draining);

/// What an actor did, reported on status requests, when it stops, and (for a
/// supervisor) for its whole subtree in `children`.
struct actor_report {
  std::string name;
  std::string kind;      ///< "source", "stage", "sink", "supervisor", "actor"
  uint64_t in = 0;       ///< items taken in
  uint64_t out = 0;      ///< items emitted (including flushed)
  uint64_t flushed = 0;  ///< items emitted while ending (end-of-stream, drain)
  uint64_t dropped = 0;  ///< items discarded and counted (cancel, crash)
  uint64_t errors = 0;   ///< items whose processing failed
  uint64_t lost = 0;     ///< messages to it that could not be delivered
  uint64_t resent = 0;   ///< items sent again to a restarted downstream
  /// Items sent but not acknowledged when it stopped: its downstream may
  /// still have consumed them (then they are in its `in`), or not.
  uint64_t unconfirmed = 0;
  uint64_t max_in_flight = 0; ///< most items unacknowledged on one output link
  uint32_t restarts = 0;
  stop_reason stopped = stop_reason::running;
  std::string error;     ///< why it crashed or was killed, rendered
  /// A pattern's own state in a word, e.g. a breaker's "open"; empty if none.
  std::string state;
  /// A pattern's own counters and gauges by name, e.g. a batcher's "batches"
  /// or a limiter's "rejected"; what each kind reports is in its header.
  std::map<std::string, int64_t> stats;
  std::vector<actor_report> children;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_report& x) {
  return f(caf::meta::type_name("troupe::actor_report"), x.name, x.kind, x.in,
           x.out, x.flushed, x.dropped, x.errors, x.lost, x.resent,
           x.unconfirmed, x.max_in_flight, x.restarts, x.stopped, x.error,
           x.state, x.stats, x.children);
}

/// The value of one key of a state actor (patterns/state.hpp), or its
/// absence (`found` false, `value` empty).
struct state_value {
  bool found = false;
  item value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_value& x) {
  return f(caf::meta::type_name("troupe::state_value"), x.found, x.value);
}

} // namespace troupe
