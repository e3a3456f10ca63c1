#pragma once

// The `troupe` command line as a function, so that a program can register
// kinds of its own and then be a `troupe` that knows them:
//
//   int main(int argc, char** argv) {
//     troupe::register_kind(my_kind());
//     return troupe::tool_main(argc, argv);
//   }

namespace troupe {

/// Runs `troupe check|run|graph|kinds ...` with the kinds registered so far
/// and returns the exit code: 0 success; 1 a run that did not end cleanly
/// (the root supervisor gave up, a drain overran its deadline, a drain
/// killed actors, no final report); 2 an invalid file or command line; 130
/// a run cancelled by a second signal. A run whose actors do not stop after
/// its report, or that gets a signal then, ends the process itself
/// (run_options::teardown_limit, on_result).
int tool_main(int argc, char** argv);

} // namespace troupe
