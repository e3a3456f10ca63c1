// Workload `remote`: the `pipeline` workload with its sink in a second
// process, over 127.0.0.1, wired as a user of troupe's public API would:
//   - this program runs itself again as `troupe-bench --remote-sink CREDIT
//     PID` (peer_process.hpp); that process enables distribution, opens a
//     node on a free port, publishes a summing sink stage (input window
//     CREDIT) as "sink" with node::publish, and says its port on stdout;
//   - the driver enables distribution too, reach()es "sink", and gives the
//     handle to the pipeline as its `next`: source -> validate -> transform
//     -> enrich run here, and the last link (items, credit, end-of-stream)
//     crosses the node boundary;
//   - the driver asks the sink (sink_total_atom) for its count, checksum and
//     the time the stream ended there, answered once it has.
// The same invocation first runs the local `pipeline` with the same items,
// for `local_items_per_s` and `ratio_to_local`, then the remote one with the
// spec's window of 128 on every link, then again with a wide window
// (wide_credit) on the link that crosses the processes.

#include "bench.hpp"
#include "peer_process.hpp"

#include <troupe/actors/node.hpp>

#include <caf/all.hpp>

#include <iostream>
#include <stdexcept>
#include <string>

namespace troupe::bench {

namespace {

using sink_total_atom = caf::atom_constant<caf::atom("sinktotal")>;
using sink_done_atom = caf::atom_constant<caf::atom("sinkdone")>;

/// The window of the last link in the second run: enough items in flight
/// to cover the round trip between the processes (see bench/README.md).
constexpr uint32_t wide_credit = 2048;

/// Sums the uint64 items of its one input link; answers (sink_total_atom)
/// with (sink_done_atom, count, sum, end_ns) once the stream has ended.
class remote_sink final : public stage_logic {
public:
  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
  }

  void on_item(item& x, emitter&) override {
    ++count_;
    sum_ += x.get_as<uint64_t>(0);
  }

  void on_end(emitter&, const caf::error&) override {
    end_ns_ = now_ns();
    ended_ = true;
    answer();
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    if (!x.match_elements<sink_total_atom>())
      return caf::sec::unexpected_message;
    promise_ = ctl_->self()->make_response_promise();
    waiting_ = true;
    if (ended_)
      answer();
    return promise_;
  }

  void on_stop(const caf::error& reason) override {
    if (waiting_)
      promise_.deliver(reason ? reason : caf::make_error(caf::sec::runtime_error,
                                                         "the sink stopped early"));
    waiting_ = false;
  }

private:
  void answer() {
    if (!waiting_)
      return;
    waiting_ = false;
    promise_.deliver(sink_done_atom::value, count_, sum_, end_ns_);
  }

  stage_control* ctl_ = nullptr;
  caf::response_promise promise_;
  bool waiting_ = false;
  bool ended_ = false;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  int64_t end_ns_ = 0;
};

node_settings bench_node(std::string name) {
  node_settings ns;
  ns.name = std::move(name);
  ns.host = "127.0.0.1";
  ns.port = 0;
  return ns;
}

} // namespace

int remote_sink_main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "troupe-bench --remote-sink: needs the credit and the parent's pid\n";
    return 2;
  }
  if (!peer_process_guard(argv[3]))
    return 1;
  auto settings = bench_node("bench-sink");
  caf::actor_system_config cfg;
  enable_distribution(cfg, settings);
  apply_settings(cfg, bench_settings());
  troupe::system sys{cfg};
  stage_config links;
  links.credit = static_cast<uint32_t>(std::stoul(argv[2]));
  links.kind = "sink";
  auto sink = spawn_stage(sys, std::move(links), std::make_unique<remote_sink>());
  caf::scoped_actor self{sys.actors()};
  self->monitor(sink);
  int status = 0;
  {
    node here{sys.actors(), settings, &std::cerr};
    here.publish("sink", sink);
    std::cout << peer_port_prefix << here.port() << std::endl;
    self->receive(
      [&](caf::down_msg& x) {
        if (x.reason) {
          std::cerr << "troupe-bench: remote sink stopped: "
                    << sys.actors().render(x.reason) << "\n";
          status = 1;
        }
      },
      caf::after(bench_patience) >> [&] {
        std::cerr << "troupe-bench: remote sink: no end of stream in time\n";
        caf::anon_send_exit(sink, caf::exit_reason::kill);
        status = 1;
      });
  }
  return status;
}

namespace {

/// One run of the remote pipeline: links of 128 items inside this process,
/// `credit` on the last one, which the sink grants.
result run_remote(uint64_t n, uint32_t credit) {
  peer_process child{{"--remote-sink", std::to_string(credit)}};
  auto port = child.read_port(std::chrono::seconds(30));
  result r;
  r.workload = "remote";
  {
    auto settings = bench_node("bench");
    caf::actor_system_config cfg;
    enable_distribution(cfg, settings);
    apply_settings(cfg, bench_settings());
    troupe::system sys{cfg};
    auto sink = reach(sys.actors(), settings.host, port, "sink", std::chrono::seconds(30),
                      &std::cerr);
    if (!sink)
      throw std::runtime_error("cannot reach the remote sink: "
                               + sys.actors().render(sink.error()));
    caf::scoped_actor self{sys.actors()};
    self->monitor(*sink);
    // A plain send: the answer comes back as an ordinary message, so that
    // the receive below also sees a down_msg if the sink's process dies.
    self->send(*sink, sink_total_atom::value);
    auto first = std::make_shared<int64_t>(0);
    pipeline_config cfg_pipe;
    cfg_pipe.credit = 128;
    cfg_pipe.steps = pipeline_front(n, first, std::make_shared<flight_gauge>());
    cfg_pipe.next = {*sink};
    auto pipe = spawn_pipeline(sys, cfg_pipe);
    self->monitor(pipe);
    auto fail = [&](const std::string& what) {
      caf::anon_send_exit(pipe, caf::exit_reason::kill);
      throw std::runtime_error("remote pipeline " + what);
    };
    // The pipeline's down_msg usually comes first: it stops once the sink
    // acknowledged every item, before the end of the stream reaches the
    // sink and its answer comes back. The sink's own down_msg follows its
    // answer.
    bool answered = false;
    bool stopped = false;
    self->receive_while([&] { return !answered || !stopped; })(
      [&](sink_done_atom, uint64_t count, uint64_t sum, int64_t end) {
        answered = true;
        // Both processes read CLOCK_MONOTONIC (steady_clock), one clock per
        // machine: the same span as the local pipeline's.
        record_done(r, n, count, sum, *first, end);
      },
      [&](caf::error& e) { fail("sink answered: " + sys.actors().render(e)); },
      [&](caf::down_msg& x) {
        if (x.source == pipe.address()) {
          if (x.reason)
            fail("stopped early: " + sys.actors().render(x.reason));
          stopped = true;
        } else if (!answered) {
          fail("sink went down: " + sys.actors().render(x.reason));
        }
      },
      caf::after(bench_patience) >> [&] { fail("did not finish in time"); });
  }
  auto status = child.wait_exit(std::chrono::seconds(30));
  if (status != 0)
    throw std::runtime_error("the sink process ended with status "
                             + std::to_string(status));
  return r;
}

} // namespace

void remote_items(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(5'000'000);
  std::vector<result> local;
  pipeline_items(opts, local);
  const auto& base = local.at(0);
  if (base.lost != 0)
    throw std::runtime_error("the local pipeline lost " + std::to_string(base.lost)
                             + " items");
  auto r = run_remote(n, 128);
  auto wide = run_remote(n, wide_credit);
  auto rate = [](const result& x) { return x.seconds > 0 ? x.items / x.seconds : 0.0; };
  auto local_rate = rate(base);
  r.add("local_items_per_s", local_rate);
  r.add("ratio_to_local", local_rate > 0 ? rate(r) / local_rate : 0.0);
  r.add("wide_credit", static_cast<uint64_t>(wide_credit));
  r.add("wide_items_per_s", rate(wide));
  // The same items through the same steps: a different sum is an item
  // changed or lost on the way, which fails the line as pool's tuned run does.
  bool same = base.checksum == r.checksum && wide.checksum == r.checksum;
  r.add("checksums_agree", std::string{same ? "yes" : "no"});
  r.lost += wide.lost + (same ? 0 : 1);
  out.push_back(std::move(r));
}

} // namespace troupe::bench
