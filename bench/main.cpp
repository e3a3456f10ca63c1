// The benchmark program of ../shared/bench/SPEC.md:
//   troupe-bench [--quick] [--baseline] [WORKLOAD...]
// One JSON line per workload run on stdout; progress on stderr.

#include "bench.hpp"

#include <iostream>
#include <set>
#include <string>

using namespace troupe::bench;

int main(int argc, char** argv) {
  // The second process of `remote` (not in --help: only this program
  // starts it).
  if (argc > 1 && std::string{argv[1]} == "--remote-sink")
    return remote_sink_main(argc, argv);
  if (argc > 1 && std::string{argv[1]} == "--remote-sink-caf")
    return baseline::remote_sink_main(argc, argv);
  options opts;
  std::set<std::string> wanted;
  auto workloads = all_workloads();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      opts.quick = true;
    } else if (arg == "--baseline") {
      opts.baseline = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: troupe-bench [--quick] [--baseline] [WORKLOAD...]\nworkloads:";
      for (auto& w : workloads)
        std::cout << ' ' << w.name;
      std::cout << "\n--quick divides item counts by 20 (a smoke run)."
                   "\n--baseline also runs each workload on plain CAF actors (impl \"caf\").\n";
      return 0;
    } else {
      wanted.insert(arg);
    }
  }
  for (auto& name : wanted) {
    bool known = false;
    for (auto& w : workloads)
      known = known || w.name == name;
    if (!known) {
      std::cerr << "troupe-bench: unknown workload '" << name << "' (see --help)\n";
      return 2;
    }
  }
  int status = 0;
  // Runs one workload function and prints its lines; a failure sets status.
  auto run = [&](const std::string& name, const workload_function& f) {
    std::vector<result> results;
    try {
      f(opts, results);
    } catch (const std::exception& e) {
      std::cerr << "troupe-bench: " << name << " failed: " << e.what() << "\n";
      status = 1;
      return;
    }
    for (auto& r : results) {
      std::cout << r.to_json() << std::endl;
      if (r.lost != 0)
        status = 1;
    }
  };
  for (auto& w : workloads) {
    if (!wanted.empty() && wanted.count(w.name) == 0)
      continue;
    progress("running " + w.name + (opts.quick ? " (quick)" : ""));
    run(w.name, w.run);
    if (opts.baseline && w.baseline) {
      progress("running " + w.name + " on plain CAF" + (opts.quick ? " (quick)" : ""));
      run(w.name + " (caf)", w.baseline);
    }
  }
  return status;
}
