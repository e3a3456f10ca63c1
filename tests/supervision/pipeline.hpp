#pragma once

// A supervised source -> transform -> sink pipeline for tests, wired by
// sibling names: the source emits 0, 1, 2, ...; the transform maps x to 3x+1;
// the sink counts and sums and tells an observer about it.

#include "fixture.hpp"

#include <troupe/actors/stage.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <limits>
#include <stdexcept>

namespace troupe::test {

using progress_atom = caf::atom_constant<caf::atom("progress")>;
using sink_done_atom = caf::atom_constant<caf::atom("sinkdone")>;

constexpr uint64_t endless = std::numeric_limits<uint64_t>::max();

/// Emits 0 .. limit-1, then ends its stream; `endless` never ends by itself.
inline child_spec counter_source(const std::string& next, uint64_t limit = endless) {
  child_spec spec;
  spec.name = "source";
  spec.restart = restart_type::transient;
  spec.start = [next, limit](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling(next)};
    auto n = std::make_shared<uint64_t>(0);
    return spawn_source(ctx, cfg, [n, limit](emitter& out, size_t max) {
      for (size_t k = 0; k < max && *n < limit; ++k)
        out.push(caf::make_message((*n)++));
      return *n < limit;
    });
  };
  return spec;
}

/// Maps x to 3x+1. Its first incarnation throws on the item `throw_at`.
inline child_spec transform_stage(const std::string& next,
                                  uint64_t throw_at = endless) {
  child_spec spec;
  spec.name = "transform";
  spec.restart = restart_type::transient;
  spec.start = [next, throw_at](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling(next)};
    auto first = ctx.restarts() == 0;
    return spawn_stage(ctx, cfg, [first, throw_at](item& x, emitter& out) {
      auto v = x.get_as<uint64_t>(0);
      if (first && v == throw_at)
        throw std::runtime_error("transform fails on " + std::to_string(v));
      out.push(caf::make_message(v * 3 + 1));
    });
  };
  return spec;
}

/// Counts and sums; sends (progress_atom) to `observer` once `threshold`
/// items arrived, and (sink_done_atom, count, sum) at end of stream.
class summing_sink final : public stage_logic {
public:
  summing_sink(caf::actor observer, uint64_t threshold)
    : observer_(std::move(observer)), threshold_(threshold) {
  }
  void on_item(item& x, emitter&) override {
    sum_ += x.get_as<uint64_t>(0);
    if (++count_ == threshold_)
      caf::anon_send(observer_, progress_atom::value);
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(observer_, sink_done_atom::value, count_, sum_);
  }

private:
  caf::actor observer_;
  uint64_t threshold_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

inline child_spec summing_sink_child(caf::actor observer, uint64_t threshold) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer, threshold](const spawn_context& ctx) {
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<summing_sink>(observer, threshold));
  };
  return spec;
}

/// Waits for the summing sink's (progress_atom): the pipeline is running.
inline void await_progress(system_fixture& f) {
  f.self->receive([](progress_atom) {},
                  caf::after(patience) >> [] { BOOST_FAIL("pipeline never ran"); });
}

struct sink_totals {
  uint64_t count = 0;
  uint64_t sum = 0;
};

/// Waits for a sink's (sink_done_atom, count, sum): its stream ended.
inline sink_totals receive_sink_done(system_fixture& f) {
  sink_totals result;
  f.self->receive(
    [&](sink_done_atom, uint64_t count, uint64_t sum) { result = {count, sum}; },
    caf::after(patience) >> [] { BOOST_FAIL("sink never ended"); });
  return result;
}

/// Sum of 3i+1 over i in 0..n-1, wrapping like the sink's sum.
inline uint64_t transformed_sum(uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i)
    sum += i * 3 + 1;
  return sum;
}

} // namespace troupe::test
