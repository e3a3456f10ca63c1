#pragma once

// Typed services: an actor with a CAF typed interface
// (caf::typed_actor<caf::replies_to<...>::with<...>, ...>) that is also a
// troupe actor, and the calls to it with a deadline and a typed error.
//
//   using calc = caf::typed_actor<
//     caf::replies_to<caf::add_atom, int32_t, int32_t>::with<int32_t>>;
//   calc c = spawn_service<calc>(sys, [](calc::pointer) -> calc::behavior_type {
//     return {[](caf::add_atom, int32_t a, int32_t b) { return a + b; }};
//   });
//   call(self, c, 1s, caf::add_atom::value, 1, 2)
//     .then([](int32_t sum) {...}, [](caf::error& e) {...});  // in an actor
//   caf::expected<int32_t> r = call_sync(c, 1s, caf::add_atom::value, 1, 2);
//
// CAF checks at compile time that the handlers of the behavior match the
// interface, and that a call's arguments and result handler match it too.
//
// Besides its interface, a service understands (sent untyped, as a
// supervisor does):
//   drain_atom   stops it normally (report: drained).
//   cancel_atom  stops it with errc::cancelled.
//   status_atom  -> actor_report.
// When supervised (or given report_to), it sends its final actor_report to
// its supervisor as it stops, crash and kill included. A handler that throws
// crashes it with caf::sec::runtime_error and the exception's text, which
// is also what the request in progress is answered with.
//
// A request for drain or cancel (not only a plain send) is answered with an
// empty message as the service stops.
//
// Its actor_report (kind "service"): in = requests its interface matched,
// out = answered with a value, errors = answered with an error. `stats`:
//   requests     messages its interface matched
//   answered     handlers that returned a value
//   errors       handlers that returned an error, or threw
//   deferred     handlers that answered later through a response promise or
//                delegated the request (their outcome is not seen here)
//   unexpected   messages outside the interface and the control atoms
//                (answered caf::sec::unexpected_message)
// The counting wraps the behavior `fun` returns: a service that calls
// become() drops it, and its counters stop there without notice.
//
// A request answered through a promise that the service still holds when
// it stops gets no answer (CAF 0.17 sends nothing for a dropped promise):
// callers of such a service rely on their call timeout.

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/spawn_context.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/behavior.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/function_view.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>
#include <caf/timespan.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace troupe {

namespace service_detail {

// What one service incarnation counts, shared by its behavior and the functor
// that reports when it stops.
class service_core;

std::shared_ptr<service_core> make_core(const spawn_context& ctx);

// Installs the control handlers and the exit report on `self`, and wraps the
// user's behavior so that its results are counted.
caf::behavior start(caf::scheduled_actor* self,
                    const std::shared_ptr<service_core>& core,
                    caf::behavior inner);

} // namespace service_detail

/// Spawns a service with the typed interface `Handle` (a caf::typed_actor):
/// `fun(self)` returns its `Handle::behavior_type`. The service answers
/// drain/cancel/status, counts its requests and reports to its supervisor. A
/// child_spec factory returns `caf::actor_cast<caf::actor>(handle)`;
/// siblings reach it at `caf::actor_cast<Handle>(ctx.sibling(name))`.
template <class Handle, class F>
Handle spawn_service(spawn_context ctx, F fun) {
  using pointer = typename Handle::pointer;
  using behavior_type = typename Handle::behavior_type;
  static_assert(std::is_convertible<decltype(fun(std::declval<pointer>())),
                                    behavior_type>::value,
                "spawn_service: fun(Handle::pointer) must return "
                "Handle::behavior_type");
  auto core = service_detail::make_core(ctx);
  // The core and the function travel as spawn arguments: CAF 0.17 trips
  // UBSan when a spawned function takes no arguments.
  auto init = [](pointer self, std::shared_ptr<service_detail::service_core> c,
                 F f) -> behavior_type {
    behavior_type inner = f(self);
    return behavior_type{typename behavior_type::unsafe_init{},
                         service_detail::start(self, c, std::move(inner.unbox()))};
  };
  return ctx.system().spawn(init, std::move(core), std::move(fun));
}

/// A child spec that runs spawn_service<Handle>(ctx, fun) under a
/// supervisor. Callers reach it at caf::actor_cast<Handle>(address), where
/// address is its stable address (ctx.sibling(name), or the supervisor's
/// (get_atom, name)).
template <class Handle, class F>
child_spec service_child(std::string name, F fun,
                         restart_type restart = restart_type::permanent) {
  child_spec spec;
  spec.name = std::move(name);
  spec.restart = restart;
  spec.start = [fun](const spawn_context& ctx) {
    return caf::actor_cast<caf::actor>(spawn_service<Handle>(ctx, fun));
  };
  return spec;
}

/// The error a call answers when `err` is CAF's own request timeout:
/// errc::call_timeout, saying how long it waited; any other error unchanged.
caf::error as_call_error(caf::error err, caf::timespan timeout);

/// A request made by call(): `.then(on_value, on_error)` with a value handler
/// that CAF checks against the interface, and an error handler that is
/// required (without one, a failed request would kill the caller).
template <class Handle>
class call_handle {
public:
  call_handle(Handle h, caf::timespan timeout)
    : handle_(std::move(h)), timeout_(timeout) {
    // nop
  }

  template <class F, class G>
  void then(F on_value, G on_error) {
    auto t = timeout_;
    handle_.then(std::move(on_value), [t, on_error](caf::error& e) mutable {
      auto err = as_call_error(std::move(e), t);
      on_error(err);
    });
  }

private:
  Handle handle_;
  caf::timespan timeout_;
};

/// From inside an event-based actor: sends `xs...` to the service `dest`
/// and returns a handle to attach the result handlers to. A service that
/// does not answer within `timeout` fails the call with errc::call_timeout;
/// a service that is down fails it with caf::sec::request_receiver_down; an
/// error the service answers reaches the error handler unchanged.
template <class Self, class Handle, class... Ts>
auto call(Self* self, const Handle& dest, caf::timespan timeout, Ts&&... xs) {
  auto h = self->request(dest, caf::duration{timeout}, std::forward<Ts>(xs)...);
  return call_handle<decltype(h)>{std::move(h), timeout};
}

/// From outside any actor (a main function, a test): blocks until the
/// service answers or `timeout` passes (a null handle: caf::sec::bad_function_call). The result is the answer's value (a
/// std::tuple when it has several) or the error, as for call().
template <class Handle, class... Ts>
auto call_sync(const Handle& dest, caf::timespan timeout, Ts&&... xs) {
  auto view = caf::make_function_view(dest, caf::duration{timeout});
  auto result = view(std::forward<Ts>(xs)...);
  if (!result)
    result = as_call_error(std::move(result.error()), timeout);
  return result;
}

} // namespace troupe
