#pragma once

// Durations and rates as people write them in topology files: "250ms", "5s",
// "1.5s", "2m", "1h", "100us", "0" and "1000/s", "50/ms", "600/m".

#include <caf/timespan.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace troupe {

/// A non-negative number followed by one of ns, us, ms, s, m, h; a plain "0"
/// is zero. Nothing else (no spaces, no sign, no unit-less number but 0).
std::optional<caf::timespan> parse_duration(std::string_view text);

/// Events per second from "N/unit" with unit ns, us, ms, s, m or h; N may
/// have a fraction. Nothing else.
std::optional<double> parse_rate(std::string_view text);

/// The shortest exact form parse_duration reads back: "250ms", "5s", "0".
std::string format_duration(caf::timespan x);

} // namespace troupe
