// Workload `state`: 4 clients, one request outstanding each, 2,000,000 ops
// over 10,000 keys, 90% get / 10% set by the fixed-seed choice of the Tokio
// reference (client c draws from splitmix64 seeded 1000 + c). Checksum: sum
// of the values read plus the keys set. The main line is the configuration
// a user would pick (see below); the others are extra fields.

#include "bench.hpp"

#include <troupe/patterns/state.hpp>

#include <caf/all.hpp>

#include <memory>

namespace troupe::bench {

namespace {

constexpr uint64_t keys_total = 10'000;
constexpr uint64_t clients = 4;

struct client_state {
  uint64_t rng = 0;
  uint64_t left = 0;
  uint64_t done = 0;
  uint64_t sum = 0;
};

caf::behavior client(caf::event_based_actor* self, state_ref ref,
                     std::shared_ptr<const std::vector<std::string>> names,
                     uint64_t seed, uint64_t ops, caf::actor driver) {
  auto st = std::make_shared<client_state>();
  st->rng = seed;
  st->left = ops;
  auto step = std::make_shared<std::function<void()>>();
  *step = [=] {
    if (st->left == 0) {
      self->send(driver, done_atom::value, st->done, st->sum);
      self->quit();
      return;
    }
    --st->left;
    auto r = next_random(st->rng);
    auto key = r % keys_total;
    auto& name = (*names)[key];
    auto fail = [=](caf::error&) { (*step)(); };
    if ((r >> 32) % 10 == 0) {
      self->request(ref.route(name), caf::infinite,
                    state_set(name, caf::make_message(state_value_of(key))))
        .then(
          [=](caf::ok_atom) {
            ++st->done;
            st->sum += key;
            (*step)();
          },
          fail);
    } else {
      self->request(ref.route(name), caf::infinite, state_get(name))
        .then(
          [=](const state_value& v) {
            ++st->done;
            if (v.found)
              st->sum += v.value.get_as<uint64_t>(0);
            (*step)();
          },
          fail);
    }
  };
  (*step)();
  self->attach_functor([step] { *step = nullptr; });
  return {};
}

// One run: `shards` shards; clients route keys to the shards themselves
// (`direct`) or send everything to the front.
result run(const options& opts, uint32_t shards, bool direct) {
  auto total = opts.scaled(2'000'000);
  auto names = std::make_shared<std::vector<std::string>>();
  for (uint64_t k = 0; k < keys_total; ++k)
    names->push_back(std::to_string(k));
  troupe::system sys{bench_settings()};
  caf::scoped_actor self{sys.actors()};
  state_config cfg;
  cfg.shards = shards;
  cfg.load = [names] {
    state_entries xs;
    for (uint64_t k = 0; k < keys_total; ++k)
      xs.emplace_back((*names)[k], caf::make_message(state_value_of(k)));
    return xs;
  };
  auto front = spawn_state(sys, cfg);
  state_ref ref{front};
  if (direct)
    self->request(front, caf::infinite, state_shards_atom::value)
      .receive([&](std::vector<caf::actor>& xs) { ref = state_ref{front, xs}; },
               [](caf::error&) {});
  auto start = bench_clock::now();
  for (uint64_t c = 0; c < clients; ++c) {
    auto ops = total / clients + (c < total % clients ? 1 : 0);
    sys.actors().spawn(client, ref,
                       std::shared_ptr<const std::vector<std::string>>{names},
                       1000 + c, ops, caf::actor{self});
  }
  result r;
  r.workload = "state";
  for (uint64_t c = 0; c < clients; ++c)
    self->receive([&](done_atom, uint64_t done, uint64_t sum) {
      r.items += done;
      r.checksum += sum;
    });
  r.seconds = seconds_between(start, bench_clock::now());
  r.lost = total - r.items;
  self->send(front, cancel_atom::value);
  return r;
}

double per_s(const result& r) {
  return r.seconds > 0 ? static_cast<double>(r.items) / r.seconds : 0;
}

} // namespace

void state_ops(const options& opts, std::vector<result>& out) {
  // The main line: one shard, clients routing to it directly (state_ref).
  // On this 2-core machine more shards only add actors competing for the
  // same cores, and the front is one more hop per request.
  auto front = run(opts, 1, false);
  auto sharded = run(opts, 4, true);
  auto r = run(opts, 1, true);
  r.add("shards", uint64_t{1});
  r.add("route", std::string{"state_ref"});
  r.add("via_front_per_s", per_s(front));
  r.add("shards4_state_ref_per_s", per_s(sharded));
  r.lost += front.lost + sharded.lost;
  // The three runs make the same requests, so they read the same values: a
  // run that differs read wrong ones, and none of its items counts as done.
  for (auto* other : {&front, &sharded})
    if (other->checksum != r.checksum) {
      r.add("checksum_mismatch", other == &front ? std::string{"via_front"}
                                                 : std::string{"shards4_state_ref"});
      r.lost += other->items;
    }
  out.push_back(std::move(r));
}

} // namespace troupe::bench
