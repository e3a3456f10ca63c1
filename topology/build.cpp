// From a validated topology to the supervision tree that runs it.

#include "troupe/topology/topology.hpp"

#include "troupe/supervision/supervisor.hpp"
#include "troupe/topology/detail/graph_order.hpp"

#include <caf/exit_reason.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>

namespace troupe {

namespace {

// What one actor's factory needs: everything by value, so that the spec
// outlives the topology it came from.
struct actor_plan {
  std::string name;
  std::string kind;
  std::vector<std::string> next;
  std::vector<std::string> services;
  size_t inputs = 0;
  uint32_t credit = 0;
  actor_starter start;
  /// Set for actors of the stream only.
  std::function<void(const std::string&)> on_stream_end;
};

caf::actor resolve(const spawn_context& ctx, const std::string& name,
                   const char* key) {
  auto result = ctx.sibling(name);
  if (!result)
    // The scope rule makes this unreachable for a validated topology.
    throw std::runtime_error(std::string{key} + " names '" + name
                             + "', which is out of reach");
  return result;
}

caf::actor start_actor(const actor_plan& p, const spawn_context& ctx) {
  wiring w;
  for (auto& name : p.next)
    w.links.next.push_back(resolve(ctx, name, "next"));
  for (auto& name : p.services)
    w.services.push_back(resolve(ctx, name, "service"));
  w.links.inputs = p.inputs;
  w.links.credit = p.credit;
  w.links.kind = p.kind;
  auto handle = p.start(ctx, w);
  if (handle && p.on_stream_end)
    handle->attach_functor(
      [done = p.on_stream_end, name = p.name](const caf::error& reason) {
        if (!reason || reason == caf::exit_reason::normal)
          done(name);
      });
  return handle;
}

class builder {
public:
  builder(const topology& t, std::function<void(const std::string&)> on_end)
    : t_(t), on_stream_end_(std::move(on_end)) {
    supervisor_index_[t.root.name] = 0;
    for (size_t i = 0; i < t.supervisors.size(); ++i)
      supervisor_index_[t.supervisors[i].name] = i + 1;
    parent_.assign(t.supervisors.size() + 1, 0);
    for (size_t i = 0; i < t.supervisors.size(); ++i)
      parent_[i + 1] = index_of(t.supervisors[i].parent);
    for (size_t i = 0; i < t.actors.size(); ++i)
      actor_index_[t.actors[i].name] = i;
    find_stream();
  }

  supervisor_spec build() {
    return spec_of(0);
  }

private:
  // A child of a supervisor: an actor or a nested supervisor, by index.
  struct child {
    bool is_actor;
    size_t index;
  };

  size_t index_of(const std::string& supervisor) const {
    auto i = supervisor_index_.find(supervisor);
    return i != supervisor_index_.end() ? i->second : 0;
  }

  const supervisor_decl& decl(size_t s) const {
    return s == 0 ? t_.root : t_.supervisors[s - 1];
  }

  void find_stream() {
    stream_.assign(t_.actors.size(), false);
    std::vector<size_t> todo;
    for (size_t i = 0; i < t_.actors.size(); ++i)
      if (t_.actors[i].definition && t_.actors[i].definition->source) {
        stream_[i] = true;
        todo.push_back(i);
      }
    while (!todo.empty()) {
      auto i = todo.back();
      todo.pop_back();
      for (auto& name : t_.actors[i].next)
        if (auto j = actor_index_.find(name); j != actor_index_.end()
                                              && !stream_[j->second]) {
          stream_[j->second] = true;
          todo.push_back(j->second);
        }
    }
  }

  // The child of supervisor `s` that holds actor `a` (itself, or the nested
  // supervisor on its way up to `s`); none if `s` does not enclose it.
  std::optional<child> child_holding(size_t s, size_t a) const {
    auto own = index_of(t_.actors[a].supervisor);
    if (own == s)
      return child{true, a};
    for (auto x = own; x != 0; x = parent_[x])
      if (parent_[x] == s)
        return child{false, x};
    return std::nullopt;
  }

  supervisor_spec spec_of(size_t s) {
    auto& d = decl(s);
    supervisor_spec spec;
    spec.name = d.name;
    spec.strategy = d.strategy;
    spec.intensity = d.intensity;
    spec.backoff = d.backoff;
    // The children, in file order to begin with.
    std::vector<child> children;
    std::vector<source_position> where;
    for (size_t i = 0; i < t_.supervisors.size(); ++i)
      if (parent_[i + 1] == s) {
        children.push_back(child{false, i + 1});
        where.push_back(t_.supervisors[i].where);
      }
    for (size_t i = 0; i < t_.actors.size(); ++i)
      if (index_of(t_.actors[i].supervisor) == s) {
        children.push_back(child{true, i});
        where.push_back(t_.actors[i].where);
      }
    std::vector<size_t> rank(children.size());
    for (size_t i = 0; i < rank.size(); ++i)
      rank[i] = i;
    std::sort(rank.begin(), rank.end(), [&](size_t a, size_t b) {
      return std::tie(where[a].line, where[a].column)
             < std::tie(where[b].line, where[b].column);
    });
    std::vector<size_t> file_rank(children.size());
    for (size_t r = 0; r < rank.size(); ++r)
      file_rank[rank[r]] = r;
    // What each child (or anything under it) names, among the actors that
    // are direct children here, starts before it.
    std::map<std::pair<bool, size_t>, size_t> position;
    for (size_t i = 0; i < children.size(); ++i)
      position[{children[i].is_actor, children[i].index}] = i;
    detail::adjacency depends_on(children.size());
    for (size_t a = 0; a < t_.actors.size(); ++a) {
      auto holder = child_holding(s, a);
      if (!holder)
        continue;
      auto from = position[{holder->is_actor, holder->index}];
      auto add = [&](const std::string& name) {
        auto j = actor_index_.find(name);
        if (j == actor_index_.end() || index_of(t_.actors[j->second].supervisor) != s)
          return;
        auto to = position[{true, j->second}];
        if (to != from)
          depends_on[from].push_back(to);
      };
      for (auto& name : t_.actors[a].next)
        add(name);
      for (auto& name : t_.actors[a].services)
        add(name);
    }
    for (auto i : detail::dependencies_first(depends_on, file_rank)) {
      auto& c = children[i];
      if (c.is_actor) {
        spec.children.push_back(actor_child(c.index));
      } else {
        auto& nested = decl(c.index);
        spec.children.push_back(
          supervisor_child(spec_of(c.index), nested.restart, nested.shutdown));
      }
    }
    return spec;
  }

  child_spec actor_child(size_t i) {
    auto& a = t_.actors[i];
    auto plan = std::make_shared<actor_plan>();
    plan->name = a.name;
    plan->kind = a.kind;
    plan->next = a.next;
    plan->services = a.services;
    plan->inputs = a.inputs;
    plan->credit = a.credit != 0 ? a.credit : t_.system.credit;
    plan->start = a.start;
    if (stream_[i])
      plan->on_stream_end = on_stream_end_;
    child_spec result;
    result.name = a.name;
    result.restart = a.restart;
    result.shutdown = a.shutdown;
    result.start = [plan](const spawn_context& ctx) {
      return start_actor(*plan, ctx);
    };
    return result;
  }

  const topology& t_;
  std::function<void(const std::string&)> on_stream_end_;
  std::map<std::string, size_t> supervisor_index_;
  std::map<std::string, size_t> actor_index_;
  std::vector<size_t> parent_; // by supervisor index; 0 is the root
  std::vector<bool> stream_;
};

} // namespace

supervisor_spec build_supervision(
  const topology& t, std::function<void(const std::string&)> on_stream_end) {
  return builder{t, std::move(on_stream_end)}.build();
}

} // namespace troupe
