#include "topology/run_kinds.hpp"

#include <troupe/actors/stage.hpp>
#include <troupe/topology/kind.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace troupe::test {

namespace {

using namespace std::chrono_literals;

class numbers : public source_logic {
public:
  numbers(int64_t count, caf::timespan interval)
    : count_(count), interval_(interval) {
  }

  bool produce(emitter& out, size_t max) override {
    auto now = std::chrono::steady_clock::now();
    if (next_ == 0)
      start_ = now;
    // Paced: item n is due at start + n * interval; all those due go out as
    // credit allows (the stage asks again after a short delay when it
    // emitted nothing).
    auto due = count_;
    if (interval_ > caf::timespan{0})
      due = std::min<int64_t>(count_, (now - start_) / interval_ + 1);
    for (size_t i = 0; i < max && next_ < due; ++i)
      out.push(caf::make_message(next_++));
    return next_ < count_;
  }

private:
  int64_t count_;
  caf::timespan interval_;
  int64_t next_ = 0;
  std::chrono::steady_clock::time_point start_;
};

kind_definition numbers_kind() {
  return source_kind("test_numbers", "test source of integers",
                     [](kind_config& c) -> actor_starter {
                       auto count = c.integer("count", 10, 0, int64_t{1} << 40);
                       auto interval = c.duration("interval", 0s, 0s, 1h);
                       return [count, interval](const spawn_context& ctx,
                                                const wiring& w) {
                         return spawn_source(
                           ctx, w.links,
                           std::make_unique<numbers>(count, interval));
                       };
                     });
}

actor_starter pass_on(kind_config& c) {
  auto delay = c.duration("delay", 0s, 0s, 10s);
  return [delay](const spawn_context& ctx, const wiring& w) {
    return spawn_stage(ctx, w.links, [delay](item& x, emitter& out) {
      // Blocks its scheduler thread: tests only, for a drain that lasts.
      if (delay > caf::timespan{0})
        std::this_thread::sleep_for(delay);
      out.push(std::move(x));
    });
  };
}

kind_definition crash_kind() {
  return stage_kind("test_crash", "test stage that throws on every item",
                    [](kind_config&) -> actor_starter {
                      return [](const spawn_context& ctx, const wiring& w) {
                        return spawn_stage(ctx, w.links, [](item&, emitter&) {
                          throw std::runtime_error("test_crash crashes");
                        });
                      };
                    });
}

kind_definition call_kind() {
  auto def = stage_kind("test_call", "test stage in front of a service",
                        pass_on);
  def.min_services = 1;
  def.max_services = 1;
  return def;
}

kind_definition echo_kind() {
  return service_kind("test_echo", "test service answering an integer",
                      [](kind_config&) -> actor_starter {
                        return [](const spawn_context& ctx, const wiring&) {
                          // An unused argument: CAF 0.17 trips UBSan when
                          // a spawned function takes none.
                          return ctx.system().spawn(
                            [](int) -> caf::behavior {
                              return {[](int64_t x) { return x; }};
                            },
                            0);
                        };
                      });
}

kind_definition stubborn_kind() {
  return service_kind(
    "test_stubborn", "test service that ignores the first request to stop",
    [](kind_config&) -> actor_starter {
      return [](const spawn_context& ctx, const wiring&) {
        // An unused argument: CAF 0.17 trips UBSan when a spawned function
        // takes none besides its self pointer.
        return ctx.system().spawn([](caf::event_based_actor* self, int) -> caf::behavior {
          // A drain's exit message is ignored, a cancel's honoured.
          auto asked = std::make_shared<bool>(false);
          self->set_exit_handler([self, asked](caf::exit_msg& x) {
            if (*asked)
              self->quit(x.reason);
            *asked = true;
          });
          return {[](int64_t x) { return x; }};
        }, 0);
      };
    });
}

} // namespace

void register_run_kinds() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_kind(numbers_kind());
    register_kind(stage_kind("test_pass", "test stage passing items on", pass_on));
    register_kind(crash_kind());
    register_kind(call_kind());
    register_kind(sink_kind("test_sink", "test sink",
                            [](kind_config&) -> actor_starter {
                              return [](const spawn_context& ctx,
                                        const wiring& w) {
                                return spawn_stage(ctx, w.links,
                                                   [](item&, emitter&) {});
                              };
                            }));
    register_kind(echo_kind());
    register_kind(stubborn_kind());
  });
}

} // namespace troupe::test
