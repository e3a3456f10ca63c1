#include "troupe/supervision/supervisor.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/system.hpp"
#include "troupe/supervision/relay.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

namespace troupe {

namespace {

using timer_atom = caf::atom_constant<caf::atom("trp_stimer")>;
using start_failed_atom = caf::atom_constant<caf::atom("trp_sfail")>;

/// How long a killed child gets to go before the supervisor stops waiting.
constexpr caf::timespan kill_grace = std::chrono::seconds(1);

/// How long status requests and late final reports may take.
constexpr caf::timespan query_timeout = std::chrono::seconds(1);

using clock_type = std::chrono::steady_clock;

enum class stop_kind {
  drain,  // graceful: drain_atom, or an exit for plain actors
  stop,   // by the supervisor for a restart or escalation
  cancel, // cancel_atom, or an exit for plain actors
};

enum class mode {
  running,
  restarting,    // stopping siblings before a group restart
  shutting_down, // drain or cancel requested
  escalating,    // intensity exceeded: stopping everything, then failing
  finished,      // children stopped; collecting the last counts
};

void add_numbers(actor_report& into, const actor_report& from) {
  into.in += from.in;
  into.out += from.out;
  into.flushed += from.flushed;
  into.dropped += from.dropped;
  into.errors += from.errors;
  into.lost += from.lost;
  into.resent += from.resent;
  into.unconfirmed += from.unconfirmed;
  into.max_in_flight = std::max(into.max_in_flight, from.max_in_flight);
}

void add_counters(actor_report& into, const actor_report& from);

// The children of a nested supervisor's incarnation, merged by name into
// those of the earlier ones; by an index, not a scan per child: a nested
// supervisor may have thousands of children.
void merge_children(actor_report& into, const actor_report& from) {
  std::unordered_map<std::string, size_t> by_name;
  by_name.reserve(into.children.size());
  for (size_t k = 0; k < into.children.size(); ++k)
    by_name.emplace(into.children[k].name, k);
  for (auto& child : from.children) {
    auto i = by_name.find(child.name);
    if (i == by_name.end()) {
      by_name.emplace(child.name, into.children.size());
      into.children.push_back(child);
      continue;
    }
    auto& known = into.children[i->second];
    add_counters(known, child);
    known.restarts += child.restarts;
    known.stopped = child.stopped;
    known.error = child.error;
  }
}

// Adds the counters of `from` (one incarnation) to `into` (all of them). The
// subtree of a nested supervisor is merged by name, so that the counts of
// its earlier incarnations' children stay in the totals; for those, the
// latest incarnation says how they stopped.
void add_counters(actor_report& into, const actor_report& from) {
  add_numbers(into, from);
  if (!from.kind.empty())
    into.kind = from.kind;
  // A pattern's state and stats describe its latest incarnation: gauges and
  // counters share the map, and gauges do not add up.
  into.state = from.state;
  into.stats = from.stats;
  if (into.children.empty())
    into.children = from.children;
  else
    merge_children(into, from);
}

// The same, taking over what `from` holds rather than copying it: a final
// report is not needed once added.
void add_counters(actor_report& into, actor_report&& from) {
  add_numbers(into, from);
  if (!from.kind.empty())
    into.kind = std::move(from.kind);
  into.state = std::move(from.state);
  into.stats = std::move(from.stats);
  if (into.children.empty())
    into.children = std::move(from.children);
  else
    merge_children(into, from);
}

// Children being stopped and what runs once they all have: one after
// another (stop_order::sequential) or all at once (concurrent). At namespace
// scope: clang cannot default-construct a nested struct with member
// initializers inside std::optional while the enclosing class is incomplete.
struct stop_sequence {
  std::vector<size_t> order;
  stop_kind kind = stop_kind::stop;
  std::function<void()> then;
  // Sequential: order[pos] is the child being stopped, `timer` bounds it.
  size_t pos = 0;
  bool killed = false;
  uint64_t timer = 0;
  // Concurrent: children told to stop that have not stopped yet, and the
  // timers bounding them (one per distinct shutdown timeout).
  size_t waiting = 0;
  std::vector<uint64_t> timers;
};

class supervisor_core : public std::enable_shared_from_this<supervisor_core> {
public:
  supervisor_core(spawn_context ctx, supervisor_spec spec)
    : ctx_(std::move(ctx)), spec_(std::move(spec)) {
    name_ = ctx_.name().empty() ? spec_.name : ctx_.name();
  }

  caf::behavior start(caf::event_based_actor* self);

  // Runs as the supervisor exits, whatever the reason: stops what is left,
  // answers whoever still waits, and reports the subtree to the parent.
  void on_exit(const caf::error& reason);

private:
  struct child {
    child_spec spec;
    caf::actor relay;
    caf::actor current;
    child_protocol protocol;
    bool done = false;
    // Its last incarnation exited normally by itself (finished its work):
    // a group restart leaves it ended unless it is permanent.
    bool ended_normally = false;
    uint32_t restarts = 0;
    // A vector, not a std::deque: an empty deque allocates ~540 bytes, and
    // its move may throw, which makes a vector of children copy them all
    // as it grows.
    std::vector<clock_type::time_point> restart_times;
    actor_report totals; // counters summed over incarnations; last stop
    // A troupe child's final report and its down message come in either
    // order: `early` holds a report that came first, `reports_due` counts
    // downs whose report is still to come.
    std::optional<actor_report> early;
    uint32_t reports_due = 0;
    std::optional<stop_reason> forced; // set when the supervisor stopped it
    uint64_t relay_lost = 0;           // messages its address could not deliver
    // Told to stop by a concurrent stop and not down yet; `kill_sent` once
    // it was killed (its timeout or the deadline passed).
    bool awaited = false;
    bool kill_sent = false;
  };

  // -- starting ---------------------------------------------------------------

  void start_child(size_t i) {
    auto& c = children_[i];
    c.ended_normally = false;
    spawn_context ctx{self_->system(), c.spec.name, c.relay,
                      caf::actor_cast<caf::actor>(self_), c.restarts, lookup_};
    // A node that cannot be reached is a failed start like any other here:
    // OTP's rules apply.
    auto started = try_start(c.spec.start, ctx);
    if (!started.failure.empty()) {
      c.protocol = child_protocol{}; // no report will come from this start
      // Handled as a message, not in place: the failure may restart siblings
      // while a start loop is still running.
      self_->send(self_, start_failed_atom::value, static_cast<uint64_t>(i),
                  make_error(errc::child_start_failed,
                             c.spec.name + ": " + started.failure));
      return;
    }
    auto& handle = started.handle;
    c.current = handle;
    by_address_[handle.address()] = i;
    c.protocol = ctx.declared();
    c.done = false;
    self_->monitor(handle);
    self_->send(c.relay, relay_attach_atom::value, handle);
    // A source restarted after intake stopped must not start producing.
    if (intake_stopped_ && c.protocol.intake)
      self_->send(handle, stop_intake_atom::value);
  }

  // -- child exits ------------------------------------------------------------

  // Looked up by address, not by a scan: a supervisor of thousands of
  // children gets as many downs when it stops them.
  std::optional<size_t> index_of(const caf::actor_addr& addr) const {
    auto i = by_address_.find(addr);
    if (i == by_address_.end())
      return std::nullopt;
    return i->second;
  }

  void on_down(const caf::down_msg& x) {
    auto idx = index_of(x.source);
    if (!idx)
      return;
    auto& c = children_[*idx];
    c.current = nullptr;
    // A stop the supervisor asked for ends a child with another reason (a
    // cancel, a user_shutdown exit), so this one finished by itself.
    c.ended_normally = !x.reason || x.reason == caf::exit_reason::normal;
    by_address_.erase(x.source);
    // Gone for good unless a group restart brings it back; if it failed
    // (killed at its deadline, say), the links it fed end now rather than
    // leaving their downstream to wait for its own deadline.
    bool stopped = being_stopped(*idx);
    bool for_good = stopped && mode_ != mode::restarting;
    // Whoever hears from the supervisor after this can rely on the address
    // holding messages for the next incarnation. A child given up at once
    // needs no detach: closing its address detaches it too.
    if (!for_good)
      self_->send(c.relay, relay_detach_atom::value, x.source);
    record_stop(c, x.reason);
    if (stopped) {
      if (for_good)
        give_up(*idx, failed(x.reason));
      if (concurrent()) {
        c.awaited = false;
        if (--stopping_->waiting == 0)
          all_stopped();
        return;
      }
      timers_.erase(stopping_->timer);
      ++stopping_->pos;
      advance();
      return;
    }
    child_exited(*idx, x.reason);
  }

  bool concurrent() const {
    return spec_.stop_order == stop_order::concurrent;
  }

  // Whether the stop sequence waits for this child's exit.
  bool being_stopped(size_t i) const {
    if (!stopping_)
      return false;
    if (concurrent())
      return children_[i].awaited;
    return stopping_->pos < stopping_->order.size()
           && stopping_->order[stopping_->pos] == i;
  }

  void on_report(actor_report&& x) {
    auto i = by_name_.find(x.name);
    if (i == by_name_.end())
      return;
    auto& c = children_[i->second];
    if (c.reports_due > 0) {
      --c.reports_due;
      --reports_due_;
      add_counters(c.totals, std::move(x));
      try_complete();
    } else if (c.current) {
      c.early = std::move(x);
    }
  }

  // Records how an incarnation stopped, and its counters if its report came.
  void record_stop(child& c, const caf::error& reason) {
    auto how = stop_reason_of(reason, false);
    if (c.early) {
      how = c.early->stopped;
      add_counters(c.totals, std::move(*c.early));
      c.early.reset();
    } else if (c.protocol.troupe_aware) {
      ++c.reports_due;
      ++reports_due_;
    } else {
      c.totals.kind = "actor";
    }
    if (c.forced)
      how = *c.forced;
    // During a graceful shutdown, whatever ended normally (or by the exit a
    // plain actor gets) ended because its intake stopped and its inputs
    // drained.
    bool draining = (mode_ == mode::shutting_down
                     && shutdown_kind_ == stop_kind::drain)
                    || (intake_stopped_ && c.protocol.intake);
    if (!c.forced && draining
        && (how == stop_reason::completed || how == stop_reason::stopped))
      how = stop_reason::drained;
    c.forced.reset();
    c.totals.stopped = how;
    bool notable = how == stop_reason::crashed || how == stop_reason::killed;
    c.totals.error = notable && reason ? self_->system().render(reason)
                                       : std::string{};
  }

  static bool failed(const caf::error& reason) {
    return reason && reason != caf::exit_reason::normal
           && reason != caf::exit_reason::user_shutdown;
  }

  void child_exited(size_t i, const caf::error& reason) {
    if (mode_ == mode::shutting_down || mode_ == mode::escalating
        || mode_ == mode::finished) {
      give_up(i, failed(reason));
      return;
    }
    if (mode_ == mode::restarting) {
      deferred_.emplace_back(i, reason);
      return;
    }
    auto& c = children_[i];
    // A source that ended because intake stopped did what it was asked.
    bool drained_source = intake_stopped_ && c.protocol.intake && !failed(reason);
    if (drained_source || !wants_restart(c, reason)) {
      give_up(i, failed(reason));
      check_auto_shutdown();
      return;
    }
    if (!restart_window_.note_restart()) {
      escalate();
      return;
    }
    auto delay = backoff_delay(c);
    switch (spec_.strategy) {
      case restart_strategy::one_for_one:
        after(delay, [this, i] { restart({i}); });
        break;
      case restart_strategy::one_for_all:
        restart_group(i, 0, delay);
        break;
      case restart_strategy::rest_for_one:
        restart_group(i, i, delay);
        break;
    }
  }

  bool wants_restart(const child& c, const caf::error& reason) const {
    switch (c.spec.restart) {
      case restart_type::permanent:
        return true;
      case restart_type::transient:
        return failed(reason);
      case restart_type::temporary:
        return false;
    }
    return false;
  }

  // The child will not run again: its address stops holding messages and, if
  // it failed, ends the stream links it fed.
  void give_up(size_t i, bool failed) {
    children_[i].done = true;
    close_address(i, failed);
  }

  // A call, not a message (see close_relay): the count is there at once.
  // Relays count cumulatively; the latest count is the one to report.
  void close_address(size_t i, bool failed) {
    auto& c = children_[i];
    c.relay_lost = close_relay(c.relay, failed, self_->context());
  }


  caf::timespan backoff_delay(child& c) {
    auto now = clock_type::now();
    c.restart_times.push_back(now);
    auto recent = std::find_if(c.restart_times.begin(), c.restart_times.end(),
                               [&](clock_type::time_point t) {
                                 return now - t <= spec_.intensity.period;
                               });
    c.restart_times.erase(c.restart_times.begin(), recent);
    auto& b = spec_.backoff;
    if (b.initial <= caf::timespan{0})
      return caf::timespan{0};
    auto factor = std::pow(b.multiplier,
                           static_cast<double>(c.restart_times.size() - 1));
    auto ns = static_cast<double>(b.initial.count()) * factor;
    if (ns >= static_cast<double>(b.max.count()))
      return b.max;
    return caf::timespan{static_cast<caf::timespan::rep>(ns)};
  }

  // Stops the running children from `first` on (except `failed`) in reverse
  // start order, then starts them all again in start order.
  void restart_group(size_t failed, size_t first, caf::timespan delay) {
    std::vector<size_t> group;
    for (size_t i = first; i < children_.size(); ++i)
      if (i == failed || children_[i].current)
        group.push_back(i);
    std::vector<size_t> to_stop(group.rbegin(), group.rend());
    mode_ = mode::restarting;
    stop_children(std::move(to_stop), stop_kind::stop, [this, group, delay] {
      after(delay, [this, group] { restart(group); });
    });
  }

  void restart(const std::vector<size_t>& group) {
    if (mode_ != mode::running && mode_ != mode::restarting)
      return;
    mode_ = mode::running;
    for (auto i : group) {
      auto& c = children_[i];
      if (c.current)
        continue;
      if (c.ended_normally && c.spec.restart != restart_type::permanent) {
        // OTP: a transient or temporary child that finished stays finished;
        // it ended while its group was stopping (its exit may be deferred,
        // which then finds it done).
        give_up(i, false);
        continue;
      }
      if (c.spec.restart == restart_type::temporary) {
        // OTP: a temporary child is not restarted with its group. It was
        // stopped, not finished: the links it fed end with an error.
        give_up(i, true);
        continue;
      }
      ++c.restarts;
      start_child(i);
    }
    auto deferred = std::move(deferred_);
    deferred_.clear();
    for (auto& [i, reason] : deferred)
      if (!children_[i].current && !children_[i].done)
        child_exited(i, reason);
    check_auto_shutdown();
  }

  void escalate() {
    mode_ = mode::escalating;
    timers_.clear();
    stop_children(reverse_start_order(), stop_kind::stop, [this] {
      finish(stop_reason::crashed,
             make_error(errc::restart_intensity_exceeded, name_));
    });
  }

  void check_auto_shutdown() {
    if (spec_.auto_shutdown != auto_shutdown::all_children_done
        || mode_ != mode::running || !timers_.empty())
      return;
    for (auto& c : children_)
      if (c.current || !c.done)
        return;
    finish(stop_reason::completed, caf::error{});
  }

  // -- stopping children -------------------------------------------------------

  std::vector<size_t> reverse_start_order() const {
    std::vector<size_t> order;
    for (size_t i = children_.size(); i > 0; --i)
      order.push_back(i - 1);
    return order;
  }

  void stop_children(std::vector<size_t> order, stop_kind kind,
                     std::function<void()> then) {
    stopping_.emplace();
    stopping_->order = std::move(order);
    stopping_->kind = kind;
    stopping_->then = std::move(then);
    if (!concurrent()) {
      advance();
      return;
    }
    for (auto& c : children_)
      c.awaited = false;
    stop_all();
  }

  void all_stopped() {
    for (auto token : stopping_->timers)
      timers_.erase(token);
    auto then = std::move(stopping_->then);
    stopping_.reset();
    then();
  }

  // Tells every running child to stop at once. Children that share a
  // shutdown timeout share one timer: ten thousand children with the same
  // timeout cost one entry in CAF's clock, not ten thousand.
  void stop_all() {
    auto& seq = *stopping_;
    std::map<caf::timespan, std::vector<size_t>> by_timeout;
    for (auto i : seq.order) {
      auto& c = children_[i];
      if (!c.current)
        continue;
      c.awaited = true;
      c.kill_sent = false;
      ++seq.waiting;
      if (deadline_passed_) {
        kill(c);
        c.kill_sent = true;
      } else {
        signal(c, seq.kind);
        by_timeout[c.spec.shutdown].push_back(i);
      }
    }
    if (seq.waiting == 0) {
      all_stopped();
      return;
    }
    if (deadline_passed_) {
      seq.timers.push_back(
        after(kill_grace, [this, order = seq.order] { abandon(order); }));
      return;
    }
    for (auto& [timeout, group] : by_timeout)
      seq.timers.push_back(
        after(timeout, [this, g = std::move(group)] { kill_overdue(g); }));
  }

  // Children of a concurrent stop in `group` still running past their
  // timeout (or the deadline) are killed; past a grace period they are given
  // up on, as a sequential stop gives up on one.
  void kill_overdue(const std::vector<size_t>& group) {
    if (!stopping_)
      return;
    bool any = false;
    for (auto i : group) {
      auto& c = children_[i];
      if (!c.awaited)
        continue;
      any = true;
      if (!c.kill_sent) {
        kill(c);
        c.kill_sent = true;
      }
    }
    if (any)
      stopping_->timers.push_back(
        after(kill_grace, [this, group] { abandon(group); }));
  }

  void abandon(const std::vector<size_t>& group) {
    if (!stopping_)
      return;
    for (auto i : group) {
      auto& c = children_[i];
      if (!c.awaited)
        continue;
      c.awaited = false;
      c.totals.stopped = stop_reason::killed;
      c.totals.error = "did not stop after being killed";
      --stopping_->waiting;
    }
    if (stopping_->waiting == 0)
      all_stopped();
  }

  void advance() {
    auto& seq = *stopping_;
    while (seq.pos < seq.order.size()) {
      auto& c = children_[seq.order[seq.pos]];
      if (c.current) {
        seq.killed = false;
        if (deadline_passed_) {
          kill(c);
          seq.killed = true;
          seq.timer = after(kill_grace, [this] { stop_overdue(); });
        } else {
          signal(c, seq.kind);
          seq.timer = after(c.spec.shutdown, [this] { stop_overdue(); });
        }
        return;
      }
      ++seq.pos;
    }
    all_stopped();
  }

  void signal(child& c, stop_kind kind) {
    if (kind == stop_kind::drain) {
      // Through the relay: the drain then queues behind the messages sent to
      // the child's address before it, which the child handles before it
      // stops. Sent to the child directly, it could overtake them, and they
      // would reach a child that is gone.
      if (c.protocol.troupe_aware)
        self_->send(c.relay, drain_atom::value, c.spec.shutdown);
      else
        self_->send_exit(c.current, caf::exit_reason::user_shutdown);
      return;
    }
    c.forced = kind == stop_kind::stop ? stop_reason::stopped
                                       : stop_reason::cancelled;
    if (c.protocol.troupe_aware)
      self_->send<caf::message_priority::high>(c.current, cancel_atom::value);
    else
      self_->send_exit(c.current, caf::exit_reason::user_shutdown);
  }

  void kill(child& c) {
    c.forced = stop_reason::killed;
    self_->send_exit(c.current, caf::exit_reason::kill);
  }

  // The child being stopped missed its deadline: kill it, and after a grace
  // period move on even if it never answers (a handler that never returns).
  void stop_overdue() {
    if (!stopping_ || stopping_->pos >= stopping_->order.size())
      return;
    auto& seq = *stopping_;
    auto& c = children_[seq.order[seq.pos]];
    if (!seq.killed) {
      seq.killed = true;
      kill(c);
      seq.timer = after(kill_grace, [this] { stop_overdue(); });
      return;
    }
    c.totals.stopped = stop_reason::killed;
    c.totals.error = "did not stop after being killed";
    ++seq.pos;
    advance();
  }

  // -- timers -----------------------------------------------------------------

  // Runs `f` after `delay`, always from a later message (never in place, so
  // callers never see their own state change under them).
  uint64_t after(caf::timespan delay, std::function<void()> f) {
    auto token = ++next_timer_;
    timers_.emplace(token, std::move(f));
    if (delay <= caf::timespan{0})
      self_->send(self_, timer_atom::value, token);
    else
      self_->delayed_send(self_, delay, timer_atom::value, token);
    return token;
  }

  void on_timer(uint64_t token) {
    auto i = timers_.find(token);
    if (i == timers_.end())
      return;
    auto f = std::move(i->second);
    timers_.erase(i);
    f();
  }

  // -- shutdown ---------------------------------------------------------------

  caf::result<actor_report> shutdown(stop_kind kind, caf::timespan deadline) {
    caf::response_promise rp;
    if (self_->current_message_id().is_request()) {
      rp = self_->make_response_promise();
      waiting_.push_back(rp);
    }
    if (mode_ == mode::shutting_down) {
      if (kind == stop_kind::cancel && shutdown_kind_ == stop_kind::drain)
        upgrade_to_cancel();
      return rp;
    }
    if (mode_ == mode::escalating || mode_ == mode::finished)
      return rp;
    mode_ = mode::shutting_down;
    shutdown_kind_ = kind;
    timers_.clear(); // pending restarts and stop timers are void now
    deferred_.clear();
    stopping_.reset();
    if (kind == stop_kind::drain)
      stop_intake();
    // Children waiting for a restart (backoff, a group restart) would never
    // come back: a drain starts them so that they drain what was meant for
    // them; a cancel gives them up.
    for (size_t i = 0; i < children_.size(); ++i) {
      auto& c = children_[i];
      if (c.current || c.done)
        continue;
      if (kind == stop_kind::drain) {
        ++c.restarts;
        start_child(i);
      } else {
        give_up(i, true);
      }
    }
    // Every supervisor keeps a margin, so that a nested one still reports
    // before its parent's deadline for it runs out.
    after(deadline - deadline / 10, [this] { deadline_passes(); });
    stop_children(reverse_start_order(), kind, [this] {
      finish(shutdown_kind_ == stop_kind::drain ? stop_reason::drained
                                                : stop_reason::cancelled,
             caf::error{});
    });
    return rp;
  }

  void stop_intake() {
    intake_stopped_ = true;
    for (auto& c : children_)
      if (c.current && c.protocol.intake)
        self_->send(c.current, stop_intake_atom::value);
  }

  void upgrade_to_cancel() {
    shutdown_kind_ = stop_kind::cancel;
    if (!stopping_)
      return;
    stopping_->kind = stop_kind::cancel;
    if (concurrent()) {
      for (auto i : stopping_->order) {
        auto& c = children_[i];
        if (c.awaited && !c.kill_sent && c.current)
          signal(c, stop_kind::cancel);
      }
      return;
    }
    if (stopping_->pos < stopping_->order.size()) {
      auto& c = children_[stopping_->order[stopping_->pos]];
      if (c.current)
        signal(c, stop_kind::cancel);
    }
  }

  // The shutdown deadline passed: every child still running is killed, and
  // those still to come in the stop order are killed without waiting.
  void deadline_passes() {
    deadline_passed_ = true;
    if (!stopping_)
      return;
    if (concurrent()) {
      kill_overdue(stopping_->order);
      return;
    }
    for (size_t k = stopping_->pos; k < stopping_->order.size(); ++k) {
      auto& c = children_[stopping_->order[k]];
      if (c.current)
        kill(c);
    }
    if (stopping_->pos < stopping_->order.size() && !stopping_->killed) {
      stopping_->killed = true;
      timers_.erase(stopping_->timer);
      stopping_->timer = after(kill_grace, [this] { stop_overdue(); });
    }
  }

  // Closes the children's addresses (their lost counts go into the report),
  // waits for the final reports still on their way, answers the shutdown
  // requests and stops.
  void finish(stop_reason how, caf::error reason) {
    mode_ = mode::finished;
    timers_.clear();
    stopping_.reset();
    finish_how_ = how;
    finish_reason_ = reason ? std::move(reason) : exit_reason_;
    for (size_t i = 0; i < children_.size(); ++i)
      close_address(i, false);
    try_complete();
    if (!completed_)
      after(query_timeout, [this] {
        reports_overdue_ = true;
        try_complete();
      });
  }

  void try_complete() {
    if (mode_ != mode::finished || completed_)
      return;
    if (!reports_overdue_ && reports_due_ > 0)
      return;
    completed_ = true;
    // The last report of the children's totals: taken, not copied, and
    // copied only as many times as there are more recipients than one (ten
    // thousand children make a report of ten thousand maps and strings).
    auto report = take_subtree_report(finish_how_);
    bool for_parent = static_cast<bool>(ctx_.supervisor());
    for (size_t k = 0; k < waiting_.size(); ++k) {
      if (!for_parent && k + 1 == waiting_.size())
        waiting_[k].deliver(std::move(report));
      else
        waiting_[k].deliver(report);
    }
    waiting_.clear();
    if (for_parent)
      final_report_ = std::move(report);
    self_->quit(finish_reason_);
  }

  actor_report subtree_report(stop_reason how) const {
    actor_report r = report_head(how);
    r.children.reserve(children_.size());
    for (auto& c : children_) {
      r.children.push_back(c.totals);
      complete_child_report(c, r.children.back());
    }
    return r;
  }

  actor_report take_subtree_report(stop_reason how) {
    actor_report r = report_head(how);
    r.children.reserve(children_.size());
    for (auto& c : children_) {
      r.children.push_back(std::move(c.totals));
      complete_child_report(c, r.children.back());
    }
    return r;
  }

  actor_report report_head(stop_reason how) const {
    actor_report r;
    r.name = name_;
    r.kind = "supervisor";
    r.restarts = ctx_.restarts();
    r.stopped = how;
    return r;
  }

  // In place, in the report's list: ten thousand children's reports are
  // moved once each, not three times.
  static void complete_child_report(const child& c, actor_report& t) {
    t.lost += c.relay_lost;
    t.name = c.spec.name;
    t.restarts = c.restarts;
    if (t.kind.empty())
      t.kind = "actor";
    if (c.current)
      t.stopped = stop_reason::running;
  }

  caf::result<actor_report> status() {
    auto rp = self_->make_response_promise<actor_report>();
    auto report = std::make_shared<actor_report>(
      subtree_report(stop_reason::running));
    auto pending = std::make_shared<size_t>(1);
    auto done = [rp, report, pending]() mutable {
      if (--*pending == 0)
        rp.deliver(*report);
    };
    for (size_t i = 0; i < children_.size(); ++i) {
      auto& c = children_[i];
      if (!c.current || !c.protocol.troupe_aware)
        continue;
      ++*pending;
      self_->request(c.current, query_timeout, status_atom::value)
        .then(
          [report, i, done](actor_report& live) mutable {
            add_counters(report->children[i], live);
            done();
          },
          [done](caf::error&) mutable { done(); });
    }
    done();
    return rp;
  }

  spawn_context ctx_;
  supervisor_spec spec_;
  std::string name_;
  caf::event_based_actor* self_ = nullptr;
  std::vector<child> children_;
  std::unordered_map<caf::actor_addr, size_t> by_address_; // running children
  std::unordered_map<std::string, size_t> by_name_;
  spawn_context::lookup_function lookup_;
  mode mode_ = mode::running;
  stop_kind shutdown_kind_ = stop_kind::drain;
  bool intake_stopped_ = false;
  bool deadline_passed_ = false;
  std::optional<stop_sequence> stopping_;
  restart_window restart_window_{spec_.intensity};
  std::vector<std::pair<size_t, caf::error>> deferred_;
  std::unordered_map<uint64_t, std::function<void()>> timers_;
  uint64_t next_timer_ = 0;
  std::vector<caf::response_promise> waiting_;
  stop_reason finish_how_ = stop_reason::running;
  caf::error finish_reason_;
  caf::error exit_reason_; // an exit message from outside asked us to stop
  // Totals over the children, so that each answer is not a scan of them.
  size_t reports_due_ = 0;
  bool reports_overdue_ = false;
  bool completed_ = false;
  // The report delivered on completion, kept for the parent (on_exit).
  std::optional<actor_report> final_report_;
};

caf::behavior supervisor_core::start(caf::event_based_actor* self) {
  self_ = self;
  // Every address exists before any child starts, so that a child can be
  // wired to a sibling that starts after it.
  auto addresses = std::make_shared<std::map<std::string, caf::actor>>();
  // The specs move into the children: spec_ is not read for them again.
  children_.reserve(spec_.children.size());
  for (auto& spec : spec_.children) {
    child c;
    c.relay = spawn_relay(self->system(), spec.name, spec.restart_buffer,
                          self->address());
    c.totals.name = spec.name;
    (*addresses)[spec.name] = c.relay;
    by_name_[spec.name] = children_.size();
    c.spec = std::move(spec);
    children_.push_back(std::move(c));
  }
  spec_.children.clear();
  lookup_ = [addresses, parent = ctx_](const std::string& name) {
    auto i = addresses->find(name);
    return i != addresses->end() ? i->second : parent.sibling(name);
  };
  for (size_t i = 0; i < children_.size(); ++i)
    start_child(i);
  auto core = shared_from_this();
  self->set_down_handler([core](caf::down_msg& x) { core->on_down(x); });
  // An exit from outside (a parent that is not a troupe supervisor, say)
  // stops the subtree in order rather than abandoning it.
  self->set_exit_handler([core](caf::exit_msg& x) {
    if (x.reason == caf::exit_reason::normal)
      return; // a linked actor ended normally: nothing to do (CAF's default)
    core->exit_reason_ = x.reason;
    core->shutdown(stop_kind::stop, shutdown_deadline(core->self_->system()));
  });
  return {
    [core](timer_atom, uint64_t token) { core->on_timer(token); },
    [core](start_failed_atom, uint64_t i, caf::error& reason) {
      auto& c = core->children_[static_cast<size_t>(i)];
      if (c.current)
        return; // started since (a shutdown starts children due a restart)
      core->record_stop(c, reason);
      core->child_exited(static_cast<size_t>(i), reason);
    },
    // Not const: an unshared message's report is taken over, not copied.
    [core](actor_report& x) { core->on_report(std::move(x)); },
    [core](drain_atom) {
      return core->shutdown(stop_kind::drain,
                            shutdown_deadline(core->self_->system()));
    },
    [core](drain_atom, caf::timespan deadline) {
      return core->shutdown(stop_kind::drain, deadline);
    },
    [core](cancel_atom) {
      return core->shutdown(stop_kind::cancel,
                            shutdown_deadline(core->self_->system()));
    },
    [core](stop_intake_atom) { core->stop_intake(); },
    [core](status_atom) { return core->status(); },
    [core](caf::get_atom, const std::string& name) -> caf::result<caf::actor> {
      if (auto i = core->by_name_.find(name); i != core->by_name_.end())
        return core->children_[i->second].relay;
      return caf::make_error(caf::sec::invalid_argument,
                             "no child named " + name);
    },
  };
}

void supervisor_core::on_exit(const caf::error& reason) {
  bool wanted = ctx_.supervisor() || !waiting_.empty();
  actor_report report;
  if (final_report_)
    report = std::move(*final_report_);
  else if (wanted)
    report = subtree_report(completed_ ? finish_how_
                                       : stop_reason_of(reason, false));
  for (size_t i = 0; i < children_.size(); ++i) {
    auto& c = children_[i];
    if (c.current) {
      caf::anon_send_exit(c.current, caf::exit_reason::kill);
      if (wanted)
        report.children[i].stopped = stop_reason::killed;
    }
    stop_relay(c.relay, self_->context());
  }
  if (!wanted)
    return;
  if (reason && reason != caf::exit_reason::normal)
    report.error = self_->system().render(reason);
  for (auto& rp : waiting_)
    rp.deliver(report);
  if (ctx_.supervisor())
    caf::anon_send(ctx_.supervisor(), std::move(report));
}

} // namespace

caf::actor spawn_supervisor(spawn_context ctx, supervisor_spec spec) {
  validate(spec);
  auto core = std::make_shared<supervisor_core>(ctx, std::move(spec));
  ctx.declare(child_protocol{true, true});
  // The core is a spawn argument, not a capture: see spawn_core in stage.cpp.
  auto fn = [](caf::event_based_actor* self,
               std::shared_ptr<supervisor_core> core) {
    self->attach_functor([core](const caf::error& reason) {
      core->on_exit(reason);
    });
    return core->start(self);
  };
  return ctx.system().spawn(fn, std::move(core));
}

child_spec supervisor_child(supervisor_spec spec, restart_type restart,
                            caf::timespan shutdown) {
  child_spec result;
  result.name = spec.name;
  result.restart = restart;
  result.shutdown = shutdown;
  result.start = [spec = std::move(spec)](const spawn_context& ctx) {
    return spawn_supervisor(ctx, spec);
  };
  return result;
}

} // namespace troupe
