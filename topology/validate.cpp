// Checks of what a topology's actors and supervisors name: the graph of
// `next` and `service` links, the supervision tree, and the scope rule that
// lets each actor reach what it names (docs/topology.md).

#include "troupe/topology/detail/graph_order.hpp"
#include "troupe/topology/detail/kind_config_state.hpp"
#include "troupe/topology/detail/loading.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

namespace troupe::detail {

namespace {

bool before(const source_position& a, const source_position& b) {
  return std::tie(a.line, a.column) < std::tie(b.line, b.column);
}

std::string plural(size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

class validator {
public:
  explicit validator(loading& x) : x_(x), t_(x.result) {
  }

  void run() {
    index_names();
    check_namespace();
    check_supervisors();
    if (tree_ok_)
      check_nesting_depth();
    check_placements();
    check_links();
    check_shapes();
    check_stream_restarts();
    if (tree_ok_)
      check_supervisor_restarts();
    check_next_outside_the_stream();
    mark_awaited();
    check_cycles();
    if (tree_ok_)
      check_scope();
  }

private:
  static constexpr size_t root = 0; // supervisor index of the root

  // -- names ------------------------------------------------------------------

  void index_names() {
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      actor_index_.emplace(t_.actors[i].name, i);
      actor_names_.push_back(t_.actors[i].name);
    }
    // Supervisor indices: 0 is the root, i + 1 is t_.supervisors[i].
    supervisor_index_.emplace(t_.root.name, root);
    supervisor_names_.push_back(t_.root.name);
    for (size_t i = 0; i < t_.supervisors.size(); ++i) {
      supervisor_index_.emplace(t_.supervisors[i].name, i + 1);
      supervisor_names_.push_back(t_.supervisors[i].name);
    }
    for (auto& n : t_.nodes)
      node_names_.push_back(n.name);
  }

  const supervisor_decl& supervisor(size_t i) const {
    return i == root ? t_.root : t_.supervisors[i - 1];
  }

  void check_namespace() {
    for (auto& s : t_.supervisors) {
      if (s.name == t_.root.name) {
        x_.fail(s.where, "supervisor " + in_quotes(s.name)
                           + " has the name of the root supervisor; give "
                             "the root another one with [supervisor] name");
        tree_ok_ = false;
      }
      if (auto i = actor_index_.find(s.name); i != actor_index_.end()) {
        auto& a = t_.actors[i->second];
        auto later = before(a.where, s.where) ? s.where : a.where;
        x_.fail(later, "the name " + in_quotes(s.name)
                         + " is both an actor's and a supervisor's; they "
                           "share one namespace, so rename one");
        tree_ok_ = false;
      }
    }
    if (auto i = actor_index_.find(t_.root.name); i != actor_index_.end()) {
      x_.fail(t_.actors[i->second].where,
              "the actor " + in_quotes(t_.root.name)
                + " has the name of the root supervisor; rename it, or name "
                  "the root otherwise with [supervisor] name");
      tree_ok_ = false;
    }
  }

  // "; did you mean ...?" for a name that names nothing, while suggestions
  // are worth their cost: each compares the name with every candidate, and
  // a file with thousands of dangling names among thousands of actors would
  // spend seconds on suggestions for errors beyond the 200 that are shown.
  std::string suggest(const std::string& name,
                      const std::vector<std::string>& candidates) {
    constexpr size_t shown_errors = 200; // as the loader shows at most
    if (suggested_ >= shown_errors)
      return {};
    ++suggested_;
    return suggestion(name, candidates);
  }

  // The supervisor `name` names, by index; records an error if none.
  std::optional<size_t> find_supervisor(const std::string& name,
                                        const std::string& key,
                                        const source_position& at) {
    if (auto i = supervisor_index_.find(name); i != supervisor_index_.end())
      return i->second;
    if (actor_index_.count(name) > 0)
      x_.fail(at, in_quotes(key) + " names " + in_quotes(name)
                    + ", which is an actor, not a supervisor");
    else
      x_.fail(at, in_quotes(key) + " names " + in_quotes(name)
                    + ", which is not a supervisor"
                    + suggest(name, supervisor_names_));
    return std::nullopt;
  }

  // -- the supervision tree ---------------------------------------------------

  void check_supervisors() {
    const size_t n = t_.supervisors.size() + 1;
    parent_.assign(n, root);
    for (size_t i = 0; i < t_.supervisors.size(); ++i) {
      auto& s = t_.supervisors[i];
      if (s.parent.empty()) {
        s.parent = t_.root.name;
        continue;
      }
      if (auto p = find_supervisor(s.parent, "parent", x_.supervisors[i].parent))
        parent_[i + 1] = *p;
      else
        tree_ok_ = false;
    }
    // Cycles of parents: walk up from each supervisor, marking the path.
    enum { unseen, on_path, done };
    std::vector<int> state(n, unseen);
    state[root] = done;
    for (size_t start = 1; start < n; ++start) {
      std::vector<size_t> path;
      auto s = start;
      while (state[s] == unseen) {
        state[s] = on_path;
        path.push_back(s);
        s = parent_[s];
      }
      if (state[s] == on_path) {
        auto first = std::find(path.begin(), path.end(), s);
        std::vector<size_t> cycle(first, path.end());
        report_parent_cycle(cycle);
        tree_ok_ = false;
      }
      for (auto p : path)
        state[p] = done;
    }
  }

  // A supervisor's spec holds its nested ones, and is built, copied and
  // destroyed recursively: tens of thousands of levels (a few megabytes of
  // file) would exhaust the stack of whoever runs the file. No real tree
  // comes near this.
  void check_nesting_depth() {
    constexpr size_t deepest = 3999; // levels below the root
    constexpr size_t unknown = static_cast<size_t>(-1);
    const size_t n = parent_.size();
    std::vector<size_t> depth(n, unknown);
    depth[root] = 0;
    for (size_t start = 1; start < n; ++start) {
      std::vector<size_t> path;
      for (auto s = start; depth[s] == unknown; s = parent_[s])
        path.push_back(s);
      for (auto k = path.size(); k > 0; --k)
        depth[path[k - 1]] = depth[parent_[path[k - 1]]] + 1;
    }
    for (size_t s = 1; s < n; ++s)
      if (depth[s] == deepest + 1)
        x_.fail(x_.supervisors[s - 1].parent,
                "supervisor " + in_quotes(supervisor(s).name) + " is nested "
                  + std::to_string(depth[s])
                  + " levels below the root; supervisors nest at most "
                  + std::to_string(deepest) + " levels deep");
  }

  void report_parent_cycle(const std::vector<size_t>& cycle) {
    auto earliest = *std::min_element(
      cycle.begin(), cycle.end(), [&](size_t a, size_t b) {
        return before(x_.supervisors[a - 1].parent, x_.supervisors[b - 1].parent);
      });
    if (cycle.size() == 1) {
      x_.fail(x_.supervisors[earliest - 1].parent,
              "supervisor " + in_quotes(supervisor(earliest).name)
                + " names itself as its 'parent'");
      return;
    }
    std::string path;
    auto s = earliest;
    do {
      path += in_quotes(supervisor(s).name) + " -> ";
      s = parent_[s];
    } while (s != earliest);
    path += in_quotes(supervisor(s).name);
    x_.fail(x_.supervisors[earliest - 1].parent,
            "the 'parent' links of supervisors form a cycle: " + path
              + "; one of them must have the root (or no 'parent')");
  }

  // -- where actors run -------------------------------------------------------

  void check_placements() {
    supervisor_of_.assign(t_.actors.size(), root);
    std::set<std::string> nodes(node_names_.begin(), node_names_.end());
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      auto& pos = x_.actors[i];
      if (a.supervisor.empty()) {
        a.supervisor = t_.root.name;
      } else if (auto s = find_supervisor(a.supervisor, "supervisor",
                                          pos.supervisor)) {
        supervisor_of_[i] = *s;
      } else {
        tree_ok_ = false;
      }
    }
    for (auto& ref : *x_.node_refs)
      if (nodes.count(ref.name) == 0)
        x_.fail(ref.where, in_quotes(ref.key) + " names " + in_quotes(ref.name)
                             + ", which is not a node ([nodes.NAME])"
                             + suggest(ref.name, node_names_));
    check_tls();
  }

  // TLS is all or nothing: a node without it could not talk to one with it.
  void check_tls() {
    const node_decl* with = nullptr;
    for (auto& n : t_.nodes)
      if (!n.certificate.empty() || !n.key.empty() || !n.cafile.empty())
        with = &n;
    if (!with)
      return;
    for (auto& n : t_.nodes)
      if (n.certificate.empty() && n.key.empty() && n.cafile.empty())
        x_.fail(n.where, "node " + in_quotes(n.name)
                           + " has no TLS keys, but node "
                           + in_quotes(with->name)
                           + " has: with TLS every node needs 'certificate', "
                             "'key' and 'cafile'");
  }

  // -- next and service -------------------------------------------------------

  // The actor `name` names in `key` for actor `from`; records an error if
  // it is not one, or is `from` itself.
  std::optional<size_t> find_target(size_t from, const std::string& name,
                                    const std::string& key,
                                    const source_position& at) {
    if (name == t_.actors[from].name) {
      x_.fail(at, in_quotes(key) + " names the actor itself ("
                    + in_quotes(name) + ")");
      return std::nullopt;
    }
    if (auto i = actor_index_.find(name); i != actor_index_.end())
      return i->second;
    if (supervisor_index_.count(name) > 0)
      x_.fail(at, in_quotes(key) + " names " + in_quotes(name)
                    + ", which is a supervisor; name an actor");
    else
      x_.fail(at, in_quotes(key) + " names " + in_quotes(name)
                    + ", which is not an actor"
                    + suggest(name, actor_names_));
    return std::nullopt;
  }

  std::string described(const actor_decl& a) const {
    return in_quotes(a.name) + ", a " + in_quotes(a.kind) + ",";
  }

  void check_links() {
    next_.assign(t_.actors.size(), {});
    links_.assign(t_.actors.size(), {});
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      auto& pos = x_.actors[i];
      std::set<std::string> seen;
      for (size_t k = 0; k < a.next.size(); ++k) {
        auto at = k < pos.next_items.size() ? pos.next_items[k] : pos.next;
        auto& name = a.next[k];
        if (!seen.insert(name).second) {
          x_.fail(at, "'next' names " + in_quotes(name) + " twice");
          continue;
        }
        auto j = find_target(i, name, "next", at);
        if (!j) {
          next_unresolved_ = true;
          continue;
        }
        auto& b = t_.actors[*j];
        if (b.definition && !b.definition->takes_input) {
          x_.fail(at, "'next' names " + described(b)
                        + " which takes no input");
          next_unresolved_ = true;
          continue;
        }
        next_[i].push_back(*j);
        links_[i].push_back({*j, at, "'next'"});
        ++b.inputs;
      }
      seen.clear();
      for (size_t k = 0; k < a.services.size(); ++k) {
        auto at = k < pos.service_items.size() ? pos.service_items[k]
                                               : pos.service;
        auto& name = a.services[k];
        if (!seen.insert(name).second) {
          x_.fail(at, "'service' names " + in_quotes(name) + " twice");
          continue;
        }
        auto j = find_target(i, name, "service", at);
        if (!j)
          continue;
        auto& b = t_.actors[*j];
        if (b.definition && !b.definition->answers_requests) {
          x_.fail(at, "'service' names " + described(b)
                        + " which does not answer requests");
          continue;
        }
        check_service_kind(a, b, at);
        check_service_has_its_own(b, at);
        links_[i].push_back({*j, at, "'service'"});
        b.serves = true;
      }
      check_service_count(a, pos);
    }
  }

  // Whether `b`, named in the `service` of `a`, is of a kind `a` can call.
  void check_service_kind(const actor_decl& a, const actor_decl& b,
                          const source_position& at) {
    auto def = a.definition;
    if (!def || def->service_kinds.empty() || !b.definition)
      return;
    auto& wanted = def->service_kinds;
    if (std::find(wanted.begin(), wanted.end(), b.kind) != wanted.end())
      return;
    std::string list;
    for (size_t k = 0; k < wanted.size(); ++k)
      list += (k == 0 ? "a " : k + 1 == wanted.size() ? " or a " : ", a ")
              + in_quotes(wanted[k]);
    x_.fail(at, "'service' names " + described(b) + " but kind "
                  + in_quotes(def->name) + " needs " + list
                  + " behind its 'service'");
  }

  // Whether `b`, named in a `service`, answers requests as it is declared.
  void check_service_has_its_own(const actor_decl& b, const source_position& at) {
    auto def = b.definition;
    if (!def || !def->answers_only_with_service || !b.services.empty())
      return;
    x_.fail(at, "'service' names " + described(b)
                  + " which answers requests only in front of a 'service' of "
                    "its own; give " + in_quotes(b.name)
                  + " a 'service', or name the actor it would stand in front of");
  }

  void check_service_count(const actor_decl& a, const actor_positions& pos) {
    auto def = a.definition;
    if (!def || def->max_services == 0)
      return; // no such key for the kind (reported by the loader)
    auto n = a.services.size();
    if (n >= def->min_services && n <= def->max_services)
      return;
    if (n == 0) {
      x_.fail(a.where, "actor " + in_quotes(a.name) + " (kind "
                         + in_quotes(def->name)
                         + ") needs a 'service': the actor it works in "
                           "front of, e.g. service = \"NAME\"");
      return;
    }
    std::string wanted
      = def->min_services == def->max_services
          ? plural(def->min_services, "service")
          : "between " + std::to_string(def->min_services) + " and "
              + std::to_string(def->max_services) + " services";
    x_.fail(pos.service, "kind " + in_quotes(def->name) + " takes " + wanted
                           + " in 'service', not "
                           + std::to_string(n));
  }

  // -- shapes -----------------------------------------------------------------

  void check_shapes() {
    // A `next` that names nothing valid most likely meant an actor that now
    // seems to get no input: that would be the same error twice.
    for (auto& pos : x_.actors)
      next_unresolved_ = next_unresolved_ || pos.next_invalid;
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      auto def = a.definition;
      if (!def)
        continue;
      auto what = "actor " + in_quotes(a.name) + " (kind " + in_quotes(def->name)
                  + ")";
      if (def->emits && (def->source || a.inputs > 0) && a.next.empty()
          && !x_.actors[i].next_invalid)
        x_.fail(a.where, what + " needs a 'next': the actors its items go to");
      if (def->takes_input && !def->answers_requests && !def->source
          && a.inputs == 0 && !next_unresolved_)
        x_.fail(a.where, what + " gets no input: name it in the 'next' of "
                                "the actor that feeds it");
    }
  }

  void check_stream_restarts() {
    // Sources, and whatever `next` reaches from them.
    std::vector<bool> stream(t_.actors.size(), false);
    std::vector<size_t> todo;
    for (size_t i = 0; i < t_.actors.size(); ++i)
      if (t_.actors[i].definition && t_.actors[i].definition->source) {
        stream[i] = true;
        todo.push_back(i);
      }
    while (!todo.empty()) {
      auto i = todo.back();
      todo.pop_back();
      for (auto j : next_[i])
        if (!stream[j]) {
          stream[j] = true;
          todo.push_back(j);
        }
    }
    stream_ = stream;
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      a.stream = stream[i];
      if (!stream[i] || a.restart == restart_type::transient)
        continue;
      if (x_.actors[i].restart_given)
        x_.fail(x_.actors[i].restart,
                "actor " + in_quotes(a.name)
                  + " is part of the stream, so it must restart as "
                    "'transient' (a stream actor that ended stays ended), "
                    "not "
                  + in_quotes(to_string(a.restart)));
      else
        a.restart = restart_type::transient;
    }
  }

  // A temporary supervisor that gives up is not started again, and neither
  // are the stream actors under it: what feeds them would wait for credit
  // forever and the run would never end.
  void check_supervisor_restarts() {
    std::vector<bool> holds_stream(parent_.size(), false);
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      if (!stream_[i])
        continue;
      for (auto s = supervisor_of_[i]; s != root && !holds_stream[s]; s = parent_[s])
        holds_stream[s] = true;
    }
    for (size_t i = 0; i < t_.supervisors.size(); ++i) {
      auto& s = t_.supervisors[i];
      if (s.restart != restart_type::temporary || !holds_stream[i + 1])
        continue;
      x_.fail(x_.supervisors[i].restart,
              "supervisor " + in_quotes(s.name)
                + " holds stream actors, so restart = \"temporary\" would "
                  "strand its upstream when it gives up; use transient or "
                  "permanent");
    }
  }

  // An actor outside the stream never ends before the drain, so the links
  // it feeds never end either: a stream actor it feeds would wait for it
  // forever, and the run with it.
  void check_next_outside_the_stream() {
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      auto def = a.definition;
      if (a.stream || !def)
        continue;
      // Reported as getting no input already.
      if (def->takes_input && !def->answers_requests && a.inputs == 0)
        continue;
      for (auto& l : links_[i]) {
        auto& b = t_.actors[l.to];
        if (std::string_view{l.key} != "'next'" || !b.stream)
          continue;
        auto why = a.inputs == 0 ? " has no upstream" : " is not fed by a source";
        x_.fail(l.at, in_quotes(a.name) + why
                        + ", so its 'next' would never end and "
                        + in_quotes(b.name)
                        + " would wait for it forever; feed "
                        + in_quotes(a.name)
                        + " from the stream (name it in a 'next'), or drop "
                          "its 'next'");
        break;
      }
    }
  }

  // What the run waits for: the stream, less what a stream actor that also
  // serves feeds (itself included). Such an actor gets an input that only the
  // drain ends (build.cpp), so that it answers its callers until the final
  // drain; what it feeds ends after it.
  void mark_awaited() {
    std::vector<bool> held(t_.actors.size(), false);
    std::vector<size_t> todo;
    for (size_t i = 0; i < t_.actors.size(); ++i) {
      auto& a = t_.actors[i];
      if (a.stream && a.serves && !(a.definition && a.definition->source)) {
        held[i] = true;
        todo.push_back(i);
      }
    }
    while (!todo.empty()) {
      auto i = todo.back();
      todo.pop_back();
      for (auto j : next_[i])
        if (!held[j]) {
          held[j] = true;
          todo.push_back(j);
        }
    }
    for (size_t i = 0; i < t_.actors.size(); ++i)
      t_.actors[i].awaited = t_.actors[i].stream && !held[i];
  }

  void check_cycles() {
    auto component = strong_components(next_);
    std::map<size_t, std::vector<size_t>> members;
    for (size_t i = 0; i < component.size(); ++i)
      members[component[i]].push_back(i);
    for (auto& [c, m] : members) {
      if (m.size() < 2)
        continue;
      auto refuses = std::find_if(m.begin(), m.end(), [&](size_t i) {
        auto def = t_.actors[i].definition;
        return def && !def->allows_cycles;
      });
      if (refuses == m.end())
        continue;
      auto first = *std::min_element(m.begin(), m.end(), [&](size_t a, size_t b) {
        return before(t_.actors[a].where, t_.actors[b].where);
      });
      std::string path;
      for (auto i : cycle_through(next_, component, first))
        path += in_quotes(t_.actors[i].name) + " -> ";
      path += in_quotes(t_.actors[first].name);
      x_.fail(x_.actors[first].next,
              "'next' links form a cycle: " + path + ", and kind "
                + in_quotes(t_.actors[*refuses].kind)
                + " does not allow cycles");
    }
  }

  // -- the scope rule ---------------------------------------------------------

  // Entry and exit times of a walk of the supervision tree (which has no
  // cycle by now): `a` encloses `b` if b's interval lies within a's.
  void number_tree() {
    const size_t n = parent_.size();
    std::vector<std::vector<size_t>> children(n);
    for (size_t s = 1; s < n; ++s)
      children[parent_[s]].push_back(s);
    entered_.assign(n, 0);
    left_.assign(n, 0);
    size_t clock = 0;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
    entered_[root] = clock++;
    while (!stack.empty()) {
      auto& [s, next] = stack.back();
      if (next < children[s].size()) {
        auto child = children[s][next++];
        entered_[child] = clock++;
        stack.emplace_back(child, 0);
      } else {
        left_[s] = clock++;
        stack.pop_back();
      }
    }
  }

  // Whether supervisor `a` is `b` or one of its ancestors.
  bool encloses(size_t a, size_t b) const {
    return entered_[a] <= entered_[b] && left_[b] <= left_[a];
  }

  size_t common_ancestor(size_t a, size_t b) const {
    auto s = a;
    while (s != root && !encloses(s, b))
      s = parent_[s];
    return s;
  }

  void check_scope() {
    // Reachable: actors under the actor's own supervisor or an ancestor of
    // it, as spawn_context::sibling resolves names level by level.
    number_tree();
    // Enough to show the problem; a file with thousands of misplaced names
    // (fuzzed bytes) would otherwise cost time for nothing.
    size_t reported = 0;
    constexpr size_t enough = 100;
    for (size_t i = 0; i < t_.actors.size() && reported < enough; ++i) {
      for (auto& [j, at, key] : links_[i]) {
        auto from = supervisor_of_[i];
        auto to = supervisor_of_[j];
        if (encloses(to, from))
          continue;
        ++reported;
        auto& a = t_.actors[i];
        auto& b = t_.actors[j];
        x_.fail(at, std::string{key} + " names " + in_quotes(b.name) + ", which "
                      + in_quotes(a.name) + " cannot reach: it is under "
                      + in_quotes(supervisor(to).name)
                      + ", and an actor reaches only actors under its own "
                        "supervisor ("
                      + in_quotes(supervisor(from).name)
                      + ") or its ancestors; place " + in_quotes(b.name)
                      + " under a common ancestor such as "
                      + in_quotes(supervisor(common_ancestor(from, to)).name));
      }
    }
  }

  loading& x_;
  topology& t_;
  bool tree_ok_ = true;
  bool next_unresolved_ = false;
  size_t suggested_ = 0;
  std::map<std::string, size_t> actor_index_;
  std::map<std::string, size_t> supervisor_index_;
  std::vector<std::string> actor_names_;
  std::vector<std::string> supervisor_names_;
  std::vector<std::string> node_names_;
  std::vector<size_t> parent_;        // by supervisor index
  std::vector<size_t> supervisor_of_; // by actor
  std::vector<bool> stream_;          // by actor: a source or fed by one
  std::vector<size_t> entered_;       // by supervisor index
  std::vector<size_t> left_;          // by supervisor index
  adjacency next_;                    // resolved `next` links
  struct link {
    size_t to;
    source_position at; // of the name
    const char* key;
  };
  // Resolved `next` and `service` links.
  std::vector<std::vector<link>> links_;
};

} // namespace

void validate(loading& x) {
  validator{x}.run();
}

} // namespace troupe::detail
