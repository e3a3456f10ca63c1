#include "troupe/patterns/batcher.hpp"

#include "troupe/actors/errors.hpp"

#include <caf/binary_serializer.hpp>
#include <caf/make_message.hpp>

#include <algorithm>
#include <vector>

namespace troupe {

void batcher_config::validate() const {
  if (size == 0)
    throw config_error("batcher_config", "size is 0: a batch holds at least one item");
  if (timeout <= caf::timespan{0})
    throw config_error("batcher_config", "timeout must be positive");
}

namespace {

class batcher final : public stage_logic {
public:
  batcher(caf::actor_system& sys, batcher_config cfg)
    : sys_(sys), cfg_(std::move(cfg)) {
    held_.reserve(reserve_size());
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
  }

  void on_item(item& x, emitter& out) override {
    size_t bytes = 0;
    if (cfg_.max_bytes > 0) {
      bytes = bytes_of(x);
      if (!held_.empty() && held_bytes_ + bytes > cfg_.max_bytes)
        emit(out, byte_capped_);
    }
    if (held_.empty())
      ctl_->schedule(cfg_.timeout, ++generation_);
    held_.push_back(std::move(x));
    held_bytes_ += bytes;
    if (held_.size() >= cfg_.size)
      emit(out, full_);
    else if (cfg_.max_bytes > 0 && held_bytes_ >= cfg_.max_bytes)
      emit(out, byte_capped_);
  }

  // Timers of batches that already left carry an older generation.
  void on_timer(uint64_t token, emitter& out) override {
    if (token == generation_ && !held_.empty())
      emit(out, timed_out_);
  }

  void on_end(emitter& out, const caf::error&) override {
    if (!held_.empty())
      emit(out, flushed_);
  }

  void describe(actor_report& r) const override {
    r.stats["items_out"] = static_cast<int64_t>(items_out_);
    r.stats["held"] = static_cast<int64_t>(held_.size());
    r.stats["full_batches"] = static_cast<int64_t>(full_);
    r.stats["timed_out"] = static_cast<int64_t>(timed_out_);
    r.stats["byte_capped"] = static_cast<int64_t>(byte_capped_);
    r.stats["flushed_batches"] = static_cast<int64_t>(flushed_);
    // A cancelled or crashed batcher loses its partial batch: counted.
    if (lost_what_it_held(r.stopped))
      r.dropped += held_.size();
  }

private:
  // A batch closed mostly by timeout or bytes may have a huge `size`.
  size_t reserve_size() const {
    return std::min<size_t>(cfg_.size, 1024);
  }

  size_t bytes_of(const item& x) {
    if (cfg_.bytes_of)
      return cfg_.bytes_of(x);
    buffer_.clear();
    caf::binary_serializer sink{sys_, buffer_};
    auto copy = x;
    if (auto err = sink(copy))
      throw std::runtime_error("batcher cannot weigh an item: " + sys_.render(err));
    return buffer_.size();
  }

  void emit(emitter& out, uint64_t& why) {
    ++why;
    ++generation_;
    items_out_ += held_.size();
    batch b;
    b.items.swap(held_);
    held_.reserve(reserve_size());
    held_bytes_ = 0;
    out.push(caf::make_message(std::move(b)));
  }

  caf::actor_system& sys_;
  batcher_config cfg_;
  stage_control* ctl_ = nullptr;
  std::vector<item> held_;
  size_t held_bytes_ = 0;
  std::vector<char> buffer_;
  uint64_t generation_ = 0;
  uint64_t items_out_ = 0;
  uint64_t full_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t byte_capped_ = 0;
  uint64_t flushed_ = 0;
};

} // namespace

caf::actor spawn_batcher(spawn_context ctx, batcher_config cfg,
                         stage_config links) {
  cfg.validate();
  if (links.kind.empty())
    links.kind = "batcher";
  auto& sys = ctx.system();
  return spawn_stage(std::move(ctx), std::move(links),
                     std::make_unique<batcher>(sys, std::move(cfg)));
}

} // namespace troupe
