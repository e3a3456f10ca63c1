// Workload `pipeline`: source -> validate -> transform (x*3+1) -> enrich
// (x ^ (x >> 7)) -> sink, built with spawn_pipeline, each step its own actor,
// 128 items of credit per link. The sink sums with wrapping add.
// `max_in_flight` is counted as in the Tokio reference: +1 as the source
// emits an item, -1 as the sink takes it.

#include "bench.hpp"

#include <troupe/patterns/pipeline.hpp>

#include <caf/all.hpp>

#include <atomic>
#include <stdexcept>

namespace troupe::bench {

namespace {

class summing_sink final : public stage_logic {
public:
  summing_sink(caf::actor driver, std::shared_ptr<flight_gauge> gauge)
    : driver_(std::move(driver)), gauge_(std::move(gauge)) {
  }
  void on_item(item& x, emitter&) override {
    gauge_->now.fetch_sub(1, std::memory_order_relaxed);
    ++count_;
    sum_ += x.get_as<uint64_t>(0);
  }
  void on_end(emitter&, const caf::error&) override {
    caf::anon_send(driver_, done_atom::value, count_, sum_, now_ns());
  }

private:
  caf::actor driver_;
  std::shared_ptr<flight_gauge> gauge_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

} // namespace

std::vector<pipeline_step> pipeline_front(uint64_t n, std::shared_ptr<int64_t> first,
                                          std::shared_ptr<flight_gauge> gauge) {
  auto next = std::make_shared<uint64_t>(0);
  return {
    source_step("source",
                [n, next, first, gauge](emitter& e, size_t max) {
                  if (*next == 0 && n > 0)
                    *first = now_ns();
                  for (size_t k = 0; k < max && *next < n; ++k) {
                    auto now = gauge->now.fetch_add(1, std::memory_order_relaxed) + 1;
                    if (now > gauge->peak)
                      gauge->peak = now;
                    e.push(make_item((*next)++));
                  }
                  return *next < n;
                }),
    function_step("validate", [](item& x, emitter& e) { e.push(std::move(x)); }),
    function_step("transform",
                  [](item& x, emitter& e) {
                    e.push(make_item(x.get_as<uint64_t>(0) * 3 + 1));
                  }),
    function_step("enrich",
                  [](item& x, emitter& e) {
                    auto v = x.get_as<uint64_t>(0);
                    e.push(make_item(v ^ (v >> 7)));
                  }),
  };
}

void pipeline_items(const options& opts, std::vector<result>& out) {
  auto n = opts.scaled(5'000'000);
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  auto gauge = std::make_shared<flight_gauge>();
  auto first = std::make_shared<int64_t>(0);
  pipeline_config cfg;
  cfg.credit = 128;
  cfg.steps = pipeline_front(n, first, gauge);
  cfg.steps.push_back(
    actor_step("sink", [driver = caf::actor{self}, gauge](const spawn_context& ctx,
                                                           stage_config links) {
      return spawn_stage(ctx, std::move(links),
                         std::make_unique<summing_sink>(driver, gauge));
    }));
  auto pipe = spawn_pipeline(sys, cfg);
  self->monitor(pipe);
  result r;
  r.workload = "pipeline";
  // Bounded: a pipeline that crashed or hangs fails the workload instead of
  // hanging the run (and is killed, since the system waits for its actors).
  auto fail = [&](const std::string& what) {
    caf::anon_send_exit(pipe, caf::exit_reason::kill);
    throw std::runtime_error("pipeline " + what);
  };
  self->receive(
    [&](done_atom, uint64_t count, uint64_t sum, int64_t end) {
      record_done(r, n, count, sum, *first, end);
    },
    [&](caf::down_msg& x) { fail("stopped early: " + sys.actors().render(x.reason)); },
    caf::after(bench_patience) >> [&] { fail("did not finish in time"); });
  self->receive([](caf::down_msg&) {}, // the pipeline stops once drained
                caf::after(bench_patience) >> [&] { fail("did not stop"); });
  r.add("max_in_flight", static_cast<uint64_t>(gauge->peak));
  out.push_back(std::move(r));
}

} // namespace troupe::bench
