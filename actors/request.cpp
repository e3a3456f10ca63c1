#include "troupe/actors/request.hpp"

#include <caf/behavior.hpp>
#include <caf/detail/behavior_impl.hpp>
#include <caf/make_counted.hpp>

namespace troupe {

namespace {

// A response handler that matches every response: an error (a timeout, a
// dead receiver, an error answer) arrives as a message holding just it.
class any_response final : public caf::detail::behavior_impl {
public:
  any_response(answer_handler on_answer, failure_handler on_failure)
    : on_answer_(std::move(on_answer)), on_failure_(std::move(on_failure)) {
    // nop
  }

  caf::match_case::result invoke(caf::detail::invoke_result_visitor& visitor,
                                 caf::type_erased_tuple& xs) override {
    if (xs.size() == 1 && xs.match_element<caf::error>(0)) {
      auto err = xs.get_as<caf::error>(0);
      on_failure_(err);
    } else {
      auto msg = caf::message::copy(xs);
      on_answer_(msg);
    }
    // Without a result, CAF would take the response as unmatched and call
    // the handler again with sec::unexpected_response.
    visitor(caf::unit);
    return caf::match_case::match;
  }

private:
  answer_handler on_answer_;
  failure_handler on_failure_;
};

} // namespace

void request_any(caf::event_based_actor* self, const caf::actor& dest,
                 const caf::duration& timeout, caf::message msg,
                 answer_handler on_answer, failure_handler on_failure,
                 caf::message_priority priority) {
  auto id = priority == caf::message_priority::high
              ? self->request<caf::message_priority::high>(dest, timeout, std::move(msg)).id()
              : self->request(dest, timeout, std::move(msg)).id();
  caf::behavior::impl_ptr impl{caf::make_counted<any_response>(
    std::move(on_answer), std::move(on_failure))};
  self->add_multiplexed_response_handler(id, caf::behavior{impl});
}

} // namespace troupe
