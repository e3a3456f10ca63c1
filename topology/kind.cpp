#include "troupe/topology/kind.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/topology/kinds/builtin.hpp"

namespace troupe {

namespace {

kind_definition make_kind(std::string name, std::string summary,
                          kind_parser parse, std::string group) {
  kind_definition def;
  def.name = std::move(name);
  def.summary = std::move(summary);
  def.parse = std::move(parse);
  def.graph_group = std::move(group);
  return def;
}

} // namespace

kind_definition source_kind(std::string name, std::string summary,
                            kind_parser parse) {
  auto def = make_kind(std::move(name), std::move(summary), std::move(parse),
                       "source");
  def.source = true;
  def.emits = true;
  return def;
}

kind_definition stage_kind(std::string name, std::string summary,
                           kind_parser parse) {
  auto def = make_kind(std::move(name), std::move(summary), std::move(parse),
                       "stage");
  def.takes_input = true;
  def.emits = true;
  return def;
}

kind_definition sink_kind(std::string name, std::string summary,
                          kind_parser parse) {
  auto def = make_kind(std::move(name), std::move(summary), std::move(parse),
                       "sink");
  def.takes_input = true;
  return def;
}

kind_definition service_kind(std::string name, std::string summary,
                             kind_parser parse) {
  auto def = make_kind(std::move(name), std::move(summary), std::move(parse),
                       "service");
  def.answers_requests = true;
  def.default_restart = restart_type::permanent;
  return def;
}

void kind_registry::add(kind_definition def) {
  if (def.name.empty())
    throw config_error("kind_registry", "a kind needs a name");
  if (!def.parse)
    throw config_error("kind_registry",
                       "kind '" + def.name + "' has no parse function");
  if (def.min_services > def.max_services)
    throw config_error("kind_registry",
                       "kind '" + def.name
                         + "' has min_services above max_services");
  if (kinds_.count(def.name) > 0)
    throw config_error("kind_registry",
                       "kind '" + def.name + "' is registered already");
  auto name = def.name;
  kinds_.emplace(std::move(name), std::move(def));
}

const kind_definition* kind_registry::find(const std::string& name) const {
  auto i = kinds_.find(name);
  return i != kinds_.end() ? &i->second : nullptr;
}

std::vector<std::string> kind_registry::names() const {
  std::vector<std::string> result;
  result.reserve(kinds_.size());
  for (auto& [name, def] : kinds_)
    result.push_back(name);
  return result;
}

kind_registry& kinds() {
  static kind_registry registry = [] {
    kind_registry result;
    register_builtin_kinds(result);
    return result;
  }();
  return registry;
}

void register_kind(kind_definition def) {
  kinds().add(std::move(def));
}

} // namespace troupe
