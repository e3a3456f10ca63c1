// libFuzzer target: the topology loader, with the built-in kinds, on any
// bytes. Loading must end in a topology or in topology_errors; anything else
// escaping (another exception, a crash, a sanitizer report) is a finding.

#include "troupe/topology/topology.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  try {
    troupe::parse_topology(text, "fuzz.toml");
  } catch (const troupe::topology_errors&) {
    // The expected outcome for nearly every input.
  }
  return 0;
}
