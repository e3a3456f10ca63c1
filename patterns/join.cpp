#include "troupe/patterns/join.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"
#include "troupe/actors/request.hpp"

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/make_message.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace troupe {

void join_config::validate() const {
  if (mode != join_mode::all && mode != join_mode::first_error)
    throw config_error("join_config", "mode is not all or first_error");
  if (timeout < caf::timespan{0})
    throw config_error("join_config", "timeout is negative");
}

namespace {

// The state of one join, shared by its actor's behavior and the functor that
// answers and reports when the actor stops.
class join_core {
public:
  join_core(spawn_context ctx, join_config cfg, std::vector<join_branch> branches,
            caf::actor owner)
    : ctx_(std::move(ctx)),
      cfg_(cfg),
      branches_(std::move(branches)),
      owner_(std::move(owner)),
      results_(branches_.size()),
      settled_(branches_.size(), false),
      idle_(branches_.size(), false),
      remaining_(branches_.size()) {
    // nop
  }

  caf::behavior start(caf::event_based_actor* self,
                      const std::shared_ptr<join_core>& me) {
    self_ = self;
    self->set_down_handler([me](caf::down_msg& x) { me->on_down(x); });
    if (owner_)
      self->monitor(owner_);
    auto timeout = cfg_.timeout > caf::timespan{0} ? caf::duration{cfg_.timeout}
                                                   : caf::duration{caf::infinite};
    for (size_t i = 0; i < branches_.size(); ++i) {
      auto& b = branches_[i];
      if (b.owned)
        self->monitor(b.target);
      request_any(
        self, b.target, timeout, b.request,
        [me, i](caf::message& x) { me->settle(i, std::move(x), caf::error{}); },
        [me, i](caf::error& e) { me->settle(i, caf::message{}, std::move(e)); });
    }
    if (branches_.empty())
      finish(caf::error{});
    return {
      [me](join_atom) -> caf::result<caf::message> {
        if (me->done_) {
          me->self_->quit();
          return me->answer();
        }
        auto rp = me->self_->make_response_promise();
        me->waiting_.push_back(rp);
        return rp;
      },
      [me](status_atom) { return me->report(stop_reason::running); },
      [me](drain_atom) -> caf::result<caf::message> {
        me->draining_ = true;
        if (me->done_)
          me->self_->quit();
        return caf::message{};
      },
      [me](drain_atom, caf::timespan) -> caf::result<caf::message> {
        me->draining_ = true;
        if (me->done_)
          me->self_->quit();
        return caf::message{};
      },
      [me](cancel_atom) -> caf::result<caf::message> {
        me->cancel(make_error(errc::cancelled));
        return caf::message{};
      },
    };
  }

  // The actor stops: whoever still waits gets the answer or the reason, and
  // the supervisor gets the report.
  void on_exit(const caf::error& reason) {
    if (!done_)
      decide(reason ? reason : make_error(errc::shutting_down));
    answer_waiting();
    if (!ctx_.supervisor())
      return;
    auto r = report(stop_reason_of(reason, draining_));
    if (reason)
      r.error = ctx_.system().render(reason);
    caf::anon_send(ctx_.supervisor(), std::move(r));
  }

private:
  void settle(size_t i, caf::message value, caf::error err) {
    if (err != caf::sec::request_timeout)
      idle_[i] = true;
    if (done_ || settled_[i])
      return;
    settled_[i] = true;
    --remaining_;
    if (err) {
      ++failed_;
      if (err == caf::sec::request_timeout) {
        ++timed_out_;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.timeout);
        err = make_error(errc::call_timeout,
                         "join: no answer within " + std::to_string(ms.count()) + " ms");
      }
      results_[i] = caf::make_message(err);
      if (cfg_.mode == join_mode::first_error) {
        finish(with_context(err, "join: branch " + std::to_string(i) + " of "
                                       + std::to_string(branches_.size()) + " failed"));
        return;
      }
    } else {
      ++answered_;
      results_[i] = std::move(value);
    }
    if (remaining_ == 0)
      finish(caf::error{});
  }

  void on_down(const caf::down_msg& x) {
    if (owner_ && x.source == owner_.address()) {
      // Nobody waits for the result any more.
      cancel(x.reason ? x.reason : make_error(errc::cancelled));
      return;
    }
    for (size_t i = 0; i < branches_.size(); ++i)
      if (branches_[i].owned && branches_[i].target.address() == x.source) {
        idle_[i] = true;
        settle(i, caf::message{},
               x.reason ? x.reason : caf::make_error(caf::sec::request_receiver_down));
      }
  }

  void cancel(const caf::error& reason) {
    if (!done_)
      decide(reason);
    answer_waiting();
    self_->quit(reason);
  }

  // The join is decided; whoever asked gets the result and the actor stops.
  void finish(caf::error failure) {
    decide(std::move(failure));
    if (!waiting_.empty() || draining_) {
      answer_waiting();
      self_->quit();
    }
  }

  // `failure` is the join's error (empty: it succeeded). Owned branches are
  // killed (the ones still working count as cancelled) and shared ones still
  // working are abandoned.
  void decide(caf::error failure) {
    done_ = true;
    failure_ = std::move(failure);
    // The owner's monitor entry would outlive this actor in the owner's list
    // (one per join_all of a long-lived caller).
    if (owner_) {
      self_->demonitor(owner_);
      owner_ = nullptr;
    }
    for (size_t i = 0; i < branches_.size(); ++i) {
      auto& b = branches_[i];
      if (b.owned) {
        // Kill, not user_shutdown: a branch that traps exits would ignore
        // the latter. One whose answer is still in this actor's mailbox
        // counts as cancelled: the join cannot tell it from a working one.
        if (!idle_[i])
          ++cancelled_;
        caf::anon_send_exit(b.target, caf::exit_reason::kill);
      } else if (!idle_[i]) {
        ++abandoned_;
      }
    }
  }

  caf::result<caf::message> answer() const {
    if (failure_)
      return failure_;
    return caf::make_message(batch{results_});
  }

  void answer_waiting() {
    for (auto& rp : waiting_) {
      if (failure_)
        rp.deliver(failure_);
      else
        rp.deliver(batch{results_});
    }
    waiting_.clear();
  }

public:
  actor_report report(stop_reason how) const {
    actor_report r;
    r.name = ctx_.name();
    r.kind = "join";
    r.in = branches_.size();
    r.out = answered_;
    r.errors = failed_;
    r.restarts = ctx_.restarts();
    r.stopped = how;
    r.state = done_ ? "done" : "running";
    r.stats["branches"] = static_cast<int64_t>(branches_.size());
    r.stats["answered"] = static_cast<int64_t>(answered_);
    r.stats["failed"] = static_cast<int64_t>(failed_);
    r.stats["timed_out"] = static_cast<int64_t>(timed_out_);
    r.stats["cancelled"] = static_cast<int64_t>(cancelled_);
    r.stats["abandoned"] = static_cast<int64_t>(abandoned_);
    return r;
  }

private:
  spawn_context ctx_;
  join_config cfg_;
  std::vector<join_branch> branches_;
  caf::actor owner_;
  caf::event_based_actor* self_ = nullptr;
  std::vector<item> results_;
  std::vector<bool> settled_;
  // Branches known to do no more work for the join: they answered, or
  // (owned ones) stopped. A branch failed by the timeout is still busy.
  std::vector<bool> idle_;
  size_t remaining_;
  bool done_ = false;
  bool draining_ = false;
  caf::error failure_;
  std::vector<caf::response_promise> waiting_;
  uint64_t answered_ = 0;
  uint64_t failed_ = 0;
  uint64_t timed_out_ = 0;
  uint64_t cancelled_ = 0;
  uint64_t abandoned_ = 0;
};

caf::actor spawn_join_for(spawn_context ctx, join_config cfg,
                          std::vector<join_branch> branches, caf::actor owner) {
  cfg.validate();
  for (size_t i = 0; i < branches.size(); ++i)
    if (!branches[i].target)
      throw config_error("join", "branches[" + std::to_string(i)
                                   + "].target is not an actor");
  ctx.declare(child_protocol{true, false});
  auto core = std::make_shared<join_core>(ctx, cfg, std::move(branches),
                                          std::move(owner));
  // The core travels as a spawn argument: CAF 0.17 trips UBSan when a
  // spawned function takes no arguments.
  auto fn = [](caf::event_based_actor* self, std::shared_ptr<join_core> c) {
    self->attach_functor([c](const caf::error& reason) { c->on_exit(reason); });
    return c->start(self, c);
  };
  return ctx.system().spawn(fn, std::move(core));
}

caf::actor spawn_owned_join(caf::event_based_actor* self, join_mode mode,
                            caf::timespan timeout, std::vector<join_branch> branches) {
  if (self == nullptr)
    throw config_error("join", "self is null");
  join_config cfg;
  cfg.mode = mode;
  cfg.timeout = timeout;
  return spawn_join_for(self->system(), cfg, std::move(branches),
                        caf::actor_cast<caf::actor>(self));
}

} // namespace

caf::actor spawn_join(spawn_context ctx, join_config cfg,
                      std::vector<join_branch> branches) {
  return spawn_join_for(std::move(ctx), cfg, std::move(branches), caf::actor{});
}

void join_all(caf::event_based_actor* self, std::vector<join_branch> branches,
              caf::timespan timeout, std::function<void(join_results&)> done) {
  if (!done)
    throw config_error("join_all", "done is empty");
  auto n = branches.size();
  auto j = spawn_owned_join(self, join_mode::all, timeout, std::move(branches));
  request_any(
    self, j, caf::infinite, caf::make_message(join_atom::value),
    [done](caf::message& x) {
      join_results results;
      if (x.match_elements<batch>())
        for (auto& answer : x.get_mutable_as<batch>(0).items) {
          if (answer.match_elements<caf::error>())
            results.emplace_back(answer.get_as<caf::error>(0));
          else
            results.emplace_back(std::move(answer));
        }
      done(results);
    },
    [done, n](caf::error& e) {
      // The join actor stopped before it was done (cancelled, or the system
      // shuts down): every branch gets that error.
      join_results results(n, caf::expected<item>{e});
      done(results);
    });
}

void try_join(caf::event_based_actor* self, std::vector<join_branch> branches,
              caf::timespan timeout,
              std::function<void(std::vector<item>&)> on_values,
              std::function<void(caf::error&)> on_error) {
  if (!on_values)
    throw config_error("try_join", "on_values is empty");
  if (!on_error)
    throw config_error("try_join", "on_error is empty");
  auto j = spawn_owned_join(self, join_mode::first_error, timeout, std::move(branches));
  request_any(
    self, j, caf::infinite, caf::make_message(join_atom::value),
    [on_values, on_error](caf::message& x) {
      if (!x.match_elements<batch>()) {
        auto err = caf::make_error(caf::sec::unexpected_response);
        on_error(err);
        return;
      }
      on_values(x.get_mutable_as<batch>(0).items);
    },
    [on_error](caf::error& e) { on_error(e); });
}

} // namespace troupe
