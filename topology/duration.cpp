#include "troupe/topology/duration.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace troupe {

namespace {

struct unit {
  std::string_view suffix;
  int64_t nanoseconds;
};

// Longest suffixes first where one ends another ("ms" before "s").
constexpr std::array<unit, 6> units{{
  {"ns", 1},
  {"us", 1'000},
  {"ms", 1'000'000},
  {"s", 1'000'000'000},
  {"m", 60'000'000'000},
  {"h", 3'600'000'000'000},
}};

const unit* find_unit(std::string_view suffix) {
  for (auto& u : units)
    if (u.suffix == suffix)
      return &u;
  return nullptr;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A non-negative decimal: digits, optionally '.' and more digits. Split into
// its integer part and its fraction (as digits / 10^count) so that durations
// stay exact to the nanosecond.
struct decimal {
  uint64_t whole = 0;
  long double fraction = 0;
};

// Reads the longest decimal at the start of `text`; nullopt if there is none
// or its integer part does not fit 64 bits.
std::optional<decimal> read_decimal(std::string_view& text) {
  constexpr auto max = std::numeric_limits<uint64_t>::max();
  decimal result;
  size_t i = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    auto digit = static_cast<uint64_t>(text[i] - '0');
    if (result.whole > (max - digit) / 10)
      return std::nullopt;
    result.whole = result.whole * 10 + digit;
  }
  if (i == 0)
    return std::nullopt;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t first = i;
    long double scale = 0.1L;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      result.fraction += scale * (text[i] - '0');
      scale /= 10;
    }
    if (i == first)
      return std::nullopt;
  }
  text.remove_prefix(i);
  return result;
}

} // namespace

std::optional<caf::timespan> parse_duration(std::string_view text) {
  if (text == "0")
    return caf::timespan{0};
  auto number = read_decimal(text);
  if (!number)
    return std::nullopt;
  auto u = find_unit(text);
  if (!u)
    return std::nullopt;
  constexpr auto max = std::numeric_limits<int64_t>::max();
  if (number->whole > static_cast<uint64_t>(max / u->nanoseconds))
    return std::nullopt;
  auto whole = static_cast<int64_t>(number->whole) * u->nanoseconds;
  auto fraction = std::llround(number->fraction * u->nanoseconds);
  if (fraction > max - whole)
    return std::nullopt;
  return caf::timespan{whole + fraction};
}

std::optional<double> parse_rate(std::string_view text) {
  auto number = read_decimal(text);
  if (!number || text.empty() || text.front() != '/')
    return std::nullopt;
  text.remove_prefix(1);
  auto u = find_unit(text);
  if (!u)
    return std::nullopt;
  auto events = static_cast<long double>(number->whole) + number->fraction;
  return static_cast<double>(events * 1e9L / u->nanoseconds);
}

std::string format_duration(caf::timespan x) {
  auto ns = x.count();
  if (ns == 0)
    return "0";
  if (ns < 0) {
    // Not readable back (durations in files are never negative), but says
    // what it is in messages.
    if (ns == std::numeric_limits<int64_t>::min())
      return "-" + std::to_string(static_cast<uint64_t>(ns)) + "ns";
    return "-" + format_duration(caf::timespan{-ns});
  }
  for (auto i = units.rbegin(); i != units.rend(); ++i)
    if (ns % i->nanoseconds == 0)
      return std::to_string(ns / i->nanoseconds) + std::string{i->suffix};
  return std::to_string(ns) + "ns"; // unreachable: every count divides by 1
}

} // namespace troupe
