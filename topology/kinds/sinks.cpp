// Sinks: counter, file, stdout, null.

#include "troupe/topology/kinds/builtin.hpp"
#include "troupe/topology/kinds/support.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>
#include <string>

namespace troupe::builtin_kinds {

namespace {

/// Counts what reaches it: items, the elements of batches, item_failures
/// apart, and a checksum (wrapping sum) of uint64_t items.
class counter_sink final : public stage_logic {
public:
  void on_item(item& x, emitter&) override {
    count(x);
  }

  void describe(actor_report& r) const override {
    r.stats["items"] = static_cast<int64_t>(items_);
    r.stats["batches"] = static_cast<int64_t>(batches_);
    r.stats["failures"] = static_cast<int64_t>(failures_);
    r.stats["checksum"] = static_cast<int64_t>(checksum_);
  }

private:
  void count(const item& x) {
    if (x.match_elements<batch>()) {
      ++batches_;
      for (auto& y : x.get_as<batch>(0).items)
        count(y);
      return;
    }
    if (x.match_elements<item_failure>()) {
      ++failures_;
      return;
    }
    ++items_;
    if (x.match_elements<uint64_t>())
      checksum_ += x.get_as<uint64_t>(0);
  }

  uint64_t items_ = 0;
  uint64_t batches_ = 0;
  uint64_t failures_ = 0;
  uint64_t checksum_ = 0;
};

/// Writes one line per item (a batch: one per element) to a stream.
class line_sink : public stage_logic {
public:
  void on_item(item& x, emitter&) override {
    write(x);
  }

  void on_end(emitter&, const caf::error&) override {
    out().flush();
  }

  void on_stop(const caf::error&) override {
    out().flush();
  }

  void describe(actor_report& r) const override {
    r.stats["lines"] = static_cast<int64_t>(lines_);
  }

protected:
  virtual std::ostream& out() = 0;

  /// Called with each line, newline included.
  virtual void put(const std::string& line) {
    out() << line;
  }

private:
  void write(const item& x) {
    if (x.match_elements<batch>()) {
      for (auto& y : x.get_as<batch>(0).items)
        write(y);
      return;
    }
    put(item_text(x) + '\n');
    ++lines_;
  }

  uint64_t lines_ = 0;
};

class file_sink final : public line_sink {
public:
  file_sink(std::string path, bool truncate) : path_(std::move(path)), truncate_(truncate) {
  }

  void on_start(stage_control&) override {
    require_regular_file("file", path_,
                         "write to standard output with stdout, or nowhere "
                         "with null");
    file_.open(path_, truncate_ ? std::ios::trunc : std::ios::app);
    if (!file_)
      throw std::runtime_error("file: cannot open '" + path_
                               + "' for writing: " + std::strerror(errno));
  }

protected:
  std::ostream& out() override {
    return file_;
  }

private:
  std::string path_;
  bool truncate_;
  std::ofstream file_;
};

class stdout_sink final : public line_sink {
protected:
  std::ostream& out() override {
    return std::cout;
  }

  // Whole lines, so that two stdout sinks do not interleave within a line.
  void put(const std::string& line) override {
    static std::mutex mtx;
    std::lock_guard<std::mutex> guard{mtx};
    std::cout << line;
  }
};

} // namespace

void add_sink_kinds(kind_registry& registry) {
  registry.add(sink_kind(
    "counter", "counts items (and batch elements); reports items, batches, checksum",
    [](kind_config&) -> actor_starter {
      return [](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, std::make_unique<counter_sink>());
      };
    }));
  registry.add(sink_kind(
    "file", "writes one line per item to a file",
    [](kind_config& cfg) -> actor_starter {
      cfg.require("path");
      auto path = cfg.string("path", "");
      if (cfg.has("path") && path.empty())
        cfg.fail("path", "'path' is empty: name the file to write");
      auto append = cfg.boolean("append", false);
      return [=](const spawn_context& ctx, const wiring& w) {
        // A restarted sink goes on after what its last incarnation wrote.
        bool truncate = !append && ctx.restarts() == 0;
        return spawn_stage(ctx, w.links, std::make_unique<file_sink>(path, truncate));
      };
    }));
  registry.add(sink_kind(
    "stdout", "writes one line per item to standard output",
    [](kind_config&) -> actor_starter {
      return [](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, std::make_unique<stdout_sink>());
      };
    }));
  registry.add(sink_kind(
    "null", "takes every item and discards it",
    [](kind_config&) -> actor_starter {
      return [](const spawn_context& ctx, const wiring& w) {
        return spawn_stage(ctx, w.links, [](item&, emitter&) {});
      };
    }));
}

} // namespace troupe::builtin_kinds
