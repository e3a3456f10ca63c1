#include "troupe/topology/kinds/support.hpp"

#include <caf/response_promise.hpp>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <limits>
#include <string>

namespace troupe::builtin_kinds {

restart_intensity read_intensity(kind_config& cfg) {
  restart_intensity result;
  result.max_restarts = static_cast<int>(
    cfg.integer("max_restarts", result.max_restarts, 0, 1'000'000));
  result.period = cfg.duration("period", result.period, std::chrono::milliseconds(1),
                               std::chrono::hours(24));
  return result;
}

std::string item_text(const item& x) {
  if (x.match_elements<std::string>())
    return x.get_as<std::string>(0);
  if (x.match_elements<uint64_t>())
    return std::to_string(x.get_as<uint64_t>(0));
  if (x.match_elements<int64_t>())
    return std::to_string(x.get_as<int64_t>(0));
  if (x.match_elements<int32_t>())
    return std::to_string(x.get_as<int32_t>(0));
  if (x.match_elements<uint32_t>())
    return std::to_string(x.get_as<uint32_t>(0));
  return to_string(x);
}

namespace {

constexpr uint64_t fnv_offset = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv(uint64_t h, const void* data, size_t size) {
  auto bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= fnv_prime;
  }
  return h;
}

uint64_t hash_once(uint64_t h, const item& x) {
  if (x.match_elements<uint64_t>()) {
    auto v = x.get_as<uint64_t>(0);
    return fnv(h, &v, sizeof(v));
  }
  if (x.match_elements<std::string>()) {
    auto& s = x.get_as<std::string>(0);
    return fnv(h, s.data(), s.size());
  }
  if (x.match_elements<batch>()) {
    for (auto& y : x.get_as<batch>(0).items)
      h = hash_once(h, y);
    return h;
  }
  auto text = to_string(x);
  return fnv(h, text.data(), text.size());
}

} // namespace

uint64_t hash_item(const item& x, uint64_t rounds) {
  uint64_t h = fnv_offset;
  for (uint64_t i = 0; i < rounds; ++i)
    h = hash_once(fnv(h, &i, sizeof(i)), x);
  return h;
}

void require_regular_file(const std::string& kind, const std::string& path,
                          const std::string& instead) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)
      || std::filesystem::is_regular_file(status))
    return; // opening it says what is wrong, if anything
  throw std::runtime_error(kind + ": '" + path
                           + "' is not a regular file (a FIFO, a device or a "
                             "directory); "
                           + instead);
}

stage_config service_links(const std::string& kind) {
  stage_config links;
  links.inputs = 1;
  links.kind = kind;
  return links;
}

stage_config pattern_links(const wiring& w) {
  auto links = w.links;
  if (links.inputs == 0)
    links.inputs = 1;
  return links;
}

void ordered_calls::on_start(stage_control& ctl) {
  ctl_ = &ctl;
}

void ordered_calls::on_item(item& x, emitter&) {
  auto id = first_id_ + slots_.size();
  slots_.emplace_back();
  call(std::move(x), [this, id](caf::expected<item> outcome) {
    complete(id, std::move(outcome));
  });
}

bool ordered_calls::ready() {
  return slots_.size() < max_in_flight_ && ctl_->room() > slots_.size();
}

bool ordered_calls::busy() const {
  return !slots_.empty();
}

void ordered_calls::describe(actor_report& r) const {
  r.errors += failed_;
  if (lost_what_it_held(r.stopped))
    r.dropped += slots_.size();
  r.stats["held"] = static_cast<int64_t>(slots_.size());
}

void ordered_calls::complete(uint64_t id, caf::expected<item> outcome) {
  if (id < first_id_ || id - first_id_ >= slots_.size())
    return;
  auto& s = slots_[id - first_id_];
  s.done = true;
  s.outcome = std::move(outcome);
  bool progressed = false;
  while (!slots_.empty() && slots_.front().done) {
    auto& front = slots_.front();
    if (front.outcome)
      ctl_->push(std::move(*front.outcome));
    else
      ++failed_;
    slots_.pop_front();
    ++first_id_;
    progressed = true;
  }
  if (progressed)
    ctl_->resume();
}

void service_logic::on_start(stage_control& ctl) {
  ctl_ = &ctl;
}

void service_logic::on_item(item&, emitter&) {
  // A service has no stream: nothing links to it.
}

caf::result<caf::message> service_logic::on_request(caf::message& x) {
  ++requests_;
  auto result = answer(x);
  if (result.flag == caf::rt_value)
    ++answered_;
  else if (result.flag == caf::rt_error)
    ++failed_;
  return result;
}

void service_logic::answered(caf::response_promise& rp, caf::message x) {
  ++answered_;
  rp.deliver(std::move(x));
}

void service_logic::failed(caf::response_promise& rp, caf::error e) {
  ++failed_;
  rp.deliver(std::move(e));
}

void service_logic::describe(actor_report& r) const {
  r.in = requests_;
  r.out = answered_;
  r.errors += failed_;
  r.stats["requests"] = static_cast<int64_t>(requests_);
  r.stats["answered"] = static_cast<int64_t>(answered_);
  r.stats["failed"] = static_cast<int64_t>(failed_);
}

} // namespace troupe::builtin_kinds
