#pragma once

// What the real-time test suites share: a troupe system with two scheduler
// threads and a scoped actor to talk to it. Tests synchronise on messages;
// receive timeouts are failure bounds only.

#include <troupe/actors/errors.hpp>
#include <troupe/actors/messages.hpp>
#include <troupe/actors/system.hpp>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <string>

namespace troupe::test {

/// Generous bound for anything a test waits for; reaching it is a failure.
constexpr auto patience = std::chrono::seconds(30);

inline system_settings test_settings() {
  system_settings s;
  s.scheduler_threads = 2;
  return s;
}

/// Finds a child report by name in a supervisor's report (depth first).
inline const actor_report* find_report(const actor_report& root,
                                       const std::string& name) {
  if (root.name == name)
    return &root;
  for (auto& child : root.children)
    if (auto found = find_report(child, name))
      return found;
  return nullptr;
}

/// The message of the config_error that `f` throws; "(accepted)" if none.
template <class F>
std::string config_rejection(F&& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  return "(accepted)";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Predicate for system_fixture::await_child: the child is not running.
inline bool stopped(const actor_report& child) {
  return child.stopped != stop_reason::running;
}

struct system_fixture {
  troupe::system sys{test_settings()};
  caf::scoped_actor self{sys.actors()};

  /// Receives one message of type T (with the atoms or values before it
  /// matched by the handler), failing the test after `patience`.
  template <class T>
  T receive_one(const std::string& what) {
    T result{};
    bool got = false;
    self->receive([&](T& x) { result = std::move(x); got = true; },
                  caf::after(patience) >> [&] {
                    BOOST_FAIL("timed out waiting for " + what);
                  });
    BOOST_REQUIRE(got);
    return result;
  }

  /// Waits for the down message of `who` (which the test must monitor).
  caf::error wait_down(const caf::actor& who) {
    caf::error reason;
    bool got = false;
    self->receive(
      [&](caf::down_msg& x) {
        BOOST_REQUIRE(x.source == who.address());
        reason = x.reason;
        got = true;
      },
      caf::after(patience) >> [&] { BOOST_FAIL("actor did not stop"); });
    BOOST_REQUIRE(got);
    return reason;
  }

  /// Asks supervisor `sup` for its status until `holds` is true of its child
  /// `name`: a bounded number of round trips, each a point of sync.
  template <class Predicate>
  void await_child(const caf::actor& sup, const std::string& name,
                   Predicate holds, const std::string& what) {
    for (int i = 0; i < 10000; ++i) {
      auto report = status(sup);
      if (auto child = find_report(report, name); child && holds(*child))
        return;
    }
    BOOST_FAIL(name + " never " + what);
  }

  /// An error handler for a receive whose request must not fail.
  auto fail_on_error() {
    return [this](caf::error& e) { BOOST_FAIL(sys.actors().render(e)); };
  }

  /// The stable address of the child `name` of supervisor `sup`.
  caf::actor address_of(const caf::actor& sup, const std::string& name) {
    caf::actor result;
    self->request(sup, patience, caf::get_atom::value, name)
      .receive([&](caf::actor& a) { result = a; }, fail_on_error());
    return result;
  }

  actor_report request_report(const caf::actor& who, caf::message msg) {
    actor_report result;
    self->request(who, patience, std::move(msg))
      .receive([&](actor_report& r) { result = std::move(r); },
               [&](caf::error& e) {
                 BOOST_FAIL("request failed: " + sys.actors().render(e));
               });
    return result;
  }

  /// The report `who` gives on (status_atom): its counters so far.
  actor_report status(const caf::actor& who) {
    return request_report(who, caf::make_message(status_atom::value));
  }
};

/// `msg` after serializing and deserializing it, as crossing a network does.
inline caf::message round_trip(caf::actor_system& sys, const caf::message& msg) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto copy = msg;
  BOOST_REQUIRE(!sink(copy));
  caf::message result;
  caf::binary_deserializer source{sys, buf};
  BOOST_REQUIRE(!source(result));
  return result;
}

} // namespace troupe::test
