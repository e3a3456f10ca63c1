#include "troupe/patterns/pipeline.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/supervision/supervisor.hpp"

#include <set>
#include <utility>

namespace troupe {

pipeline_step source_step(std::string name, produce_function f) {
  pipeline_step result;
  result.name = std::move(name);
  result.source = std::move(f);
  return result;
}

pipeline_step function_step(std::string name, item_function f) {
  pipeline_step result;
  result.name = std::move(name);
  result.function = std::move(f);
  return result;
}

pipeline_step actor_step(std::string name, stage_factory f) {
  pipeline_step result;
  result.name = std::move(name);
  result.actor = std::move(f);
  return result;
}

void pipeline_config::validate() const {
  auto where = "pipeline_config" + (name.empty() ? "" : " of '" + name + "'");
  auto fail = [&](const std::string& what) { throw config_error(where, what); };
  if (name.empty())
    fail("name is empty");
  if (steps.empty())
    fail("steps is empty: a pipeline needs at least one step");
  if (credit > max_credit)
    fail("credit is " + std::to_string(credit) + ": at most "
         + std::to_string(max_credit) + " (0 means the system's default)");
  std::set<std::string> names;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto& s = steps[i];
    auto step = "steps[" + std::to_string(i) + "]";
    if (s.name.empty())
      fail(step + ".name is empty");
    if (!names.insert(s.name).second)
      fail(step + ".name '" + s.name + "' is used twice");
    auto kinds = (s.source ? 1 : 0) + (s.function ? 1 : 0) + (s.actor ? 1 : 0);
    if (kinds != 1)
      fail(step + " ('" + s.name + "') must have exactly one of source, "
           + "function and actor; it has " + std::to_string(kinds));
    if (s.source && i != 0)
      fail(step + " ('" + s.name + "') is a source: only the first step may be");
    if (s.shutdown < caf::timespan{0})
      fail(step + ".shutdown is negative");
    // A permanent step that ended is restarted into a stream that is over
    // and ends again, until the intensity gives up; a temporary one that
    // crashed leaves its upstream sending to nobody, and the pipeline never
    // ends. Only transient keeps the end of the stream meaningful.
    if (s.restart != restart_type::transient)
      fail(step + ".restart ('" + s.name + "') is " + to_string(s.restart)
           + ": a step must be transient");
  }
  for (size_t i = 0; i < next.size(); ++i)
    if (!next[i])
      fail("next[" + std::to_string(i) + "] is not an actor");
  for (size_t i = 0; i < next_siblings.size(); ++i) {
    auto field = "next_siblings[" + std::to_string(i) + "]";
    if (next_siblings[i].empty())
      fail(field + " is empty");
    // Siblings are the pipeline's, not its steps': its own name or a step's
    // would wire the last step to itself or to its own supervisor.
    if (next_siblings[i] == name)
      fail(field + " '" + name + "' is the pipeline itself");
    if (names.count(next_siblings[i]) > 0)
      fail(field + " '" + next_siblings[i]
           + "' is a step of the pipeline, not a sibling");
  }
  if (steps.size() == 1 && steps.front().source && next.empty()
      && next_siblings.empty())
    fail("the only step is a source and there is no next: its items go nowhere");
  if (!steps.front().source && inputs == 0)
    fail("inputs is 0: the first step waits for at least one upstream");
  // The supervisor's own fields, checked now rather than when it starts.
  supervisor_spec supervisor;
  supervisor.name = name;
  supervisor.intensity = intensity;
  supervisor.backoff = backoff;
  troupe::validate(supervisor);
}

namespace {

child_spec step_child(const pipeline_config& cfg, size_t i) {
  auto& step = cfg.steps[i];
  child_spec spec;
  spec.name = step.name;
  spec.restart = step.restart;
  spec.shutdown = step.shutdown;
  auto last = i + 1 == cfg.steps.size();
  auto next_name = last ? std::string{} : cfg.steps[i + 1].name;
  spec.start = [step, last, next_name, next = cfg.next, credit = cfg.credit,
                inputs = i == 0 ? cfg.inputs : size_t{1}](const spawn_context& ctx) {
    stage_config links;
    links.credit = credit;
    links.inputs = inputs;
    if (last)
      links.next = next;
    else
      links.next = {ctx.sibling(next_name)};
    if (step.source)
      return spawn_source(ctx, std::move(links), step.source);
    if (step.function)
      return spawn_stage(ctx, std::move(links), step.function);
    return step.actor(ctx, std::move(links));
  };
  return spec;
}

supervisor_spec to_supervisor_spec(const pipeline_config& cfg) {
  supervisor_spec spec;
  spec.name = cfg.name;
  spec.strategy = restart_strategy::one_for_one;
  spec.intensity = cfg.intensity;
  spec.backoff = cfg.backoff;
  // A pipeline whose stream ended has nothing left to do.
  spec.auto_shutdown = auto_shutdown::all_children_done;
  // Last step first, as a sink starts before its source: the supervisor
  // stops children in reverse start order, so a drain reaches the first
  // step first and the end of the stream flows down to steps still running.
  for (size_t i = cfg.steps.size(); i > 0; --i)
    spec.children.push_back(step_child(cfg, i - 1));
  return spec;
}

// Looks up next_siblings among the siblings of the pipeline itself (`ctx` is
// the pipeline's context, not a step's) and moves them into `next`.
void resolve_next_siblings(const spawn_context& ctx, pipeline_config& cfg) {
  for (auto& sibling : cfg.next_siblings) {
    auto address = ctx.sibling(sibling);
    if (!address)
      throw config_error("pipeline_config of '" + cfg.name + "'",
                         "next_siblings: '" + sibling
                           + "' is not a sibling of the pipeline");
    if (address == ctx.address())
      throw config_error("pipeline_config of '" + cfg.name + "'",
                         "next_siblings: '" + sibling
                           + "' is the pipeline itself");
    cfg.next.push_back(std::move(address));
  }
  cfg.next_siblings.clear();
}

} // namespace

caf::actor spawn_pipeline(spawn_context ctx, pipeline_config cfg) {
  cfg.validate();
  resolve_next_siblings(ctx, cfg);
  return spawn_supervisor(std::move(ctx), to_supervisor_spec(cfg));
}

child_spec pipeline_child(pipeline_config cfg, restart_type restart,
                          caf::timespan shutdown) {
  cfg.validate();
  auto result = supervisor_child(to_supervisor_spec(cfg), restart, shutdown);
  if (!cfg.next_siblings.empty())
    result.start = [cfg](const spawn_context& ctx) {
      auto resolved = cfg;
      resolve_next_siblings(ctx, resolved);
      return spawn_supervisor(ctx, to_supervisor_spec(resolved));
    };
  return result;
}

} // namespace troupe
