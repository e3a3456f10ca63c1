#include "troupe/patterns/state.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/request.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/supervision/supervisor.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/delegated.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/response_promise.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/type_nr.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <memory>
#include <unordered_map>

namespace troupe {

void state_config::validate() const {
  auto fail = [](const std::string& what) {
    throw config_error("state_config", what);
  };
  if (shards == 0)
    fail("shards is 0: the state needs at least one shard");
  if (hold_timeout <= caf::timespan{0})
    fail("hold_timeout is not positive");
  troupe::validate(shard_restarts, "state_config", "shard_restarts");
  if (restart_buffer == 0)
    fail("restart_buffer is 0: a restarting shard could hold no request");
  if (max_deferred == 0)
    fail("max_deferred is 0: a held shard could take no write");
  if (max_write_wait <= caf::timespan{0})
    fail("max_write_wait is not positive");
}

uint32_t state_shard_of(const std::string& key, uint32_t shards) {
  // FNV-1a: the same on every node and build, unlike std::hash.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return shards <= 1 ? 0 : static_cast<uint32_t>(h % shards);
}

caf::message state_get(std::string key) {
  return caf::make_message(state_get_atom::value, std::move(key));
}

caf::message state_set(std::string key, item value) {
  return caf::make_message(state_set_atom::value, std::move(key),
                           std::move(value));
}

caf::message state_delete(std::string key) {
  return caf::make_message(state_delete_atom::value, std::move(key));
}

caf::message state_get_many(std::vector<std::string> keys) {
  return caf::make_message(state_get_many_atom::value, std::move(keys));
}

caf::message state_cas(std::string key, state_value expected,
                       state_value desired) {
  return caf::make_message(state_cas_atom::value, std::move(key),
                           std::move(expected), std::move(desired));
}

caf::message state_update(std::string key, state_update_function f) {
  return caf::make_message(state_update_atom::value, std::move(key),
                           state_updater{std::move(f)});
}

namespace {

// Between the front and its shards only.
using state_hold_atom = caf::atom_constant<caf::atom("st_hold")>;
using state_release_atom = caf::atom_constant<caf::atom("st_release")>;

enum counter : size_t {
  keys,
  gets,
  sets,
  deletes,
  cas_ok,
  cas_failed,
  updates,
  update_errors,
  get_many,
  holds,
  holds_expired,
  deferred,
  deferred_reads,
  writes_refused,
  holds_refused,
  misrouted,
  keys_loaded,
  restarts_with_loss,
  keys_lost,
  starts,
  answered,
  counter_count,
};

// Names in the report; starts and answered are reported otherwise.
constexpr std::array<const char*, counter_count> counter_names{
  "keys",     "gets",          "sets",     "deletes",
  "cas_ok",   "cas_failed",    "updates",  "update_errors",
  "get_many", "holds",         "holds_expired", "deferred",
  "deferred_reads", "writes_refused", "holds_refused",
  "misrouted", "keys_loaded",  "restarts_with_loss", "keys_lost",
  nullptr,    nullptr,
};

// The counters of one shard over all its incarnations. Each incarnation
// writes them (one writer at a time) and the front reads them for its
// report: the shards live in the front's process, and this costs a shard no
// message per request. They also tell a new incarnation how many keys the
// previous one held.
struct shard_counters {
  std::array<std::atomic<int64_t>, counter_count> values{};

  void add(counter c, int64_t n = 1) {
    auto& x = values[c];
    x.store(x.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  void set(counter c, int64_t n) {
    values[c].store(n, std::memory_order_relaxed);
  }

  int64_t get(counter c) const {
    return values[c].load(std::memory_order_relaxed);
  }
};

// Values are equal when they serialize to the same bytes: caf::message has
// no equality of its own in CAF 0.17. Throws if one cannot be serialized.
bool same_value(caf::actor_system& sys, const state_value& a,
                const state_value& b) {
  if (a.found != b.found)
    return false;
  if (!a.found)
    return true;
  auto bytes = [&sys](const item& x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    if (auto err = x.to_message().save(sink))
      throw std::runtime_error("cannot compare values: " + sys.render(err));
    return buf;
  };
  return bytes(a.value) == bytes(b.value);
}

class shard_logic final : public stage_logic {
public:
  shard_logic(uint32_t index, uint32_t shards, const state_config& cfg,
              std::shared_ptr<shard_counters> counters)
    : index_(index),
      shards_(shards),
      load_(cfg.load),
      hold_timeout_(cfg.hold_timeout),
      max_deferred_(cfg.max_deferred),
      max_write_wait_(cfg.max_write_wait),
      counters_(std::move(counters)) {
    // nop
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
    auto& c = *counters_;
    // Counted before this incarnation serves anything: a front that reads
    // the same number after a hold's answer knows no newer incarnation has
    // applied a write since.
    c.add(starts);
    incarnation_ = static_cast<uint64_t>(c.get(starts));
    if (c.get(starts) > 1 && !load_) {
      c.add(restarts_with_loss);
      c.add(keys_lost, c.get(keys));
    }
    if (load_) {
      for (auto& [key, value] : load_())
        if (owns(key))
          map_[key] = std::move(value);
      c.add(keys_loaded, static_cast<int64_t>(map_.size()));
    }
    c.set(keys, static_cast<int64_t>(map_.size()));
  }

  void on_item(item&, emitter&) override {
    // A shard has no stream inputs.
  }

  // Waiting requests keep a draining shard alive until its holds end.
  bool busy() const override {
    return !deferred_.empty();
  }

  void on_timer(uint64_t hold_id, emitter&) override {
    if (holds_.erase(hold_id) > 0) {
      counters_->add(holds_expired);
      apply_deferred();
    }
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    // The requests of the hot path are told apart by the message's type
    // token and its atom: one compare each, where a match of the whole
    // message costs about a hundred instructions per kind tried.
    auto token = x.type_token();
    if (token == single_key_token || token == set_token) {
      auto atom = x.get_as<caf::atom_value>(0);
      if (atom == state_get_atom::value)
        return client_request(x, request_kind::get);
      if (atom == state_set_atom::value)
        return client_request(x, request_kind::write);
    }
    if (x.match_elements<state_hold_atom, uint64_t, std::vector<std::string>>())
      return hold(x);
    if (x.match_elements<state_release_atom, uint64_t>()) {
      if (holds_.erase(x.get_as<uint64_t>(1)) > 0)
        apply_deferred();
      return caf::message{};
    }
    if (x.match_elements<state_get_atom, std::string>())
      return client_request(x, request_kind::get);
    if (x.match_elements<state_get_many_atom, std::vector<std::string>>())
      return client_request(x, request_kind::get_many);
    if (x.size() < 2 || !x.match_element<std::string>(1) || !is_write(x))
      return caf::sec::unexpected_message;
    return client_request(x, request_kind::write);
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason ? reason : make_error(errc::shutting_down, "state shard");
    for (auto& w : deferred_)
      if (w.promise.pending())
        w.promise.deliver(answer);
    deferred_.clear();
  }

  void describe(actor_report& r) const override {
    r.state = holds_.empty() ? "open" : "held";
    r.in = static_cast<uint64_t>(counters_->get(answered));
    for (size_t i = 0; i < counter_count; ++i)
      if (counter_names[i] != nullptr)
        r.stats[counter_names[i]] = counters_->get(static_cast<counter>(i));
    r.stats["held_by"] = static_cast<int64_t>(holds_.size());
    r.stats["waiting_writes"] = static_cast<int64_t>(deferred_.size());
  }

private:
  // A client's request, as on_request told it apart.
  enum class request_kind { get, get_many, write };

  static constexpr uint32_t single_key_token
    = caf::make_type_token<caf::atom_value, std::string>();
  static constexpr uint32_t set_token
    = caf::make_type_token<caf::atom_value, std::string, item>();

  // A request waiting for the shard's holds to end.
  struct waiting {
    caf::message msg;
    request_kind kind;
    caf::response_promise promise;
    std::chrono::steady_clock::time_point since;
  };

  caf::result<caf::message> client_request(caf::message& x, request_kind kind) {
    bool read = kind != request_kind::write;
    counters_->add(answered);
    if (auto key = foreign_key(x, kind))
      return misrouted_error(*key);
    if (deferred_.empty() && (read || holds_.empty()))
      return serve(x, kind);
    // Reads wait behind deferred writes too, so that a client that sends a
    // write and then a read gets the read after the write.
    if (deferred_.size() >= max_deferred_) {
      counters_->add(writes_refused);
      return make_error(errc::state_contended,
                        "state shard " + std::to_string(index_) + ": "
                          + std::to_string(deferred_.size())
                          + " requests already wait for get_manys to end");
    }
    counters_->add(read ? deferred_reads : deferred);
    auto rp = self_->make_response_promise();
    deferred_.push_back(waiting{std::move(x), kind, rp, std::chrono::steady_clock::now()});
    return rp;
  }

  // Answers (incarnation, values) at once: holds never wait, so overlapping
  // get_manys cannot deadlock. Refused once a write has waited too long, so
  // that a stream of get_manys cannot hold writes back for ever. The first
  // waiting request is always a write: reads wait only behind one.
  caf::result<caf::message> hold(caf::message& x) {
    if (!deferred_.empty()
        && std::chrono::steady_clock::now() - deferred_.front().since
             >= max_write_wait_) {
      counters_->add(holds_refused);
      return make_error(errc::state_contended,
                        "state shard " + std::to_string(index_)
                          + ": writes waited too long for get_manys");
    }
    auto id = x.get_as<uint64_t>(1);
    holds_.emplace(id);
    counters_->add(holds);
    // The front stops waiting for this answer hold_timeout after it sent the
    // hold; this timer starts later, so a get_many the front still answers
    // always ends before its holds expire.
    ctl_->schedule(hold_timeout_, id);
    return caf::make_message(incarnation_,
                             read_all(x.get_as<std::vector<std::string>>(2)));
  }

  // A get or a write now.
  caf::result<caf::message> serve(caf::message& x, request_kind kind) {
    switch (kind) {
      case request_kind::get:
        counters_->add(gets);
        return caf::make_message(read(x.get_as<std::string>(1)));
      case request_kind::get_many:
        counters_->add(get_many);
        return caf::make_message(read_all(x.get_as<std::vector<std::string>>(1)));
      case request_kind::write:
        break;
    }
    return write(x);
  }

  static bool is_write(const caf::message& x) {
    return x.match_element<state_set_atom>(0) || x.match_element<state_delete_atom>(0)
           || x.match_element<state_cas_atom>(0)
           || x.match_element<state_update_atom>(0);
  }

  bool owns(const std::string& key) const {
    return state_shard_of(key, shards_) == index_;
  }

  // The first key of `x` this shard does not own, if any.
  const std::string* foreign_key(const caf::message& x, request_kind kind) const {
    if (kind == request_kind::get_many) {
      for (auto& key : x.get_as<std::vector<std::string>>(1))
        if (!owns(key))
          return &key;
      return nullptr;
    }
    auto& key = x.get_as<std::string>(1);
    return owns(key) ? nullptr : &key;
  }

  caf::error misrouted_error(const std::string& key) {
    counters_->add(misrouted);
    return caf::make_error(caf::sec::invalid_argument,
                           "key '" + key + "' belongs to shard "
                             + std::to_string(state_shard_of(key, shards_))
                             + ", not " + std::to_string(index_));
  }

  state_value read(const std::string& key) const {
    auto i = map_.find(key);
    return i == map_.end() ? state_value{} : state_value{true, i->second};
  }

  std::vector<state_value> read_all(const std::vector<std::string>& ks) const {
    std::vector<state_value> result;
    result.reserve(ks.size());
    for (auto& key : ks)
      result.push_back(read(key));
    return result;
  }

  void put(const std::string& key, state_value v) {
    if (v.found)
      map_[key] = std::move(v.value);
    else
      map_.erase(key);
    counters_->set(keys, static_cast<int64_t>(map_.size()));
  }

  // Applies a write; its answer, or the error the caller gets.
  caf::result<caf::message> write(caf::message& x) {
    auto& key = x.get_as<std::string>(1);
    if (x.match_elements<state_set_atom, std::string, item>()) {
      counters_->add(sets);
      put(key, state_value{true, x.get_as<item>(2)});
      return caf::make_message(caf::ok_atom::value);
    }
    if (x.match_elements<state_delete_atom, std::string>()) {
      counters_->add(deletes);
      bool existed = map_.erase(key) > 0;
      counters_->set(keys, static_cast<int64_t>(map_.size()));
      return caf::make_message(existed);
    }
    if (x.match_elements<state_cas_atom, std::string, state_value, state_value>()) {
      bool equal = false;
      try {
        equal = same_value(self_->system(), read(key), x.get_as<state_value>(2));
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::invalid_argument, e.what());
      }
      if (!equal) {
        counters_->add(cas_failed);
        return caf::make_message(false);
      }
      counters_->add(cas_ok);
      put(key, x.get_as<state_value>(3));
      return caf::make_message(true);
    }
    if (x.match_elements<state_update_atom, std::string, state_updater>()) {
      auto& f = x.get_as<state_updater>(2).f;
      state_value next;
      try {
        if (!f)
          throw std::runtime_error("the update function is empty");
        next = f(read(key));
      } catch (const std::exception& e) {
        counters_->add(update_errors);
        return caf::make_error(caf::sec::runtime_error, e.what());
      } catch (...) {
        counters_->add(update_errors);
        return caf::make_error(caf::sec::runtime_error,
                               "the update function threw");
      }
      counters_->add(updates);
      put(key, next);
      return caf::make_message(std::move(next));
    }
    return caf::sec::unexpected_message;
  }

  // The last hold ended: the requests that waited go in, in arrival order.
  void apply_deferred() {
    if (!holds_.empty())
      return;
    while (!deferred_.empty()) {
      auto w = std::move(deferred_.front());
      deferred_.pop_front();
      auto res = serve(w.msg, w.kind);
      if (res.flag == caf::rt_value)
        w.promise.deliver(std::move(res.value));
      else
        w.promise.deliver(std::move(res.err));
    }
    // A drain may be waiting for them.
    ctl_->resume();
  }

  uint32_t index_;
  uint32_t shards_;
  std::function<state_entries()> load_;
  caf::timespan hold_timeout_;
  size_t max_deferred_;
  caf::timespan max_write_wait_;
  std::shared_ptr<shard_counters> counters_;
  uint64_t incarnation_ = 0;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  std::unordered_map<std::string, item> map_;
  std::set<uint64_t> holds_;
  std::deque<waiting> deferred_;
};

std::string shard_name(uint32_t i) {
  return "shard-" + std::to_string(i);
}

class front_logic final : public stage_logic {
public:
  front_logic(std::string name, state_config cfg)
    : name_(name.empty() ? std::string{"state"} : std::move(name)),
      cfg_(std::move(cfg)) {
    for (uint32_t i = 0; i < cfg_.shards; ++i)
      counters_.push_back(std::make_shared<shard_counters>());
  }

  void on_start(stage_control& ctl) override {
    ctl_ = &ctl;
    self_ = ctl.self();
    supervisor_spec spec;
    spec.name = name_ + "/shards";
    spec.intensity = cfg_.shard_restarts;
    for (uint32_t i = 0; i < cfg_.shards; ++i) {
      child_spec c;
      c.name = shard_name(i);
      c.restart_buffer = cfg_.restart_buffer;
      c.start = [i, cfg = cfg_, counters = counters_[i]](const spawn_context& ctx) {
        stage_config links;
        links.kind = "state_shard";
        return spawn_stage(ctx, std::move(links),
                           std::make_unique<shard_logic>(i, cfg.shards, cfg,
                                                         counters));
      };
      spec.children.push_back(std::move(c));
    }
    // No report target: the front reports its shards from their counters.
    spawn_context sup_ctx{self_->system(), spec.name, caf::actor{}, caf::actor{},
                          0, [](const std::string&) { return caf::actor{}; }};
    shards_sup_ = spawn_supervisor(sup_ctx, std::move(spec));
    self_->monitor(shards_sup_);
    self_->set_down_handler([this](caf::down_msg& x) {
      if (x.source != shards_sup_.address())
        return;
      shards_sup_ = nullptr;
      // The shards gave up (restart intensity) or were stopped from outside:
      // the state cannot serve, and its supervisor decides what is next.
      self_->quit(x.reason ? x.reason
                           : make_error(errc::child_unavailable, name_ + "/shards"));
    });
    // Requests wait in the mailbox until every shard address is known.
    relays_.resize(cfg_.shards);
    for (uint32_t i = 0; i < cfg_.shards; ++i)
      self_->request(shards_sup_, caf::infinite, caf::get_atom::value, shard_name(i))
        .await([this, i](caf::actor& a) { relays_[i] = std::move(a); },
               [this](caf::error& e) { self_->quit(e); });
  }

  void on_item(item&, emitter&) override {
    // The state takes requests, not stream items.
  }

  bool busy() const override {
    return !reads_.empty();
  }

  void on_end(emitter&, const caf::error&) override {
    ended_ = true;
  }

  caf::result<caf::message> on_request(caf::message& x) override {
    // Single-key requests first: they are the front's hot path.
    if (x.size() >= 2 && x.match_element<std::string>(1)) {
      if (ended_)
        return make_error(errc::shutting_down, name_);
      auto& dest = relays_[state_shard_of(x.get_as<std::string>(1), cfg_.shards)];
      self_->delegate(dest, std::move(x));
      return caf::delegated<caf::message>{};
    }
    if (x.match_elements<actor_report>())
      return caf::message{};
    if (x.match_elements<state_shards_atom>())
      return caf::make_message(relays_);
    if (ended_)
      return make_error(errc::shutting_down, name_);
    if (x.match_elements<state_get_many_atom, std::vector<std::string>>()) {
      // A drain waits for the get_manys in flight, not for new ones.
      if (ctl_->draining())
        return make_error(errc::shutting_down, name_ + " is draining");
      return read_many(x);
    }
    return caf::sec::unexpected_message;
  }

  void on_stop(const caf::error& reason) override {
    auto answer = reason && reason != caf::exit_reason::normal
                    ? reason
                    : make_error(errc::shutting_down, name_);
    for (auto& [id, r] : reads_) {
      if (r.promise.pending())
        r.promise.deliver(answer);
      r.promise = caf::response_promise{};
      release(id, r);
    }
    reads_.clear();
    if (!shards_sup_)
      return;
    // A normal end drains the shards: the drain reaches each shard through
    // its relay, behind the requests this front delegated to it, which are
    // answered. Otherwise they stop at once.
    if (!reason || reason == caf::exit_reason::normal)
      caf::anon_send(shards_sup_, drain_atom::value);
    else
      caf::anon_send_exit(shards_sup_, caf::exit_reason::user_shutdown);
  }

  void describe(actor_report& r) const override {
    r.state = "running";
    std::array<int64_t, counter_count> total{};
    for (uint32_t i = 0; i < cfg_.shards; ++i) {
      auto& c = *counters_[i];
      actor_report s;
      s.name = shard_name(i);
      s.kind = "state_shard";
      s.in = static_cast<uint64_t>(c.get(answered));
      s.restarts = static_cast<uint32_t>(std::max<int64_t>(c.get(starts) - 1, 0));
      s.stopped = r.stopped == stop_reason::running ? stop_reason::running
                                                    : stop_reason::stopped;
      for (size_t k = 0; k < counter_count; ++k) {
        total[k] += c.get(static_cast<counter>(k));
        if (counter_names[k] != nullptr)
          s.stats[counter_names[k]] = c.get(static_cast<counter>(k));
      }
      r.children.push_back(std::move(s));
    }
    for (size_t k = 0; k < counter_count; ++k)
      if (counter_names[k] != nullptr)
        r.stats[counter_names[k]] = total[k];
    r.stats["get_many"] += static_cast<int64_t>(cross_reads_);
    r.stats["get_many_failed"] = static_cast<int64_t>(cross_failed_);
    r.stats["get_many_retried"] = static_cast<int64_t>(cross_retried_);
    r.stats["shards"] = cfg_.shards;
    int64_t restarts = 0;
    for (auto& c : counters_)
      restarts += std::max<int64_t>(c->get(starts) - 1, 0);
    r.stats["shard_restarts"] = restarts;
    r.errors += cross_failed_;
  }

private:
  // A get_many over several shards, waiting for their holds.
  struct cross_read {
    caf::response_promise promise;
    std::vector<std::string> keys;
    std::vector<state_value> values;
    // Per involved shard: positions of its keys in the request.
    std::map<uint32_t, std::vector<size_t>> positions;
    // Per shard that answered: the incarnation that answered.
    std::map<uint32_t, uint64_t> incarnations;
    size_t waiting = 0;
    int attempts = 0;
  };

  // Attempts of a get_many whose held shard restarted before it completed.
  static constexpr int max_attempts = 3;

  caf::result<caf::message> read_many(caf::message& x) {
    auto& ks = x.get_as<std::vector<std::string>>(1);
    std::map<uint32_t, std::vector<size_t>> positions;
    for (size_t i = 0; i < ks.size(); ++i)
      positions[state_shard_of(ks[i], cfg_.shards)].push_back(i);
    if (positions.size() <= 1) {
      // One shard answers in one step: consistent by itself.
      if (positions.empty()) {
        ++cross_reads_;
        return caf::make_message(std::vector<state_value>{});
      }
      self_->delegate(relays_[positions.begin()->first], std::move(x));
      return caf::delegated<caf::message>{};
    }
    cross_read r;
    r.promise = self_->make_response_promise();
    r.keys = std::move(x.get_mutable_as<std::vector<std::string>>(1));
    r.positions = std::move(positions);
    auto promise = r.promise;
    send_holds(std::move(r));
    return promise;
  }

  // One attempt: a hold to every involved shard.
  void send_holds(cross_read r) {
    auto id = next_read_++;
    ++r.attempts;
    r.values.assign(r.keys.size(), state_value{});
    r.incarnations.clear();
    r.waiting = r.positions.size();
    for (auto& [shard, pos] : r.positions) {
      std::vector<std::string> part;
      part.reserve(pos.size());
      for (auto p : pos)
        part.push_back(r.keys[p]);
      auto s = shard;
      request_any(
        self_, relays_[shard], caf::duration{cfg_.hold_timeout},
        caf::make_message(state_hold_atom::value, id, std::move(part)),
        [this, id, s](caf::message& answer) { on_hold(id, s, answer); },
        [this, id](caf::error& err) { on_hold_failed(id, err); });
    }
    reads_.emplace(id, std::move(r));
  }

  void on_hold(uint64_t id, uint32_t shard, caf::message& answer) {
    auto i = reads_.find(id);
    if (i == reads_.end())
      return; // failed meanwhile; its holds were released
    auto& r = i->second;
    if (!answer.match_elements<uint64_t, std::vector<state_value>>()) {
      caf::error err = caf::make_error(caf::sec::unexpected_response,
                                       "a shard answered a hold wrongly");
      on_hold_failed(id, err);
      return;
    }
    r.incarnations[shard] = answer.get_as<uint64_t>(0);
    auto& vs = answer.get_mutable_as<std::vector<state_value>>(1);
    auto& pos = r.positions[shard];
    for (size_t k = 0; k < pos.size() && k < vs.size(); ++k)
      r.values[pos[k]] = std::move(vs[k]);
    if (--r.waiting > 0)
      return;
    // A shard that restarted after answering its hold has lost that hold:
    // its new incarnation may have applied writes since, so the values are
    // no snapshot. A new incarnation counts its start before serving
    // anything, so an unchanged count means no write went in.
    bool restarted = false;
    for (auto& [s, inc] : r.incarnations)
      if (static_cast<uint64_t>(counters_[s]->get(starts)) != inc)
        restarted = true;
    if (restarted) {
      auto retry = std::move(r);
      release(id, retry);
      reads_.erase(i);
      if (retry.attempts < max_attempts) {
        ++cross_retried_;
        send_holds(std::move(retry));
      } else {
        ++cross_failed_;
        retry.promise.deliver(make_error(
          errc::child_unavailable,
          name_ + ": a held shard restarted during every attempt of a get_many"));
        ctl_->resume();
      }
      return;
    }
    ++cross_reads_;
    r.promise.deliver(std::move(r.values));
    release(id, r);
    reads_.erase(i);
    // A drain may be waiting for the last read.
    ctl_->resume();
  }

  void on_hold_failed(uint64_t id, caf::error& err) {
    auto i = reads_.find(id);
    if (i == reads_.end())
      return;
    ++cross_failed_;
    auto& r = i->second;
    r.promise.deliver(err == caf::sec::request_timeout
                        ? make_error(errc::call_timeout,
                                     name_ + ": a shard did not answer a hold")
                        : err);
    release(id, r);
    reads_.erase(i);
    // A drain may be waiting for the last read.
    ctl_->resume();
  }

  // Every involved shard gets the release, also one whose hold is still on
  // its way: it arrives after the hold (same path) and lifts it at once.
  void release(uint64_t id, const cross_read& r) {
    for (auto& kv : r.positions)
      caf::anon_send(relays_[kv.first], state_release_atom::value, id);
  }

  std::string name_;
  state_config cfg_;
  stage_control* ctl_ = nullptr;
  caf::event_based_actor* self_ = nullptr;
  caf::actor shards_sup_;
  std::vector<caf::actor> relays_;
  std::vector<std::shared_ptr<shard_counters>> counters_;
  std::map<uint64_t, cross_read> reads_;
  uint64_t next_read_ = 0;
  uint64_t cross_reads_ = 0;
  uint64_t cross_failed_ = 0;
  uint64_t cross_retried_ = 0;
  bool ended_ = false;
};

} // namespace

caf::actor spawn_state(spawn_context ctx, state_config cfg) {
  cfg.validate();
  stage_config links;
  links.kind = "state";
  auto logic = std::make_unique<front_logic>(ctx.name(), std::move(cfg));
  return spawn_stage(std::move(ctx), std::move(links), std::move(logic));
}

} // namespace troupe
