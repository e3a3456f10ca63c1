#pragma once

// What is wrong with a topology file, and where: every error the loader finds
// names the file, line and column (from toml++'s source regions).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe {

struct source_position {
  std::string file;
  uint32_t line = 0;   ///< 1-based; 0 when unknown
  uint32_t column = 0; ///< 1-based; 0 when unknown
};

struct topology_error {
  source_position where;
  std::string message;

  /// "file:line:column: message", as compilers print it.
  std::string render() const;
};

/// Thrown by the loader with every error it found, in file order.
class topology_errors : public std::runtime_error {
public:
  explicit topology_errors(std::vector<topology_error> errors);

  const std::vector<topology_error>& errors() const noexcept {
    return errors_;
  }

private:
  std::vector<topology_error> errors_;
};

/// The candidate closest to `word` by edit distance, if close enough to be a
/// likely misspelling (at most a third of its letters, at least 1); empty
/// otherwise. For "did you mean ...?" hints.
std::string closest_match(const std::string& word,
                          const std::vector<std::string>& candidates);

} // namespace troupe
