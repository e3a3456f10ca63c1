// The state actor: every request, compare-and-set both ways, update
// functions, keys routed to the wrong shard, get_many as one snapshot across
// shards under concurrent writers (ordered writes and transfers), shard
// crashes with and without a loader, drain and stop, config validation.

#include "fixture.hpp"

#include <troupe/actors/errors.hpp>
#include <troupe/patterns/state.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <set>

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

using writer_done_atom = caf::atom_constant<caf::atom("wdone")>;

/// Keys, one per shard 0 .. shards-1 (the first found of "k0", "k1", ...).
std::vector<std::string> one_key_per_shard(uint32_t shards) {
  std::vector<std::string> result(shards);
  std::set<uint32_t> found;
  for (int i = 0; found.size() < shards; ++i) {
    auto key = "k" + std::to_string(i);
    auto s = state_shard_of(key, shards);
    if (found.insert(s).second)
      result[s] = key;
  }
  return result;
}

/// A key of shard `shard` other than those in `not_these`.
std::string key_of_shard(uint32_t shard, uint32_t shards,
                         const std::set<std::string>& not_these = {}) {
  for (int i = 0;; ++i) {
    auto key = "x" + std::to_string(i);
    if (state_shard_of(key, shards) == shard && not_these.count(key) == 0)
      return key;
  }
}

item num(int64_t x) {
  return caf::make_message(x);
}

int64_t num_of(const state_value& v) {
  BOOST_REQUIRE(v.found);
  return v.value.get_as<int64_t>(0);
}

struct state_fixture : system_fixture {
  std::vector<caf::actor> started;

  ~state_fixture() {
    for (auto& s : started)
      caf::anon_send(s, cancel_atom::value);
  }

  caf::actor make_state(state_config cfg) {
    spawn_context ctx{sys.actors(), "st", caf::actor{}, caf::actor{}, 0, {}};
    auto s = spawn_state(ctx, std::move(cfg));
    started.push_back(s);
    return s;
  }

  /// The answer of `msg` to `dest`, of type T; fails the test on an error.
  template <class T>
  T ask(const caf::actor& dest, caf::message msg) {
    T result{};
    self->request(dest, patience, std::move(msg))
      .receive([&](T& x) { result = std::move(x); },
               [&](caf::error& e) {
                 BOOST_FAIL("request failed: " + sys.actors().render(e));
               });
    return result;
  }

  /// The error `msg` to `dest` fails with (none if it succeeded).
  caf::error ask_error(const caf::actor& dest, caf::message msg) {
    caf::error result;
    self->request(dest, patience, std::move(msg))
      .receive([](caf::message&) {}, [&](caf::error& e) { result = e; });
    return result;
  }

  state_value get(const caf::actor& dest, const std::string& key) {
    return ask<state_value>(dest, state_get(key));
  }

  std::vector<state_value> get_many(const caf::actor& dest,
                                    std::vector<std::string> keys) {
    return ask<std::vector<state_value>>(dest, state_get_many(std::move(keys)));
  }

  void set(const caf::actor& dest, const std::string& key, int64_t v) {
    ask<caf::ok_atom>(dest, state_set(key, num(v)));
  }

  std::vector<caf::actor> shards_of(const caf::actor& st) {
    return ask<std::vector<caf::actor>>(st, caf::make_message(state_shards_atom::value));
  }

  actor_report status(const caf::actor& st) {
    return request_report(st, caf::make_message(status_atom::value));
  }

  /// Kills the incarnation of shard `shard` now serving at `address` and waits
  /// until its restart has started.
  void crash_shard(const caf::actor& st, const caf::actor& address,
                   const std::string& some_key, uint32_t shard) {
    caf::actor incarnation;
    self->request(address, patience, state_get(some_key))
      .receive(
        [&](state_value&) {
          incarnation = caf::actor_cast<caf::actor>(self->current_sender());
        },
        [&](caf::error& e) { BOOST_FAIL(sys.actors().render(e)); });
    BOOST_REQUIRE(incarnation);
    auto before = status(st).children.at(shard).restarts;
    caf::anon_send_exit(incarnation, caf::exit_reason::kill);
    for (int i = 0; i < 10000; ++i)
      if (status(st).children.at(shard).restarts > before)
        return;
    BOOST_FAIL("the shard was not restarted");
  }
};

/// Sets A = v, and once that is acknowledged B = v, for v = 1 .. n; then
/// tells `done`.
caf::behavior ordered_writer(caf::event_based_actor* self, caf::actor st,
                             std::string a, std::string b, int64_t n,
                             caf::actor done) {
  auto v = std::make_shared<int64_t>(0);
  auto step = std::make_shared<std::function<void()>>();
  *step = [=] {
    if (++*v > n) {
      self->send(done, writer_done_atom::value);
      self->quit();
      return;
    }
    self->request(st, caf::infinite, state_set(a, num(*v)))
      .then(
        [=](caf::ok_atom) {
          self->request(st, caf::infinite, state_set(b, num(*v)))
            .then([=](caf::ok_atom) { (*step)(); },
                  [=](caf::error& e) { self->quit(e); });
        },
        [=](caf::error& e) { self->quit(e); });
  };
  (*step)();
  self->attach_functor([step] { *step = nullptr; });
  return {};
}

/// Makes `n` transfers of 1 between accounts, credit first, then debit (each
/// an update), so that a consistent read never sees less than the total.
caf::behavior transferer(caf::event_based_actor* self, caf::actor st,
                         std::vector<std::string> accounts, uint64_t seed,
                         int n, caf::actor done) {
  auto left = std::make_shared<int>(n);
  auto rng = std::make_shared<uint64_t>(seed);
  auto step = std::make_shared<std::function<void()>>();
  auto add = [](int64_t d) {
    return [d](const state_value& v) {
      return present(caf::make_message(v.value.get_as<int64_t>(0) + d));
    };
  };
  *step = [=] {
    if ((*left)-- == 0) {
      self->send(done, writer_done_atom::value);
      self->quit();
      return;
    }
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    auto from = (*rng >> 33) % accounts.size();
    auto to = (from + 1 + (*rng >> 45) % (accounts.size() - 1)) % accounts.size();
    self->request(st, caf::infinite, state_update(accounts[to], add(1)))
      .then(
        [=](state_value&) {
          self->request(st, caf::infinite, state_update(accounts[from], add(-1)))
            .then([=](state_value&) { (*step)(); },
                  [=](caf::error& e) { self->quit(e); });
        },
        [=](caf::error& e) { self->quit(e); });
  };
  (*step)();
  self->attach_functor([step] { *step = nullptr; });
  return {};
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(state, state_fixture)

BOOST_AUTO_TEST_CASE(state_answers_get_set_delete_and_get_many) {
  for (uint32_t shards : {1u, 3u}) {
    state_config cfg;
    cfg.shards = shards;
    auto st = make_state(cfg);
    BOOST_CHECK(!get(st, "a").found);
    set(st, "a", 1);
    set(st, "b", 2);
    BOOST_CHECK_EQUAL(num_of(get(st, "a")), 1);
    set(st, "a", 10);
    BOOST_CHECK_EQUAL(num_of(get(st, "a")), 10);
    auto many = get_many(st, {"b", "missing", "a"});
    BOOST_REQUIRE_EQUAL(many.size(), 3u);
    BOOST_CHECK_EQUAL(num_of(many[0]), 2);
    BOOST_CHECK(!many[1].found);
    BOOST_CHECK_EQUAL(num_of(many[2]), 10);
    BOOST_CHECK(get_many(st, {}).empty());
    BOOST_CHECK(ask<bool>(st, state_delete("a")));
    BOOST_CHECK(!ask<bool>(st, state_delete("a")));
    BOOST_CHECK(!get(st, "a").found);
    auto r = status(st);
    BOOST_CHECK_EQUAL(r.kind, "state");
    BOOST_CHECK_EQUAL(r.stats["shards"], shards);
    BOOST_CHECK_EQUAL(r.stats["keys"], 1);
    BOOST_CHECK_EQUAL(r.stats["sets"], 3);
    BOOST_CHECK_EQUAL(r.stats["gets"], 4);
    BOOST_CHECK_EQUAL(r.stats["deletes"], 2);
    BOOST_CHECK_EQUAL(r.stats["get_many"], 2);
    BOOST_CHECK_EQUAL(r.children.size(), shards);
  }
}

BOOST_AUTO_TEST_CASE(state_values_can_be_of_any_registered_type) {
  auto st = make_state(state_config{});
  ask<caf::ok_atom>(st, state_set("s", caf::make_message(std::string{"text"}, 7)));
  auto v = get(st, "s");
  BOOST_REQUIRE(v.found);
  BOOST_CHECK((v.value.match_elements<std::string, int>()));
  BOOST_CHECK_EQUAL(v.value.get_as<std::string>(0), "text");
}

BOOST_AUTO_TEST_CASE(state_cas_swaps_only_on_the_expected_value) {
  state_config cfg;
  cfg.shards = 2;
  auto st = make_state(cfg);
  // Expected absent: only the first of two creators wins.
  BOOST_CHECK(ask<bool>(st, state_cas("k", absent(), present(num(1)))));
  BOOST_CHECK(!ask<bool>(st, state_cas("k", absent(), present(num(2)))));
  BOOST_CHECK_EQUAL(num_of(get(st, "k")), 1);
  // A stale expectation fails and changes nothing.
  BOOST_CHECK(!ask<bool>(st, state_cas("k", present(num(0)), present(num(5)))));
  BOOST_CHECK_EQUAL(num_of(get(st, "k")), 1);
  // The current value swaps.
  BOOST_CHECK(ask<bool>(st, state_cas("k", present(num(1)), present(num(5)))));
  BOOST_CHECK_EQUAL(num_of(get(st, "k")), 5);
  // Same number, other type: not equal.
  BOOST_CHECK(!ask<bool>(st, state_cas("k", present(caf::make_message(int32_t{5})),
                                       present(num(6)))));
  // Desired absent deletes.
  BOOST_CHECK(ask<bool>(st, state_cas("k", present(num(5)), absent())));
  BOOST_CHECK(!get(st, "k").found);
  auto r = status(st);
  BOOST_CHECK_EQUAL(r.stats["cas_ok"], 3);
  BOOST_CHECK_EQUAL(r.stats["cas_failed"], 3);
  BOOST_CHECK_EQUAL(r.stats["keys"], 0);
}

BOOST_AUTO_TEST_CASE(state_update_applies_a_function_of_the_current_value) {
  auto st = make_state(state_config{});
  auto incr = [](const state_value& v) {
    return present(num(v.found ? v.value.get_as<int64_t>(0) + 1 : 100));
  };
  BOOST_CHECK_EQUAL(num_of(ask<state_value>(st, state_update("n", incr))), 100);
  BOOST_CHECK_EQUAL(num_of(ask<state_value>(st, state_update("n", incr))), 101);
  BOOST_CHECK_EQUAL(num_of(get(st, "n")), 101);
  // Answering absent deletes the key.
  auto gone = ask<state_value>(st, state_update("n", [](const state_value&) {
                                 return absent();
                               }));
  BOOST_CHECK(!gone.found);
  BOOST_CHECK(!get(st, "n").found);
  // A function that throws changes nothing, and its caller gets the reason;
  // the shard keeps serving.
  set(st, "n", 7);
  auto err = ask_error(st, state_update("n", [](const state_value&) -> state_value {
                         throw std::runtime_error("no such thing");
                       }));
  BOOST_CHECK(err == caf::sec::runtime_error);
  BOOST_CHECK_MESSAGE(contains(sys.actors().render(err), "no such thing"),
                      sys.actors().render(err));
  BOOST_CHECK_EQUAL(num_of(get(st, "n")), 7);
  auto r = status(st);
  BOOST_CHECK_EQUAL(r.stats["updates"], 3);
  BOOST_CHECK_EQUAL(r.stats["update_errors"], 1);
}

BOOST_AUTO_TEST_CASE(state_ref_reaches_shards_directly_and_shards_reject_foreign_keys) {
  state_config cfg;
  cfg.shards = 4;
  auto st = make_state(cfg);
  auto shards = shards_of(st);
  BOOST_REQUIRE_EQUAL(shards.size(), 4u);
  state_ref ref{st, shards};
  auto keys = one_key_per_shard(4);
  for (size_t i = 0; i < keys.size(); ++i)
    set(ref.route(keys[i]), keys[i], static_cast<int64_t>(i));
  // What went to the shards directly is what the front reads.
  auto many = get_many(ref.route_many(), keys);
  for (size_t i = 0; i < keys.size(); ++i)
    BOOST_CHECK_EQUAL(num_of(many[i]), static_cast<int64_t>(i));
  auto wrong = shards[(state_shard_of(keys[0], 4) + 1) % 4];
  auto err = ask_error(wrong, state_set(keys[0], num(99)));
  BOOST_CHECK(err == caf::sec::invalid_argument);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[0])), 0);
  BOOST_CHECK_EQUAL(status(st).stats["misrouted"], 1);
}

BOOST_AUTO_TEST_CASE(state_get_many_never_sees_a_later_write_without_an_earlier_one) {
  state_config cfg;
  cfg.shards = 2;
  auto st = make_state(cfg);
  auto keys = one_key_per_shard(2);
  auto a = keys[0];
  auto b = keys[1];
  set(st, a, 0);
  set(st, b, 0);
  auto writer = sys.actors().spawn(ordered_writer, st, a, b, int64_t{3000},
                                   caf::actor{self});
  self->monitor(writer);
  int64_t reads = 0;
  int64_t between = 0; // reads that saw A written and B not yet
  bool done = false;
  while (!done) {
    auto vs = get_many(st, {a, b});
    auto va = num_of(vs[0]);
    auto vb = num_of(vs[1]);
    BOOST_REQUIRE_MESSAGE(vb <= va, "B=" << vb << " is newer than A=" << va);
    BOOST_REQUIRE(va <= vb + 1);
    ++reads;
    if (va == vb + 1)
      ++between;
    self->receive([&](writer_done_atom) { done = true; },
                  caf::after(std::chrono::seconds(0)) >> [] {});
  }
  BOOST_CHECK(!wait_down(writer));
  auto vs = get_many(st, {a, b});
  BOOST_CHECK_EQUAL(num_of(vs[0]), 3000);
  BOOST_CHECK_EQUAL(num_of(vs[1]), 3000);
  BOOST_TEST_MESSAGE(reads << " reads, " << between << " between A and B");
  auto r = status(st);
  BOOST_CHECK_GE(r.stats["holds"], 2 * reads);
  BOOST_CHECK_EQUAL(r.stats["holds_expired"], 0);
  BOOST_CHECK_EQUAL(r.stats["get_many_failed"], 0);
}

BOOST_AUTO_TEST_CASE(state_transfers_across_shards_keep_the_total_seen_by_get_many) {
  constexpr uint32_t shards = 4;
  constexpr int64_t each = 1000;
  auto accounts = one_key_per_shard(shards);
  state_config cfg;
  cfg.shards = shards;
  cfg.load = [accounts] {
    state_entries xs;
    for (auto& a : accounts)
      xs.emplace_back(a, num(each));
    return xs;
  };
  auto st = make_state(cfg);
  const int64_t total = each * static_cast<int64_t>(shards);
  constexpr int movers = 3;
  for (int i = 0; i < movers; ++i)
    sys.actors().spawn(transferer, st, accounts, uint64_t(i + 1), 1500,
                       caf::actor{self});
  int finished = 0;
  int64_t reads = 0;
  while (finished < movers) {
    auto vs = get_many(st, accounts);
    int64_t sum = 0;
    for (auto& v : vs)
      sum += num_of(v);
    // Each transfer credits first: a snapshot sees at most one extra unit per
    // mover, never less than the total.
    BOOST_REQUIRE_MESSAGE(sum >= total && sum <= total + movers, "sum " << sum);
    ++reads;
    self->receive([&](writer_done_atom) { ++finished; },
                  caf::after(std::chrono::seconds(0)) >> [] {});
  }
  int64_t sum = 0;
  for (auto& v : get_many(st, accounts))
    sum += num_of(v);
  BOOST_CHECK_EQUAL(sum, total);
  BOOST_TEST_MESSAGE(reads << " consistent reads during the transfers");
  BOOST_CHECK_EQUAL(status(st).stats["updates"], 2 * movers * 1500);
}

BOOST_AUTO_TEST_CASE(state_shard_restarted_without_loader_loses_its_keys) {
  state_config cfg;
  cfg.shards = 2;
  auto st = make_state(cfg);
  auto shards = shards_of(st);
  auto keys = one_key_per_shard(2);
  auto other = key_of_shard(0, 2, {keys[0]});
  set(st, keys[0], 1);
  set(st, other, 2);
  set(st, keys[1], 3);
  crash_shard(st, shards[0], keys[0], 0);
  // Shard 0 starts empty; shard 1 kept its key.
  BOOST_CHECK(!get(st, keys[0]).found);
  BOOST_CHECK(!get(st, other).found);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[1])), 3);
  auto r = status(st);
  BOOST_CHECK_EQUAL(r.stats["shard_restarts"], 1);
  BOOST_CHECK_EQUAL(r.stats["restarts_with_loss"], 1);
  BOOST_CHECK_EQUAL(r.stats["keys_lost"], 2);
  BOOST_CHECK_EQUAL(r.stats["keys"], 1);
  BOOST_CHECK_EQUAL(r.children.at(0).restarts, 1u);
  // It serves again at the same address.
  set(shards[0], keys[0], 4);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[0])), 4);
}

BOOST_AUTO_TEST_CASE(state_shard_restarted_with_loader_reloads_its_keys) {
  state_config cfg;
  cfg.shards = 2;
  auto keys = one_key_per_shard(2);
  auto loads = std::make_shared<std::atomic<int>>(0);
  cfg.load = [keys, loads] {
    ++*loads;
    return state_entries{{keys[0], num(10)}, {keys[1], num(20)}};
  };
  auto st = make_state(cfg);
  auto shards = shards_of(st);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[0])), 10);
  set(st, keys[0], 11); // after the snapshot: lost by a restart
  crash_shard(st, shards[0], keys[0], 0);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[0])), 10);
  BOOST_CHECK_EQUAL(num_of(get(st, keys[1])), 20);
  BOOST_CHECK_EQUAL(loads->load(), 3); // two shards, one restart
  auto r = status(st);
  BOOST_CHECK_EQUAL(r.stats["shard_restarts"], 1);
  BOOST_CHECK_EQUAL(r.stats["restarts_with_loss"], 0);
  BOOST_CHECK_EQUAL(r.stats["keys_lost"], 0);
  BOOST_CHECK_EQUAL(r.stats["keys_loaded"], 3);
  BOOST_CHECK_EQUAL(r.stats["keys"], 2);
}

BOOST_AUTO_TEST_CASE(state_drain_finishes_a_held_get_many_then_requests_fail) {
  state_config cfg;
  cfg.shards = 2;
  cfg.hold_timeout = patience;
  auto st = make_state(cfg);
  auto keys = one_key_per_shard(2);
  set(st, keys[0], 1);
  set(st, keys[1], 2);
  // An update that blocks shard 0 until the test lets it go, so that a
  // get_many's hold waits behind it.
  auto entered = std::make_shared<std::promise<void>>();
  auto gate = std::make_shared<std::promise<void>>();
  auto gate_open = gate->get_future().share();
  auto blocked = self->request(st, patience,
                               state_update(keys[0], [entered, gate_open](const state_value& v) {
                                 entered->set_value();
                                 gate_open.wait();
                                 return v;
                               }));
  BOOST_REQUIRE(entered->get_future().wait_for(patience) == std::future_status::ready);
  auto pending = self->request(st, patience, state_get_many({keys[0], keys[1]}));
  // The front holds the get_many before the drain arrives.
  for (int i = 0; i < 10000 && status(st).stats["holds"] < 1; ++i) {
  }
  self->monitor(st);
  self->send(st, drain_atom::value);
  gate->set_value();
  blocked.receive([](state_value& v) { BOOST_CHECK(v.found); },
                  [&](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  // The drain waits for the get_many, which is answered in full.
  pending.receive(
    [&](std::vector<state_value>& vs) {
      BOOST_REQUIRE_EQUAL(vs.size(), 2u);
      BOOST_CHECK_EQUAL(num_of(vs[0]), 1);
      BOOST_CHECK_EQUAL(num_of(vs[1]), 2);
    },
    [&](caf::error& e) { BOOST_ERROR(sys.actors().render(e)); });
  BOOST_CHECK(!wait_down(st));
  // After the stop, requests fail instead of waiting.
  auto err = ask_error(st, state_get(keys[0]));
  BOOST_CHECK_MESSAGE(err == caf::sec::request_receiver_down, sys.actors().render(err));
}

BOOST_AUTO_TEST_CASE(state_cancel_answers_a_held_get_many_with_the_reason) {
  state_config cfg;
  cfg.shards = 2;
  cfg.hold_timeout = patience;
  auto st = make_state(cfg);
  auto keys = one_key_per_shard(2);
  auto entered = std::make_shared<std::promise<void>>();
  auto gate = std::make_shared<std::promise<void>>();
  auto gate_open = gate->get_future().share();
  auto blocked = self->request(st, patience,
                               state_update(keys[0], [entered, gate_open](const state_value& v) {
                                 entered->set_value();
                                 gate_open.wait();
                                 return v;
                               }));
  BOOST_REQUIRE(entered->get_future().wait_for(patience) == std::future_status::ready);
  auto pending = self->request(st, patience, state_get_many({keys[0], keys[1]}));
  for (int i = 0; i < 10000 && status(st).stats["holds"] < 1; ++i) {
  }
  self->monitor(st);
  self->send(st, cancel_atom::value);
  pending.receive([](std::vector<state_value>&) { BOOST_ERROR("answered after cancel"); },
                  [](caf::error& e) { BOOST_CHECK(e == errc::cancelled); });
  gate->set_value();
  blocked.receive([](state_value&) {}, [](caf::error&) {});
  BOOST_CHECK(wait_down(st) == errc::cancelled);
}

BOOST_AUTO_TEST_CASE(state_config_rejects_what_cannot_work) {
  auto reject = [](auto change) {
    state_config cfg;
    change(cfg);
    return config_rejection([&] { cfg.validate(); });
  };
  BOOST_CHECK(contains(reject([](state_config& c) { c.shards = 0; }), "shards"));
  BOOST_CHECK(contains(reject([](state_config& c) { c.hold_timeout = caf::timespan{0}; }),
                       "hold_timeout"));
  BOOST_CHECK(contains(reject([](state_config& c) { c.restart_buffer = 0; }),
                       "restart_buffer"));
  BOOST_CHECK(contains(reject([](state_config& c) { c.shard_restarts.period = caf::timespan{0}; }),
                       "shard_restarts.period"));
  BOOST_CHECK_EQUAL(reject([](state_config&) {}), "(accepted)");
  state_config bad;
  bad.shards = 0;
  BOOST_CHECK(contains(config_rejection([&] { spawn_state(sys, bad); }), "shards"));
}

BOOST_AUTO_TEST_SUITE_END()
