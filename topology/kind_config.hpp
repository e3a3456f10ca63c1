#pragma once

// How a kind reads its keys from an actor's table in a topology file. Every
// getter checks the type and range and records an error at the key's position
// instead of throwing, so that one `troupe check` reports everything wrong;
// keys a kind never asked for are reported as unknown (with a suggestion) once
// its parse function returns. Getters return the fallback after an error.

#include "troupe/supervision/child_spec.hpp"

#include <caf/timespan.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

class kind_config {
public:
  /// What the loader knows about one table (an actor's, or an inline kind
  /// table such as a pool's `worker`); defined by the loader.
  struct state;

  explicit kind_config(std::shared_ptr<state> s);

  /// The actor this table configures, and its kind, for messages.
  const std::string& actor_name() const;
  const std::string& kind_name() const;

  /// Whether the table has `key` (and marks it as known).
  bool has(std::string_view key);

  /// An error "missing key `key`" at the table if it does not have it.
  void require(std::string_view key);

  /// An integer in [min, max].
  int64_t integer(std::string_view key, int64_t fallback, int64_t min,
                  int64_t max);

  /// A number (integer or float) in [min, max].
  double number(std::string_view key, double fallback, double min, double max);

  bool boolean(std::string_view key, bool fallback);

  std::string string(std::string_view key, std::string fallback);

  /// One of `options`; an error lists them and suggests the closest.
  std::string choice(std::string_view key, std::string fallback,
                     const std::vector<std::string>& options);

  /// A duration string ("250ms") in [min, max].
  caf::timespan duration(std::string_view key, caf::timespan fallback,
                         caf::timespan min, caf::timespan max);

  /// Events per second in [min, max], from "1000/s" or a plain number.
  double rate(std::string_view key, double fallback, double min, double max);

  /// A string or an array of strings.
  std::vector<std::string> strings(std::string_view key);

  /// Names of nodes ([nodes.NAME]): a string or an array of strings, each
  /// checked once the file is read (`troupe run --node` places by them).
  std::vector<std::string> node_names(std::string_view key);

  /// An inline table `{ kind = "...", ... }` naming a kind that answers
  /// requests, read with that kind's own parse function: how to start one
  /// (a pool's workers, a fan-out's processor per item). An empty factory if
  /// the key is absent (an error too when `required`) or invalid.
  child_factory service_factory(std::string_view key, bool required);

  /// An error at `key`'s position (at the table if it has no such key), e.g.
  /// for a rule that spans two keys.
  void fail(std::string_view key, std::string message);

  /// An error at the table's position.
  void fail(std::string message);

  /// Whether no error was recorded for this table so far.
  bool ok() const;

private:
  std::shared_ptr<state> state_;
};

} // namespace troupe
