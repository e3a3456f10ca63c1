#pragma once

// The live view of `troupe run`: one line per actor, redrawn every interval
// from a status report of the root supervisor.

#include "troupe/actors/messages.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>

namespace troupe {

class live_view {
public:
  using clock = std::chrono::steady_clock;

  /// `in_place`: the stream is a terminal, where each frame replaces the one
  /// before (ANSI cursor up and clear); otherwise frames are appended as
  /// blocks headed by the time of day, for logs.
  live_view(std::ostream& out, bool in_place, std::string title);

  /// Draws a frame from `status`, taken at `now`. `no_data`: the rows (by
  /// qualified_name) that carry no report of the actor's own, a
  /// supervisor's placeholder: they get no rate.
  void draw(const actor_report& status, clock::time_point now,
            const std::set<std::string>& no_data = {});

  /// Draws a frame saying why there is no data this time.
  void draw_unavailable(const std::string& why, clock::time_point now);

  /// Columns of the terminal, for a frame drawn in place: longer lines are
  /// cut (a line that wraps would break the redraw). 0: no limit.
  void set_width(size_t columns) {
    width_ = columns;
  }

  /// Prints a line of its own (a signal was seen, ...) that the next frame
  /// does not overwrite.
  void note(const std::string& line);

  /// The table of one frame: per actor (supervisors as headings, actors
  /// indented below them) its kind, items in and out, rate, queue, dropped,
  /// errors, restarts and state. The rate is items out per second since the
  /// previous frame that had the actor's own counts, or items in for an
  /// actor that emits nothing (a sink); none ("-") for a row in `no_data`
  /// or whose count went backwards (stale counts, which would make the next
  /// rate jump). Remembers the counts for the next frame's rates.
  std::string table(const actor_report& status, clock::time_point now,
                    const std::set<std::string>& no_data = {});

private:
  void put(const std::string& block);

  std::ostream& out_;
  bool in_place_;
  std::string title_;
  std::optional<clock::time_point> start_;
  struct sample {
    uint64_t count = 0;
    clock::time_point at;
  };
  /// The last counts of each actor's own, by qualified name: where the
  /// next rates are taken from.
  std::map<std::string, sample> last_counts_;
  /// Lines of the frame on screen, for the next one to replace.
  size_t lines_on_screen_ = 0;
  size_t width_ = 0;
};

} // namespace troupe
