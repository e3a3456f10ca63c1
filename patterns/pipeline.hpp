#pragma once

// A pipeline: a chain of stages built from a list of steps, each linked to the
// next by a credit-based stream link (docs/streams.md), so a fast upstream
// feeding a slow step waits for credit instead of filling a mailbox. Items
// keep their order end to end.
//
// A step is one of:
//   source    a produce_function; only as the first step. The pipeline then
//             feeds itself; drain or stop_intake make the source end.
//   function  an item_function: emits zero, one or many items per input
//             (filter, map, flat-map). What it throws is a crash of the step.
//   actor     a factory spawning a stage of the user's own (spawn_stage with a
//             logic, or another pattern such as spawn_batcher), given the
//             spawn_context and the stage_config with its `next` and credit.
// Without a source step, the first step takes its input from outside: an
// upstream stage links to its stable address, which the pipeline answers to
// (caf::get_atom, first step's name). The last step sends to `next` (actors)
// and `next_siblings` (names of siblings of a nested pipeline); with neither,
// it is a sink and what it emits is dropped, counted.
//
// The pipeline is a supervisor (supervision/supervisor.hpp): one child per
// step, one_for_one, each wired to its neighbour's stable address, so a step
// that crashes is restarted and its links carry on: items its upstream sent
// and it had not taken yet are sent again. What it had taken is lost with it:
// the item that threw (counted in the step's `errors`), and for a step that
// holds items after taking them (a fan-out's calls in flight and results
// waiting for their turn, a batcher's open batch) those too, counted in the
// step's `dropped`. The stage core acknowledges an item when the logic takes
// it, not when its result is emitted. It stops by itself once every step has ended (the
// stream ran dry), and answers a supervisor's messages:
//   (drain_atom [, caf::timespan deadline]) -> actor_report
//       the source stops producing, what is in flight drains to the end.
//   (cancel_atom) -> actor_report    stop now; held items count as dropped.
//   (status_atom) -> actor_report    the counters of every step so far.
//   (caf::get_atom, std::string step) -> caf::actor    a step's address.
// Its actor_report (kind "supervisor") has one child report per step, named
// after the step.

#include "troupe/actors/spawn_context.hpp"
#include "troupe/actors/stage.hpp"
#include "troupe/supervision/child_spec.hpp"

#include <caf/actor.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace troupe {

/// Spawns the stage of an actor step. `links` holds the step's downstream
/// (`next`), its credit and how many inputs it waits for; pass it on to
/// spawn_stage or to the pattern's spawn function unchanged.
using stage_factory
  = std::function<caf::actor(const spawn_context& ctx, stage_config links)>;

struct pipeline_step {
  /// Unique in the pipeline; the step's child name and report name.
  std::string name;
  /// Exactly one of the three is set (the helpers below do that).
  produce_function source;
  item_function function;
  stage_factory actor;
  /// Must stay transient (validate() rejects the others): a step that ends
  /// normally is done, one that crashes is restarted. A permanent step would
  /// be restarted after its stream ended, a temporary one would leave its
  /// upstream sending to nobody after a crash.
  restart_type restart = restart_type::transient;
  /// How long stopping the step may take before it is killed.
  caf::timespan shutdown = std::chrono::seconds(5);
};

pipeline_step source_step(std::string name, produce_function f);
pipeline_step function_step(std::string name, item_function f);
pipeline_step actor_step(std::string name, stage_factory f);

struct pipeline_config {
  /// The supervisor's name, and the child name of pipeline_child.
  std::string name = "pipeline";
  std::vector<pipeline_step> steps;
  /// Where the last step sends its items.
  std::vector<caf::actor> next;
  /// Siblings of a nested pipeline (under the same parent) the last step
  /// sends to, by name; looked up among the pipeline's own siblings each
  /// time the pipeline starts, failing the start with a config_error if one
  /// is missing. Neither the pipeline's name nor a step's name may appear.
  /// spawn_pipeline accepts them only with a context that can resolve them.
  std::vector<std::string> next_siblings;
  /// The window of every link; 0: the system's troupe.default-credit.
  uint32_t credit = 0;
  /// Upstream links the first step waits for before it ends, when it is not
  /// a source.
  size_t inputs = 1;
  restart_intensity intensity;
  restart_backoff backoff;

  /// Largest credit accepted: a window that large no longer bounds memory.
  static constexpr uint32_t max_credit = 1u << 20;

  /// Throws config_error naming the first invalid field.
  void validate() const;
};

/// Validates `cfg` (throwing config_error) and spawns the pipeline's
/// supervisor. It starts the steps last first (as a sink starts before its
/// source), so that stopping them in reverse start order drains the first
/// step first and the end of the stream flows down through the others.
/// Unsupervised, its final report goes where `ctx.report_to` says.
caf::actor spawn_pipeline(spawn_context ctx, pipeline_config cfg);

/// The pipeline as a child of a bigger supervisor, named `cfg.name`
/// (validated now). `shutdown` bounds the drain of the whole pipeline.
child_spec pipeline_child(pipeline_config cfg,
                          restart_type restart = restart_type::transient,
                          caf::timespan shutdown = std::chrono::seconds(30));

} // namespace troupe
