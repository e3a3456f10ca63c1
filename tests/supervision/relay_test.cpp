// A child's stable address (its relay) under concurrent senders: each
// sender's messages reach the child in the order sent, across a restart,
// including while the messages held during the restart are handed to the
// next incarnation and the senders keep sending; nothing held is lost.

#include "supervision/children.hpp"

#include <map>
#include <memory>
#include <mutex>

using namespace troupe;
using namespace troupe::test;

namespace {

using seq_atom = caf::atom_constant<caf::atom("seq")>;
using fin_atom = caf::atom_constant<caf::atom("fin")>;
using send_atom = caf::atom_constant<caf::atom("sendmore")>;
using verdict_atom = caf::atom_constant<caf::atom("verdict")>;

constexpr uint32_t senders = 4;

// What all incarnations of the recorder saw, per sender. Incarnations do not
// overlap, but run on different threads: hence the lock.
struct record {
  std::mutex mtx;
  std::map<uint32_t, uint64_t> next;   // the number expected next
  std::map<uint32_t, uint64_t> from;   // first number of the second phase
  uint64_t out_of_order = 0;
  uint64_t second_phase = 0;           // numbers >= from received
  uint32_t finished = 0;
};

// Checks that each sender's numbers come in increasing order (numbers that
// died with an incarnation's mailbox may be missing); tells `observer` the
// verdict once every sender finished.
caf::behavior recorder(caf::event_based_actor* self, std::shared_ptr<record> rec,
                       caf::actor observer) {
  return {
    [self](crash_atom) {
      self->quit(caf::make_error(caf::sec::runtime_error, "crash on request"));
    },
    [rec](seq_atom, uint32_t sender, uint64_t n) {
      std::lock_guard<std::mutex> guard{rec->mtx};
      if (n < rec->next[sender])
        ++rec->out_of_order;
      rec->next[sender] = n + 1;
      if (n >= rec->from[sender])
        ++rec->second_phase;
    },
    [rec, observer](fin_atom, uint32_t) {
      std::lock_guard<std::mutex> guard{rec->mtx};
      if (++rec->finished == senders)
        caf::anon_send(observer, verdict_atom::value, rec->out_of_order,
                       rec->second_phase);
    },
  };
}

// Sends (seq_atom, id, n) for n in [from, from + count) to `dest`, `chunk`
// at a time with 1 ms between chunks; then (fin_atom, id) if `last`.
caf::behavior sender(caf::event_based_actor* self, uint32_t id, caf::actor dest) {
  return {
    [=](send_atom, uint64_t from, uint64_t count, uint64_t chunk, bool last) {
      auto end = from + count;
      auto stop = std::min(end, from + chunk);
      for (auto n = from; n < stop; ++n)
        self->send(dest, seq_atom::value, id, n);
      if (stop < end)
        self->delayed_send(self, std::chrono::milliseconds(1), send_atom::value, stop,
                           end - stop, chunk, last);
      else if (last)
        self->send(dest, fin_atom::value, id);
    },
  };
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(relay, event_log)

BOOST_AUTO_TEST_CASE(each_senders_order_holds_across_a_restart_and_nothing_held_is_lost) {
  auto rec = std::make_shared<record>();
  constexpr uint64_t first_phase = 2000;
  constexpr uint64_t second_phase = 3000;
  for (uint32_t s = 0; s < senders; ++s)
    rec->from[s] = first_phase;
  supervisor_spec spec;
  // The backoff keeps the child down while the senders send: the relay holds
  // their messages, then hands them over while they still send.
  spec.backoff = {std::chrono::milliseconds(100), std::chrono::seconds(1), 2.0};
  child_spec child;
  child.name = "rec";
  child.restart_buffer = senders * (first_phase + second_phase);
  child.start = [rec, observer = caf::actor{self}](const spawn_context& ctx) {
    auto handle = ctx.system().spawn(recorder, rec, observer);
    caf::anon_send(observer, started_atom::value, std::string{"rec"}, ctx.restarts(),
                   handle);
    return handle;
  };
  spec.children = {child};
  auto sup = spawn_supervisor(sys, spec);
  expect_start("rec", 0);
  auto addr = address_of(sup, "rec");
  std::vector<caf::actor> sending;
  for (uint32_t s = 0; s < senders; ++s)
    sending.push_back(sys.actors().spawn(sender, s, addr));
  for (auto& s : sending)
    self->send(s, send_atom::value, uint64_t{0}, first_phase, first_phase, false);
  self->send(addr, crash_atom::value);
  await_child(sup, "rec", stopped, "stopped");
  // From here on the relay holds, then forwards: 300 chunks of 10, 1 ms
  // apart, straddle the restart after the 100 ms backoff.
  for (auto& s : sending)
    self->send(s, send_atom::value, first_phase, second_phase, uint64_t{10}, true);
  expect_start("rec", 1);
  self->receive(
    [&](verdict_atom, uint64_t out_of_order, uint64_t received) {
      BOOST_CHECK_EQUAL(out_of_order, 0u);
      BOOST_CHECK_EQUAL(received, senders * second_phase);
    },
    caf::after(patience) >> [] { BOOST_FAIL("the senders never finished"); });
  auto report = status(sup);
  BOOST_REQUIRE_EQUAL(report.children.size(), 1u);
  BOOST_CHECK_EQUAL(report.children[0].lost, 0u);
  for (auto& s : sending)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  self->send(sup, cancel_atom::value);
}

BOOST_AUTO_TEST_SUITE_END()
