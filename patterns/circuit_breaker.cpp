#include "troupe/patterns/circuit_breaker.hpp"

#include "troupe/patterns/detail/circuit.hpp"

#include <caf/mailbox_element.hpp>

#include <mutex>

namespace troupe::detail {

class circuit_breaker_core {
public:
  circuit_breaker_core(const breaker_config& cfg, std::string name,
                       circuit_breaker::clock now)
    : name_(std::move(name)),
      circuit_(cfg, now ? std::move(now) : [] { return std::chrono::steady_clock::now(); }) {
    // nop
  }

  bool admit(uint64_t& epoch) {
    circuit_change change;
    bool pass;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      pass = circuit_.admit(epoch, change);
    }
    tell(change);
    return pass;
  }

  void finish(call_outcome o, uint64_t epoch) {
    circuit_change change;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      change = circuit_.finish(o, epoch);
    }
    tell(change);
  }

  void abandon(uint64_t epoch) {
    std::lock_guard<std::mutex> guard{mtx_};
    circuit_.abandon(epoch);
    ++abandoned_;
  }

  std::string state() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return to_string(circuit_.state());
  }

  circuit_breaker_stats stats() const {
    std::lock_guard<std::mutex> guard{mtx_};
    circuit_breaker_stats s;
    static_cast<breaker_counters&>(s) = circuit_.counters();
    s.abandoned = abandoned_;
    s.open_timeout = circuit_.open_timeout();
    return s;
  }

  void on_change(std::function<void(const state_change&)> f) {
    auto shared = f ? std::make_shared<const std::function<void(const state_change&)>>(
                        std::move(f))
                    : nullptr;
    std::lock_guard<std::mutex> guard{mtx_};
    on_change_ = std::move(shared);
  }

  caf::error own_error(errc x) const {
    return name_.empty() ? make_error(x) : make_error(x, "breaker " + name_);
  }

private:
  // Calls the on_change callback outside the lock, so that it may ask the
  // breaker anything (or make a call through it).
  void tell(const circuit_change& x) {
    if (!x.happened)
      return;
    std::shared_ptr<const std::function<void(const state_change&)>> f;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      f = on_change_;
    }
    if (!f)
      return;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(x.at.time_since_epoch());
    (*f)(state_change{name_, to_string(x.from), to_string(x.to), ns.count()});
  }

  const std::string name_;
  mutable std::mutex mtx_;
  circuit circuit_;
  uint64_t abandoned_ = 0;
  // Shared so that a transition calls it without holding the lock while it
  // may be replaced.
  std::shared_ptr<const std::function<void(const state_change&)>> on_change_;
};

caf::message_id reject_request(caf::event_based_actor* self, caf::error reason) {
  auto id = self->new_request_id(caf::message_priority::normal).response_id();
  // What CAF enqueues for a request whose receiver is gone: the error as
  // the answer.
  self->enqueue(caf::make_mailbox_element(nullptr, id, {}, std::move(reason)),
                self->context());
  return id;
}

} // namespace troupe::detail

namespace troupe {

circuit_permit::circuit_permit(circuit_permit&& other) noexcept
  : core_(std::move(other.core_)), epoch_(other.epoch_) {
  // nop
}

circuit_permit& circuit_permit::operator=(circuit_permit&& other) noexcept {
  if (this != &other) {
    if (core_)
      core_->abandon(epoch_);
    core_ = std::move(other.core_);
    epoch_ = other.epoch_;
  }
  return *this;
}

circuit_permit::~circuit_permit() {
  if (core_)
    core_->abandon(epoch_);
}

void circuit_permit::success() {
  record(detail::call_outcome::success);
}

void circuit_permit::failure() {
  record(detail::call_outcome::failure);
}

void circuit_permit::timeout() {
  record(detail::call_outcome::timeout);
}

void circuit_permit::record(detail::call_outcome o) {
  if (!core_)
    return;
  auto core = std::move(core_);
  core->finish(o, epoch_);
}

caf::error circuit_permit::own_error(errc x) const {
  return core_ ? core_->own_error(x) : make_error(x);
}

circuit_breaker::circuit_breaker(breaker_config cfg, std::string name, clock now) {
  cfg.validate();
  core_ = std::make_shared<detail::circuit_breaker_core>(cfg, std::move(name),
                                                         std::move(now));
}

caf::expected<circuit_permit> circuit_breaker::try_acquire() const {
  uint64_t epoch = 0;
  if (!core_->admit(epoch))
    return core_->own_error(errc::circuit_open);
  return circuit_permit{core_, epoch};
}

std::string circuit_breaker::state() const {
  return core_->state();
}

circuit_breaker_stats circuit_breaker::stats() const {
  return core_->stats();
}

void circuit_breaker::on_change(std::function<void(const state_change&)> f) const {
  core_->on_change(std::move(f));
}

} // namespace troupe
