// A supervised pipeline defined in code, shut down gracefully mid-stream.
//
//   source (0, 1, 2, ... endless) -> transform (x*3+1) -> sink (count, sum)
//
// The three stages run under one supervisor. Once the sink has seen
// --items-before-shutdown items, the program asks the supervisor for a
// graceful shutdown: the source stops, what is in flight drains through the
// stages, and the report shows every item the source emitted reaching the
// sink. SIGINT or SIGTERM does the same at any time (a second one cancels).
//
// Exit status: 0 when nothing was lost and the checksum matches, 1 otherwise.

#include <troupe/actors/stage.hpp>
#include <troupe/actors/system.hpp>
#include <troupe/supervision/shutdown.hpp>
#include <troupe/supervision/supervisor.hpp>

#include <caf/all.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace troupe;

namespace {

using progress_atom = caf::atom_constant<caf::atom("progress")>;
using sink_done_atom = caf::atom_constant<caf::atom("sinkdone")>;

child_spec source_child() {
  child_spec spec;
  spec.name = "source";
  spec.restart = restart_type::transient;
  spec.start = [](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling("transform")};
    auto next = std::make_shared<uint64_t>(0);
    return spawn_source(ctx, cfg, [next](emitter& out, size_t max) {
      for (size_t i = 0; i < max; ++i)
        out.push(caf::make_message((*next)++));
      return true; // endless: only a shutdown ends it
    });
  };
  return spec;
}

child_spec transform_child() {
  child_spec spec;
  spec.name = "transform";
  spec.restart = restart_type::transient;
  spec.start = [](const spawn_context& ctx) {
    stage_config cfg;
    cfg.next = {ctx.sibling("sink")};
    return spawn_stage(ctx, cfg, [](item& x, emitter& out) {
      out.push(caf::make_message(x.get_as<uint64_t>(0) * 3 + 1));
    });
  };
  return spec;
}

// Counts and sums what arrives; tells `observer` when `threshold` items have
// arrived and, at end of stream, the final count and sum.
class counting_sink final : public stage_logic {
public:
  counting_sink(caf::actor observer, uint64_t threshold)
    : observer_(std::move(observer)), threshold_(threshold) {
  }
  void on_item(item& x, emitter&) override {
    sum_ += x.get_as<uint64_t>(0);
    if (++count_ == threshold_)
      caf::anon_send(observer_, progress_atom::value, count_);
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

child_spec sink_child(caf::actor observer, uint64_t threshold) {
  child_spec spec;
  spec.name = "sink";
  spec.restart = restart_type::transient;
  spec.start = [observer, threshold](const spawn_context& ctx) {
    return spawn_stage(ctx, stage_config{},
                       std::make_unique<counting_sink>(observer, threshold));
  };
  return spec;
}

uint64_t parse_items(int argc, char** argv) {
  uint64_t items = 1'000'000;
  const std::string flag = "--items-before-shutdown=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(flag, 0) == 0) {
      items = std::stoull(arg.substr(flag.size()));
    } else {
      std::cerr << "usage: " << argv[0] << " [" << flag << "N]\n";
      std::exit(2);
    }
  }
  return items;
}

} // namespace

int main(int argc, char** argv) {
  auto threshold = parse_items(argc, argv);
  troupe::system sys;
  caf::scoped_actor self{sys.actors()};
  supervisor_spec spec;
  spec.name = "pipeline";
  spec.strategy = restart_strategy::rest_for_one;
  spec.children = {sink_child(self, threshold), transform_child(),
                   source_child()};
  // The root reports to this program when it stops, whoever stopped it.
  auto root = spawn_supervisor(spawn_context{sys}.report_to(self), spec);
  signal_hook signals{root};
  std::cout << "pipeline running on " << sys.actors().scheduler().num_workers()
            << " scheduler threads: source -> transform -> sink" << std::endl;
  uint64_t count = 0;
  uint64_t sum = 0;
  actor_report report;
  bool sink_done = false;
  bool root_done = false;
  while (!sink_done || !root_done)
    self->receive(
      [&](progress_atom, uint64_t n) {
        std::cout << "sink has " << n << " items; asking for a graceful shutdown"
                  << std::endl;
        self->send(root, drain_atom::value);
      },
      [&](sink_done_atom, uint64_t c, uint64_t s) {
        count = c;
        sum = s;
        sink_done = true;
      },
      [&](actor_report& r) {
        report = std::move(r);
        root_done = true;
        sink_done = sink_done || report.stopped != stop_reason::drained;
      });
  std::cout << "\nreport:\n" << to_text(report);
  uint64_t emitted = 0;
  for (auto& child : report.children)
    if (child.name == "source")
      emitted = child.out;
  uint64_t expected = 0;
  for (uint64_t i = 0; i < emitted; ++i)
    expected += i * 3 + 1;
  auto t = totals(report);
  std::cout << "\nsource emitted " << emitted << " items; sink received "
            << count << "; checksum " << (sum == expected ? "ok" : "MISMATCH")
            << "; lost " << (emitted - count) + t.lost << "; dropped "
            << t.dropped << std::endl;
  return report.stopped == stop_reason::drained && count == emitted
             && sum == expected && t.lost == 0 && t.dropped == 0
           ? 0
           : 1;
}
