#include "troupe/supervision/relay.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_config.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/make_actor.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/type_nr.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

namespace troupe {

namespace {

// The relay is not a scheduled actor: it does its work inside enqueue, on
// the sender's thread. A message for a running child goes on to it in the
// same mailbox element, so the stable address costs a lock and a few checks
// rather than a hop through a mailbox of its own (an allocation, a wake-up
// and a run of the scheduler per message). Everything else it does is what
// a scheduled relay would do with the message in its turn: the lock orders
// the messages of all senders as a mailbox would.
class relay_actor final : public caf::monitorable_actor {
public:
  relay_actor(caf::actor_config& cfg, std::string child, size_t capacity,
              caf::actor_addr supervisor)
    : caf::monitorable_actor(cfg),
      child_(std::move(child)),
      capacity_(capacity),
      supervisor_(std::move(supervisor)) {
    // nop
  }

  const char* name() const override {
    return "troupe.relay";
  }

  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* ctx) override {
    // Every message passes here, so kinds are told apart by the type token
    // first (one compare), and only candidates are matched in full.
    auto token = x->content().type_token();
    auto atom = leading_atom(x->content());
    // A down message is the child's own business (the relay monitors
    // nothing): it is forwarded like any other.
    if (token == exit_token || atom == caf::sys_atom::value) {
      auto no_down = [](caf::down_msg&) {};
      if (handle_system_message(*x, ctx, false, no_down))
        return;
    }
    caf::strong_actor_ptr target;
    std::vector<caf::mailbox_element_ptr> unanswered;
    std::vector<std::pair<caf::actor, uint64_t>> ended;
    {
      std::unique_lock<std::mutex> guard{mtx_state_};
      if (stopped_.load()) {
        guard.unlock();
        bounce(x);
        return;
      }
      if (!is_control(token, atom) || !control(*x, ctx, guard))
        target = route(x, token, unanswered, ended);
    }
    // The one message of a running child is forwarded outside the lock: a
    // sender's next message cannot overtake it (it enqueues after this call
    // returns), and a flush of held messages happens under the lock, before
    // this message could see the target.
    if (target)
      target->enqueue(std::move(x), ctx);
    finish(unanswered, ended, ctx);
  }

  /// The relay behind a handle made by spawn_relay.
  template <class Handle>
  static relay_actor* of(const Handle& handle) {
    return static_cast<relay_actor*>(caf::actor_cast<caf::abstract_actor*>(handle));
  }

  // See close_relay; returns the lost count.
  uint64_t close_now(bool notify_downstream, caf::execution_unit* ctx) {
    std::vector<caf::mailbox_element_ptr> unanswered;
    std::vector<std::pair<caf::actor, uint64_t>> ended;
    uint64_t lost = 0;
    {
      std::unique_lock<std::mutex> guard{mtx_state_};
      // A relay that exited (an exit sent to the address) bounces what
      // comes; what it held goes with it.
      if (!stopped_.load())
        close(notify_downstream, unanswered, ended);
      lost = lost_;
    }
    finish(unanswered, ended, ctx);
    return lost;
  }

  // See stop_relay.
  void stop_now(caf::execution_unit* ctx) {
    if (stopped_.load())
      return;
    close_now(false, ctx);
    cleanup(caf::exit_reason::normal, ctx);
  }

  // The target is gone; hold messages from now on.
  void detach_target(const caf::actor_addr& gone) {
    std::unique_lock<std::mutex> guard{mtx_state_};
    detach_locked(gone);
  }

protected:
  // Called by CAF's cleanup, whatever ended the relay (stop_relay, an exit
  // message): what comes after is bounced as by a stopped actor.
  void on_cleanup(const caf::error& reason) override {
    stopped_ = true;
    caf::monitorable_actor::on_cleanup(reason);
  }

private:
  static constexpr uint32_t exit_token = caf::make_type_token<caf::exit_msg>();
  // The link protocol's types are troupe's own: CAF gives them all the
  // token of one user-defined type.
  static constexpr uint32_t link_token = caf::make_type_token<link_open>();

  static caf::atom_value leading_atom(const caf::type_erased_tuple& xs) {
    if (xs.size() > 0 && xs.type(0).first == caf::type_nr<caf::atom_value>::value)
      return xs.get_as<caf::atom_value>(0);
    return caf::atom("");
  }

  // Whether `x` may be one of the relay's own messages (control decides).
  static bool is_control(uint32_t token, caf::atom_value atom) {
    if (atom == relay_attach_atom::value)
      return token == caf::make_type_token<caf::atom_value, caf::actor>();
    if (atom == relay_detach_atom::value)
      return token == caf::make_type_token<caf::atom_value, caf::actor_addr>();
    if (atom == relay_lost_atom::value)
      return token == caf::make_type_token<caf::atom_value>();
    return false;
  }

  // Handles the supervisor's messages to the relay itself; false if `x` is
  // none of them. Called with the lock held; releases it to answer.
  bool control(caf::mailbox_element& x, caf::execution_unit* ctx,
               std::unique_lock<std::mutex>& guard) {
    auto& content = x.content();
    if (content.size() == 0 || !content.match_element<caf::atom_value>(0))
      return false;
    if (content.match_elements<relay_attach_atom, caf::actor>()) {
      auto target = content.get_as<caf::actor>(1);
      if (closed_)
        return true;
      attach_target(target, ctx);
      guard.unlock();
      // Outside the lock: a target that is gone already runs the functor at
      // once, from inside attach. A functor rather than a monitor: the
      // target's exit detaches it on the exiting thread without making a
      // down message for the relay to decode.
      target->attach_functor(
        [relay = caf::weak_actor_ptr{ctrl()}, gone = target.address()] {
          if (auto strong = relay.lock())
            relay_actor::of(strong)->detach_target(gone);
        });
      return true;
    }
    if (content.match_elements<relay_detach_atom, caf::actor_addr>()) {
      detach_locked(content.get_as<caf::actor_addr>(1));
      return true;
    }
    if (content.match_elements<relay_lost_atom>()) {
      auto lost = lost_;
      guard.unlock();
      reply(x, caf::make_message(lost), ctx);
      return true;
    }
    return false;
  }

  // A message for the child. Returns the target to forward `x` to, or none
  // if the relay kept it or gave up on it (adding to `unanswered` and
  // `ended` what must be sent once the lock is released).
  caf::strong_actor_ptr route(caf::mailbox_element_ptr& x, uint32_t token,
                              std::vector<caf::mailbox_element_ptr>& unanswered,
                              std::vector<std::pair<caf::actor, uint64_t>>& ended) {
    auto& content = x->content();
    bool link = token == link_token;
    // Link openings and ends are recorded, and replayed to each incarnation
    // instead of being held (a held copy would arrive after the replay).
    bool replayed = false;
    bool is_demand = false;
    if (link) {
      if (content.match_elements<link_open>()) {
        opens_[content.get_as<link_open>(0).upstream] = x->copy_content_to_message();
        replayed = true;
      } else if (content.match_elements<end_of_stream>()) {
        ends_[content.get_as<end_of_stream>(0).link] = x->copy_content_to_message();
        replayed = true;
      }
      is_demand = content.match_elements<demand>();
      if (is_demand && x->sender)
        downstreams_[content.get_as<demand>(0).link] = caf::actor_cast<caf::actor>(x->sender);
    }
    if (target_)
      return caf::actor_cast<caf::strong_actor_ptr>(target_);
    if (closed_) {
      // Credit for a link of a child that failed for good: a downstream that
      // missed the end (it was restarting) learns of it now.
      if (failed_ && is_demand && x->sender)
        ended.emplace_back(caf::actor_cast<caf::actor>(x->sender),
                           content.get_as<demand>(0).link);
      give_up(std::move(x), unanswered);
    } else if (replayed || (link && content.match_elements<link_items>())) {
      // Not lost: replayed on attach, or kept and resent by the upstream.
    } else if (held_.size() < capacity_) {
      held_.emplace_back(std::move(x));
    } else {
      give_up(std::move(x), unanswered);
    }
    return nullptr;
  }

  // Counts a message that cannot be delivered; requests among them are
  // answered (outside the lock). The link protocol is not counted: it
  // accounts for its items itself (an upstream reports what it still holds
  // as dropped), and an opening or end of a link carries no data (a
  // permanent stage restarted after its stream completed opens links to
  // sinks that are gone).
  void give_up(caf::mailbox_element_ptr x,
               std::vector<caf::mailbox_element_ptr>& unanswered) {
    auto& content = x->content();
    if (content.match_elements<demand>() || content.match_elements<link_items>()
        || content.match_elements<link_open>()
        || content.match_elements<end_of_stream>())
      return;
    // Nor is the supervisor's own drain: it goes through the relay and may
    // find the child already gone (it completed). Anyone else's is counted.
    if (!x->mid.is_request() && content.size() > 0
        && content.match_element<drain_atom>(0) && x->sender
        && caf::actor_cast<caf::actor_addr>(x->sender) == supervisor_)
      return;
    ++lost_;
    if (x->mid.is_request() && x->sender)
      unanswered.emplace_back(std::move(x));
  }

  // Answers what was given up and ends the links of a child that failed for
  // good; outside the lock, since the receivers may be relays too.
  void finish(std::vector<caf::mailbox_element_ptr>& unanswered,
              std::vector<std::pair<caf::actor, uint64_t>>& ended,
              caf::execution_unit* ctx) {
    for (auto& x : unanswered) {
      auto err = make_error(errc::child_unavailable, child_);
      x->sender->enqueue(caf::make_mailbox_element(nullptr, x->mid.response_id(),
                                                   {}, std::move(err)),
                         ctx);
    }
    // It goes to the downstream's stable address (demand is sent as from
    // there), so it queues behind the child's last items and reaches a
    // restarted downstream too.
    for (auto& [downstream, link] : ended)
      downstream->enqueue(
        caf::make_mailbox_element(caf::strong_actor_ptr{ctrl()}, caf::make_message_id(), {},
                                  end_of_stream{link, make_error(errc::child_unavailable,
                                                                 child_)}),
        ctx);
  }

  // What a handler's result would be: CAF sends it back even for a plain
  // send.
  void reply(caf::mailbox_element& x, caf::message answer, caf::execution_unit* ctx) {
    if (x.sender)
      x.sender->enqueue(caf::make_mailbox_element(caf::strong_actor_ptr{ctrl()},
                                                  x.mid.response_id(), {},
                                                  std::move(answer)),
                        ctx);
  }

  // With the lock held: the replays, then what was held, all before any
  // later message can see the target.
  void attach_target(const caf::actor& target, caf::execution_unit* ctx) {
    target_ = target;
    for (auto& kvp : opens_)
      target_->enqueue(nullptr, caf::make_message_id(), kvp.second, ctx);
    for (auto& kvp : ends_)
      target_->enqueue(nullptr, caf::make_message_id(), kvp.second, ctx);
    for (auto& x : held_)
      target_->enqueue(std::move(x), ctx);
    held_.clear();
  }

  void detach_locked(const caf::actor_addr& gone) {
    if (target_ && gone == target_.address())
      target_ = nullptr;
  }

  // `notify_downstream`: the child failed for good, so the links it fed will
  // never end by themselves: end them with an error instead.
  void close(bool notify_downstream, std::vector<caf::mailbox_element_ptr>& unanswered,
             std::vector<std::pair<caf::actor, uint64_t>>& ended) {
    closed_ = true;
    failed_ = failed_ || notify_downstream;
    target_ = nullptr;
    for (auto& x : held_)
      give_up(std::move(x), unanswered);
    held_.clear();
    if (notify_downstream)
      for (auto& [link, downstream] : downstreams_)
        ended.emplace_back(downstream, link);
    downstreams_.clear();
  }

  const std::string child_;
  const size_t capacity_;
  const caf::actor_addr supervisor_; // weak: the supervisor holds the relay
  std::mutex mtx_state_;
  caf::actor target_;
  bool closed_ = false;
  bool failed_ = false; // closed because the child failed for good
  std::atomic<bool> stopped_{false};
  // A vector, not a std::deque: an empty deque allocates ~540 bytes, and
  // every supervised child has a relay whose buffer is almost always empty.
  std::vector<caf::mailbox_element_ptr> held_;
  std::map<caf::actor, caf::message> opens_; // latest link_open per upstream
  std::map<uint64_t, caf::message> ends_;    // end_of_stream per link
  std::map<uint64_t, caf::actor> downstreams_; // who sends credit, per link
  uint64_t lost_ = 0;
};

} // namespace

caf::actor spawn_relay(caf::actor_system& sys, std::string child_name,
                       size_t buffer_size, caf::actor_addr supervisor) {
  caf::actor_config cfg;
  return caf::make_actor<relay_actor, caf::actor>(sys.next_actor_id(), sys.node(), &sys,
                                                  cfg, std::move(child_name), buffer_size,
                                                  std::move(supervisor));
}

uint64_t close_relay(const caf::actor& relay, bool notify_downstream,
                     caf::execution_unit* ctx) {
  return relay_actor::of(relay)->close_now(notify_downstream, ctx);
}

void stop_relay(const caf::actor& relay, caf::execution_unit* ctx) {
  relay_actor::of(relay)->stop_now(ctx);
}

} // namespace troupe
