// The link bookkeeping on its own, without actors: credit, acknowledgement,
// resending to a restarted downstream, dropping what is stale.

#include <troupe/actors/stream_link.hpp>

#include <caf/make_message.hpp>

#include <boost/test/unit_test.hpp>

using namespace troupe;

namespace {

item numbered(uint64_t x) {
  return make_item(x);
}

uint64_t value_of(const item& x) {
  return x.get_as<uint64_t>(0);
}

link_open open_from(const caf::actor& upstream, uint64_t link) {
  return link_open{upstream, link};
}

} // namespace

BOOST_AUTO_TEST_SUITE(stream_link)

BOOST_AUTO_TEST_CASE(outbound_sends_nothing_before_credit) {
  outbound_link out{caf::actor{}, 7};
  out.push(numbered(1));
  link_items chunk;
  BOOST_CHECK(!out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(out.buffered(), 1u);
}

BOOST_AUTO_TEST_CASE(outbound_never_exceeds_window) {
  outbound_link out{caf::actor{}, 7};
  for (uint64_t i = 0; i < 10; ++i)
    out.push(numbered(i));
  out.on_demand(demand{7, 1, 0, 4});
  link_items chunk;
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(chunk.items.size(), 4u);
  BOOST_CHECK_EQUAL(chunk.first_seq, 0u);
  BOOST_CHECK(!out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(out.in_flight(), 4u);
  // Acknowledging 3 items opens the window by 3, not more.
  out.on_demand(demand{7, 1, 3, 4});
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(chunk.first_seq, 4u);
  BOOST_CHECK_EQUAL(chunk.items.size(), 3u);
  BOOST_CHECK_EQUAL(value_of(chunk.items.front()), 4u);
  BOOST_CHECK_EQUAL(out.in_flight(), 4u);
  BOOST_CHECK_EQUAL(out.max_in_flight(), 4u);
}

BOOST_AUTO_TEST_CASE(outbound_resends_unacknowledged_to_a_new_epoch) {
  outbound_link out{caf::actor{}, 7};
  for (uint64_t i = 0; i < 6; ++i)
    out.push(numbered(i));
  out.on_demand(demand{7, 1, 0, 8});
  link_items chunk;
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(chunk.items.size(), 6u);
  out.on_demand(demand{7, 1, 2, 8}); // items 0 and 1 consumed
  // The downstream restarts: its first demand knows nothing of the link.
  BOOST_CHECK(out.on_demand(demand{7, 2, 0, 8}));
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(chunk.epoch, 2u);
  BOOST_CHECK_EQUAL(chunk.first_seq, 2u);
  BOOST_REQUIRE_EQUAL(chunk.items.size(), 4u);
  BOOST_CHECK_EQUAL(value_of(chunk.items.front()), 2u);
  BOOST_CHECK_EQUAL(out.resent(), 4u);
}

BOOST_AUTO_TEST_CASE(outbound_ends_only_when_everything_is_acknowledged) {
  outbound_link out{caf::actor{}, 7};
  out.push(numbered(1));
  out.close();
  BOOST_CHECK(!out.end_due());
  out.on_demand(demand{7, 1, 0, 8});
  link_items chunk;
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK(!out.end_due());
  out.on_demand(demand{7, 1, 1, 8});
  BOOST_CHECK(out.end_due());
  auto eos = out.take_end();
  BOOST_CHECK_EQUAL(eos.link, 7u);
  BOOST_CHECK(!out.end_due());
  // A restarted downstream gets the end again.
  out.on_demand(demand{7, 3, 0, 8});
  BOOST_CHECK(out.end_due());
}

BOOST_AUTO_TEST_CASE(outbound_ignores_demand_from_a_replaced_incarnation) {
  outbound_link out{caf::actor{}, 7};
  for (uint64_t i = 0; i < 4; ++i)
    out.push(numbered(i));
  out.on_demand(demand{7, 1, 0, 8});
  BOOST_CHECK(out.on_demand(demand{7, 2, 0, 8}));
  // A late demand of incarnation 1 must not switch the link back to it.
  BOOST_CHECK(!out.on_demand(demand{7, 1, 0, 8}));
  link_items chunk;
  BOOST_REQUIRE(out.take_sendable(chunk));
  BOOST_CHECK_EQUAL(chunk.epoch, 2u);
}

BOOST_AUTO_TEST_CASE(inbound_ignores_a_late_open_of_a_replaced_link) {
  inbound_links in{5, 8};
  caf::actor up;
  BOOST_CHECK(in.open(open_from(up, 1)));
  BOOST_CHECK(in.open(open_from(up, 2))); // the upstream restarted
  BOOST_CHECK(!in.open(open_from(up, 1))); // a stale replay of the first
  in.end(end_of_stream{1, caf::error{}});
  BOOST_CHECK(!in.all_ended()); // link 2 is the upstream's link, still open
  in.end(end_of_stream{2, caf::error{}});
  BOOST_CHECK(in.all_ended());
}

BOOST_AUTO_TEST_CASE(inbound_acknowledges_what_was_consumed) {
  inbound_links in{5, 8};
  caf::actor up; // a null handle is fine as a map key here
  auto first = *in.open(open_from(up, 9));
  BOOST_CHECK_EQUAL(first.epoch, 5u);
  BOOST_CHECK_EQUAL(first.window, 8u);
  BOOST_CHECK_EQUAL(first.acked, 0u);
  in.receive(link_items{9, 5, 0, {numbered(10), numbered(11)}});
  BOOST_CHECK_EQUAL(in.queued(), 2u);
  BOOST_CHECK_EQUAL(value_of(in.take()), 10u);
  std::vector<demand> sent;
  in.flush_acks([&](const caf::actor&, const demand& d) { sent.push_back(d); });
  BOOST_REQUIRE_EQUAL(sent.size(), 1u);
  BOOST_CHECK_EQUAL(sent[0].acked, 1u);
  sent.clear();
  in.flush_acks([&](const caf::actor&, const demand& d) { sent.push_back(d); });
  BOOST_CHECK(sent.empty()); // nothing new consumed
}

BOOST_AUTO_TEST_CASE(inbound_drops_stale_epochs_and_duplicates) {
  inbound_links in{5, 8};
  caf::actor up;
  in.open(open_from(up, 9));
  in.receive(link_items{9, 4, 0, {numbered(1)}}); // sent to an old epoch
  BOOST_CHECK_EQUAL(in.queued(), 0u);
  in.receive(link_items{9, 5, 3, {numbered(3), numbered(4)}});
  in.receive(link_items{9, 5, 4, {numbered(4), numbered(5)}}); // overlaps
  BOOST_CHECK_EQUAL(in.queued(), 3u);
  BOOST_CHECK_EQUAL(value_of(in.take()), 3u);
  BOOST_CHECK_EQUAL(value_of(in.take()), 4u);
  BOOST_CHECK_EQUAL(value_of(in.take()), 5u);
  BOOST_CHECK_EQUAL(in.stale(), 2u);
  BOOST_CHECK_EQUAL(in.gaps(), 0u);
}

BOOST_AUTO_TEST_CASE(inbound_ends_when_every_upstream_ended) {
  inbound_links in{5, 8};
  auto sys_free_a = caf::actor{};
  in.open(open_from(sys_free_a, 1));
  BOOST_CHECK(!in.all_ended());
  in.receive(link_items{1, 5, 0, {numbered(1)}});
  in.end(end_of_stream{1, caf::error{}});
  BOOST_CHECK(!in.all_ended()); // an item is still queued
  in.take();
  BOOST_CHECK(in.all_ended());
}

BOOST_AUTO_TEST_SUITE_END()
