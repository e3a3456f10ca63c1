#pragma once

// The slabs of a pattern's state (a pool's jobs and batches, a fan-out's
// calls) reuse the places freed in them, so that taking one allocates
// nothing once the slab has grown to what is in flight.

#include <cstdint>
#include <vector>

namespace troupe::detail {

/// A place for a new element of `slab`: the last one given back to `free`,
/// or a new default-constructed one at the end.
template <class T>
uint32_t take_place(std::vector<T>& slab, std::vector<uint32_t>& free) {
  if (!free.empty()) {
    auto place = free.back();
    free.pop_back();
    return place;
  }
  slab.emplace_back();
  return static_cast<uint32_t>(slab.size() - 1);
}

} // namespace troupe::detail
