#include "troupe/patterns/blocking.hpp"

#include "troupe/patterns/pool.hpp"

#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/result.hpp>
#include <caf/spawn_options.hpp>

#include <exception>
#include <string>

namespace troupe {

void blocking_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("blocking_config", what);
  };
  if (max_threads == 0)
    fail("max_threads is 0: blocking work needs at least one thread");
  if (job_timeout < caf::timespan{0})
    fail("job_timeout is negative (0 means no limit)");
  troupe::validate(worker_restarts, "blocking_config", "worker_restarts");
}

namespace {

// A detached actor, so the function blocks this thread and no scheduler
// thread. Exceptions are caught here rather than crashing the worker: a
// throwing function is an ordinary outcome of user code, and a restart would
// cost a thread start for nothing.
caf::behavior blocking_worker(caf::event_based_actor*, std::string name) {
  return {
    [name](blocking_job& job) -> caf::result<caf::message> {
      // Nobody waits for it: its answer would be discarded, and the call
      // may have effects its caller was told did not happen.
      if (job.abandoned && job.abandoned->load())
        return make_error(errc::cancelled,
                          name + ": the job was answered before it started");
      if (job.start_by != std::chrono::steady_clock::time_point{}
          && std::chrono::steady_clock::now() > job.start_by)
        return make_error(errc::call_timeout,
                          name + ": the job waited past its timeout for a thread");
      try {
        return job.run();
      } catch (const std::exception& e) {
        return make_error(errc::job_threw, e.what());
      } catch (...) {
        return make_error(errc::job_threw, "an exception not derived from std::exception");
      }
    },
  };
}

} // namespace

caf::actor spawn_blocking_executor(spawn_context ctx, blocking_config cfg) {
  cfg.validate();
  pool_config pool;
  pool.workers = cfg.max_threads;
  pool.worker = [](const spawn_context& wctx) {
    return wctx.system().spawn<caf::detached>(blocking_worker, wctx.name());
  };
  pool.policy = dispatch_policy::pull;
  pool.prefetch = 1;
  pool.queue_capacity = cfg.queue_capacity + cfg.max_threads;
  // Never twice: a blocking call may not be safe to repeat.
  pool.max_attempts = 1;
  pool.on_abandon = [](const item& msg) {
    if (msg.match_elements<blocking_job>())
      if (auto& flag = msg.get_as<blocking_job>(0).abandoned)
        flag->store(true);
  };
  pool.job_timeout = cfg.job_timeout;
  pool.worker_restarts = cfg.worker_restarts;
  if (ctx.name().empty())
    ctx = spawn_context{ctx.system(), "blocking", ctx.address(), ctx.supervisor(),
                        ctx.restarts(), nullptr};
  stage_config links;
  links.kind = "blocking";
  return spawn_pool(std::move(ctx), std::move(pool), std::move(links));
}

} // namespace troupe
