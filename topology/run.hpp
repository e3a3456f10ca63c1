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
#include <functional>
#include <iosfwd>
#include <stdexcept>
#include <string>

namespace troupe {

struct run_result {
  /// As `troupe run` exits: 0 ran and drained; 1 the root supervisor gave
  /// up, a drain overran its deadline and was cancelled, a drain killed
  /// actors at its deadline, or the root sent no final report; 130
  /// cancelled by a second signal.
  int exit_code = 0;
  /// How it ended, in a few words ("drained", "cancelled", ...).
  std::string outcome;
  /// The root supervisor's final report: the whole tree (only the root's
  /// name when report_missing).
  actor_report report;
  /// The root supervisor sent no final report: nothing is known of the
  /// counts, and `lost` is meaningless (exit 1).
  bool report_missing = false;
  /// False for a node's part of a run spread over nodes other than the
  /// home node's: no report (the home node's covers the whole tree).
  bool home = true;
  /// Items that may not have reached a sink or a counted drop: every
  /// node's `lost` (gaps on input links, messages a supervised address
  /// could not deliver) plus every node's `unconfirmed` (items sent and
  /// never confirmed). 0 in a clean drain; after a cancel or a kill an
  /// upper bound, since an unconfirmed item may still have been consumed,
  /// or counted as dropped by the actor that held it. For a stream where
  /// each item stays one item (no batching, no fan-out): emitted = consumed
  /// + dropped + errors + lost in a clean drain, emitted <= consumed +
  /// dropped + errors + lost after a cancel or a kill.
  uint64_t lost = 0;
};

struct run_options {
  /// Where the live view goes; null: no live view.
  std::ostream* view = nullptr;
  /// Redraw in place (a terminal) or print plain periodic lines.
  bool view_in_place = false;
  caf::timespan view_interval = std::chrono::seconds(1);
  /// "HOST:PORT" of a Prometheus text endpoint (/metrics); empty: none.
  std::string metrics;
  /// SIGINT or SIGTERM start the graceful shutdown; a second one cancels
  /// (during the drain that follows the stream's end, the first only says
  /// the drain is under way, and a second cancels). They are blocked in every thread the run starts and taken by a thread
  /// of its own, so call run_topology before starting other threads that
  /// leave them unblocked. The signal mask is restored when it returns.
  bool handle_signals = true;
  /// Where the run says what it does besides the live view: the metrics
  /// address ("metrics: http://127.0.0.1:9100/metrics"), signals seen, why
  /// it is waiting; null: nowhere.
  std::ostream* log = nullptr;
  /// Called with the result once the run has ended, before the actor
  /// system is torn down: where the final report is printed, so that it is
  /// out even if an actor that does not stop (a thread stuck in a blocking
  /// job) holds the teardown. With handle_signals, a signal that comes
  /// once it has returned (during the teardown) ends the process at once
  /// with 130 (std::_Exit after flushing the standard streams).
  std::function<void(const run_result&)> on_result;
  /// How long tearing the actor system down may take after the result:
  /// CAF waits for every actor to stop, and one may never. Past it, the run
  /// says on `log` how many actors did not stop and exits the process with
  /// the result's exit code (std::_Exit, after flushing the standard
  /// streams). Zero or less: wait as long as it takes.
  caf::timespan teardown_limit = std::chrono::seconds(5);
  /// Runs only the part of node `node` of a file with [nodes.NAME]
  /// (`troupe run --node`); empty: everything in this process. The home
  /// node (the root's) runs the supervision tree and its report; another
  /// node serves what the tree places on it until the home node says the
  /// run has ended (exit 0) or is gone (exit 1).
  std::string node;
};

/// Thrown by run_topology when it cannot start: a malformed or unusable
/// metrics address, a topology its actors reject on start, a node that
/// cannot open its port or whose TLS files do not work (troupe run exits
/// with 2).
class run_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

run_result run_topology(const topology& t, const run_options& opts);

/// The final report as JSON: per actor in, out, dropped, errors, restarts,
/// how it stopped; totals; lost. The fields are in docs/troupe.md.
std::string report_json(const topology& t, const run_result& r);

} // namespace troupe
