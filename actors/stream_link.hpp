#pragma once

// The bookkeeping of stream links with credit, shared by every stage. No
// actor code lives here: a stage feeds messages in and sends what comes out.
//
// Rules of a link (upstream U, downstream D):
// - U opens the link with link_open, giving its stable address for credit.
// - D answers with demand{acked, window}: U may send items with sequence
//   numbers below acked + window. So at most `window` items are in flight.
// - D acknowledges items as it consumes them (one demand per processing round).
// - U keeps every unacknowledged item. A demand with a new epoch means D was
//   restarted: U sends everything unacknowledged again, in order.
// - D drops items sent under another epoch (U sends them again) and skips
//   items it already has, so order and exactly-once hold within an epoch.
// - U sends end_of_stream only after every item was acknowledged.

#include "troupe/actors/messages.hpp"

#include <caf/actor.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace troupe {

/// A link id that is unique with overwhelming probability, across processes.
uint64_t new_link_id();

/// A fresh epoch for a new downstream incarnation.
uint64_t new_epoch();

/// The upstream end of one link.
class outbound_link {
public:
  outbound_link(caf::actor downstream, uint64_t id);

  const caf::actor& downstream() const noexcept {
    return downstream_;
  }

  uint64_t id() const noexcept {
    return id_;
  }

  /// Queues an item; it is sent once credit allows.
  void push(item x);

  /// Items held: waiting for credit, or sent and not yet acknowledged.
  size_t buffered() const noexcept {
    return buffer_.size();
  }

  /// Items that may still be pushed before the buffer holds a full window
  /// (the window the downstream granted; 0 before its first demand).
  size_t room() const noexcept {
    return buffer_.size() < window_ ? window_ - buffer_.size() : 0;
  }

  /// Items waiting for credit: never sent.
  uint64_t pending() const noexcept {
    return base_ + buffer_.size() - next_send_;
  }

  /// Items sent and not yet acknowledged.
  uint64_t in_flight() const noexcept {
    return next_send_ - base_;
  }

  /// Items that credit allows to send now.
  uint64_t sendable() const noexcept {
    auto end = std::min<uint64_t>(limit_, base_ + buffer_.size());
    return epoch_ == 0 || end <= next_send_ ? 0 : end - next_send_;
  }

  /// The window the downstream granted (0 before its first demand).
  uint32_t window() const noexcept {
    return window_;
  }

  uint64_t max_in_flight() const noexcept {
    return max_in_flight_;
  }

  /// Items sent again because the downstream restarted.
  uint64_t resent() const noexcept {
    return resent_;
  }

  /// Applies credit. Returns true if the demand came from a new downstream
  /// incarnation, in which case unacknowledged items will be sent again.
  /// Demand from an incarnation that was already replaced is ignored.
  bool on_demand(const demand& x);

  /// Moves the items that credit allows into `out`; false if there are none.
  bool take_sendable(link_items& out);

  /// No more items will be pushed.
  void close(caf::error reason = caf::error{});

  /// True when the link is closed, everything was acknowledged and
  /// end_of_stream is yet to be sent (again, after a downstream restart).
  bool end_due() const noexcept {
    return closed_ && buffer_.empty() && !end_sent_;
  }

  /// The end_of_stream to send now; marks it as sent.
  end_of_stream take_end();

  bool end_sent() const noexcept {
    return end_sent_;
  }

private:
  caf::actor downstream_;
  uint64_t id_;
  // Items from sequence number base_ on: acknowledged ones are popped, so the
  // front part [base_, next_send_) is in flight, the rest waits for credit.
  std::deque<item> buffer_;
  uint64_t base_ = 0;
  uint64_t next_send_ = 0;
  uint64_t limit_ = 0;
  uint64_t epoch_ = 0;
  std::vector<uint64_t> past_epochs_; // replaced incarnations, never again
  uint32_t window_ = 0;
  uint64_t max_in_flight_ = 0;
  uint64_t resent_ = 0;
  bool closed_ = false;
  bool end_sent_ = false;
  caf::error reason_;
};

/// The downstream end of all links into one stage: their state and the queue
/// of received, not yet consumed items (in arrival order).
class inbound_links {
public:
  inbound_links(uint64_t epoch, uint32_t window);

  /// Registers a link, replacing an earlier one from the same upstream (a
  /// restarted upstream), and returns the first demand for it, which the next
  /// flush_acks sends too. Returns nothing for a link that was already
  /// replaced (a late, stale open).
  std::optional<demand> open(const link_open& x);

  /// Queues the items of `x` that are new; stale or duplicate ones are
  /// counted and dropped.
  void receive(link_items&& x);

  void end(const end_of_stream& x);

  bool has_item() const noexcept {
    return queued_ != 0;
  }

  size_t queued() const noexcept {
    return queued_;
  }

  /// Takes the next item and counts it as consumed.
  item take();

  /// Calls `send(upstream, demand)` for each link with newly consumed items
  /// or newly opened.
  template <class F>
  void flush_acks(F&& send) {
    for (auto id : dirty_) {
      auto& l = links_[id];
      l.dirty = false;
      send(l.upstream, demand{id, epoch_, l.consumed, window_});
    }
    dirty_.clear();
  }

  /// Number of upstreams that opened a link.
  size_t upstreams() const noexcept {
    return current_.size();
  }

  /// True when every upstream's link has ended and nothing is queued.
  bool all_ended() const noexcept;

  /// The first error an upstream ended its link with.
  const caf::error& error() const noexcept {
    return error_;
  }

  /// Items dropped as stale (sent to an earlier incarnation) or duplicate.
  uint64_t stale() const noexcept {
    return stale_;
  }

  /// Items missing in a sequence (must stay 0; counted, never silent).
  uint64_t gaps() const noexcept {
    return gaps_;
  }

private:
  struct link_state {
    caf::actor upstream;
    uint64_t expected = 0; // next sequence number to receive
    uint64_t consumed = 0; // next sequence number to consume
    bool dirty = false;    // consumed items not acknowledged yet
    bool seen_items = false;
    bool ended = false;
  };

  struct chunk {
    uint64_t link;
    link_state* state; // stable: unordered_map never moves its nodes
    std::vector<item> items;
    size_t next = 0;
  };

  uint64_t epoch_;
  uint32_t window_;
  std::unordered_map<uint64_t, link_state> links_;
  // Current link per upstream; an upstream that reopens replaces its link.
  std::unordered_map<caf::actor, uint64_t> current_;
  std::unordered_set<uint64_t> retired_; // links replaced by a newer one
  // Made on the first items: an empty std::deque holds ~540 bytes, which
  // was a sixth of an idle stage.
  std::unique_ptr<std::deque<chunk>> queue_;
  size_t queued_ = 0;
  std::vector<uint64_t> dirty_;
  caf::error error_;
  uint64_t stale_ = 0;
  uint64_t gaps_ = 0;
};

} // namespace troupe
