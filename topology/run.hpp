#pragma once

// Runs a topology: the `troupe run` command without its command line. Starts
// the actor system with the file's settings, the supervision tree, an
// optional live view and Prometheus endpoint, and waits until the stream has
// drained (or a signal or the root supervisor's failure ends it).

#include "troupe/actors/messages.hpp"
#include "troupe/topology/topology.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>

namespace troupe {

struct run_options {
  /// Where the live view goes; null: no live view.
  std::ostream* view = nullptr;
  /// Redraw in place (a terminal) or print plain periodic lines.
  bool view_in_place = false;
  caf::timespan view_interval = std::chrono::seconds(1);
  /// "HOST:PORT" of a Prometheus text endpoint (/metrics); empty: none.
  std::string metrics;
  /// SIGINT or SIGTERM start the graceful shutdown; a second one cancels.
  /// They are blocked in every thread the run starts and taken by a thread
  /// of its own, so call run_topology before starting other threads that
  /// leave them unblocked. The signal mask is restored when it returns.
  bool handle_signals = true;
  /// Where the run says what it does besides the live view: the metrics
  /// address ("metrics: http://127.0.0.1:9100/metrics"), signals seen, why
  /// it is waiting; null: nowhere.
  std::ostream* log = nullptr;
};

/// Thrown by run_topology when it cannot start: a malformed or unusable
/// metrics address, or a topology its actors reject on start (troupe run
/// exits with 2).
class run_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct run_result {
  /// As `troupe run` exits: 0 ran and drained, 1 the root supervisor gave
  /// up (or a drain ended by killing actors), 130 cancelled by a second
  /// signal.
  int exit_code = 0;
  /// How it ended, in a few words ("drained", "cancelled", ...).
  std::string outcome;
  /// The root supervisor's final report: the whole tree.
  actor_report report;
  /// Items that entered and reached neither a sink nor a counted drop.
  uint64_t lost = 0;
};

run_result run_topology(const topology& t, const run_options& opts);

/// The final report as JSON: per actor in, out, dropped, errors, restarts,
/// how it stopped; totals; lost. The fields are in docs/troupe.md.
std::string report_json(const topology& t, const run_result& r);

} // namespace troupe
