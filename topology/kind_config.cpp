#include "troupe/topology/kind_config.hpp"

#include "troupe/topology/detail/kind_config_state.hpp"
#include "troupe/topology/duration.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <new>

namespace troupe {

// -- state and shared helpers -------------------------------------------------

const toml::node* kind_config::state::lookup(std::string_view key) {
  known.emplace(key);
  return table ? table->get(key) : nullptr;
}

namespace detail {

std::shared_ptr<kind_config::state>
make_state(const toml::table& table, source_position where, std::string file,
           std::shared_ptr<std::vector<topology_error>> errors) {
  auto s = std::make_shared<kind_config::state>();
  s->table = &table;
  s->where = std::move(where);
  s->file = std::move(file);
  s->errors = std::move(errors);
  return s;
}

source_position position_of(const toml::node& node, const std::string& file,
                            const source_position& fallback) {
  auto& begin = node.source().begin;
  if (begin.line == 0)
    return fallback;
  return {file, begin.line, begin.column};
}

std::string type_phrase(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string printable(std::string_view text) {
  constexpr size_t longest = 60;
  std::string result;
  for (size_t i = 0; i < text.size(); ++i) {
    if (result.size() >= longest) {
      result += "...";
      break;
    }
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      result += static_cast<char>(c);
    } else if (c == '\\') {
      result += "\\\\";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      result += buf;
    }
  }
  return result;
}

std::string in_quotes(std::string_view text) {
  return "'" + printable(text) + "'";
}

std::string suggestion(const std::string& word,
                       const std::vector<std::string>& candidates) {
  auto best = closest_match(word, candidates);
  return best.empty() ? std::string{} : "; did you mean " + in_quotes(best) + "?";
}

void add_error(kind_config::state& s, source_position where,
               std::string message) {
  if (where.line == 0)
    where = s.where;
  if (where.file.empty())
    where.file = s.file;
  ++s.failures;
  s.errors->push_back(error_at(std::move(where), std::move(message)));
}

void report_unknown_keys(kind_config::state& s, const std::string& context,
                         const std::vector<std::string>& extra) {
  if (!s.table)
    return;
  std::vector<std::string> candidates(s.known.begin(), s.known.end());
  candidates.insert(candidates.end(), extra.begin(), extra.end());
  for (auto&& [key, value] : *s.table) {
    if (s.known.count(key.str()) > 0)
      continue;
    std::string name{key.str()};
    add_error(s, position_of(value, s.file, s.where),
              "unknown key " + in_quotes(name) + " " + context
                + suggestion(name, candidates));
  }
}

actor_starter run_parse(const kind_definition& def, kind_config& cfg,
                        kind_config::state& s, bool& threw) {
  threw = false;
  auto failures = s.failures;
  actor_starter result;
  std::string failure;
  try {
    result = def.parse(cfg);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "an unknown exception";
  }
  if (!failure.empty()) {
    threw = true;
    add_error(s, s.where,
              "kind " + in_quotes(def.name) + " rejected the configuration of "
                + in_quotes(s.actor) + ": " + printable(failure));
    return {};
  }
  if (!result && s.failures == failures)
    add_error(s, s.where,
              "kind " + in_quotes(def.name) + " could not configure "
                + in_quotes(s.actor));
  return result;
}

} // namespace detail

// -- messages -----------------------------------------------------------------

namespace {

using detail::add_error;
using detail::position_of;
using detail::printable;
using detail::in_quotes;
using detail::type_phrase;

std::string format_number(double x) {
  if (std::isnan(x))
    return "nan";
  if (std::isinf(x))
    return x > 0 ? "inf" : "-inf";
  char buf[32];
  if (x == std::trunc(x) && std::fabs(x) < 1e15)
    std::snprintf(buf, sizeof(buf), "%.0f", x);
  else
    std::snprintf(buf, sizeof(buf), "%.6g", x);
  return buf;
}

// "must be between A and B", "at least A" or "at most B", whichever bounds
// are real ones.
template <class T, class Format>
std::string range_phrase(T min, T max, T lowest, T highest, Format fmt) {
  if (min == lowest)
    return "at most " + fmt(max);
  if (max == highest)
    return "at least " + fmt(min);
  return "between " + fmt(min) + " and " + fmt(max);
}

std::string rate_text(double x) {
  return format_number(x) + "/s";
}

} // namespace

// -- kind_config ----------------------------------------------------------------

kind_config::kind_config(std::shared_ptr<state> s) : state_(std::move(s)) {
  // nop
}

const std::string& kind_config::actor_name() const {
  return state_->actor;
}

const std::string& kind_config::kind_name() const {
  return state_->kind;
}

bool kind_config::has(std::string_view key) {
  return state_->lookup(key) != nullptr;
}

void kind_config::require(std::string_view key) {
  if (!has(key))
    add_error(*state_, state_->where,
              "missing key " + in_quotes(key)
                + (state_->context.empty() ? "" : " " + state_->context));
}

int64_t kind_config::integer(std::string_view key, int64_t fallback,
                             int64_t min, int64_t max) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  auto where = position_of(*node, state_->file, state_->where);
  auto value = node->value<int64_t>();
  if (!node->is_integer() || !value) {
    add_error(*state_, where,
              in_quotes(key) + " must be an integer, not " + type_phrase(*node));
    return fallback;
  }
  if (*value < min || *value > max) {
    constexpr auto lowest = std::numeric_limits<int64_t>::min();
    constexpr auto highest = std::numeric_limits<int64_t>::max();
    auto fmt = [](int64_t x) { return std::to_string(x); };
    add_error(*state_, where,
              in_quotes(key) + " must be "
                + range_phrase(min, max, lowest, highest, fmt) + ", got "
                + std::to_string(*value));
    return fallback;
  }
  return *value;
}

double kind_config::number(std::string_view key, double fallback, double min,
                           double max) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  auto where = position_of(*node, state_->file, state_->where);
  if (!node->is_number()) {
    add_error(*state_, where,
              in_quotes(key) + " must be a number, not " + type_phrase(*node));
    return fallback;
  }
  double value = node->is_integer()
                   ? static_cast<double>(*node->value<int64_t>())
                   : *node->value<double>();
  if (!(value >= min && value <= max)) {
    constexpr auto lowest = std::numeric_limits<double>::lowest();
    constexpr auto highest = std::numeric_limits<double>::max();
    add_error(*state_, where,
              in_quotes(key) + " must be "
                + range_phrase(min, max, lowest, highest, format_number)
                + ", got " + format_number(value));
    return fallback;
  }
  return value;
}

bool kind_config::boolean(std::string_view key, bool fallback) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  if (!node->is_boolean()) {
    add_error(*state_, position_of(*node, state_->file, state_->where),
              in_quotes(key) + " must be true or false, not "
                + type_phrase(*node));
    return fallback;
  }
  return *node->value<bool>();
}

std::string kind_config::string(std::string_view key, std::string fallback) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  if (!node->is_string()) {
    add_error(*state_, position_of(*node, state_->file, state_->where),
              in_quotes(key) + " must be a string, not " + type_phrase(*node));
    return fallback;
  }
  return *node->value<std::string>();
}

std::string kind_config::choice(std::string_view key, std::string fallback,
                                const std::vector<std::string>& options) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  auto where = position_of(*node, state_->file, state_->where);
  std::string list;
  for (auto& option : options)
    list += (list.empty() ? "" : ", ") + option;
  if (!node->is_string()) {
    add_error(*state_, where,
              in_quotes(key) + " must be one of " + list + " (a string), not "
                + type_phrase(*node));
    return fallback;
  }
  auto value = *node->value<std::string>();
  for (auto& option : options)
    if (option == value)
      return value;
  add_error(*state_, where,
            in_quotes(key) + " must be one of " + list + ", not \""
              + printable(value) + "\"" + detail::suggestion(value, options));
  return fallback;
}

caf::timespan kind_config::duration(std::string_view key,
                                    caf::timespan fallback, caf::timespan min,
                                    caf::timespan max) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  auto where = position_of(*node, state_->file, state_->where);
  if (!node->is_string()) {
    add_error(*state_, where,
              in_quotes(key) + " must be a duration such as \"250ms\" or \"5s\", not "
                + type_phrase(*node));
    return fallback;
  }
  auto text = *node->value<std::string>();
  auto value = parse_duration(text);
  if (!value) {
    add_error(*state_, where,
              in_quotes(key) + " is not a duration: \"" + printable(text)
                + "\" (write e.g. \"250ms\", \"5s\")");
    return fallback;
  }
  if (*value < min || *value > max) {
    add_error(*state_, where,
              in_quotes(key) + " must be "
                + range_phrase(min, max, caf::timespan::min(),
                               caf::timespan::max(), format_duration)
                + ", got " + format_duration(*value));
    return fallback;
  }
  return *value;
}

double kind_config::rate(std::string_view key, double fallback, double min,
                         double max) {
  auto node = state_->lookup(key);
  if (!node)
    return fallback;
  auto where = position_of(*node, state_->file, state_->where);
  std::optional<double> value;
  if (node->is_integer())
    value = static_cast<double>(*node->value<int64_t>());
  else if (node->is_floating_point())
    value = *node->value<double>();
  else if (node->is_string())
    value = parse_rate(*node->value<std::string>());
  if (!value) {
    if (node->is_string())
      add_error(*state_, where,
                in_quotes(key) + " is not a rate: \""
                  + printable(*node->value<std::string>())
                  + "\" (write e.g. \"1000/s\", \"50/ms\")");
    else
      add_error(*state_, where,
                in_quotes(key) + " must be a rate such as \"1000/s\", not "
                  + type_phrase(*node));
    return fallback;
  }
  if (!(*value >= min && *value <= max)) {
    constexpr auto lowest = std::numeric_limits<double>::lowest();
    constexpr auto highest = std::numeric_limits<double>::max();
    add_error(*state_, where,
              in_quotes(key) + " must be "
                + range_phrase(min, max, lowest, highest, rate_text) + ", got "
                + rate_text(*value));
    return fallback;
  }
  return *value;
}

std::vector<std::string> kind_config::strings(std::string_view key) {
  std::vector<std::string> result;
  auto node = state_->lookup(key);
  if (!node)
    return result;
  auto where = position_of(*node, state_->file, state_->where);
  if (node->is_string()) {
    result.push_back(*node->value<std::string>());
    return result;
  }
  auto array = node->as_array();
  if (!array) {
    add_error(*state_, where,
              in_quotes(key) + " must be a string or an array of strings, not "
                + type_phrase(*node));
    return result;
  }
  for (auto& element : *array) {
    if (!element.is_string()) {
      add_error(*state_, position_of(element, state_->file, where),
                in_quotes(key) + " must be a string or an array of strings; "
                  + "this element is " + type_phrase(element));
      continue;
    }
    result.push_back(*element.value<std::string>());
  }
  return result;
}

std::vector<std::string> kind_config::node_names(std::string_view key) {
  auto result = strings(key);
  auto node = state_->table->get(key);
  if (!node || !state_->node_refs)
    return result;
  auto where = position_of(*node, state_->file, state_->where);
  std::string k{key};
  if (node->is_string()) {
    if (!result.front().empty())
      state_->node_refs->push_back(node_ref{k, result.front(), where});
  } else if (auto array = node->as_array()) {
    if (array->empty())
      add_error(*state_, where,
                in_quotes(key) + " is empty: name at least one node ([nodes.NAME])");
    for (auto& element : *array) {
      if (!element.is_string())
        continue;
      auto at = position_of(element, state_->file, where);
      auto name = *element.value<std::string>();
      if (name.empty())
        add_error(*state_, at,
                  in_quotes(key) + " holds an empty name: name a node ([nodes.NAME])");
      else
        state_->node_refs->push_back(node_ref{k, name, at});
    }
  }
  return result;
}

child_factory kind_config::service_factory(std::string_view key,
                                           bool required) {
  auto node = state_->lookup(key);
  if (!node) {
    if (required)
      require(key);
    return {};
  }
  auto where = position_of(*node, state_->file, state_->where);
  auto table = node->as_table();
  if (!table) {
    add_error(*state_, where,
              in_quotes(key)
                + " must be an inline table naming a service kind, e.g. "
                  "{ kind = \"hash_service\" }, not "
                + type_phrase(*node));
    return {};
  }
  auto inner = detail::make_state(*table, where, state_->file, state_->errors);
  inner->actor = state_->actor;
  inner->registry = state_->registry;
  inner->node_refs = state_->node_refs;
  auto done = [&](child_factory result) {
    state_->failures += inner->failures;
    if (result)
      state_->parts[std::string{key}] = result;
    return result;
  };
  auto kind_node = inner->lookup("kind");
  if (!kind_node) {
    add_error(*inner, where,
              in_quotes(key) + " has no 'kind': name a kind that answers "
                            "requests, e.g. { kind = \"hash_service\" }");
    return done({});
  }
  auto kind_where = position_of(*kind_node, state_->file, where);
  if (!kind_node->is_string()) {
    add_error(*inner, kind_where,
              "'kind' must be a string, not " + type_phrase(*kind_node));
    return done({});
  }
  auto kind = *kind_node->value<std::string>();
  const kind_definition* def = nullptr;
  if (state_->registry)
    def = state_->registry->find(kind);
  if (!def) {
    std::vector<std::string> names;
    if (state_->registry)
      names = state_->registry->names();
    add_error(*inner, kind_where,
              "unknown kind " + in_quotes(kind) + detail::suggestion(kind, names));
    return done({});
  }
  if (!def->answers_requests) {
    add_error(*inner, kind_where,
              in_quotes(key) + " needs a kind that answers requests; "
                + in_quotes(kind) + " does not");
    return done({});
  }
  // An inline table has nowhere to say what it calls, so a kind that needs
  // a service would fail at every start instead of here.
  if (def->min_services > 0) {
    add_error(*inner, kind_where,
              in_quotes(key) + " cannot be a " + in_quotes(kind)
                + ": it calls a service, which an inline table cannot name;"
                  " declare it as an actor and name that one");
    return done({});
  }
  if (def->answers_only_with_service) {
    add_error(*inner, kind_where,
              in_quotes(key) + " cannot be a " + in_quotes(kind)
                + ": it answers requests only in front of a service, which "
                  "an inline table cannot name; declare it as an actor with "
                  "a 'service' and name that one");
    return done({});
  }
  inner->kind = def->name;
  inner->context = "for kind " + in_quotes(def->name);
  kind_config cfg{inner};
  bool threw = false;
  auto starter = detail::run_parse(*def, cfg, *inner, threw);
  if (!threw)
    detail::report_unknown_keys(*inner, inner->context);
  if (!starter || inner->failures > 0)
    return done({});
  return done([starter, kind = def->name](const spawn_context& ctx) {
    wiring w;
    w.links.inputs = 0;
    w.links.kind = kind;
    return starter(ctx, w);
  });
}

void kind_config::fail(std::string_view key, std::string message) {
  auto node = state_->lookup(key);
  auto where = node ? position_of(*node, state_->file, state_->where)
                    : state_->where;
  add_error(*state_, where, std::move(message));
}

void kind_config::fail(std::string message) {
  add_error(*state_, state_->where, std::move(message));
}

bool kind_config::ok() const {
  return state_->failures == 0;
}

} // namespace troupe
