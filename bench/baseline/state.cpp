// Baseline `state`: one actor owning a std::unordered_map of the 10,000 keys,
// answering (get_atom, key) with the value and (put_atom, key, value) with
// ok; 4 client actors, one request outstanding each, making the troupe
// workload's ops (client c draws from splitmix64 seeded 1000 + c; 90% get,
// 10% set). Checksum: sum of the values read plus the keys set.

#include "baseline.hpp"

#include <unordered_map>

namespace troupe::bench::baseline {

namespace {

constexpr uint64_t keys_total = 10'000;
constexpr uint64_t clients = 4;

using store = std::unordered_map<uint64_t, uint64_t>;

/// Owns the map of keys 0..keys-1 (a spawn argument, since CAF 0.17
/// spawning without one trips UBSan).
caf::behavior owner(caf::stateful_actor<store>* self, uint64_t keys) {
  self->state.reserve(keys);
  for (uint64_t k = 0; k < keys; ++k)
    self->state.emplace(k, state_value_of(k));
  return {
    [=](caf::get_atom, uint64_t key) -> caf::result<uint64_t> {
      auto i = self->state.find(key);
      if (i == self->state.end())
        return caf::make_error(caf::sec::runtime_error, "no such key");
      return i->second;
    },
    [=](caf::put_atom, uint64_t key, uint64_t value) {
      self->state[key] = value;
      return caf::ok_atom::value;
    },
  };
}

struct client_state {
  uint64_t rng = 0;
  uint64_t left = 0;
  uint64_t done = 0;
  uint64_t sum = 0;
};

using client_actor = caf::stateful_actor<client_state>;

void step(client_actor* self, const caf::actor& map, const caf::actor& driver) {
  auto& st = self->state;
  if (st.left == 0) {
    self->send(driver, done_atom::value, st.done, st.sum);
    self->quit();
    return;
  }
  --st.left;
  auto r = next_random(st.rng);
  auto key = r % keys_total;
  auto fail = [=](caf::error&) { step(self, map, driver); };
  if ((r >> 32) % 10 == 0) {
    self->request(map, caf::infinite, caf::put_atom::value, key, state_value_of(key))
      .then(
        [=](caf::ok_atom) {
          ++self->state.done;
          self->state.sum += key;
          step(self, map, driver);
        },
        fail);
  } else {
    self->request(map, caf::infinite, caf::get_atom::value, key)
      .then(
        [=](uint64_t v) {
          ++self->state.done;
          self->state.sum += v;
          step(self, map, driver);
        },
        fail);
  }
}

caf::behavior client(client_actor* self, caf::actor map, uint64_t seed, uint64_t ops,
                     caf::actor driver) {
  self->state.rng = seed;
  self->state.left = ops;
  step(self, map, driver);
  return {};
}

} // namespace

void state_ops(const options& opts, std::vector<result>& out) {
  auto total = opts.scaled(2'000'000);
  plain_system sys;
  caf::scoped_actor self{sys.actors()};
  auto map = sys.actors().spawn(owner, keys_total);
  // The map is loaded once it answers (the troupe workload's start also
  // follows an answer of the loaded state).
  self->request(map, caf::infinite, caf::get_atom::value, uint64_t{0})
    .receive([](uint64_t) {}, [](caf::error&) {});
  auto start = bench_clock::now();
  for (uint64_t c = 0; c < clients; ++c) {
    auto ops = total / clients + (c < total % clients ? 1 : 0);
    sys.actors().spawn(client, map, 1000 + c, ops, caf::actor{self});
  }
  auto r = caf_result("state");
  for (uint64_t c = 0; c < clients; ++c)
    self->receive(
      [&](done_atom, uint64_t done, uint64_t sum) {
        r.items += done;
        r.checksum += sum;
      },
      caf::after(bench_patience) >> [&] {
        give_up({map}, "state (caf) did not finish in time");
      });
  r.seconds = seconds_between(start, bench_clock::now());
  r.lost = count_lost(total, r.items);
  out.push_back(std::move(r));
  self->send_exit(map, caf::exit_reason::user_shutdown);
}

} // namespace troupe::bench::baseline
