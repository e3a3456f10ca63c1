// Baseline `remote`: the baseline pipeline with its sink in a second
// process, as a plain CAF user would do it: that process (troupe-bench
// --remote-sink-caf PID) publishes a summing sink actor with io::publish on
// a free port of 127.0.0.1 and says the port; the driver gets it with
// io::remote_actor and makes it the enricher's next. Items, acknowledgements
// (every 32, 128 in flight) and the end cross the processes one message
// each. The driver asks the sink (total_atom) for its count, checksum and
// the time the end reached it.

#include "baseline.hpp"

#include "../peer_process.hpp"

#include <caf/io/all.hpp>

#include <iostream>
#include <stdexcept>

namespace troupe::bench::baseline {

namespace {

using total_atom = caf::atom_constant<caf::atom("bl_total")>;

struct remote_sink_state {
  credit_in in;
  uint64_t count = 0;
  uint64_t sum = 0;
  int64_t end_ns = 0;
  bool ended = false;
  bool asked = false;
  caf::response_promise promise;
};

// Answers (total_atom) with (done_atom, count, sum, end_ns) once the end
// came, then exits.
caf::behavior remote_summing_sink(caf::stateful_actor<remote_sink_state>* self) {
  auto answer = [self] {
    auto& st = self->state;
    st.promise.deliver(done_atom::value, st.count, st.sum, st.end_ns);
    self->quit();
  };
  return {
    [=](uint64_t x) {
      auto& st = self->state;
      st.in.from(self);
      ++st.count;
      st.sum += x;
      st.in.took(self);
    },
    [=](end_atom) {
      auto& st = self->state;
      st.end_ns = now_ns();
      st.ended = true;
      if (st.asked)
        answer();
    },
    [=](total_atom) {
      auto& st = self->state;
      st.promise = self->make_response_promise();
      st.asked = true;
      if (st.ended)
        answer();
    },
  };
}

// A plain CAF system with the middleman and the workloads' scheduler.
struct network_config : caf::actor_system_config {
  network_config() {
    load<caf::io::middleman>();
    apply_settings(*this, bench_settings());
  }
};

} // namespace

int remote_sink_main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "troupe-bench --remote-sink-caf: needs the parent's pid\n";
    return 2;
  }
  if (!peer_process_guard(argv[2]))
    return 1;
  network_config cfg;
  caf::actor_system sys{cfg};
  auto sink = sys.spawn(remote_summing_sink);
  auto port = caf::io::publish(sink, 0, "127.0.0.1", true);
  if (!port) {
    std::cerr << "troupe-bench: cannot publish the sink: " << sys.render(port.error())
              << "\n";
    caf::anon_send_exit(sink, caf::exit_reason::kill);
    return 1;
  }
  caf::scoped_actor self{sys};
  self->monitor(sink);
  std::cout << peer_port_prefix << *port << std::endl;
  int status = 0;
  self->receive(
    [&](caf::down_msg& x) {
      if (x.reason) {
        std::cerr << "troupe-bench: remote sink (caf) stopped: " << sys.render(x.reason)
                  << "\n";
        status = 1;
      }
    },
    caf::after(bench_patience) >> [&] {
      std::cerr << "troupe-bench: remote sink (caf): no end in time\n";
      caf::anon_send_exit(sink, caf::exit_reason::kill);
      status = 1;
    });
  return status;
}

void remote_items(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(5'000'000);
  std::vector<result> local;
  baseline::pipeline_items(opts, local);
  const auto& base = local.at(0);
  if (base.lost != 0)
    throw std::runtime_error("the local pipeline (caf) lost " + std::to_string(base.lost)
                             + " items");
  peer_process child{{"--remote-sink-caf"}};
  auto port = child.read_port(std::chrono::seconds(30));
  auto r = caf_result("remote");
  {
    network_config cfg;
    caf::actor_system sys{cfg};
    auto sink = caf::io::remote_actor(sys, "127.0.0.1", port);
    if (!sink)
      throw std::runtime_error("cannot reach the remote sink (caf): "
                               + sys.render(sink.error()));
    caf::scoped_actor self{sys};
    self->monitor(*sink);
    self->send(*sink, total_atom::value);
    auto first = std::make_shared<int64_t>(0);
    auto front = spawn_pipeline_front(sys, n, *sink, first, std::shared_ptr<flight_gauge>{});
    auto fail = [&](const std::string& what) {
      give_up({front[0], front[1], front[2], front[3]}, "remote pipeline (caf) " + what);
    };
    bool answered = false;
    self->receive_while([&] { return !answered; })(
      [&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
        answered = true;
        record_done(r, n, count, sum, *first, end);
      },
      [&](caf::error& e) { fail("sink answered: " + sys.render(e)); },
      [&](caf::down_msg& x) { fail("sink went down: " + sys.render(x.reason)); },
      caf::after(bench_patience) >> [&] { fail("did not finish in time"); });
  }
  auto status = child.wait_exit(std::chrono::seconds(30));
  if (status != 0)
    throw std::runtime_error("the sink process (caf) ended with status "
                             + std::to_string(status));
  auto rate = [](const result& x) { return x.seconds > 0 ? x.items / x.seconds : 0.0; };
  r.add("local_items_per_s", rate(base));
  r.add("ratio_to_local", rate(base) > 0 ? rate(r) / rate(base) : 0.0);
  bool same = base.checksum == r.checksum;
  r.add("checksums_agree", std::string{same ? "yes" : "no"});
  r.lost += same ? 0 : 1;
  out.push_back(std::move(r));
}

} // namespace troupe::bench::baseline
