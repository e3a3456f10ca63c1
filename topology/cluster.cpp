#include "troupe/topology/cluster.hpp"

#include "troupe/actors/errors.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <ostream>
#include <set>
#include <stdexcept>

namespace troupe {

/// What the agent shares with the member that spawned it (which stops the
/// agent in close()): held by both, so that either may go first.
struct cluster_member::shared {
  const topology* t = nullptr;
  std::weak_ptr<cluster_member> member;
  std::mutex mtx;
  std::function<void(int)> on_signal;
  caf::actor observer;
  /// What the agent started, to stop when the home node is gone.
  std::vector<caf::actor_addr> started;
  std::string node_name;
  std::ostream* log = nullptr;
  /// Agents known without dialing: the home node's, from its hello.
  std::map<std::string, caf::actor> known;
  /// Nodes a start already waited for in vain: later starts try them once,
  /// so that a pool with several workers on a node that is down, or a
  /// child with several candidates, waits for connect_timeout only once.
  std::set<std::string> waited_in_vain;

  std::function<void(int)> signal_function() {
    std::lock_guard<std::mutex> guard{mtx};
    return on_signal;
  }
};

namespace {

/// The name under which every node publishes its agent.
const std::string agent_name = "troupe.node";

/// How long a node agent may take to answer a start: it only spawns.
constexpr auto least_start_timeout = std::chrono::seconds(10);

/// The home node greets a node it cannot reach again after these pauses
/// (doubling from the first to the last); a node that comes back is
/// greeted within max_greet_pause, well inside connect_timeout's default.
constexpr auto first_greet_pause = std::chrono::milliseconds(200);
constexpr auto max_greet_pause = std::chrono::seconds(5);

using agent_result = caf::result<caf::actor, bool, bool>;

bool is_start_failure(const caf::error& e) {
  return e.category() == error_category
         && e.code() == static_cast<uint8_t>(errc::child_start_failed);
}

agent_result start_here(caf::actor_system& sys,
                        std::shared_ptr<cluster_member::shared> s,
                        remote_start& x) {
  auto siblings = std::make_shared<std::map<std::string, caf::actor>>();
  for (size_t i = 0; i < x.sibling_names.size() && i < x.siblings.size(); ++i)
    (*siblings)[x.sibling_names[i]] = x.siblings[i];
  spawn_context ctx{sys,
                    x.context_name,
                    x.address,
                    x.supervisor,
                    x.restarts,
                    [siblings](const std::string& name) {
                      auto i = siblings->find(name);
                      return i != siblings->end() ? i->second : caf::actor{};
                    }};
  {
    // Every observer is the home node's runner: what this node places
    // further on reports there too.
    std::lock_guard<std::mutex> guard{s->mtx};
    if (!s->observer)
      s->observer = x.observer;
  }
  // The child this node is asked for: the actor or nested supervisor of
  // the file, or a part of an actor (a pool's worker).
  auto start = [&](const spawn_context& child) -> caf::actor {
    auto& t = *s->t;
    if (x.part.empty()) {
      std::function<void(const std::string&)> on_end;
      if (x.observer)
        on_end = [observer = x.observer](const std::string& name) {
          caf::anon_send(observer, stream_end_atom::value, name);
        };
      return build_child(t, x.name, std::move(on_end), s->member.lock())
        .start(child);
    }
    auto a = t.find_actor(x.name);
    auto part = a ? a->parts.find(x.part) : decltype(a->parts.end()){};
    if (!a || part == a->parts.end())
      throw std::invalid_argument("no part '" + x.part + "' of actor '"
                                  + x.name + "' in " + t.file);
    return part->second(child);
  };
  auto started = try_start(start, ctx);
  auto& handle = started.handle;
  auto& failure = started.failure;
  if (s->log) {
    // One write: the agent's thread shares the log with the others.
    std::string line = "troupe: node " + s->node_name + ": started "
                       + x.context_name;
    if (x.restarts > 0)
      line += " (restart " + std::to_string(x.restarts) + ")";
    if (!failure.empty())
      line = "troupe: node " + s->node_name + ": could not start "
             + x.context_name + ": " + failure;
    *s->log << line + "\n" << std::flush;
  }
  if (!failure.empty())
    return make_error(errc::child_start_failed, failure);
  {
    std::lock_guard<std::mutex> guard{s->mtx};
    s->started.push_back(handle.address());
  }
  auto protocol = ctx.declared();
  return agent_result{handle, protocol.troupe_aware, protocol.intake};
}

// Records the home node's agent; true the first time.
bool learn_home(cluster_member::shared& s, const caf::actor& home) {
  if (!home)
    return false;
  std::lock_guard<std::mutex> guard{s.mtx};
  return s.known.emplace(s.t->home_node(), home).second;
}

// Detached: a start may block while the child's factory reaches yet another
// node, and the agent must answer whatever the scheduler's threads do.
caf::behavior agent_actor(caf::event_based_actor* self,
                          std::shared_ptr<cluster_member::shared> s,
                          std::function<void()> on_stop,
                          std::function<void(caf::actor)> on_hello) {
  return {
    [self, s, on_hello](place_atom, remote_start& x) -> agent_result {
      // A start that comes before the home node's hello says hello too.
      if (learn_home(*s, x.home) && on_hello)
        on_hello(x.home);
      return start_here(self->system(), s, x);
    },
    [s](node_signal_atom, int sig) {
      if (auto f = s->signal_function())
        f(sig);
    },
    [on_stop](node_stop_atom) {
      if (on_stop)
        on_stop();
    },
    [s, on_hello](node_hello_atom, caf::actor& home) {
      if (learn_home(*s, home) && on_hello)
        on_hello(std::move(home));
    },
  };
}

std::string endpoint(const node_decl& n) {
  return n.host + ":" + std::to_string(n.port);
}

} // namespace

void register_cluster_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<remote_start>("troupe::remote_start");
  cfg.add_message_type<std::vector<caf::actor>>("std::vector<caf::actor>");
}

node_settings node_settings_of(const topology& t, const std::string& name) {
  auto n = t.find_node(name);
  if (!n)
    throw node_error("no node '" + name + "' in " + t.file);
  node_settings result;
  result.name = n->name;
  result.host = n->host;
  result.port = n->port;
  result.heartbeat = t.system.heartbeat;
  result.node_timeout = t.system.node_timeout;
  result.tls.certificate = n->certificate;
  result.tls.key = n->key;
  result.tls.cafile = n->cafile;
  if (!n->passphrase_env.empty()) {
    auto value = std::getenv(n->passphrase_env.c_str());
    if (!value)
      throw node_error("node " + name + ": passphrase_env names the "
                       "environment variable " + n->passphrase_env
                       + ", which is not set");
    result.tls.passphrase = value;
  }
  return result;
}

cluster_member::cluster_member(const topology& t, const std::string& name,
                               caf::actor_system& sys, std::ostream* log)
  : t_(t), name_(name), sys_(sys), log_(log),
    shared_(std::make_shared<shared>()) {
  shared_->t = &t;
  shared_->node_name = name;
  shared_->log = log;
  node_ = std::make_unique<node>(sys, node_settings_of(t, name), log);
}

cluster_member::~cluster_member() {
  close();
}

void cluster_member::close() {
  closing_ = true;
  if (greeter_.joinable())
    greeter_.join();
  // agent_ is not reset: a pool's factory may still read it (home_agent())
  // on a scheduler thread while the run tears down.
  if (agent_)
    caf::anon_send_exit(agent_, caf::exit_reason::user_shutdown);
  node_.reset();
}

void cluster_member::on_remote_signal(std::function<void(int)> f) {
  std::lock_guard<std::mutex> guard{shared_->mtx};
  shared_->on_signal = std::move(f);
}

void cluster_member::set_observer(caf::actor observer) {
  std::lock_guard<std::mutex> guard{shared_->mtx};
  shared_->observer = std::move(observer);
}

void cluster_member::start_agent(std::function<void()> on_stop,
                                 std::function<void(caf::actor)> on_hello) {
  shared_->member = weak_from_this();
  agent_ = sys_.spawn<caf::detached + caf::hidden>(
    agent_actor, shared_, std::move(on_stop), std::move(on_hello));
  node_->publish(agent_name, agent_);
}

void cluster_member::greet_peers() {
  greeter_ = std::thread{[this] {
    caf::scoped_actor self{sys_};
    std::map<std::string, caf::actor> greeted;
    // A node that cannot be reached is tried again after a pause that
    // doubles up to max_greet_pause: a peer refused by its certificate
    // stays refused, and each attempt costs a handshake and a log line on
    // both sides.
    using clock = std::chrono::steady_clock;
    std::map<std::string, std::pair<clock::time_point, caf::timespan>> pause;
    auto say = [this](const std::string& line) {
      if (log_)
        *log_ << "troupe: node " + name_ + ": " + line + "\n" << std::flush;
    };
    while (!closing_) {
      for (auto& n : t_.nodes) {
        if (closing_ || n.name == name_ || greeted.count(n.name) > 0)
          continue;
        auto now = clock::now();
        if (auto p = pause.find(n.name); p != pause.end() && now < p->second.first)
          continue;
        auto found = reach(sys_, n.host, n.port, agent_name, caf::timespan{0});
        if (!found) {
          auto& [next, wait] = pause[n.name];
          wait = std::min(std::max(wait * 2, caf::timespan{first_greet_pause}),
                          caf::timespan{max_greet_pause});
          next = clock::now() + wait;
          continue;
        }
        pause.erase(n.name);
        self->monitor(*found);
        self->send(*found, node_hello_atom::value, agent_);
        greeted[n.name] = *found;
        say("node " + n.name + " joined");
      }
      // The pause between rounds; a node that is gone is greeted again
      // when it comes back.
      self->receive(
        [&](caf::down_msg& x) {
          for (auto i = greeted.begin(); i != greeted.end(); ++i)
            if (i->second.address() == x.source) {
              say("node " + i->first + " is gone ("
                  + sys_.render(x.reason) + ")");
              greeted.erase(i);
              break;
            }
        },
        caf::after(std::chrono::milliseconds(200)) >> [] {});
    }
  }};
}

caf::expected<caf::actor> cluster_member::agent_of(const std::string& name,
                                                   caf::timespan patience) {
  auto n = t_.find_node(name);
  if (!n)
    return make_error(errc::node_unreachable, "no node '" + name + "'");
  {
    std::lock_guard<std::mutex> guard{shared_->mtx};
    if (auto i = shared_->known.find(name); i != shared_->known.end())
      return i->second;
  }
  {
    std::lock_guard<std::mutex> guard{shared_->mtx};
    if (shared_->waited_in_vain.count(name) > 0)
      patience = caf::timespan{0};
  }
  auto result = reach(sys_, n->host, n->port, agent_name, patience, log_);
  {
    std::lock_guard<std::mutex> guard{shared_->mtx};
    if (result)
      shared_->waited_in_vain.erase(name);
    else if (patience > caf::timespan{0})
      shared_->waited_in_vain.insert(name);
  }
  if (!result)
    return make_error(errc::node_unreachable,
                      "node " + name + " at " + endpoint(*n) + ": "
                        + sys_.render(result.error()));
  return result;
}

caf::actor cluster_member::home_agent() {
  if (home())
    return agent_;
  std::lock_guard<std::mutex> guard{shared_->mtx};
  auto i = shared_->known.find(t_.home_node());
  return i != shared_->known.end() ? i->second : caf::actor{};
}

caf::actor cluster_member::start_remote(const std::string& node,
                                        remote_start what,
                                        const spawn_context& ctx,
                                        caf::timespan patience,
                                        std::string& why) {
  auto agent = agent_of(node, patience);
  what.home = home_agent();
  if (!agent) {
    why += (why.empty() ? "" : "; ") + sys_.render(agent.error());
    return nullptr;
  }
  caf::scoped_actor self{sys_};
  caf::actor result;
  caf::error failed;
  auto timeout = std::max(t_.system.connect_timeout,
                          caf::timespan{least_start_timeout});
  // A send and a monitor rather than a request: a request to a node that
  // dies meanwhile is answered only by its timeout, a down comes at once.
  self->monitor(*agent);
  self->send(*agent, place_atom::value, what);
  self->receive(
    [&](caf::actor& handle, bool troupe_aware, bool intake) {
      result = std::move(handle);
      ctx.declare(child_protocol{troupe_aware, intake});
    },
    [&](caf::error& e) { failed = std::move(e); },
    [&](caf::down_msg& x) {
      failed = x.reason ? x.reason : make_error(caf::sec::request_timeout);
    },
    caf::after(timeout) >> [&] { failed = make_error(caf::sec::request_timeout); });
  self->demonitor(*agent);
  if (result) {
    if (log_)
      *log_ << "troupe: node " + name_ + ": " + ctx.name() + " started on node "
                 + node + "\n"
            << std::flush;
    return result;
  }
  if (is_start_failure(failed))
    // The node is there and the child's own start failed: a failed start,
    // not a node to pass over.
    throw std::runtime_error("on node " + node + ": " + sys_.render(failed));
  why += (why.empty() ? "" : "; ") + ("node " + node + ": ")
         + sys_.render(failed);
  return nullptr;
}

child_factory cluster_member::place(std::vector<std::string> candidates,
                                    std::string name, bool,
                                    std::vector<std::string> names,
                                    child_factory local) {
  auto self = shared_from_this();
  // The first start waits for a node still starting; a restart does not.
  auto started = std::make_shared<bool>(false);
  return [self, candidates, name, names, local,
          started](const spawn_context& ctx) -> caf::actor {
    auto patience = *started ? caf::timespan{0}
                             : self->t_.system.connect_timeout;
    *started = true;
    remote_start what;
    what.name = name;
    what.context_name = ctx.name();
    what.address = ctx.address();
    what.supervisor = ctx.supervisor();
    what.restarts = ctx.restarts();
    for (auto& sibling : names)
      if (auto handle = ctx.sibling(sibling)) {
        what.sibling_names.push_back(sibling);
        what.siblings.push_back(handle);
      }
    {
      std::lock_guard<std::mutex> guard{self->shared_->mtx};
      what.observer = self->shared_->observer;
    }
    std::string why;
    for (auto& node : candidates) {
      if (node == self->name_) {
        if (!why.empty() && self->log_)
          *self->log_ << "troupe: node " + self->name_ + ": starting "
                           + ctx.name() + " here (" + why + ")\n"
                      << std::flush;
        return local(ctx);
      }
      if (auto handle = self->start_remote(node, what, ctx, patience, why))
        return handle;
    }
    throw node_unreachable(name + ": no node to start it on (" + why + ")");
  };
}

child_factory cluster_member::spread(std::vector<std::string> nodes,
                                     std::string pool, std::string key,
                                     child_factory local) {
  auto self = shared_from_this();
  auto started = std::make_shared<std::set<std::string>>();
  return [self, nodes, pool, key, local,
          started](const spawn_context& ctx) -> caf::actor {
    // Workers are named "POOL/worker-N".
    auto& name = ctx.name();
    size_t index = 0;
    auto dash = name.find_last_of('-');
    if (dash != std::string::npos)
      index = static_cast<size_t>(
        std::strtoull(name.c_str() + dash + 1, nullptr, 10));
    auto& node = nodes[index % nodes.size()];
    if (node == self->name_)
      return local(ctx);
    auto first = started->insert(name).second;
    remote_start what;
    what.name = pool;
    what.part = key;
    what.context_name = name;
    what.address = ctx.address();
    what.supervisor = ctx.supervisor();
    what.restarts = ctx.restarts();
    std::string why;
    auto patience = first ? self->t_.system.connect_timeout : caf::timespan{0};
    if (auto handle = self->start_remote(node, what, ctx, patience, why))
      return handle;
    throw node_unreachable(name + ": " + why);
  };
}

void cluster_member::stop_peers() {
  closing_ = true;
  if (greeter_.joinable())
    greeter_.join();
  caf::scoped_actor self{sys_};
  for (auto& n : t_.nodes) {
    if (n.name == name_)
      continue;
    auto agent = agent_of(n.name, caf::timespan{0});
    if (!agent)
      continue;
    if (log_)
      *log_ << "troupe: node " << name_ << ": telling node " << n.name
            << " to stop" << std::endl;
    self->request(*agent, std::chrono::seconds(5), node_stop_atom::value)
      .receive([] {}, [](const caf::error&) {});
  }
}

void cluster_member::stop_started() {
  std::vector<caf::actor_addr> started;
  {
    std::lock_guard<std::mutex> guard{shared_->mtx};
    started.swap(shared_->started);
  }
  for (auto& addr : started)
    if (auto handle = caf::actor_cast<caf::actor>(addr))
      caf::anon_send_exit(handle, caf::exit_reason::kill);
}

} // namespace troupe
