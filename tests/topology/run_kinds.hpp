#pragma once

// Small kinds for the tests that run topologies and for the test `troupe`
// (which needs them in the process-wide registry, unlike test_kinds.hpp's),
// independent of the built-in ones; registered once per process.
//
//   test_numbers  source: `count` integers 0..count-1, one per `interval`
//                 (0: as fast as credit allows)
//   test_pass     stage: passes every item on, after sleeping `delay`
//                 (0: none) to make a drain last
//   test_crash    stage: throws on every item
//   test_call     stage in front of one `service`: passes items on
//   test_sink     sink: takes items (its report's `in` counts them)
//   test_echo     service: answers an integer with itself
//   test_stubborn service: answers an integer with itself; ignores the
//                 first exit message (a drain waits for its `shutdown`),
//                 quits on the second (a cancel)

namespace troupe::test {

void register_run_kinds();

} // namespace troupe::test
