#pragma once

// Work given as a function rather than as an actor: what a Tokio user hands
// to tokio::spawn or a rayon pool. A pool (pool_config::work) or a fan-out
// (fanout_config::process) runs the function on worker actors of its own,
// spawned with spawn_function_worker, and hands them the items queued
// together in one message, so that cheap work does not pay a request and an
// answer per item.
//
// Message it understands:
//   (troupe::batch) -> troupe::batch
//       one result per item, in order: the function's value, or an item
//       holding just the caf::error it returned or, if it threw,
//       errc::job_threw with the exception's what(). A throw is that item's
//       error, not a crash: the worker carries on with the next item.

#include "troupe/actors/item.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <functional>

namespace troupe {

/// Computes one job's result from its item, which it may move from.
using job_function = std::function<caf::expected<item>(item&)>;

/// Spawns a local worker that answers batches by running `f` on each item.
caf::actor spawn_function_worker(caf::actor_system& sys, job_function f);

} // namespace troupe
