#pragma once

// Shared key-value state owned by actors, as in the seed's
// `RwLock<HashMap>` turned into a service: get, set, delete, compare-and-set,
// update with a function, and get_many, one consistent read of many keys.
// Keys are strings; values are troupe::item (any registered type, small
// values held inline: actors/item.hpp), the same currency as everything else in troupe, so a
// value crosses nodes like any message and needs no template of its own.
//
// The state is split over `shards` actors by a hash of the key (FNV-1a, the
// same on every node and build). A front actor, the one spawn_state returns,
// answers every request: single-key requests are delegated to the key's shard
// (the shard answers the caller directly), and get_many is coordinated so
// that its answer is one snapshot:
//   - keys of one shard: that shard answers them in one step;
//   - keys of several shards: the front asks each of them to hold. A shard
//     holding answers the values of its keys at that moment (and which
//     incarnation it is), then defers writes (set, delete, cas, update),
//     and the reads that arrive after a deferred write, until released.
//     Once every hold answered, the front answers the caller and releases.
//     A shard's values cannot change between its hold's answer and that
//     moment, unless the shard restarted (the new incarnation holds nothing):
//     the front then sees another incarnation count and asks again (at most
//     3 attempts, then errc::child_unavailable). Nor does a hold expire
//     before the front has the last answer: the front gives up hold_timeout
//     after sending its holds, and a shard's hold expires hold_timeout after
//     it answered, which is later. So all values are those at the moment the
//     last hold answered, and the read is linearizable: a writer that sets
//     A, waits for the answer, then sets B is never seen with B's new value
//     and A's old one. Holds never wait for anything, so overlapping
//     get_manys cannot deadlock; a shard counts them and applies what it
//     deferred, in arrival order, when the last is released. A hold is
//     released after `hold_timeout` at the latest, whatever happened to the
//     front (then its get_many has failed). Writes waiting on a shard are
//     bounded (max_deferred); and once the oldest has waited max_write_wait
//     the shard refuses new holds, so get_manys cannot starve writes.
//     A get_many sees every write acknowledged before it was sent; a write
//     still unanswered when it is sent may or may not be in it.
// Clients that want to skip the front's hop for single-key requests ask it
// for the shards' addresses (state_shards_atom) and route by key themselves
// with state_ref; get_many still goes to the front.
//
// The shards live under a supervisor of their own (supervision/), owned by
// the front: a shard that crashes is restarted at its stable address (its
// requests wait there meanwhile, up to `restart_buffer`), within
// `shard_restarts`; beyond that the front fails with that error, for its own
// supervisor to handle. Every shard incarnation starts from `load` when the
// config has one (the first one too), keeping the keys it owns. WITHOUT A
// LOADER, A RESTARTED SHARD STARTS EMPTY: the keys it held are lost, and the
// report counts them (stats restarts_with_loss, keys_lost). With a loader,
// writes made after the snapshot it returns are lost all the same: keeping
// the snapshot current is the loader's business. A restarted front starts
// new shards, under the same rule.
//
// Requests (answer after ->; a caller uses the helpers below to build them):
//   (state_get_atom, std::string key) -> state_value
//   (state_set_atom, std::string key, item value) -> caf::ok_atom
//   (state_delete_atom, std::string key) -> bool   whether the key was there
//   (state_get_many_atom, std::vector<std::string> keys)
//       -> std::vector<state_value>, one per key, in order
//   (state_cas_atom, std::string key, state_value expected,
//    state_value desired) -> bool
//       Sets (or, desired absent, deletes) the key if its value equals
//       `expected` (expected absent: the key must be absent); answers whether
//       it swapped. Values are equal when they serialize to the same bytes; a
//       value that cannot be serialized makes the request fail.
//   (state_update_atom, std::string key, state_updater f) -> state_value
//       Replaces the value by f(current), current absent if the key is; f
//       answering absent deletes the key. Runs on the owning shard, between
//       two other requests, so it is atomic. The answer is the new value. A
//       function that throws changes nothing; the caller gets
//       caf::sec::runtime_error with its message. LOCAL ONLY: a function
//       cannot be serialized, so this request cannot cross a node.
//   (state_shards_atom) -> std::vector<caf::actor>   the shards' addresses
// Errors: a key sent straight to a shard that does not own it gets
// caf::sec::invalid_argument; a get_many whose hold is not answered within
// hold_timeout gets errc::call_timeout; requests held when the state stops
// get errc::shutting_down or the reason it stopped; requests to a state that
// has stopped fail as requests to any stopped actor (caf's
// request_receiver_down, or errc::child_unavailable at a shard's address).
// A write refused by a full shard (max_deferred), or a get_many refused by a
// shard whose writes waited too long (max_write_wait), gets
// errc::state_contended. A drain ends the front once no get_many is in
// flight, refusing new get_manys meanwhile (errc::shutting_down); its shards
// are then drained too, answering the requests already sent to them.
//
// Report (kind "state", state "running"); `stats` summed over the shards and
// all their incarnations:
//   shards               number of shards
//   keys                 keys held now
//   gets, sets, deletes  requests of each kind answered
//   cas_ok, cas_failed   compare-and-sets that swapped / did not
//   updates              update functions applied
//   update_errors        update functions that threw
//   get_many             get_many requests answered (one shard or several)
//   holds                holds taken by cross-shard get_manys
//   holds_expired        holds released by hold_timeout, not by the front
//   deferred             writes that waited for a hold to end
//   deferred_reads       reads that waited behind a deferred write
//   writes_refused       writes refused: max_deferred requests waited
//   holds_refused        holds refused: a write waited max_write_wait
//   misrouted            requests sent to a shard that does not own the key
//   shard_restarts       shard incarnations started after a crash
//   keys_loaded          keys taken from `load` by all incarnations
//   restarts_with_loss   restarts without a loader (their keys are lost)
//   keys_lost            keys held by shards that restarted without a loader
//   get_many_failed      cross-shard get_manys answered with an error
//   get_many_retried     attempts repeated because a held shard restarted
// `children` has one entry per shard ("shard-0" ...): in = client requests
// it took (not the front's holds and releases), restarts, and the same stats
// for that shard alone.

#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace troupe {

using state_get_atom = caf::atom_constant<caf::atom("st_get")>;
using state_set_atom = caf::atom_constant<caf::atom("st_set")>;
using state_delete_atom = caf::atom_constant<caf::atom("st_delete")>;
using state_get_many_atom = caf::atom_constant<caf::atom("st_getmany")>;
using state_cas_atom = caf::atom_constant<caf::atom("st_cas")>;
using state_update_atom = caf::atom_constant<caf::atom("st_update")>;
using state_shards_atom = caf::atom_constant<caf::atom("st_shards")>;

// state_value (a value or its absence) is in actors/messages.hpp, where every
// registered message type is.

inline state_value present(item value) {
  return state_value{true, std::move(value)};
}

inline state_value absent() {
  return state_value{};
}

/// What an update computes: the new value from the current one (either may
/// be absent).
using state_update_function = std::function<state_value(const state_value&)>;

/// The function of an update request. It holds code, which cannot be
/// serialized: an update works only between actors of one process.
struct state_updater {
  state_update_function f;
};

/// The entries a shard starts with: (key, value) pairs.
using state_entries = std::vector<std::pair<std::string, item>>;

struct state_config {
  /// Actors the keys are split over (at least 1).
  uint32_t shards = 1;
  /// Called by every shard incarnation as it starts (the first one too); it
  /// keeps the entries whose keys it owns. Empty: shards start empty, and a
  /// restart loses the shard's keys (counted in the report).
  std::function<state_entries()> load;
  /// Longest time a get_many may hold a shard's writes (> 0); also how long
  /// the front waits for a hold's answer.
  caf::timespan hold_timeout = std::chrono::seconds(1);
  /// Shard restarts allowed within a period; one more and the state fails.
  restart_intensity shard_restarts;
  /// Requests a shard's address holds while the shard restarts (>= 1).
  size_t restart_buffer = 1024;
  /// Writes (and the reads queued behind them) a held shard keeps waiting
  /// (>= 1); one more is refused with errc::state_contended.
  size_t max_deferred = 10000;
  /// Once a shard's oldest waiting write has waited this long (> 0), it
  /// refuses new holds (their get_many fails with errc::state_contended)
  /// until its writes went in: overlapping get_manys cannot hold writes back
  /// for ever. A write waits at most about this plus hold_timeout.
  caf::timespan max_write_wait = std::chrono::milliseconds(100);

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// Validates `cfg` (throws config_error) and spawns the front and its
/// shards. Put it under a supervisor like any troupe actor.
caf::actor spawn_state(spawn_context ctx, state_config cfg);

/// The shard (0 .. shards-1) that owns `key`.
uint32_t state_shard_of(const std::string& key, uint32_t shards);

// Request builders: the messages a caller sends (as requests).

caf::message state_get(std::string key);
caf::message state_set(std::string key, item value);
caf::message state_delete(std::string key);
caf::message state_get_many(std::vector<std::string> keys);
caf::message state_cas(std::string key, state_value expected,
                       state_value desired);
caf::message state_update(std::string key, state_update_function f);

/// Where to send requests: the front, and optionally the shards' addresses
/// (from a state_shards_atom request) to reach a key's shard directly.
class state_ref {
public:
  state_ref() = default;
  explicit state_ref(caf::actor front, std::vector<caf::actor> shards = {})
    : front_(std::move(front)), shards_(std::move(shards)) {
  }

  const caf::actor& front() const noexcept {
    return front_;
  }

  /// Where a single-key request for `key` goes: its shard if the shards
  /// are known, else the front.
  const caf::actor& route(const std::string& key) const {
    if (shards_.empty())
      return front_;
    return shards_[state_shard_of(key, static_cast<uint32_t>(shards_.size()))];
  }

  /// get_many goes to the front, which makes it one snapshot.
  const caf::actor& route_many() const noexcept {
    return front_;
  }

private:
  caf::actor front_;
  std::vector<caf::actor> shards_;
};

} // namespace troupe

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::state_updater)
