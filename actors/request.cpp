#include "troupe/actors/request.hpp"

#include <caf/mailbox_element.hpp>
#include <caf/sec.hpp>

namespace troupe::detail {

caf::message_id send_request(caf::event_based_actor* self, const caf::actor& dest,
                             const caf::duration& timeout, caf::message msg,
                             caf::message_priority priority) {
  if (priority == caf::message_priority::high)
    return self->request<caf::message_priority::high>(dest, timeout, std::move(msg)).id();
  return self->request(dest, timeout, std::move(msg)).id();
}

caf::message take_answer(caf::event_based_actor* self, caf::type_erased_tuple& xs) {
  auto current = self->current_mailbox_element();
  if (current != nullptr && &current->content() == &xs)
    return current->move_content_to_message();
  return caf::message::copy(xs);
}

} // namespace troupe::detail

namespace troupe {

void expire_request(caf::event_based_actor* self, caf::message_id id) {
  // What CAF's clock enqueues when a request times out.
  self->enqueue(caf::make_mailbox_element(nullptr, id, {},
                                          caf::make_error(caf::sec::request_timeout)),
                self->context());
}

} // namespace troupe
