#include "troupe/actors/messages.hpp"

#include "troupe/actors/errors.hpp"

#include <caf/exit_reason.hpp>

namespace troupe {

std::string to_string(stop_reason x) {
  switch (x) {
    case stop_reason::running:
      return "running";
    case stop_reason::completed:
      return "completed";
    case stop_reason::drained:
      return "drained";
    case stop_reason::cancelled:
      return "cancelled";
    case stop_reason::killed:
      return "killed";
    case stop_reason::crashed:
      return "crashed";
    case stop_reason::stopped:
      return "stopped";
  }
  return "unknown";
}

stop_reason stop_reason_of(const caf::error& reason, bool draining) {
  if (!reason || reason == caf::exit_reason::normal)
    return draining ? stop_reason::drained : stop_reason::completed;
  if (reason == errc::cancelled)
    return stop_reason::cancelled;
  if (reason == caf::exit_reason::kill
      || reason == errc::shutdown_deadline)
    return stop_reason::killed;
  if (reason == caf::exit_reason::user_shutdown)
    return stop_reason::stopped;
  return stop_reason::crashed;
}

} // namespace troupe
