#include "troupe/topology/graph.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

namespace troupe {

namespace {

// A DOT string literal: quoted, with backslashes and quotes escaped (so
// that a name shows as written), a line break kept as one, and any other
// control character shown as \xNN.
std::string quoted(const std::string& text) {
  std::string result = "\"";
  for (unsigned char c : text) {
    if (c == '\\' || c == '"') {
      result += '\\';
      result += static_cast<char>(c);
    } else if (c == '\n') {
      result += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof code, "\\\\x%02x", c);
      result += code;
    } else {
      result += static_cast<char>(c);
    }
  }
  return result + '"';
}

// Patterns get a colour each, the same for a kind in every drawing: the
// built-in ones a colour of their own, others one picked by their name.
std::string pattern_colour(const std::string& kind) {
  static const std::map<std::string, std::string> builtin = {
    {"batcher", "#daeaf6"}, {"blocking", "#e8dff5"}, {"breaker", "#fde2e4"},
    {"fanout", "#fff1e6"},  {"join", "#e2ece9"},     {"limiter", "#ddedea"},
    {"pool", "#dfe7fd"},    {"retry", "#fcf4dd"},    {"state", "#f0efeb"},
    {"timeout", "#fce1e4"},
  };
  if (auto i = builtin.find(kind); i != builtin.end())
    return i->second;
  static const char* palette[] = {"#e4f1d9", "#f9e0c9", "#d9e4f1", "#efd9f1",
                                  "#f1eed9", "#d9f1ee"};
  uint32_t hash = 2166136261u; // FNV-1a: stable across runs and platforms
  for (unsigned char c : kind) {
    hash ^= c;
    hash *= 16777619u;
  }
  return palette[hash % (sizeof palette / sizeof palette[0])];
}

// "@ b", "@ b, else a": where an actor or supervisor runs, for a file with
// nodes.
std::string placed(const std::vector<std::string>& own,
                   const std::string& inherited) {
  if (own.empty())
    return inherited.empty() ? std::string{} : "@ " + inherited;
  std::string result = "@ " + own.front();
  for (size_t i = 1; i < own.size(); ++i)
    result += ", else " + own[i];
  return result;
}

std::string node_attributes(const topology& t, const actor_decl& a) {
  auto group = a.definition ? a.definition->graph_group : std::string{"stage"};
  std::string shape = "box";
  std::string style = "filled";
  std::string colour = "#ffffff";
  if (group == "source") {
    shape = "invhouse";
    colour = "#d5e8d4";
  } else if (group == "sink") {
    shape = "house";
    colour = "#f8cecc";
  } else if (group == "service") {
    shape = "box3d";
    colour = "#fff2cc";
  } else if (group == "pattern") {
    style = "filled,rounded";
    colour = pattern_colour(a.kind);
  } else {
    colour = "#dae8fc";
  }
  auto label = a.name + "\n" + a.kind;
  if (auto at = placed(a.node, t.first_node_of_actor(a)); !at.empty())
    label += "\n" + at;
  return "[label=" + quoted(label) + ", shape=" + shape + ", style=\"" + style
         + "\", fillcolor=\"" + colour + "\"]";
}

class dot_writer {
public:
  explicit dot_writer(const topology& t) : t_(t) {
    for (size_t i = 0; i < t.actors.size(); ++i)
      ids_[t.actors[i].name] = "a" + std::to_string(i);
  }

  std::string write() {
    out_ << "digraph " << quoted(t_.file.empty() ? "topology" : t_.file)
         << " {\n"
         << "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11];\n"
         << "  node [fontname=\"Helvetica\", fontsize=10];\n"
         << "  edge [fontname=\"Helvetica\", fontsize=9];\n";
    cluster(t_.root, 1);
    for (auto& a : t_.actors) {
      for (auto& n : a.next)
        if (auto i = ids_.find(n); i != ids_.end())
          out_ << "  " << ids_[a.name] << " -> " << i->second << ";\n";
      for (auto& s : a.services)
        if (auto i = ids_.find(s); i != ids_.end())
          out_ << "  " << ids_[a.name] << " -> " << i->second
               << " [style=dashed, arrowhead=odot];\n";
    }
    out_ << "}\n";
    return out_.str();
  }

private:
  void cluster(const supervisor_decl& sup, size_t depth) {
    auto indent = std::string(depth * 2, ' ');
    out_ << indent << "subgraph " << quoted("cluster_" + sup.name) << " {\n"
         << indent << "  label="
         << quoted(sup.name + " (" + to_string(sup.strategy) + ")"
                   + (t_.nodes.empty()
                        ? std::string{}
                        : " " + placed(sup.node, t_.first_node_of_supervisor(sup))))
         << ";\n"
         << indent << "  style=rounded;\n";
    bool empty = true;
    bool is_root = &sup == &t_.root;
    for (auto& nested : t_.supervisors)
      if (nested.parent == sup.name || (is_root && nested.parent.empty())) {
        cluster(nested, depth + 1);
        empty = false;
      }
    for (auto& a : t_.actors)
      if (a.supervisor == sup.name || (is_root && a.supervisor.empty())) {
        out_ << indent << "  " << ids_[a.name] << ' ' << node_attributes(t_, a)
             << ";\n";
        empty = false;
      }
    // Graphviz leaves out an empty cluster; an invisible node keeps it.
    if (empty)
      out_ << indent << "  " << quoted("empty_" + sup.name)
           << " [shape=point, style=invis];\n";
    out_ << indent << "}\n";
  }

  const topology& t_;
  std::map<std::string, std::string> ids_;
  std::ostringstream out_;
};

} // namespace

std::string to_dot(const topology& t) {
  return dot_writer{t}.write();
}

} // namespace troupe
