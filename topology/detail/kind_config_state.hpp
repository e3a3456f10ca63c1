#pragma once

// Internal to the topology library (not installed): the TOML table behind a
// kind_config, and the helpers the loader shares with it to report errors at
// the position of the offending value.

#include "troupe/topology/kind.hpp"
#include "troupe/topology/kind_config.hpp"
#include "troupe/topology/topology_error.hpp"

#include <toml++/toml.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {

/// A node name a topology file gives, where, and under which key.
struct node_ref {
  std::string key;
  std::string name;
  source_position where;
};

struct kind_config::state {
  /// The table read; it outlives the state's use (the loader's document).
  const toml::table* table = nullptr;
  /// Position of the table itself, for errors about the whole table.
  source_position where;
  std::string actor;
  std::string kind;
  /// Where the table is, for messages: "for kind 'batcher'", "in [system]".
  std::string context;
  std::string file;
  /// Every error of the file, shared by all tables read from it.
  std::shared_ptr<std::vector<topology_error>> errors;
  /// Keys the reader asked for (read, has()-checked, or failed to read):
  /// whatever else the table holds is unknown. A key counts as known even
  /// when reading it failed, so that a kind's later keys, which it may skip
  /// once it saw an error, are not reported as unknown too.
  std::set<std::string, std::less<>> known;
  /// Resolves the kind of inline tables (service_factory); may be null.
  const kind_registry* registry = nullptr;
  /// Errors recorded for this table (and its inline tables).
  size_t failures = 0;
  /// Node names read with kind_config::node_names, with their positions,
  /// shared by all tables of the file: validation checks them once every
  /// [nodes.NAME] is known.
  std::shared_ptr<std::vector<node_ref>> node_refs;
  /// The factories service_factory read, by key (actor_decl::parts).
  std::map<std::string, child_factory> parts;

  /// The value of `key`, marking it known; null if absent.
  const toml::node* lookup(std::string_view key);
};

namespace detail {

/// Member by member: g++ 12 warns (wrongly, and -Werror makes it fatal) that
/// the strings of an aggregate-initialised topology_error may be used
/// uninitialised.
inline topology_error error_at(source_position where, std::string message) {
  topology_error result;
  result.where = std::move(where);
  result.message = std::move(message);
  return result;
}

/// A state for `table`, recording into `errors`.
std::shared_ptr<kind_config::state>
make_state(const toml::table& table, source_position where, std::string file,
           std::shared_ptr<std::vector<topology_error>> errors);

/// Where `node` begins; `fallback` if toml++ knows no position for it (a
/// table created implicitly by a dotted key).
source_position position_of(const toml::node& node, const std::string& file,
                            const source_position& fallback = {});

/// "a string", "an integer", ... for "must be X, not Y" messages.
std::string type_phrase(const toml::node& node);

/// `text` as it may appear in a message: control and non-ASCII bytes escaped,
/// cut short if long (names and values come from arbitrary bytes).
std::string printable(std::string_view text);

/// `text` in single quotes, printable: for names and keys.
std::string in_quotes(std::string_view text);

/// " did you mean 'x'?" for the candidate closest to `word`, or nothing.
std::string suggestion(const std::string& word,
                       const std::vector<std::string>& candidates);

void add_error(kind_config::state& s, source_position where,
               std::string message);

/// Reports each key of the table that is not known, at its value:
/// "unknown key 'k' <context>; did you mean 'x'?", suggesting from the known
/// keys and `extra` (keys valid in the table but handled elsewhere).
void report_unknown_keys(kind_config::state& s, const std::string& context,
                         const std::vector<std::string>& extra = {});

/// Calls the kind's parse function. An exception from it becomes an error at
/// the table (and sets `threw`: the keys it read are then not all known), as
/// does an empty starter without an error recorded.
actor_starter run_parse(const kind_definition& def, kind_config& cfg,
                        kind_config::state& s, bool& threw);

} // namespace detail

} // namespace troupe
