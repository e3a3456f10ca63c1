// Workload `fanout`: 2,000,000 items from a source through spawn_fanout (16
// items in flight, completion order, like buffer_unordered(16)), each item
// 64 rounds of splitmix64; a sink sums the results. The main line gives the
// work as a function (fanout_config::process, run on the fan-out's own
// runners with the default settings), as a Tokio user writes a closure; 16
// fixed processor actors taking one item per call are an extra field.

#include "bench.hpp"

#include <troupe/patterns/fanout.hpp>

#include <caf/all.hpp>

#include <stdexcept>

namespace troupe::bench {

namespace {

constexpr uint32_t concurrency = 16;

caf::behavior mixer(caf::event_based_actor*, int rounds) {
  return {[rounds](uint64_t x) { return mix_rounds(x, rounds); }};
}

class summing_sink final : public stage_logic {
public:
  explicit summing_sink(caf::actor driver) : driver_(std::move(driver)) {
  }
  void on_item(item& x, emitter&) override {
    if (!x.match_elements<uint64_t>()) {
      ++failed_;
      return;
    }
    ++count_;
    sum_ += x.get_as<uint64_t>(0);
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, count_, sum_, now_ns());
  }

private:
  caf::actor driver_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t failed_ = 0;
};

enum class processors_as { function, actor };

result run_fanout(const options& opts, processors_as kind) {
  auto n = opts.scaled(2'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  fanout_config cfg;
  cfg.max_in_flight = concurrency;
  cfg.order = fanout_config::order_policy::completion;
  if (kind == processors_as::function)
    cfg.process = [](item& x) -> caf::expected<item> {
      return make_item(mix_rounds(x.get_as<uint64_t>(0), 64));
    };
  else
    for (uint32_t i = 0; i < concurrency; ++i)
      cfg.processors.push_back(sys.actors().spawn(mixer, 64));
  auto sink = spawn_stage(sys, stage_config{}, std::make_unique<summing_sink>(self));
  stage_config to_sink;
  to_sink.next = {sink};
  auto fan = spawn_fanout(sys, cfg, to_sink);
  stage_config to_fan;
  to_fan.next = {fan};
  auto first = std::make_shared<int64_t>(0);
  auto source = spawn_source(sys, to_fan, count_to(n, first));
  result r;
  r.workload = "fanout";
  auto stop_processors = [&] {
    for (auto& p : cfg.processors)
      caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
  };
  // Bounded: a crashed stage fails the workload instead of hanging the run.
  self->receive(
    [&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
      record_done(r, n, count, sum, *first, end);
    },
    caf::after(bench_patience) >> [&] {
      for (auto& a : {source, fan, sink})
        caf::anon_send_exit(a, caf::exit_reason::kill);
      stop_processors();
      throw std::runtime_error("fanout did not finish in time");
    });
  stop_processors();
  return r;
}

} // namespace

void fanout_items(const options& opts, std::vector<result>& out) {
  auto r = run_fanout(opts, processors_as::function);
  add_side_run(r, run_fanout(opts, processors_as::actor), "actor_processors");
  out.push_back(std::move(r));
}

} // namespace troupe::bench
