#include "troupe/patterns/detail/circuit.hpp"

namespace troupe::detail {

const char* to_string(circuit_state x) {
  switch (x) {
    case circuit_state::closed:
      return "closed";
    case circuit_state::open:
      return "open";
    case circuit_state::half_open:
      return "half_open";
  }
  return "unknown";
}

circuit::circuit(const breaker_config& cfg, std::function<time_point()> now)
  : now_(std::move(now)),
    consecutive_failures_(cfg.consecutive_failures),
    failure_rate_(cfg.failure_rate),
    window_size_(cfg.window_size),
    minimum_calls_(cfg.minimum_calls),
    half_open_probes_(cfg.half_open_probes),
    backoff_multiplier_(cfg.backoff_multiplier),
    base_open_timeout_(cfg.open_timeout),
    max_open_timeout_(cfg.max_open_timeout),
    open_timeout_(cfg.open_timeout) {
  reset_window();
}

circuit_change circuit::refresh() {
  if (state_ != circuit_state::open)
    return {};
  auto now = now_();
  if (now >= opened_at_ + open_timeout_)
    return transition(circuit_state::half_open, now);
  return {};
}

bool circuit::admit(uint64_t& epoch, circuit_change& change) {
  change = refresh();
  bool pass = false;
  switch (state_) {
    case circuit_state::closed:
      pass = true;
      break;
    case circuit_state::open:
      break;
    case circuit_state::half_open:
      if (probes_taken_ < half_open_probes_) {
        ++probes_taken_;
        pass = true;
      }
      break;
  }
  if (!pass) {
    ++counters_.rejected;
    return false;
  }
  ++counters_.calls;
  ++counters_.in_flight;
  epoch = epoch_;
  return true;
}

bool circuit::may_admit() const {
  switch (state_) {
    case circuit_state::closed:
      return true;
    case circuit_state::open:
      return false;
    case circuit_state::half_open:
      return probes_taken_ < half_open_probes_;
  }
  return false;
}

circuit_change circuit::finish(call_outcome o, uint64_t epoch) {
  --counters_.in_flight;
  auto failed = o != call_outcome::success;
  if (failed)
    ++counters_.failures;
  else
    ++counters_.successes;
  if (o == call_outcome::timeout)
    ++counters_.timeouts;
  if (epoch != epoch_)
    return {};
  if (state_ == circuit_state::closed) {
    consecutive_ = failed ? consecutive_ + 1 : 0;
    if (!window_.empty()) {
      if (window_calls_ == window_.size())
        window_failures_ -= window_[window_next_] ? 1 : 0;
      else
        ++window_calls_;
      window_[window_next_] = failed;
      window_failures_ += failed ? 1 : 0;
      window_next_ = (window_next_ + 1) % window_.size();
    }
    if (consecutive_ >= consecutive_failures_ || rate_exceeded())
      return trip();
  } else if (state_ == circuit_state::half_open) {
    if (failed)
      return trip();
    if (++probe_successes_ == half_open_probes_)
      return transition(circuit_state::closed, now_());
  }
  return {};
}

void circuit::abandon(uint64_t epoch) {
  --counters_.in_flight;
  if (epoch == epoch_ && state_ == circuit_state::half_open && probes_taken_ > 0)
    --probes_taken_;
}

bool circuit::rate_exceeded() const {
  return failure_rate_ > 0 && window_calls_ >= minimum_calls_
         && static_cast<double>(window_failures_)
              >= failure_rate_ * static_cast<double>(window_calls_);
}

circuit_change circuit::trip() {
  if (state_ == circuit_state::half_open && backoff_multiplier_ > 1) {
    auto grown = static_cast<double>(open_timeout_.count()) * backoff_multiplier_;
    open_timeout_ = grown >= static_cast<double>(max_open_timeout_.count())
                      ? max_open_timeout_
                      : std::chrono::nanoseconds{
                        static_cast<std::chrono::nanoseconds::rep>(grown)};
  }
  ++counters_.trips;
  opened_at_ = now_();
  return transition(circuit_state::open, opened_at_);
}

circuit_change circuit::transition(circuit_state to, time_point now) {
  circuit_change change{true, state_, to, now};
  state_ = to;
  ++epoch_;
  ++counters_.state_changes;
  consecutive_ = 0;
  probes_taken_ = 0;
  probe_successes_ = 0;
  if (to == circuit_state::closed) {
    reset_window();
    open_timeout_ = base_open_timeout_;
  }
  return change;
}

void circuit::reset_window() {
  // Only a rate needs the window; its size may be large.
  window_.assign(failure_rate_ > 0 ? window_size_ : 0, false);
  window_next_ = 0;
  window_calls_ = 0;
  window_failures_ = 0;
}

} // namespace troupe::detail
