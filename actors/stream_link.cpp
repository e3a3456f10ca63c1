#include "troupe/actors/stream_link.hpp"

#include <algorithm>
#include <atomic>
#include <random>

namespace troupe {

namespace {

uint64_t random_u64() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  // splitmix64 over a per-process random seed and a counter: unique per call.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * ++counter;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

} // namespace

uint64_t new_link_id() {
  return random_u64();
}

uint64_t new_epoch() {
  return random_u64() | 1; // never 0, which means "no demand yet"
}

outbound_link::outbound_link(caf::actor downstream, uint64_t id)
  : downstream_(std::move(downstream)), id_(id) {
  // nop
}

void outbound_link::push(item x) {
  buffer_.emplace_back(std::move(x));
}

bool outbound_link::on_demand(const demand& x) {
  bool restarted = x.epoch != epoch_;
  if (restarted) {
    if (std::find(past_epochs_.begin(), past_epochs_.end(), x.epoch)
        != past_epochs_.end())
      return false; // overtaken by its successor's demand
    if (epoch_ != 0)
      past_epochs_.push_back(epoch_);
    epoch_ = x.epoch;
    if (next_send_ > base_) {
      resent_ += next_send_ - base_;
      next_send_ = base_;
    }
    end_sent_ = false;
  }
  if (x.acked > base_) {
    auto n = std::min(x.acked, next_send_) - base_;
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(n));
    base_ += n;
  }
  limit_ = std::max(base_, x.acked) + x.window;
  window_ = x.window;
  return restarted;
}

bool outbound_link::take_sendable(link_items& out) {
  auto end = std::min<uint64_t>(limit_, base_ + buffer_.size());
  if (epoch_ == 0 || next_send_ >= end)
    return false;
  out.link = id_;
  out.epoch = epoch_;
  out.first_seq = next_send_;
  out.items.clear();
  out.items.reserve(end - next_send_);
  auto first = buffer_.begin() + static_cast<ptrdiff_t>(next_send_ - base_);
  auto last = buffer_.begin() + static_cast<ptrdiff_t>(end - base_);
  out.items.insert(out.items.end(), first, last);
  next_send_ = end;
  max_in_flight_ = std::max(max_in_flight_, next_send_ - base_);
  return true;
}

void outbound_link::close(caf::error reason) {
  if (!closed_) {
    closed_ = true;
    reason_ = std::move(reason);
  }
}

end_of_stream outbound_link::take_end() {
  end_sent_ = true;
  return end_of_stream{id_, reason_};
}

inbound_links::inbound_links(uint64_t epoch, uint32_t window)
  : epoch_(epoch), window_(window) {
  // nop
}

std::optional<demand> inbound_links::open(const link_open& x) {
  if (retired_.count(x.link) != 0)
    return std::nullopt;
  auto& cur = current_[x.upstream];
  if (cur != 0 && cur != x.link) {
    // A restarted upstream: its old link will never end by itself.
    links_[cur].ended = true;
    retired_.insert(cur);
  }
  cur = x.link;
  auto& l = links_[x.link];
  l.upstream = x.upstream;
  if (!l.dirty) {
    l.dirty = true; // the first demand goes out with the next acknowledgements
    dirty_.push_back(x.link);
  }
  return demand{x.link, epoch_, l.consumed, window_};
}

void inbound_links::receive(link_items&& x) {
  auto i = links_.find(x.link);
  if (i == links_.end() || x.epoch != epoch_) {
    stale_ += x.items.size();
    return;
  }
  auto& l = i->second;
  if (!l.seen_items) {
    l.seen_items = true;
    l.expected = x.first_seq;
    l.consumed = x.first_seq;
  }
  size_t skip = 0;
  if (x.first_seq < l.expected) {
    skip = static_cast<size_t>(
      std::min<uint64_t>(l.expected - x.first_seq, x.items.size()));
    stale_ += skip;
  } else if (x.first_seq > l.expected) {
    gaps_ += x.first_seq - l.expected;
    l.consumed += x.first_seq - l.expected;
  }
  if (skip == x.items.size())
    return;
  l.expected = x.first_seq + x.items.size();
  queued_ += x.items.size() - skip;
  if (!queue_)
    queue_ = std::make_unique<std::deque<chunk>>();
  queue_->push_back(chunk{x.link, &l, std::move(x.items), skip});
}

void inbound_links::end(const end_of_stream& x) {
  auto i = links_.find(x.link);
  if (i == links_.end() || i->second.ended)
    return;
  i->second.ended = true;
  if (x.reason && !error_)
    error_ = x.reason;
}

item inbound_links::take() {
  auto& c = queue_->front();
  item result = std::move(c.items[c.next++]);
  ++c.state->consumed;
  if (!c.state->dirty) {
    c.state->dirty = true;
    dirty_.push_back(c.link);
  }
  --queued_;
  if (c.next == c.items.size())
    queue_->pop_front();
  return result;
}

bool inbound_links::all_ended() const noexcept {
  if (queued_ != 0)
    return false;
  for (auto& kvp : current_)
    if (!links_.at(kvp.second).ended)
      return false;
  return true;
}

} // namespace troupe
