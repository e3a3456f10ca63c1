#pragma once

// What the plain CAF baselines share: a CAF system with the scheduler the
// troupe workloads get, and the hand-written flow control an experienced CAF
// user puts between actors that pass items one message each (no troupe
// types, stages or patterns anywhere in baseline/).
//
// A link from U to D carries one item per message and at most `window` items
// that D has not acknowledged; D acknowledges with (ack_atom, n) every
// `every` items it took, and U sends (end_atom) after its last item. A stage
// that cannot hand an item on yet keeps it and acknowledges nothing while it
// keeps any, so that every link stays bounded.

#include "../bench.hpp"

#include <caf/all.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace troupe::bench::baseline {

using ack_atom = caf::atom_constant<caf::atom("bl_ack")>;
using end_atom = caf::atom_constant<caf::atom("bl_end")>;
using stop_atom = caf::atom_constant<caf::atom("bl_stop")>;

/// Items in flight per link, as the troupe workloads' credit.
constexpr uint32_t link_window = 128;
/// Acknowledgements carry this many items: a quarter of the window, so the
/// sender never waits for a round trip while the receiver keeps up.
constexpr uint32_t ack_every = 32;

/// A CAF actor system with the scheduler settings of the troupe workloads
/// (bench_settings: one worker per core) and nothing of troupe registered.
class plain_system {
public:
  plain_system();
  plain_system(const plain_system&) = delete;
  plain_system& operator=(const plain_system&) = delete;

  caf::actor_system& actors() noexcept {
    return actors_;
  }

private:
  static caf::actor_system_config& prepare(caf::actor_system_config& cfg);

  caf::actor_system_config cfg_;
  caf::actor_system actors_;
};

/// A result line of the baseline (impl "caf").
result caf_result(std::string workload);

/// Kills `actors` (the system would wait for them forever) and throws: for a
/// run that did not finish within its bound.
[[noreturn]] void give_up(std::initializer_list<caf::actor> actors,
                          const std::string& what);

/// The sending end of a link: sends while there is credit, keeps the rest in
/// order until acknowledgements come.
template <class T>
class credit_out {
public:
  credit_out() = default;
  credit_out(caf::actor to, uint32_t window) : to_(std::move(to)), credit_(window) {
  }

  void push(caf::event_based_actor* self, T x) {
    if (credit_ > 0 && backlog_.empty()) {
      --credit_;
      self->send(to_, std::move(x));
    } else {
      backlog_.push_back(std::move(x));
    }
  }

  void ack(caf::event_based_actor* self, uint32_t n) {
    credit_ += n;
    while (credit_ > 0 && !backlog_.empty()) {
      --credit_;
      self->send(to_, std::move(backlog_.front()));
      backlog_.pop_front();
    }
  }

  /// After the last item; it follows the items (one sender, one receiver).
  void end(caf::event_based_actor* self) {
    self->send(to_, end_atom::value);
  }

  uint32_t credit() const noexcept {
    return credit_;
  }

  /// Items waiting for credit.
  size_t backlog() const noexcept {
    return backlog_.size();
  }

private:
  caf::actor to_;
  uint32_t credit_ = 0;
  std::deque<T> backlog_;
};

/// The receiving end of a link: counts items taken and acknowledges them.
class credit_in {
public:
  explicit credit_in(uint32_t every = ack_every) : every_(every) {
  }

  /// Learns the upstream from the message being handled (an item).
  void from(caf::event_based_actor* self) {
    if (!up_)
      up_ = caf::actor_cast<caf::actor>(self->current_sender());
  }

  /// One item taken; with `held`, its acknowledgement waits for a later call
  /// (the taker's own output is backed up).
  void took(caf::event_based_actor* self, bool held = false) {
    ++pending_;
    settle(self, held);
  }

  /// Sends what is due unless `held`.
  void settle(caf::event_based_actor* self, bool held) {
    if (!held && pending_ >= every_) {
      self->send(up_, ack_atom::value, pending_);
      pending_ = 0;
    }
  }

private:
  caf::actor up_;
  uint32_t every_;
  uint32_t pending_ = 0;
};

/// Items inside a pipeline (+1 at the source, -1 at the sink), for
/// `max_in_flight` as the troupe workload and the reference count it.
struct flight_gauge {
  std::atomic<int64_t> now{0};
  int64_t peak = 0; // written by the source only
};

struct source_state {
  credit_out<uint64_t> out;
  uint64_t next = 0;
};

/// A greedy source of 0..n-1 to `next` over a link, as fast as credit allows;
/// stores when the first item left, counts into `gauge` if there is one.
/// (stop_atom) ends it early (after what it has sent).
caf::behavior counting_source(caf::stateful_actor<source_state>* self, uint64_t n,
                              caf::actor next, std::shared_ptr<int64_t> first_ns,
                              std::shared_ptr<flight_gauge> gauge);

struct summing_sink_state {
  credit_in in;
  uint64_t count = 0;
  uint64_t sum = 0;
};

/// The baseline `pipeline` before its sink: source -> validate -> transform
/// -> enrich -> `sink`; returns the four actors in that order.
std::vector<caf::actor> spawn_pipeline_front(caf::actor_system& sys, uint64_t n,
                                             caf::actor sink,
                                             std::shared_ptr<int64_t> first_ns,
                                             std::shared_ptr<flight_gauge> gauge);

/// Sums the uint64 items of a link; at its end tells `driver`
/// (done_atom, count, sum, end_ns).
caf::behavior summing_sink(caf::stateful_actor<summing_sink_state>* self,
                           caf::actor driver, std::shared_ptr<flight_gauge> gauge);

} // namespace troupe::bench::baseline
