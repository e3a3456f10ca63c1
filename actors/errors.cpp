#include "troupe/actors/errors.hpp"

#include <caf/make_message.hpp>

namespace troupe {

std::string to_string(errc x) {
  switch (x) {
    case errc::restart_intensity_exceeded:
      return "restart_intensity_exceeded";
    case errc::cancelled:
      return "cancelled";
    case errc::shutdown_deadline:
      return "shutdown_deadline";
    case errc::child_unavailable:
      return "child_unavailable";
    case errc::child_start_failed:
      return "child_start_failed";
    case errc::rate_limited:
      return "rate_limited";
    case errc::circuit_open:
      return "circuit_open";
    case errc::call_timeout:
      return "call_timeout";
    case errc::pool_full:
      return "pool_full";
    case errc::job_failed:
      return "job_failed";
    case errc::shutting_down:
      return "shutting_down";
    case errc::job_threw:
      return "job_threw";
    case errc::state_contended:
      return "state_contended";
    case errc::node_unreachable:
      return "node_unreachable";
  }
  return "unknown troupe error";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), error_category};
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), error_category,
                    caf::make_message(std::move(context))};
}

caf::error with_context(const caf::error& err, const std::string& what) {
  auto text = what;
  auto& ctx = err.context();
  // A context that is one string (as this function makes) is appended as it
  // is, so that stacked patterns do not nest quotes and escapes.
  if (ctx.match_elements<std::string>())
    text += "; " + ctx.get_as<std::string>(0);
  else if (!ctx.empty())
    text += "; " + caf::to_string(ctx);
  return caf::error{err.code(), err.category(), caf::make_message(std::move(text))};
}

config_error::config_error(const std::string& where, const std::string& what)
  : std::invalid_argument(where + ": " + what) {
  // nop
}

} // namespace troupe
