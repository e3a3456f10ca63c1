#include "troupe/topology/live_view.hpp"

#include "troupe/topology/report_tree.hpp"

#include <algorithm>
#include <ctime>
#include <iomanip>
#include <sstream>
#include <vector>

namespace troupe {

namespace {

const std::vector<std::string> headings = {"actor",   "kind",   "in",
                                           "out",     "rate/s", "queue",
                                           "dropped", "errors", "restarts",
                                           "state"};

// Columns holding numbers are right-aligned.
bool numeric(size_t column) {
  return column >= 2 && column <= 8;
}

std::string time_of_day() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  std::ostringstream out;
  out << std::put_time(&local, "%H:%M:%S");
  return out.str();
}

size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

live_view::live_view(std::ostream& out, bool in_place, std::string title)
  : out_(out), in_place_(in_place), title_(std::move(title)) {
}

std::string live_view::table(const actor_report& status,
                             clock::time_point now,
                             const std::set<std::string>& no_data) {
  std::vector<std::vector<std::string>> cells;
  for (auto& row : flatten(status)) {
    auto& r = *row.report;
    auto name = std::string(row.depth() * 2, ' ') + r.name;
    if (r.kind == "supervisor") {
      cells.push_back({name, r.kind, "", "", "", "", "", "",
                       std::to_string(r.restarts), state_word(r)});
      continue;
    }
    auto key = qualified_name(row);
    auto count = r.out > 0 ? r.out : r.in;
    std::string rate = "-";
    auto last = last_counts_.find(key);
    // A placeholder's counts, or counts lower than before, are stale: they
    // neither get a rate nor become the base of the next one.
    bool fresh = no_data.count(key) == 0
                 && (last == last_counts_.end() || count >= last->second.count);
    if (fresh) {
      if (last != last_counts_.end() && now > last->second.at) {
        auto seconds = std::chrono::duration<double>(now - last->second.at).count();
        std::ostringstream text;
        text << std::fixed << std::setprecision(0)
             << static_cast<double>(count - last->second.count) / seconds;
        rate = text.str();
      }
      last_counts_[key] = sample{count, now};
    }
    auto queue = queue_length(r);
    cells.push_back({name, r.kind, std::to_string(r.in), std::to_string(r.out),
                     rate, queue ? std::to_string(*queue) : "-",
                     std::to_string(r.dropped), std::to_string(r.errors),
                     std::to_string(r.restarts), state_word(r)});
  }
  std::vector<size_t> widths(headings.size());
  for (size_t c = 0; c < headings.size(); ++c) {
    widths[c] = headings[c].size();
    for (auto& line : cells)
      widths[c] = std::max(widths[c], line[c].size());
  }
  std::ostringstream out;
  auto print = [&](const std::vector<std::string>& line) {
    std::string text;
    for (size_t c = 0; c < line.size(); ++c) {
      auto pad = std::string(widths[c] - line[c].size(), ' ');
      if (c > 0)
        text += "  ";
      text += numeric(c) ? pad + line[c] : line[c] + pad;
    }
    while (!text.empty() && text.back() == ' ')
      text.pop_back();
    out << text << '\n';
  };
  print(headings);
  for (auto& line : cells)
    print(line);
  return out.str();
}

void live_view::draw(const actor_report& status, clock::time_point now,
                     const std::set<std::string>& no_data) {
  if (!start_)
    start_ = now;
  auto elapsed = std::chrono::duration<double>(now - *start_).count();
  std::ostringstream block;
  block << title_ << " (" << std::fixed << std::setprecision(1) << elapsed
        << "s)\n"
        << table(status, now, no_data);
  put(block.str());
}

void live_view::draw_unavailable(const std::string& why,
                                 clock::time_point now) {
  if (!start_)
    start_ = now;
  put(title_ + ": no status (" + why + ")\n");
}

void live_view::note(const std::string& line) {
  if (in_place_) {
    out_ << "\x1b[J" << line << '\n';
    // The frame stays above the note; the next one is drawn below it.
    lines_on_screen_ = 0;
  } else {
    out_ << '[' << time_of_day() << "] " << line << '\n';
  }
  out_.flush();
}

void live_view::put(const std::string& block) {
  if (in_place_) {
    if (lines_on_screen_ > 0)
      out_ << "\x1b[" << lines_on_screen_ << "A\x1b[J";
    std::istringstream lines{block};
    std::string line;
    while (std::getline(lines, line)) {
      // The last column stays free: a full line moves some terminals on.
      if (width_ > 1 && line.size() >= width_)
        line.resize(width_ - 1);
      out_ << line << '\n';
    }
    lines_on_screen_ = count_lines(block);
  } else {
    out_ << '[' << time_of_day() << "] " << block << '\n';
  }
  out_.flush();
}

} // namespace troupe
