#pragma once

// Requests whose answer may be of any type. A pattern in front of a service
// (breaker, pool, ...) relays whatever the service answers, but CAF 0.17
// matches response handlers by type and has no catch-all for them.
//
// This is on the hot path of every request/response pattern, so a request
// costs one allocation of its own (the response handler, holding the two
// callbacks as they are, not behind std::function), and the answer is moved
// out of its mailbox element, not copied.

#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/detail/behavior_impl.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/make_counted.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <caf/message_priority.hpp>
#include <caf/unit.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace troupe {

using answer_handler = std::function<void(caf::message& answer)>;
using failure_handler = std::function<void(caf::error& reason)>;

namespace detail {

/// Sends `msg` as a request and returns its id (the part of request_any
/// that does not depend on the callbacks).
caf::message_id send_request(caf::event_based_actor* self, const caf::actor& dest,
                             const caf::duration& timeout, caf::message msg,
                             caf::message_priority priority);

/// The answer `xs` as a message: moved out of `self`'s current mailbox
/// element when `xs` is its content, else copied.
caf::message take_answer(caf::event_based_actor* self, caf::type_erased_tuple& xs);

/// A response handler that matches every response and hands it to
/// `handler`: `handler.answer(self, caf::type_erased_tuple&)` (the answer as
/// it is in the mailbox) or `handler.failure(caf::error&)` (an error: a
/// timeout, a dead receiver, an error answer, which arrives as a message
/// holding just it).
template <class Handler>
class any_response final : public caf::detail::behavior_impl {
public:
  any_response(caf::event_based_actor* self, Handler handler)
    : self_(self), handler_(std::move(handler)) {
    // nop
  }

  caf::match_case::result invoke(caf::detail::invoke_result_visitor& visitor,
                                 caf::type_erased_tuple& xs) override {
    if (xs.size() == 1 && xs.match_element<caf::error>(0)) {
      auto err = xs.get_as<caf::error>(0);
      handler_.failure(err);
    } else {
      handler_.answer(self_, xs);
    }
    // Without a result, CAF would take the response as unmatched and call
    // the handler again with sec::unexpected_response.
    visitor(caf::unit);
    return caf::match_case::match;
  }

private:
  caf::event_based_actor* self_;
  Handler handler_;
};

/// The two callbacks of request_any as an any_response handler.
template <class OnAnswer, class OnFailure>
struct answer_or_failure {
  OnAnswer on_answer;
  OnFailure on_failure;

  void answer(caf::event_based_actor* self, caf::type_erased_tuple& xs) {
    auto msg = take_answer(self, xs);
    on_answer(msg);
  }

  void failure(caf::error& x) {
    on_failure(x);
  }
};

/// Registers `handler` (see any_response) for the answer to `self`'s request
/// `id`: one allocation, holding the handler as it is.
template <class Handler>
void expect_any_response(caf::event_based_actor* self, caf::message_id id,
                         Handler handler) {
  caf::behavior::impl_ptr impl{
    caf::make_counted<any_response<Handler>>(self, std::move(handler))};
  self->add_multiplexed_response_handler(id, caf::behavior{std::move(impl)});
}

} // namespace detail

/// Sends `msg` to `dest` as a request of `self` and calls `on_answer` with the
/// answer, whatever its types (a `void(caf::message&)` callable), or
/// `on_failure` with the error (a `void(caf::error&)` callable): one the
/// receiver answered, caf::sec::request_timeout after `timeout`
/// (caf::infinite: none, and no entry in CAF's clock) or from
/// expire_request, or the receiver being down. Exactly one of the two is
/// called. Returns the id the answer will carry.
template <class OnAnswer, class OnFailure>
caf::message_id request_any(caf::event_based_actor* self, const caf::actor& dest,
                            const caf::duration& timeout, caf::message msg,
                            OnAnswer on_answer, OnFailure on_failure,
                            caf::message_priority priority
                            = caf::message_priority::normal) {
  using handler = detail::answer_or_failure<std::decay_t<OnAnswer>, std::decay_t<OnFailure>>;
  auto id = detail::send_request(self, dest, timeout, std::move(msg), priority);
  detail::expect_any_response(self, id, handler{std::move(on_answer), std::move(on_failure)});
  return id;
}

/// Ends the wait for the answer to `self`'s request `id` (as request_any
/// returns it: the id its answer will carry) as CAF's own
/// request timeout does: its handler gets caf::sec::request_timeout (unless
/// the answer is already queued before it), and a later answer is dropped.
/// For callers that keep their own deadlines instead of giving each request
/// a timeout, which costs an entry in CAF's clock (a message to its thread
/// and back) per request.
void expire_request(caf::event_based_actor* self, caf::message_id id);

} // namespace troupe
