// Reading a topology file: TOML syntax, the tables and keys of each section
// and the kinds' own keys. What the actors name is checked in validate.cpp.

#include "troupe/topology/topology.hpp"

#include "troupe/topology/detail/kind_config_state.hpp"
#include "troupe/topology/duration.hpp"
#include "troupe/topology/detail/loading.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <system_error>
#include <tuple>

namespace troupe {

namespace {

using namespace std::chrono_literals;
using detail::add_error;
using detail::loading;
using detail::position_of;
using detail::printable;
using detail::in_quotes;
using detail::suggestion;

/// Topology files are a few kilobytes; anything this large is not one, and
/// reading it would only cost memory.
constexpr size_t max_file_size = 8 * 1024 * 1024;

/// Bounds for values of the file's own sections.
constexpr caf::timespan longest = 24h;

const std::vector<std::string> top_level_tables{"system", "supervisor",
                                                "supervisors", "nodes",
                                                "actors"};

const std::vector<std::string> reserved_actor_keys{
  "kind", "supervisor", "restart", "shutdown", "node", "credit", "next",
  "service"};

const std::vector<std::string> restart_types{"permanent", "transient",
                                             "temporary"};

const std::vector<std::string> strategies{"one_for_one", "one_for_all",
                                          "rest_for_one"};

const std::vector<std::string> stop_orders{"sequential", "concurrent"};

restart_type to_restart_type(const std::string& x) {
  if (x == "permanent")
    return restart_type::permanent;
  if (x == "temporary")
    return restart_type::temporary;
  return restart_type::transient;
}

enum stop_order to_stop_order(const std::string& x) {
  return x == "concurrent" ? stop_order::concurrent : stop_order::sequential;
}

restart_strategy to_strategy(const std::string& x) {
  if (x == "one_for_all")
    return restart_strategy::one_for_all;
  if (x == "rest_for_one")
    return restart_strategy::rest_for_one;
  return restart_strategy::one_for_one;
}

bool valid_name(std::string_view name) {
  constexpr size_t longest_name = 64;
  if (name.empty() || name.size() > longest_name)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string lower_first(std::string text) {
  // "Error while parsing ..." -> "error while parsing ...", but "UTF-8 ..."
  // stays as it is.
  if (text.size() > 1 && text[0] >= 'A' && text[0] <= 'Z' && text[1] >= 'a'
      && text[1] <= 'z')
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

// The entries of a table in the order the file has them (toml++ keeps
// tables sorted by key).
std::vector<std::pair<std::string, const toml::node*>>
in_file_order(const toml::table& table) {
  std::vector<std::pair<std::string, const toml::node*>> result;
  for (auto&& [key, value] : table)
    result.emplace_back(std::string{key.str()}, &value);
  std::stable_sort(result.begin(), result.end(), [](auto& x, auto& y) {
    auto& a = x.second->source().begin;
    auto& b = y.second->source().begin;
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return result;
}

class loader {
public:
  loader(const std::string& file, const kind_registry& registry)
    : file_(file), registry_(registry) {
    x_.result.file = file;
    x_.result.root.name = "root";
  }

  topology run(std::string_view text) {
    if (text.size() > max_file_size) {
      x_.fail({file_, 0, 0},
              "the file has " + std::to_string(text.size())
                + " bytes; a topology file may have at most "
                + std::to_string(max_file_size) + " bytes");
      throw topology_errors(std::move(*x_.errors));
    }
    toml::table doc;
    try {
      doc = toml::parse(text, std::string_view{file_});
    } catch (const toml::parse_error& e) {
      auto& begin = e.source().begin;
      x_.fail({file_, begin.line, begin.column},
              lower_first(std::string{e.description()}));
      throw topology_errors(std::move(*x_.errors));
    }
    read_document(doc);
    detail::validate(x_);
    if (!x_.errors->empty())
      throw topology_errors(sorted_errors());
    return std::move(x_.result);
  }

private:
  // In file order, and not so many that they bury the first ones.
  std::vector<topology_error> sorted_errors() {
    auto& errors = *x_.errors;
    std::stable_sort(errors.begin(), errors.end(),
                     [](const topology_error& a, const topology_error& b) {
                       return std::tie(a.where.line, a.where.column)
                              < std::tie(b.where.line, b.where.column);
                     });
    constexpr size_t enough = 200;
    if (errors.size() > enough) {
      auto more = errors.size() - enough;
      errors.resize(enough);
      errors.push_back(detail::error_at(
        {file_, 0, 0}, "and " + std::to_string(more) + " more errors"));
    }
    return std::move(errors);
  }

  // -- sections ---------------------------------------------------------------

  std::shared_ptr<kind_config::state> state_for(const toml::table& table,
                                                source_position where) {
    auto s = detail::make_state(table, std::move(where), file_, x_.errors);
    s->registry = &registry_;
    s->node_refs = x_.node_refs;
    return s;
  }

  source_position where(const toml::node& node,
                        const source_position& fallback) const {
    return position_of(node, file_, fallback);
  }

  // A section that must be a table; records an error if it is not.
  const toml::table* section(const toml::node& node, const std::string& name) {
    if (auto table = node.as_table())
      return table;
    x_.fail(where(node, {file_, 1, 1}),
            in_quotes(name) + " must be a table ([" + printable(name) + "]), not "
              + detail::type_phrase(node));
    return nullptr;
  }

  void read_document(const toml::table& doc) {
    for (auto& [key, node] : in_file_order(doc)) {
      if (key == "system") {
        if (auto t = section(*node, key))
          read_system(*t);
      } else if (key == "supervisor") {
        if (auto t = section(*node, key))
          read_supervisor(*t, x_.result.root, "in [supervisor]", true);
      } else if (key == "supervisors") {
        if (auto t = section(*node, key))
          read_named(*t, "supervisors", &loader::read_nested_supervisor);
      } else if (key == "nodes") {
        if (auto t = section(*node, key))
          read_named(*t, "nodes", &loader::read_node);
      } else if (key == "actors") {
        if (auto t = section(*node, key))
          read_named(*t, "actors", &loader::read_actor);
      } else {
        x_.fail(where(*node, {file_, 1, 1}),
                "unknown " + std::string{node->is_table() ? "table" : "key"}
                  + " " + in_quotes(key) + " at the top level"
                  + suggestion(key, top_level_tables));
      }
    }
    if (x_.result.actors.empty() && x_.errors->empty())
      x_.fail({file_, 1, 1},
              "the file declares no actors: add one as [actors.NAME] with "
              "kind = \"...\"");
  }

  using entry_reader = void (loader::*)(const std::string& name,
                                        const toml::table& table,
                                        source_position where);

  // [section.NAME] tables, in file order.
  void read_named(const toml::table& parent, const std::string& section_name,
                  entry_reader read) {
    auto section_at = where(parent, {file_, 1, 1});
    for (auto& [name, node] : in_file_order(parent)) {
      auto at = where(*node, section_at);
      auto table = node->as_table();
      if (!table) {
        x_.fail(at, in_quotes(section_name + "." + name)
                      + " must be a table ([" + section_name + "."
                      + printable(name) + "]), not "
                      + detail::type_phrase(*node));
        continue;
      }
      if (!valid_name(name)) {
        x_.fail(at, "the name " + in_quotes(name)
                      + " may use only letters, digits, '_' and '-' (at "
                        "most 64)");
        continue;
      }
      (this->*read)(name, *table, at);
    }
  }

  void read_system(const toml::table& table) {
    auto s = state_for(table, where(table, {file_, 1, 1}));
    s->context = "in [system]";
    kind_config c{s};
    auto& sys = x_.result.system;
    sys.threads = static_cast<size_t>(c.integer("threads", 0, 0, 256));
    sys.credit = static_cast<uint32_t>(c.integer("credit", 0, 1, 1 << 20));
    sys.remote_credit = static_cast<uint32_t>(
      c.integer("remote_credit", sys.remote_credit, 1, 1 << 20));
    sys.shutdown = c.duration("shutdown", sys.shutdown, 1ms, longest);
    sys.heartbeat = c.duration("heartbeat", sys.heartbeat, 1ms, 1h);
    sys.node_timeout = c.duration("node_timeout", sys.node_timeout, 1ms, longest);
    sys.connect_timeout = c.duration("connect_timeout", sys.connect_timeout,
                                     caf::timespan{0}, longest);
    if (c.ok() && sys.node_timeout <= sys.heartbeat)
      c.fail(c.has("node_timeout") ? "node_timeout" : "heartbeat",
             "'node_timeout' (" + format_duration(sys.node_timeout)
               + ") must be longer than 'heartbeat' ("
               + format_duration(sys.heartbeat)
               + "), or every peer would be taken for dead between two "
                 "heartbeats");
    detail::report_unknown_keys(*s, s->context);
  }

  // The keys [supervisor] and [supervisors.X] share.
  void read_supervisor(const toml::table& table, supervisor_decl& decl,
                       const std::string& context, bool root) {
    decl.where = where(table, {file_, 1, 1});
    auto s = state_for(table, decl.where);
    s->context = context;
    kind_config c{s};
    if (root) {
      auto name = c.string("name", decl.name);
      if (!valid_name(name))
        c.fail("name", "the name " + in_quotes(name)
                         + " may use only letters, digits, '_' and '-' (at "
                           "most 64)");
      else
        decl.name = name;
    }
    decl.strategy = to_strategy(
      c.choice("strategy", to_string(decl.strategy), strategies));
    decl.stop_order = to_stop_order(
      c.choice("stop_order", to_string(decl.stop_order), stop_orders));
    decl.intensity.max_restarts = static_cast<int>(c.integer(
      "max_restarts", decl.intensity.max_restarts, 0, 1'000'000));
    decl.intensity.period = c.duration("period", decl.intensity.period, 1ms,
                                       longest);
    decl.backoff.initial = c.duration("backoff", decl.backoff.initial,
                                      caf::timespan{0}, longest);
    decl.backoff.max = c.duration("max_backoff", decl.backoff.max,
                                  caf::timespan{0}, longest);
    decl.backoff.multiplier = c.number("backoff_multiplier",
                                       decl.backoff.multiplier, 1, 1000);
    if (c.ok() && decl.backoff.initial > decl.backoff.max)
      c.fail(c.has("backoff") ? "backoff" : "max_backoff",
             "'backoff' (" + format_duration(decl.backoff.initial)
               + ") must not exceed 'max_backoff' ("
               + format_duration(decl.backoff.max) + ")");
    decl.node = c.node_names("node");
    refuse_empty(c, table, "node",
                 "name a node ([nodes.NAME]), or leave the key out");
    if (root && decl.node.size() > 1)
      c.fail("node", "the root supervisor runs on one node, the home node: "
                     "name one, not a list of candidates");
    if (!root) {
      decl.parent = c.string("parent", decl.parent);
      refuse_empty(c, table, "parent",
                   "name the supervisor it runs under, or leave the key out "
                   "for the root");
      decl.restart = to_restart_type(
        c.choice("restart", to_string(decl.restart), restart_types));
      decl.shutdown = c.duration("shutdown", decl.shutdown, caf::timespan{0},
                                 longest);
    }
    detail::report_unknown_keys(*s, context);
  }

  void read_nested_supervisor(const std::string& name, const toml::table& table,
                              source_position) {
    supervisor_decl decl;
    decl.name = name;
    detail::supervisor_positions at;
    if (auto parent = table.get("parent"))
      at.parent = where(*parent, {});
    if (auto restart = table.get("restart"))
      at.restart = where(*restart, {});
    read_supervisor(table, decl, "in [supervisors." + name + "]", false);
    if (at.parent.line == 0)
      at.parent = decl.where;
    if (at.restart.line == 0)
      at.restart = decl.where;
    x_.result.supervisors.push_back(std::move(decl));
    x_.supervisors.push_back(std::move(at));
  }

  void read_node(const std::string& name, const toml::table& table,
                 source_position at) {
    node_decl decl;
    decl.name = name;
    decl.where = at;
    auto s = state_for(table, at);
    s->context = "in [nodes." + name + "]";
    kind_config c{s};
    decl.host = c.string("host", decl.host);
    if (decl.host.empty())
      c.fail("host", "'host' must not be empty");
    c.require("port");
    decl.port = static_cast<uint16_t>(c.integer("port", 0, 1, 65535));
    decl.certificate = tls_path(c, "certificate");
    decl.key = tls_path(c, "key");
    decl.cafile = tls_path(c, "cafile");
    decl.passphrase_env = c.string("passphrase_env", "");
    bool any = !decl.certificate.empty() || !decl.key.empty()
               || !decl.cafile.empty() || !decl.passphrase_env.empty();
    if (any)
      for (auto key : {"certificate", "key", "cafile"})
        if (!c.has(key))
          c.fail(std::string{"TLS needs 'certificate', 'key' and 'cafile': "}
                 + "'" + key + "' is missing");
    detail::report_unknown_keys(*s, s->context);
    x_.result.nodes.push_back(std::move(decl));
  }

  // A TLS file's path, relative to the topology file's folder.
  std::string tls_path(kind_config& c, std::string_view key) {
    auto value = c.string(key, "");
    if (c.has(key) && value.empty())
      c.fail(key, in_quotes(key) + " is empty: name a PEM file");
    if (value.empty())
      return value;
    std::filesystem::path path{value};
    if (path.is_relative())
      path = std::filesystem::path{file_}.parent_path() / path;
    return path.lexically_normal().string();
  }

  // An empty string where a name goes would read as the key left out (the
  // root, no node): say so instead.
  static void refuse_empty(kind_config& c, const toml::table& table,
                           std::string_view key, const std::string& what) {
    auto node = table.get(key);
    if (node && node->is_string() && node->value<std::string>()->empty())
      c.fail(key, in_quotes(key) + " is empty: " + what);
  }

  // Positions of the names a `next` or `service` value holds, parallel to
  // what kind_config::strings returns for it.
  std::vector<source_position> name_positions(const toml::node* node,
                                              const source_position& at) {
    std::vector<source_position> result;
    if (!node)
      return result;
    if (node->is_string())
      result.push_back(at);
    else if (auto array = node->as_array())
      for (auto& element : *array)
        if (element.is_string())
          result.push_back(where(element, at));
    return result;
  }

  void read_actor(const std::string& name, const toml::table& table,
                  source_position at) {
    actor_decl decl;
    decl.name = name;
    decl.where = at;
    detail::actor_positions pos;
    auto s = state_for(table, at);
    s->actor = name;
    kind_config c{s};
    auto position = [&](std::string_view key) {
      auto node = table.get(key);
      return node ? where(*node, at) : at;
    };
    // The kind first: its definition says which reserved keys make sense.
    auto kind_node = s->lookup("kind");
    if (!kind_node) {
      add_error(*s, at,
                "actor " + in_quotes(name)
                  + " has no 'kind': say what it is, e.g. kind = \"counter\"");
    } else if (!kind_node->is_string()) {
      add_error(*s, position("kind"),
                "'kind' must be a string, not "
                  + detail::type_phrase(*kind_node));
    } else {
      decl.kind = *kind_node->value<std::string>();
      decl.definition = registry_.find(decl.kind);
      if (!decl.definition)
        add_error(*s, position("kind"),
                  "unknown kind " + in_quotes(decl.kind)
                    + suggestion(decl.kind, registry_.names()));
    }
    auto def = decl.definition;
    s->kind = decl.kind;
    if (def)
      s->context = "for kind " + in_quotes(def->name);
    pos.supervisor = position("supervisor");
    decl.supervisor = c.string("supervisor", "");
    refuse_empty(c, table, "supervisor",
                 "name the supervisor it runs under, or leave the key out for "
                 "the root");
    pos.restart_given = c.has("restart");
    pos.restart = position("restart");
    auto restart = c.choice("restart", "", restart_types);
    decl.restart = !restart.empty() ? to_restart_type(restart)
                   : def            ? def->default_restart
                                    : restart_type::transient;
    pos.restart_given = pos.restart_given && !restart.empty();
    decl.shutdown = c.duration("shutdown", decl.shutdown, caf::timespan{0},
                               longest);
    pos.node = position("node");
    decl.node = c.node_names("node");
    refuse_empty(c, table, "node",
                 "name a node ([nodes.NAME]), or leave the key out");
    decl.credit = static_cast<uint32_t>(c.integer("credit", 0, 1, 1 << 20));
    if (def && !def->takes_input && c.has("credit"))
      c.fail("credit", "kind " + in_quotes(def->name)
                         + " takes no input, so 'credit' (the window of its "
                           "input links) does not apply");
    pos.next = position("next");
    decl.next = c.strings("next");
    pos.next_items = name_positions(table.get("next"), pos.next);
    if (auto next = table.get("next"))
      pos.next_invalid = !next->is_string() && !next->is_array();
    if (def && !def->emits && c.has("next")) {
      c.fail("next", "kind " + in_quotes(def->name)
                       + " emits nothing, so it takes no 'next'");
      decl.next.clear(); // nothing more to say about what it names
      pos.next_items.clear();
      // What it named now seems to get no input: the same error again.
      pos.next_invalid = true;
    }
    pos.service = position("service");
    decl.services = c.strings("service");
    pos.service_items = name_positions(table.get("service"), pos.service);
    if (def && def->max_services == 0 && c.has("service")) {
      c.fail("service", "kind " + in_quotes(def->name) + " takes no 'service'");
      decl.services.clear();
      pos.service_items.clear();
    }
    if (def) {
      bool threw = false;
      decl.start = detail::run_parse(*def, c, *s, threw);
      if (!threw)
        detail::report_unknown_keys(*s, s->context, reserved_actor_keys);
      decl.parts = s->parts;
    }
    x_.result.actors.push_back(std::move(decl));
    x_.actors.push_back(std::move(pos));
  }

  std::string file_;
  const kind_registry& registry_;
  loading x_;
};

} // namespace

topology parse_topology(std::string_view text, const std::string& file,
                        const kind_registry& registry) {
  try {
    return loader{file, registry}.run(text);
  } catch (const topology_errors&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // A bug of the loader's, but still an answer about the file rather than
    // an exception nobody expects.
    throw topology_errors({detail::error_at(
      {file, 0, 0},
      "internal error while loading the file: " + printable(e.what()))});
  }
}

topology load_topology(const std::string& path,
                       const kind_registry& registry) {
  auto fail = [&](const std::string& why) {
    return topology_errors({detail::error_at({path, 0, 0}, why)});
  };
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec)
    throw fail("cannot read the file: " + ec.message());
  if (std::filesystem::is_directory(status))
    throw fail("cannot read the file: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw fail("cannot read the file: " + std::string{std::strerror(errno)});
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_file_size)
      break;
  }
  if (in.bad())
    throw fail("cannot read the file: " + std::string{std::strerror(errno)});
  return parse_topology(text, path, registry);
}

} // namespace troupe
