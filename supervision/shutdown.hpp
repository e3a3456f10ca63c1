#pragma once

// Coordinated shutdown from outside the actor system: ask the root supervisor
// and wait for its report, or hook the process's signals to it. What the
// supervisor does on drain and cancel is in supervision/supervisor.hpp.

#include "troupe/actors/messages.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <string>
#include <thread>

namespace troupe {

enum class shutdown_mode {
  graceful, ///< drain: intake stops, data in flight drains, then stop
  cancel,   ///< stop now, counting what is held as dropped
};

/// Asks `root` to shut down and blocks until it answers with the report of
/// its subtree. `deadline` bounds a graceful shutdown (0: the system's
/// troupe.shutdown-deadline); past it the remaining actors are killed.
caf::expected<actor_report> shutdown(caf::actor_system& sys,
                                     const caf::actor& root,
                                     shutdown_mode mode = shutdown_mode::graceful,
                                     caf::timespan deadline = caf::timespan{0});

/// While it lives, SIGINT and SIGTERM shut `root` down: the first signal
/// gracefully, the second by cancelling. Destroying it restores the previous
/// signal handlers. One may exist at a time.
class signal_hook {
public:
  explicit signal_hook(caf::actor root);
  signal_hook(const signal_hook&) = delete;
  signal_hook& operator=(const signal_hook&) = delete;
  ~signal_hook();

  /// Signals seen so far.
  int signals_seen() const noexcept;

private:
  std::thread watcher_;
};

/// Sums over the leaves (non-supervisors) of a report tree.
struct report_totals {
  uint64_t actors = 0;
  uint64_t in = 0;
  uint64_t out = 0;
  uint64_t dropped = 0;
  uint64_t errors = 0;
  uint64_t lost = 0;
  uint64_t unconfirmed = 0;
  uint64_t restarts = 0;
  uint64_t crashed = 0;
  uint64_t killed = 0;
};

report_totals totals(const actor_report& root);

/// The report as text: one actor a line, indented by depth.
std::string to_text(const actor_report& root);

} // namespace troupe
