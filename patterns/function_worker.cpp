#include "troupe/patterns/function_worker.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"

#include <caf/event_based_actor.hpp>

#include <exception>
#include <utility>

namespace troupe {

namespace {

item result_of(const job_function& f, item& x) {
  try {
    auto r = f(x);
    if (r)
      return std::move(*r);
    return caf::make_message(std::move(r.error()));
  } catch (const std::exception& e) {
    return caf::make_message(make_error(errc::job_threw, e.what()));
  } catch (...) {
    return caf::make_message(make_error(errc::job_threw, "unknown exception"));
  }
}

caf::behavior function_worker(caf::event_based_actor*, job_function f) {
  return {
    [f{std::move(f)}](batch& xs) {
      for (auto& x : xs.items)
        x = result_of(f, x);
      return std::move(xs);
    },
  };
}

} // namespace

caf::actor spawn_function_worker(caf::actor_system& sys, job_function f) {
  return sys.spawn(function_worker, std::move(f));
}

} // namespace troupe
