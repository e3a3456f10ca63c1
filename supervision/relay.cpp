#include "troupe/supervision/relay.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/messages.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_view.hpp>
#include <caf/stateful_actor.hpp>

#include <map>
#include <vector>

namespace troupe {

namespace {

struct relay_state {
  std::string child;
  size_t capacity = 0;
  caf::actor target;
  caf::actor_addr supervisor; // weak: the supervisor holds the relay
  bool closed = false;
  // A vector, not a std::deque: an empty deque allocates ~540 bytes, and
  // every supervised child has a relay whose buffer is almost always empty.
  std::vector<caf::mailbox_element_ptr> held;
  std::map<caf::actor, caf::message> opens; // latest link_open per upstream
  std::map<uint64_t, caf::message> ends;    // end_of_stream per link
  std::map<uint64_t, caf::actor> downstreams; // who sends credit, per link
  bool failed = false; // closed because the child failed for good
  uint64_t lost = 0;
  static inline const char* name = "troupe.relay";
};

using relay_actor = caf::stateful_actor<relay_state>;

// Answers a request that cannot be delivered; counts it either way. The link
// protocol is not counted: it accounts for its items itself (an upstream
// reports what it still holds as dropped), and an opening or end of a link
// carries no data (a permanent stage restarted after its stream completed
// opens links to sinks that are gone).
void give_up(relay_actor* self, caf::mailbox_element& x) {
  auto& content = x.content();
  if (content.match_elements<demand>() || content.match_elements<link_items>()
      || content.match_elements<link_open>()
      || content.match_elements<end_of_stream>())
    return;
  // Nor is the supervisor's own drain: it goes through the relay and may
  // find the child already gone (it completed). Anyone else's is counted.
  if (!x.mid.is_request() && content.size() > 0
      && content.match_element<drain_atom>(0) && x.sender
      && caf::actor_cast<caf::actor_addr>(x.sender) == self->state.supervisor)
    return;
  ++self->state.lost;
  if (x.mid.is_request() && x.sender) {
    auto err = make_error(errc::child_unavailable, self->state.child);
    x.sender->enqueue(caf::make_mailbox_element(nullptr, x.mid.response_id(),
                                                {}, std::move(err)),
                      self->context());
  }
}

void forward(relay_actor* self, caf::mailbox_element_ptr x) {
  self->state.target->enqueue(std::move(x), self->context());
}

void attach(relay_actor* self, caf::actor target) {
  auto& st = self->state;
  st.target = std::move(target);
  self->monitor(st.target);
  for (auto& kvp : st.opens)
    st.target->enqueue(nullptr, caf::make_message_id(), kvp.second,
                       self->context());
  for (auto& kvp : st.ends)
    st.target->enqueue(nullptr, caf::make_message_id(), kvp.second,
                       self->context());
  for (auto& x : st.held)
    forward(self, std::move(x));
  st.held.clear();
}

// Ends a link the child fed, for a child that failed for good. It goes to the
// downstream's stable address (demand is sent as from there), so it queues
// behind the child's last items and reaches a restarted downstream too.
void end_link(relay_actor* self, const caf::actor& downstream, uint64_t link) {
  self->send(downstream, end_of_stream{link, make_error(errc::child_unavailable,
                                                        self->state.child)});
}

// `notify_downstream`: the child failed for good, so the links it fed will
// never end by themselves: end them with an error instead.
void close(relay_actor* self, bool notify_downstream) {
  auto& st = self->state;
  st.closed = true;
  st.failed = st.failed || notify_downstream;
  st.target = nullptr;
  for (auto& x : st.held)
    give_up(self, *x);
  st.held.clear();
  if (notify_downstream)
    for (auto& [link, downstream] : st.downstreams)
      end_link(self, downstream, link);
  st.downstreams.clear();
}

caf::result<caf::message> on_message(caf::scheduled_actor* ptr,
                                     caf::message_view& view) {
  auto self = static_cast<relay_actor*>(ptr);
  auto& st = self->state;
  auto& current = *self->current_mailbox_element();
  auto msg = view.move_content_to_message();
  // The link protocol's messages are one element of a troupe type (CAF's
  // type number 0); one look tells most data for the child apart from them,
  // rather than a failed match against each of the four.
  bool link = msg.size() == 1 && msg.type(0).first == 0;
  bool is_demand = link && msg.match_elements<demand>();
  bool is_items = link && !is_demand && msg.match_elements<link_items>();
  // Link openings and ends are recorded, and replayed to each incarnation
  // instead of being held (a held copy would arrive after the replay).
  bool replayed = false;
  if (link && !is_demand && !is_items) {
    if (msg.match_elements<link_open>()) {
      st.opens[msg.get_as<link_open>(0).upstream] = msg;
      replayed = true;
    } else if (msg.match_elements<end_of_stream>()) {
      st.ends[msg.get_as<end_of_stream>(0).link] = msg;
      replayed = true;
    }
  }
  auto current_sender = caf::actor_cast<caf::actor>(current.sender);
  if (is_demand && current_sender)
    st.downstreams[msg.get_as<demand>(0).link] = current_sender;
  auto element = caf::make_mailbox_element(std::move(current.sender),
                                           current.mid,
                                           std::move(current.stages), msg);
  self->drop_current_message_id();
  if (st.target) {
    forward(self, std::move(element));
  } else if (st.closed) {
    // Credit for a link of a child that failed for good: a downstream that
    // missed the end (it was restarting) learns of it now.
    if (st.failed && is_demand && current_sender)
      end_link(self, current_sender, msg.get_as<demand>(0).link);
    give_up(self, *element);
  } else if (replayed || is_items) {
    // Not lost: replayed on attach, or kept and resent by the upstream.
  } else if (st.held.size() < st.capacity) {
    st.held.emplace_back(std::move(element));
  } else {
    give_up(self, *element);
  }
  return caf::delegated<caf::message>{};
}

caf::behavior relay(relay_actor* self, std::string child, size_t capacity,
                    caf::actor_addr supervisor) {
  self->state.child = std::move(child);
  self->state.supervisor = std::move(supervisor);
  self->state.capacity = capacity;
  self->set_default_handler(on_message);
  auto detach = [self](const caf::actor_addr& gone) {
    if (self->state.target && gone == self->state.target.address())
      self->state.target = nullptr;
  };
  self->set_down_handler([detach](caf::down_msg& x) { detach(x.source); });
  return {
    [self](relay_attach_atom, caf::actor& target) {
      if (!self->state.closed)
        attach(self, std::move(target));
    },
    [detach](relay_detach_atom, const caf::actor_addr& gone) { detach(gone); },
    [self](relay_close_atom, bool notify_downstream, uint64_t token) {
      close(self, notify_downstream);
      auto sender = caf::actor_cast<caf::actor>(self->current_sender());
      if (sender && token != relay_no_answer)
        self->send(sender, relay_closed_atom::value, token, self->state.lost);
    },
    [self](relay_stop_atom) {
      close(self, false);
      self->quit();
    },
    [self](relay_lost_atom) { return self->state.lost; },
  };
}

} // namespace

caf::actor spawn_relay(caf::actor_system& sys, std::string child_name,
                       size_t buffer_size, caf::actor_addr supervisor) {
  return sys.spawn(relay, std::move(child_name), buffer_size,
                   std::move(supervisor));
}

} // namespace troupe
