#pragma once

// Stream ends for pattern tests: the test itself can play a stage's upstream
// (to hand in items at moments it chooses), and a sink reports every item it
// takes to the test, stamped with the time it took it.

#include "fixture.hpp"

#include <troupe/actors/stage.hpp>
#include <troupe/actors/stream_link.hpp>

#include <chrono>
#include <initializer_list>
#include <vector>

namespace troupe::test {

using sink_item_atom = caf::atom_constant<caf::atom("sinkitem")>;
using sink_end_atom = caf::atom_constant<caf::atom("sinkend")>;

using steady = std::chrono::steady_clock;

/// Nanoseconds on the steady clock, as a message can carry them.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           steady::now().time_since_epoch())
    .count();
}

/// The integers from, from + step, ... below `to`, as items.
inline std::vector<item> numbers(uint64_t from, uint64_t to, uint64_t step = 1) {
  std::vector<item> result;
  for (auto i = from; i < to; i += step)
    result.push_back(caf::make_message(i));
  return result;
}

/// The given integers, as items.
inline std::vector<item> numbers(std::initializer_list<uint64_t> xs) {
  std::vector<item> result;
  for (auto x : xs)
    result.push_back(caf::make_message(x));
  return result;
}

/// Sends (sink_item_atom, item, now_ns()) to `observer` for each item, and
/// (sink_end_atom, count) at end of stream.
class reporting_sink final : public stage_logic {
public:
  explicit reporting_sink(caf::actor observer) : observer_(std::move(observer)) {
  }
  void on_item(item& x, emitter&) override {
    ++count_;
    caf::anon_send(observer_, sink_item_atom::value, x, now_ns());
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, sink_end_atom::value, count_);
  }

private:
  caf::actor observer_;
  uint64_t count_ = 0;
};

inline caf::actor spawn_reporting_sink(spawn_context ctx, caf::actor observer) {
  return spawn_stage(std::move(ctx), stage_config{},
                     std::make_unique<reporting_sink>(std::move(observer)));
}

/// The test as the upstream of one link into `downstream`. It waits for the
/// first demand to learn the window and epoch; after that it sends without
/// looking at credit, so a test must stay within the window it was granted
/// unless it calls await_credit.
class manual_upstream {
public:
  manual_upstream(caf::scoped_actor& self, caf::actor downstream)
    : self_(self), down_(std::move(downstream)), link_(new_link_id()) {
    self_->send(down_, link_open{caf::actor{self_}, link_});
    await_credit(0);
  }

  /// Waits until the downstream acknowledged every item up to `acked`;
  /// returns the window it grants.
  uint32_t await_credit(uint64_t acked) {
    for (;;) {
      bool got = false;
      demand d;
      self_->receive(
        [&](const demand& x) {
          d = x;
          got = x.link == link_;
        },
        caf::after(patience) >> [&] { BOOST_FAIL("no demand from the downstream"); });
      if (got) {
        epoch_ = d.epoch;
        if (d.acked >= acked)
          return d.window;
      }
    }
  }

  void push(std::vector<item> xs) {
    auto n = xs.size();
    self_->send(down_, link_items{link_, epoch_, seq_, std::move(xs)});
    seq_ += n;
  }

  void push(uint64_t x) {
    push(std::vector<item>{caf::make_message(x)});
  }

  void end() {
    self_->send(down_, end_of_stream{link_, caf::error{}});
  }

  uint64_t sent() const {
    return seq_;
  }

private:
  caf::scoped_actor& self_;
  caf::actor down_;
  uint64_t link_;
  uint64_t epoch_ = 0;
  uint64_t seq_ = 0;
};

/// A sink's (sink_item_atom, item, time) message.
struct sunk {
  item value;
  int64_t at_ns = 0;
};

inline sunk receive_sunk(system_fixture& f) {
  sunk result;
  bool got = false;
  f.self->receive(
    [&](sink_item_atom, item& x, int64_t at) {
      result = sunk{std::move(x), at};
      got = true;
    },
    caf::after(patience) >> [] { BOOST_FAIL("no item reached the sink"); });
  BOOST_REQUIRE(got);
  return result;
}

inline uint64_t receive_sink_end(system_fixture& f) {
  uint64_t count = 0;
  f.self->receive([&](sink_end_atom, uint64_t n) { count = n; },
                  caf::after(patience) >> [] { BOOST_FAIL("the sink never ended"); });
  return count;
}

} // namespace troupe::test
