#include "troupe/patterns/service.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/behavior_impl.hpp>
#include <caf/detail/invoke_result_visitor.hpp>
#include <caf/make_counted.hpp>
#include <caf/message_view.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <exception>
#include <string>

namespace troupe {

namespace service_detail {

class service_core {
public:
  explicit service_core(spawn_context ctx) : ctx_(std::move(ctx)) {
    // nop
  }

  actor_report report(stop_reason how) const {
    actor_report r;
    r.name = ctx_.name();
    r.kind = "service";
    r.in = requests;
    r.out = answered;
    r.errors = errors;
    r.restarts = ctx_.restarts();
    r.stopped = how;
    r.stats["requests"] = static_cast<int64_t>(requests);
    r.stats["answered"] = static_cast<int64_t>(answered);
    r.stats["errors"] = static_cast<int64_t>(errors);
    r.stats["deferred"] = static_cast<int64_t>(deferred);
    r.stats["unexpected"] = static_cast<int64_t>(unexpected);
    return r;
  }

  void on_exit(const caf::error& reason) {
    if (!ctx_.supervisor())
      return;
    auto r = report(stop_reason_of(reason, draining));
    if (reason)
      r.error = ctx_.system().render(reason);
    caf::anon_send(ctx_.supervisor(), std::move(r));
  }

  uint64_t requests = 0;
  uint64_t answered = 0;
  uint64_t errors = 0;
  uint64_t deferred = 0;
  uint64_t unexpected = 0;
  bool draining = false;

private:
  spawn_context ctx_;
};

namespace {

// Passes a handler's result on to CAF's visitor, counting it on the way.
class counting_visitor final : public caf::detail::invoke_result_visitor {
public:
  counting_visitor(caf::detail::invoke_result_visitor& next, service_core& core)
    : next_(next), core_(core) {
    // nop
  }

  void operator()() override {
    ++core_.deferred;
    next_();
  }

  void operator()(caf::error& x) override {
    ++core_.errors;
    next_(x);
  }

  void operator()(caf::message& x) override {
    ++core_.answered;
    next_(x);
  }

  void operator()(const caf::none_t& x) override {
    ++core_.answered;
    next_(x);
  }

private:
  caf::detail::invoke_result_visitor& next_;
  service_core& core_;
};

// The user's behavior, with every result it produces counted.
class counting_behavior final : public caf::detail::behavior_impl {
public:
  counting_behavior(caf::behavior inner, std::shared_ptr<service_core> core)
    : caf::detail::behavior_impl(inner.timeout()),
      inner_(std::move(inner)),
      core_(std::move(core)) {
    // nop
  }

  caf::match_case::result invoke(caf::detail::invoke_result_visitor& f,
                                 caf::type_erased_tuple& xs) override {
    counting_visitor counted{f, *core_};
    caf::match_case::result result;
    try {
      result = inner_.as_behavior_impl()->invoke(counted, xs);
    } catch (...) {
      // The handler matched and threw: the service crashes and the request
      // is answered with the crash reason, an error.
      ++core_->requests;
      ++core_->errors;
      throw;
    }
    if (result == caf::match_case::match)
      ++core_->requests;
    return result;
  }

  caf::match_case::result invoke_empty(caf::detail::invoke_result_visitor& f) override {
    counting_visitor counted{f, *core_};
    auto result = inner_.as_behavior_impl()->invoke_empty(counted);
    if (result == caf::match_case::match)
      ++core_->requests;
    return result;
  }

  void handle_timeout() override {
    inner_.handle_timeout();
  }

private:
  caf::behavior inner_;
  std::shared_ptr<service_core> core_;
};

} // namespace

std::shared_ptr<service_core> make_core(const spawn_context& ctx) {
  ctx.declare(child_protocol{true, false});
  return std::make_shared<service_core>(ctx);
}

caf::behavior start(caf::scheduled_actor* self,
                    const std::shared_ptr<service_core>& core,
                    caf::behavior inner) {
  self->attach_functor([core](const caf::error& reason) { core->on_exit(reason); });
  // A handler that throws crashes the service (its supervisor decides what
  // next); the reason says what it threw, for the caller and the report.
  self->set_exception_handler([](std::exception_ptr& ep) -> caf::error {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      return caf::make_error(caf::sec::runtime_error, e.what());
    } catch (...) {
      return caf::make_error(caf::sec::runtime_error, "unknown exception");
    }
  });
  // The control atoms are outside the typed interface: they reach the
  // default handler, as does anything else the interface does not match.
  self->set_default_handler(
    [core](caf::scheduled_actor* me,
           caf::message_view& x) -> caf::result<caf::message> {
      auto msg = x.move_content_to_message();
      // Drain and cancel answer an empty message, as a stage does: a
      // request for them completes, and CAF drops the empty reply to a plain
      // send (a supervisor's), which takes the report from the exit.
      if (msg.match_elements<status_atom>())
        return caf::make_message(core->report(stop_reason::running));
      if (msg.match_elements<drain_atom>()
          || msg.match_elements<drain_atom, caf::timespan>()) {
        core->draining = true;
        me->quit();
        return caf::message{};
      }
      if (msg.match_elements<cancel_atom>()) {
        me->quit(make_error(errc::cancelled));
        return caf::message{};
      }
      ++core->unexpected;
      return caf::sec::unexpected_message;
    });
  caf::behavior::impl_ptr impl{caf::make_counted<counting_behavior>(std::move(inner), core)};
  return caf::behavior{impl};
}

} // namespace service_detail

caf::error as_call_error(caf::error err, caf::timespan timeout) {
  if (err != caf::sec::request_timeout)
    return err;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  return make_error(errc::call_timeout,
                    "no answer within " + std::to_string(ms) + " ms");
}

} // namespace troupe
