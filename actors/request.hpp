#pragma once

// Requests whose answer may be of any type. A pattern in front of a service
// (breaker, pool, ...) relays whatever the service answers, but CAF 0.17
// matches response handlers by type and has no catch-all for them.

#include <caf/actor.hpp>
#include <caf/duration.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/message_priority.hpp>

#include <functional>

namespace troupe {

using answer_handler = std::function<void(caf::message& answer)>;
using failure_handler = std::function<void(caf::error& reason)>;

/// Sends `msg` to `dest` as a request of `self` and calls `on_answer` with the
/// answer, whatever its types, or `on_failure` with the error: one the
/// receiver answered, caf::sec::request_timeout after `timeout`
/// (caf::infinite: none), or the receiver being down. Exactly one of the two
/// is called.
void request_any(caf::event_based_actor* self, const caf::actor& dest,
                 const caf::duration& timeout, caf::message msg,
                 answer_handler on_answer, failure_handler on_failure,
                 caf::message_priority priority = caf::message_priority::normal);

} // namespace troupe
