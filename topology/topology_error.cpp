#include "troupe/topology/topology_error.hpp"

#include <algorithm>
#include <cctype>

namespace troupe {

namespace {

std::string join_rendered(const std::vector<topology_error>& errors) {
  std::string result;
  for (auto& e : errors) {
    if (!result.empty())
      result += '\n';
    result += e.render();
  }
  return result.empty() ? std::string{"invalid topology"} : result;
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Optimal string alignment distance: Levenshtein plus swaps of neighbours,
// so that "szie" is one edit from "size" as it is one slip of the fingers.
size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i)
    d[i][0] = i;
  for (size_t j = 0; j <= m; ++j)
    d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2])
          && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

} // namespace

std::string topology_error::render() const {
  std::string result = where.file;
  if (where.line > 0) {
    result += ':';
    result += std::to_string(where.line);
    if (where.column > 0) {
      result += ':';
      result += std::to_string(where.column);
    }
  }
  if (!result.empty())
    result += ": ";
  result += message;
  return result;
}

topology_errors::topology_errors(std::vector<topology_error> errors)
  : std::runtime_error(join_rendered(errors)), errors_(std::move(errors)) {
  // nop
}

std::string closest_match(const std::string& word,
                          const std::vector<std::string>& candidates) {
  // Words of hundreds of letters are no misspellings, and comparing them
  // would cost time and memory for nothing (the loader sees any bytes).
  constexpr size_t longest = 64;
  if (word.empty() || word.size() > longest)
    return {};
  const size_t limit = std::max<size_t>(1, word.size() / 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (auto& candidate : candidates) {
    if (candidate.size() > longest)
      continue;
    auto d = edit_distance(word, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

} // namespace troupe
