#include "troupe/supervision/child_spec.hpp"

#include "troupe/actors/errors.hpp"

#include <set>

namespace troupe {

child_start try_start(const child_factory& start, const spawn_context& ctx) {
  child_start result;
  try {
    result.handle = start(ctx);
    if (!result.handle)
      result.failure = "factory returned no actor";
  } catch (const node_unreachable& e) {
    result.failure = e.what();
    result.unreachable = true;
  } catch (const std::exception& e) {
    result.failure = e.what();
  } catch (...) {
    result.failure = "factory threw an unknown exception";
  }
  return result;
}

void validate(const restart_intensity& limit, const std::string& where,
              const std::string& field) {
  if (limit.max_restarts < 0)
    throw config_error(where, field + ".max_restarts is negative ("
                                + std::to_string(limit.max_restarts) + ")");
  if (limit.period <= caf::timespan{0})
    throw config_error(where, field + ".period must be greater than zero");
}

void validate(const supervisor_spec& spec) {
  auto where = "supervisor '" + spec.name + "'";
  if (spec.name.empty())
    throw config_error("supervisor", "name is empty");
  validate(spec.intensity, where, "intensity");
  if (spec.backoff.initial < caf::timespan{0})
    throw config_error(where, "backoff.initial is negative");
  if (spec.backoff.max < spec.backoff.initial)
    throw config_error(where, "backoff.max is below backoff.initial");
  if (!(spec.backoff.multiplier >= 1.0))
    throw config_error(where, "backoff.multiplier must be at least 1");
  std::set<std::string> names;
  for (size_t i = 0; i < spec.children.size(); ++i) {
    auto& child = spec.children[i];
    auto field = "children[" + std::to_string(i) + "]";
    if (child.name.empty())
      throw config_error(where, field + ".name is empty");
    if (!names.insert(child.name).second)
      throw config_error(where, field + ".name '" + child.name
                                  + "' is used by an earlier child");
    if (!child.start)
      throw config_error(where, field + ".start ('" + child.name
                                  + "') is an empty factory");
    if (child.shutdown < caf::timespan{0})
      throw config_error(where, field + ".shutdown ('" + child.name
                                  + "') is negative");
  }
}

std::string to_string(restart_type x) {
  switch (x) {
    case restart_type::permanent:
      return "permanent";
    case restart_type::transient:
      return "transient";
    case restart_type::temporary:
      return "temporary";
  }
  return "unknown";
}

std::string to_string(restart_strategy x) {
  switch (x) {
    case restart_strategy::one_for_one:
      return "one_for_one";
    case restart_strategy::one_for_all:
      return "one_for_all";
    case restart_strategy::rest_for_one:
      return "rest_for_one";
  }
  return "unknown";
}

std::string to_string(stop_order x) {
  switch (x) {
    case stop_order::sequential:
      return "sequential";
    case stop_order::concurrent:
      return "concurrent";
  }
  return "unknown";
}

} // namespace troupe
