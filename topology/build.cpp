// From a validated topology to the supervision tree that runs it.

#include "troupe/topology/topology.hpp"

#include "troupe/supervision/supervisor.hpp"
#include "troupe/topology/detail/graph_order.hpp"

#include <caf/exit_reason.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
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
  /// wiring::per_run: one per actor and build.
  std::shared_ptr<std::any> per_run = std::make_shared<std::any>();
  /// Set for the actors the run waits for only.
  std::function<void(const std::string&)> on_stream_end;
  std::shared_ptr<troupe::placement> placement;
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
  w.per_run = p.per_run;
  w.placement = p.placement;
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
  builder(const topology& t, std::function<void(const std::string&)> on_end,
          std::shared_ptr<placement> where)
    : t_(t), on_stream_end_(std::move(on_end)), where_(std::move(where)) {
    std::map<std::string, size_t> supervisor_index;
    supervisor_index[t.root.name] = 0;
    for (size_t i = 0; i < t.supervisors.size(); ++i)
      supervisor_index[t.supervisors[i].name] = i + 1;
    auto index_of = [&](const std::string& name) {
      auto i = supervisor_index.find(name);
      return i != supervisor_index.end() ? i->second : size_t{0};
    };
    const size_t n = t.supervisors.size() + 1;
    parent_.assign(n, 0);
    for (size_t i = 0; i < t.supervisors.size(); ++i)
      parent_[i + 1] = index_of(t.supervisors[i].parent);
    supervisor_of_.resize(t.actors.size());
    for (size_t i = 0; i < t.actors.size(); ++i) {
      actor_index_[t.actors[i].name] = i;
      supervisor_of_[i] = index_of(t.actors[i].supervisor);
    }
    find_children();
    find_dependencies();
    find_links_across_nodes();
  }

  supervisor_spec build() {
    return spec_of(0);
  }

  // The child as its supervisor starts it here, not placed again.
  child_spec child_here(const std::string& name) {
    if (auto i = actor_index_.find(name); i != actor_index_.end())
      return actor_child(i->second, false);
    for (size_t s = 1; s < parent_.size(); ++s)
      if (decl(s).name == name)
        return nested_child(s, false);
    throw std::invalid_argument("no actor or nested supervisor named '" + name
                                + "' in " + t_.file);
  }

private:
  // A child of a supervisor: an actor or a nested supervisor, by index.
  struct child {
    bool is_actor;
    size_t index;
  };

  const supervisor_decl& decl(size_t s) const {
    return s == 0 ? t_.root : t_.supervisors[s - 1];
  }

  // The children of each supervisor, in file order, and where each actor
  // and nested supervisor is among its siblings.
  void find_children() {
    const size_t n = parent_.size();
    children_.assign(n, {});
    std::vector<std::vector<source_position>> where(n);
    for (size_t i = 1; i < n; ++i) {
      children_[parent_[i]].push_back(child{false, i});
      where[parent_[i]].push_back(decl(i).where);
    }
    for (size_t a = 0; a < t_.actors.size(); ++a) {
      children_[supervisor_of_[a]].push_back(child{true, a});
      where[supervisor_of_[a]].push_back(t_.actors[a].where);
    }
    actor_slot_.assign(t_.actors.size(), 0);
    supervisor_slot_.assign(n, 0);
    file_rank_.assign(n, {});
    for (size_t s = 0; s < n; ++s) {
      auto& kids = children_[s];
      auto& at = where[s];
      std::vector<size_t> order(kids.size());
      for (size_t k = 0; k < order.size(); ++k)
        order[k] = k;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::tie(at[a].line, at[a].column)
               < std::tie(at[b].line, at[b].column);
      });
      auto& rank = file_rank_[s];
      rank.assign(kids.size(), 0);
      for (size_t r = 0; r < order.size(); ++r)
        rank[order[r]] = r;
      for (size_t k = 0; k < kids.size(); ++k)
        (kids[k].is_actor ? actor_slot_ : supervisor_slot_)[kids[k].index] = k;
    }
  }

  // The actors fed by an upstream that runs on another node (by first
  // candidates): their links get the system's remote_credit, since a window
  // must cover a round trip between processes to keep a link busy.
  void find_links_across_nodes() {
    fed_across_nodes_.assign(t_.actors.size(), false);
    if (!where_)
      return;
    for (auto& a : t_.actors)
      for (auto& name : a.next)
        if (auto j = actor_index_.find(name); j != actor_index_.end()
            && t_.first_node_of_actor(a)
                 != t_.first_node_of_actor(t_.actors[j->second]))
          fed_across_nodes_[j->second] = true;
  }

  // Among the children of each supervisor: what each child (or anything
  // under it) names, when that is an actor directly under the same
  // supervisor, starts before it. One pass over the links; each walks up
  // the tree only as far as the level of what it names.
  void find_dependencies() {
    depends_on_.assign(parent_.size(), {});
    for (size_t s = 0; s < parent_.size(); ++s)
      depends_on_[s].assign(children_[s].size(), {});
    for (size_t a = 0; a < t_.actors.size(); ++a) {
      auto add = [&](const std::string& name) {
        auto j = actor_index_.find(name);
        if (j == actor_index_.end())
          return;
        auto level = supervisor_of_[j->second];
        // The child of `level` that holds `a`: `a` itself, or the nested
        // supervisor on its way up (none if `level` does not enclose it,
        // which the scope rule excludes).
        size_t from;
        if (supervisor_of_[a] == level) {
          from = actor_slot_[a];
        } else {
          auto x = supervisor_of_[a];
          while (x != 0 && parent_[x] != level)
            x = parent_[x];
          if (x == 0)
            return;
          from = supervisor_slot_[x];
        }
        auto to = actor_slot_[j->second];
        if (to != from)
          depends_on_[level][from].push_back(to);
      };
      for (auto& name : t_.actors[a].next)
        add(name);
      for (auto& name : t_.actors[a].services)
        add(name);
    }
  }

  supervisor_spec spec_of(size_t s) {
    auto& d = decl(s);
    supervisor_spec spec;
    spec.name = d.name;
    spec.strategy = d.strategy;
    spec.stop_order = d.stop_order;
    spec.intensity = d.intensity;
    spec.backoff = d.backoff;
    auto& children = children_[s];
    for (auto i : detail::dependencies_first(depends_on_[s], file_rank_[s])) {
      auto& c = children[i];
      if (c.is_actor)
        spec.children.push_back(actor_child(c.index, true));
      else
        spec.children.push_back(nested_child(c.index, true));
    }
    return spec;
  }

  // Whether a child with these candidates may start elsewhere than here.
  bool elsewhere(const std::vector<std::string>& candidates) const {
    return where_ && !candidates.empty()
           && !(candidates.size() == 1 && candidates.front() == where_->here());
  }

  child_spec nested_child(size_t s, bool place) {
    auto& nested = decl(s);
    auto result = supervisor_child(spec_of(s), nested.restart, nested.shutdown);
    if (place && elsewhere(nested.node)) {
      // What its subtree names outside of it: the supervisor's side
      // resolves those.
      std::vector<size_t> inside;
      std::set<std::string> own;
      for (size_t a = 0; a < t_.actors.size(); ++a) {
        auto x = supervisor_of_[a];
        while (x != 0 && x != s)
          x = parent_[x];
        if (x == s) {
          inside.push_back(a);
          own.insert(t_.actors[a].name);
        }
      }
      std::vector<std::string> names;
      auto add = [&](const std::string& name) {
        if (own.count(name) == 0
            && std::find(names.begin(), names.end(), name) == names.end())
          names.push_back(name);
      };
      for (auto a : inside) {
        for (auto& name : t_.actors[a].next)
          add(name);
        for (auto& name : t_.actors[a].services)
          add(name);
      }
      result.start = where_->place(nested.node, nested.name, true,
                                   std::move(names), std::move(result.start));
    }
    return result;
  }

  child_spec actor_child(size_t i, bool place) {
    auto& a = t_.actors[i];
    auto plan = std::make_shared<actor_plan>();
    plan->name = a.name;
    plan->kind = a.kind;
    plan->next = a.next;
    plan->services = a.services;
    plan->inputs = a.inputs;
    // A stream actor that also serves must answer requests until the final
    // drain, not stop when its stream ends: one more input, which only the
    // drain ends.
    if (a.stream && a.serves && !(a.definition && a.definition->source))
      ++plan->inputs;
    plan->credit = a.credit != 0            ? a.credit
                   : fed_across_nodes_[i] ? t_.system.remote_credit
                                          : t_.system.credit;
    plan->start = a.start;
    if (a.awaited)
      plan->on_stream_end = on_stream_end_;
    plan->placement = where_;
    child_spec result;
    result.name = a.name;
    result.restart = a.restart;
    result.shutdown = a.shutdown;
    result.start = [plan](const spawn_context& ctx) {
      return start_actor(*plan, ctx);
    };
    if (place && elsewhere(a.node)) {
      std::vector<std::string> names = a.next;
      names.insert(names.end(), a.services.begin(), a.services.end());
      result.start = where_->place(a.node, a.name, false, std::move(names),
                                   std::move(result.start));
    }
    return result;
  }

  const topology& t_;
  std::function<void(const std::string&)> on_stream_end_;
  std::shared_ptr<placement> where_;
  std::vector<bool> fed_across_nodes_; // by actor
  std::map<std::string, size_t> actor_index_;
  std::vector<size_t> parent_;        // by supervisor index; 0 is the root
  std::vector<size_t> supervisor_of_; // by actor
  std::vector<std::vector<child>> children_;  // by supervisor, file order
  std::vector<size_t> actor_slot_;            // an actor's place among them
  std::vector<size_t> supervisor_slot_;       // a nested supervisor's
  std::vector<std::vector<size_t>> file_rank_; // by supervisor, per child
  std::vector<detail::adjacency> depends_on_;  // by supervisor, per child
};

} // namespace

supervisor_spec build_supervision(
  const topology& t, std::function<void(const std::string&)> on_stream_end) {
  return builder{t, std::move(on_stream_end), nullptr}.build();
}

supervisor_spec
build_supervision(const topology& t,
                  std::function<void(const std::string&)> on_stream_end,
                  std::shared_ptr<placement> where) {
  return builder{t, std::move(on_stream_end), std::move(where)}.build();
}

child_spec build_child(const topology& t, const std::string& name,
                       std::function<void(const std::string&)> on_stream_end,
                       std::shared_ptr<placement> where) {
  return builder{t, std::move(on_stream_end), std::move(where)}.child_here(
    name);
}

} // namespace troupe
