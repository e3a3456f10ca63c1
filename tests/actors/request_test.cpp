// request_any: answers of any shape reach the answer callback intact, errors
// the failure callback, exactly one of them is called, and expire_request
// times a request out as CAF's clock would, dropping the late answer.

#include "fixture.hpp"

#include <troupe/actors/request.hpp>

#include <string>

using namespace troupe;
using namespace troupe::test;

namespace {

using ask_atom = caf::atom_constant<caf::atom("ask")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using answered_atom = caf::atom_constant<caf::atom("answered")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;

struct holder_state {
  std::vector<caf::response_promise> held;
  static inline const char* name = "holder";
};

// Answers (std::string s) with (s, size), (int32_t) with an error, and
// (hold_atom) not until (release_atom). (The name is there because CAF 0.17
// mishandles a spawned function without arguments.)
caf::behavior holder(caf::stateful_actor<holder_state>* self, std::string) {
  return {
    [](const std::string& s) { return std::make_tuple(s, static_cast<uint64_t>(s.size())); },
    [](int32_t) -> caf::result<uint64_t> {
      return caf::make_error(caf::sec::runtime_error, "refused");
    },
    [self](hold_atom) -> caf::result<std::string> {
      self->state.held.push_back(self->make_response_promise());
      return self->state.held.back();
    },
    [self](release_atom) {
      for (auto& rp : self->state.held)
        rp.deliver(std::string{"late"});
      self->state.held.clear();
    },
  };
}

// Forwards (ask_atom, msg) to `dest` with request_any and tells `observer`
// each outcome: (answered_atom, the answer) or (failed_atom, the error).
// (expire_atom) expires the last request it made.
struct asker_state {
  caf::message_id last;
  static inline const char* name = "asker";
};

caf::behavior asker(caf::stateful_actor<asker_state>* self, caf::actor dest,
                    caf::actor observer) {
  return {
    [=](ask_atom, caf::message& msg) {
      self->state.last = request_any(
        self, dest, caf::infinite, std::move(msg),
        [=](caf::message& answer) { self->send(observer, answered_atom::value, answer); },
        [=](caf::error& err) { self->send(observer, failed_atom::value, err); });
    },
    [=](expire_atom) { expire_request(self, self->state.last); },
  };
}

struct request_fixture : system_fixture {
  caf::actor service = sys.actors().spawn(holder, "holder");
  caf::actor client = sys.actors().spawn(asker, service, caf::actor{self});

  ~request_fixture() {
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
  }

  void ask(caf::message msg) {
    self->send(client, ask_atom::value, std::move(msg));
  }

  /// The next outcome the client reports, which must be an answer.
  caf::message next_answer() {
    caf::message result;
    self->receive([&](answered_atom, caf::message& x) { result = std::move(x); },
                  [&](failed_atom, caf::error& e) {
                    BOOST_FAIL("request failed: " + sys.actors().render(e));
                  },
                  caf::after(patience) >> [] { BOOST_FAIL("no outcome"); });
    return result;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(request, request_fixture)

BOOST_AUTO_TEST_CASE(an_answer_of_several_values_reaches_the_answer_callback) {
  ask(caf::make_message(std::string{"hello"}));
  auto answer = next_answer();
  BOOST_REQUIRE((answer.match_elements<std::string, uint64_t>()));
  BOOST_CHECK_EQUAL(answer.get_as<std::string>(0), "hello");
  BOOST_CHECK_EQUAL(answer.get_as<uint64_t>(1), 5u);
}

BOOST_AUTO_TEST_CASE(an_error_answer_reaches_the_failure_callback) {
  ask(caf::make_message(int32_t{1}));
  bool failed = false;
  self->receive([&](failed_atom, caf::error& e) { failed = e == caf::sec::runtime_error; },
                [](answered_atom, caf::message&) { BOOST_ERROR("an error was answered as a value"); },
                caf::after(patience) >> [] { BOOST_FAIL("no outcome"); });
  BOOST_CHECK(failed);
}

BOOST_AUTO_TEST_CASE(expire_request_times_out_and_the_late_answer_is_dropped) {
  ask(caf::make_message(hold_atom::value));
  self->send(client, expire_atom::value);
  bool timed_out = false;
  self->receive([&](failed_atom, caf::error& e) { timed_out = e == caf::sec::request_timeout; },
                [](answered_atom, caf::message&) { BOOST_ERROR("answered before the expiry"); },
                caf::after(patience) >> [] { BOOST_FAIL("no outcome"); });
  BOOST_CHECK(timed_out);
  // The late answer goes nowhere; the next request is answered normally, and
  // its answer is the next outcome the client reports.
  self->send(service, release_atom::value);
  ask(caf::make_message(std::string{"next"}));
  auto answer = next_answer();
  BOOST_REQUIRE((answer.match_elements<std::string, uint64_t>()));
  BOOST_CHECK_EQUAL(answer.get_as<std::string>(0), "next");
}

BOOST_AUTO_TEST_CASE(a_request_to_a_stopped_actor_fails) {
  auto gone = sys.actors().spawn(holder, "gone");
  caf::anon_send_exit(gone, caf::exit_reason::user_shutdown);
  self->monitor(gone);
  wait_down(gone);
  auto other = sys.actors().spawn(asker, gone, caf::actor{self});
  self->send(other, ask_atom::value, caf::make_message(std::string{"x"}));
  bool failed = false;
  self->receive([&](failed_atom, caf::error& e) { failed = e == caf::sec::request_receiver_down; },
                caf::after(patience) >> [] { BOOST_FAIL("no outcome"); });
  BOOST_CHECK(failed);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
