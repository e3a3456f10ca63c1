// Sources: generator, file_lines, stdin_lines.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"

#include <caf/make_message.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace troupe::builtin_kinds {

namespace {

using clock_type = std::chrono::steady_clock;

/// Emits start, start + 1, ... (uint64_t), `count` of them (0: until
/// drained); with a rate, item i is due at i / rate seconds after the start.
class generator final : public source_logic {
public:
  generator(uint64_t count, double rate, uint64_t start)
    : count_(count), rate_(rate), start_(start) {
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    began_ = clock_type::now();
  }

  void on_timer(uint64_t, emitter&) override {
    // The stage asks produce() again after a timer.
    timer_armed_ = false;
  }

  bool produce(emitter& out, size_t max) override {
    uint64_t n = max;
    if (count_ != 0)
      n = std::min(n, count_ - emitted_);
    if (rate_ > 0)
      n = std::min(n, due());
    for (uint64_t i = 0; i < n; ++i)
      out.push(make_item(start_ + emitted_++));
    if (count_ != 0 && emitted_ >= count_)
      return false;
    if (rate_ > 0 && n == 0 && !timer_armed_) {
      timer_armed_ = true;
      ctl_->schedule(until_next(), 0);
    }
    return true;
  }

private:
  // Items due by now and not emitted yet: item i is due at i / rate.
  uint64_t due() const {
    std::chrono::duration<double> elapsed = clock_type::now() - began_;
    auto total = static_cast<uint64_t>(std::floor(elapsed.count() * rate_)) + 1;
    return total > emitted_ ? total - emitted_ : 0;
  }

  caf::timespan until_next() const {
    std::chrono::duration<double> at{static_cast<double>(emitted_) / rate_};
    auto wait = std::chrono::duration_cast<caf::timespan>(at)
                - std::chrono::duration_cast<caf::timespan>(clock_type::now() - began_);
    return std::max(wait, caf::timespan{std::chrono::microseconds(100)});
  }

  uint64_t count_;
  double rate_;
  uint64_t start_;
  uint64_t emitted_ = 0;
  bool timer_armed_ = false;
  clock_type::time_point began_;
  stage_control* ctl_ = nullptr;
};

/// Strips the '\r' of a line that ended in "\r\n".
void chomp(std::string& line) {
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
}

/// Emits each line of a file as a std::string, then ends.
class file_lines final : public source_logic {
public:
  explicit file_lines(std::string path) : path_(std::move(path)) {
  }

  void on_start(stage_control&) override {
    require_regular_file("file_lines", path_,
                         "read standard input with stdin_lines");
    in_.open(path_);
    if (!in_)
      throw std::runtime_error("file_lines: cannot open '" + path_
                               + "': " + std::strerror(errno));
  }

  bool produce(emitter& out, size_t max) override {
    std::string line;
    for (size_t i = 0; i < max; ++i) {
      if (!std::getline(in_, line)) {
        if (in_.bad())
          throw std::runtime_error("file_lines: error reading '" + path_ + "'");
        return false;
      }
      chomp(line);
      out.push(caf::make_message(std::move(line)));
    }
    return true;
  }

private:
  std::string path_;
  std::ifstream in_;
};

/// The process's one reader of standard input: a thread of its own (a read
/// blocks, and must not hold a scheduler thread) puts lines into a bounded
/// queue, waiting while it is full. It lives as long as the process, since a
/// blocked read cannot be interrupted; a restarted stdin_lines goes on where
/// the last one stopped.
class stdin_reader {
public:
  static stdin_reader& instance() {
    // Never destroyed: the thread may still be blocked in a read at exit.
    static auto* reader = new stdin_reader;
    return *reader;
  }

  /// Moves up to `max` lines into `out`; false once input ended and every
  /// line was taken.
  bool take(emitter& out, size_t max) {
    std::unique_lock<std::mutex> guard{mtx_};
    size_t n = 0;
    while (n < max && !lines_.empty()) {
      out.push(caf::make_message(std::move(lines_.front())));
      lines_.pop_front();
      ++n;
    }
    if (n > 0)
      not_full_.notify_one();
    return !(ended_ && lines_.empty());
  }

private:
  static constexpr size_t capacity = 1024;

  stdin_reader() {
    std::thread{[this] { run(); }}.detach();
  }

  void run() {
    std::string line;
    while (std::getline(std::cin, line)) {
      chomp(line);
      std::unique_lock<std::mutex> guard{mtx_};
      not_full_.wait(guard, [this] { return lines_.size() < capacity; });
      lines_.push_back(std::move(line));
    }
    std::lock_guard<std::mutex> guard{mtx_};
    ended_ = true;
  }

  std::mutex mtx_;
  std::condition_variable not_full_;
  std::deque<std::string> lines_;
  bool ended_ = false;
};

/// Emits each line of standard input as a std::string; ends at end of input.
/// An empty produce makes the stage ask again after 1 to 100 ms.
class stdin_lines final : public source_logic {
public:
  void on_start(stage_control&) override {
    reader_ = &stdin_reader::instance();
  }

  bool produce(emitter& out, size_t max) override {
    return reader_->take(out, max);
  }

private:
  stdin_reader* reader_ = nullptr;
};

} // namespace

void add_source_kinds(kind_registry& registry) {
  registry.add(source_kind(
    "generator", "emits the numbers start, start+1, ... (count of them, paced by rate)",
    [](kind_config& cfg) -> actor_starter {
      auto count = static_cast<uint64_t>(
        cfg.integer("count", 1000, 0, std::numeric_limits<int64_t>::max()));
      double rate = 0;
      if (cfg.has("rate"))
        rate = cfg.rate("rate", 1000, 0.001, 1e9);
      auto start = static_cast<uint64_t>(
        cfg.integer("start", 0, 0, std::numeric_limits<int64_t>::max()));
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_source(ctx, w.links, std::make_unique<generator>(count, rate, start));
      };
    }));
  registry.add(source_kind(
    "file_lines", "emits each line of a file as a string",
    [](kind_config& cfg) -> actor_starter {
      cfg.require("path");
      auto path = cfg.string("path", "");
      if (cfg.has("path") && path.empty())
        cfg.fail("path", "'path' is empty: name the file to read");
      return [=](const spawn_context& ctx, const wiring& w) {
        return spawn_source(ctx, w.links, std::make_unique<file_lines>(path));
      };
    }));
  registry.add(source_kind(
    "stdin_lines", "emits each line of standard input as a string",
    [](kind_config&) -> actor_starter {
      return [](const spawn_context& ctx, const wiring& w) {
        return spawn_source(ctx, w.links, std::make_unique<stdin_lines>());
      };
    }));
}

} // namespace troupe::builtin_kinds
