#pragma once

// What the built-in kinds share (internal): reading common keys, turning an
// item into text or a hash, a stage that calls a service per item and emits
// the answers in item order, and a service answered by a stage's logic (so
// that it takes any request, drains, reports and crashes like every stage).

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/supervision/child_spec.hpp"
#include "troupe/topology/kind.hpp"
#include "troupe/topology/kind_config.hpp"

#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/result.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>

namespace troupe::builtin_kinds {

/// Runs a pattern config's validate(); a config_error becomes an error of the
/// table (the kind's own range checks should have caught it first).
template <class Config>
void check_config(kind_config& cfg, const Config& x) {
  try {
    x.validate();
  } catch (const config_error& e) {
    cfg.fail(e.what());
  }
}

/// `max_restarts` and `period`: how often the parts a pattern restarts
/// itself (a pool's workers, a state's shards) may restart.
restart_intensity read_intensity(kind_config& cfg);

/// An item as one line of text: a string as it is, a number in decimal,
/// anything else as CAF prints it.
std::string item_text(const item& x);

/// `rounds` rounds of FNV-1a over the item's contents (its value for
/// integers, its bytes for strings, its text otherwise; a batch's elements
/// in turn): deterministic work that costs CPU in proportion to `rounds`.
uint64_t hash_item(const item& x, uint64_t rounds);

/// Throws (a failed start) if `path` exists and is not a regular file:
/// opening a FIFO blocks until its other end opens, which would hold a
/// scheduler thread, and a directory or a device is no file of lines.
/// `kind` starts the message, `instead` ends it (what to use instead).
void require_regular_file(const std::string& kind, const std::string& path,
                          const std::string& instead);

/// The stage_config of a kind that answers requests and takes no stream: it
/// ends on a drain (it waits for one input that never opens).
stage_config service_links(const std::string& kind);

/// The links of a pattern that is a stage. When nothing feeds it (it stands
/// in front of a service only) it waits for one input that never opens, so
/// that it ends on a drain, as a service does.
stage_config pattern_links(const wiring& w);

/// A stage that makes one asynchronous call per item and emits the outcomes
/// in item order: at most `max_in_flight` items are held, and only while the
/// outputs have room for the outcome of every held item, so an outcome can
/// always be pushed when it comes. A failed call is counted in `errors` and
/// emits nothing; an item held when the stage stops any other way than by
/// draining counts as dropped.
class ordered_calls : public stage_logic {
public:
  explicit ordered_calls(size_t max_in_flight) : max_in_flight_(max_in_flight) {
  }

  void on_start(stage_control& ctl) override;
  void on_item(item& x, emitter& out) final;
  bool ready() final;
  bool busy() const final;
  void describe(actor_report& r) const override;

protected:
  /// Called with each outcome: a value to emit, or an error.
  using completion = std::function<void(caf::expected<item>)>;

  /// Starts the call for `x`; `done` must be called exactly once, from a
  /// callback of the stage's actor.
  virtual void call(item x, completion done) = 0;

  stage_control& control() {
    return *ctl_;
  }

private:
  struct slot {
    bool done = false;
    caf::expected<item> outcome{item{}};
  };

  void complete(uint64_t id, caf::expected<item> outcome);

  size_t max_in_flight_;
  stage_control* ctl_ = nullptr;
  std::deque<slot> slots_;
  uint64_t first_id_ = 0;
  uint64_t failed_ = 0;
};

/// The logic of a service kind: a stage with no stream whose requests are
/// answered by `answer`. Its report counts requests as `in`, answers with a
/// value as `out`, error answers as `errors`, with the same counts in stats
/// "requests", "answered" and "failed".
class service_logic : public stage_logic {
public:
  void on_start(stage_control& ctl) override;
  void on_item(item& x, emitter& out) override;
  caf::result<caf::message> on_request(caf::message& x) final;
  void describe(actor_report& r) const override;

protected:
  /// The answer to one request: a value, an error or a promise (deliver it
  /// through answered() or failed(), so that it is counted).
  virtual caf::result<caf::message> answer(caf::message& x) = 0;

  void answered(caf::response_promise& rp, caf::message x);
  void failed(caf::response_promise& rp, caf::error e);

  stage_control& control() {
    return *ctl_;
  }

  uint64_t requests() const {
    return requests_;
  }

private:
  stage_control* ctl_ = nullptr;
  uint64_t requests_ = 0;
  uint64_t answered_ = 0;
  uint64_t failed_ = 0;
};

} // namespace troupe::builtin_kinds
