#include "troupe/topology/run.hpp"

#include "troupe/topology/report_tree.hpp"

#include <nlohmann/json.hpp>

namespace troupe {

namespace {

// Keys in the order written here, which is the order docs/troupe.md explains
// them in, rather than sorted.
using json = nlohmann::ordered_json;

// A sink of the stream: fed by `next`, with no `next` of its own.
bool is_sink(const actor_decl& a) {
  return a.inputs > 0 && a.next.empty();
}

bool is_source(const actor_decl& a) {
  return a.definition && a.definition->source;
}

json row_json(const report_row& row, const actor_decl* decl) {
  auto& r = *row.report;
  json stats = json::object();
  for (auto& [key, value] : r.stats)
    stats[key] = value;
  return {
    {"name", r.name},
    {"kind", decl ? decl->kind : r.kind},
    {"supervisor", row.path.empty() ? json() : json(row.path.back())},
    {"path", row.path},
    {"in", r.in},
    {"out", r.out},
    {"flushed", r.flushed},
    {"dropped", r.dropped},
    {"errors", r.errors},
    {"lost", r.lost},
    {"resent", r.resent},
    {"unconfirmed", r.unconfirmed},
    {"restarts", r.restarts},
    {"stopped", to_string(r.stopped)},
    {"error", r.error},
    {"state", r.state},
    {"stats", std::move(stats)},
  };
}

} // namespace

std::string report_json(const topology& t, const run_result& r) {
  uint64_t in = 0, out = 0, dropped = 0, errors = 0, restarts = 0;
  uint64_t unconfirmed = 0, emitted = 0, consumed = 0, crashed = 0, killed = 0;
  size_t actors = 0;
  auto rows = flatten(r.report);
  auto list = json::array();
  for (auto& row : rows) {
    auto& x = *row.report;
    // By its place in the tree, not its name: a pool's "worker-0" is not
    // the file's actor "worker-0".
    auto decl = declared_actor(t, row);
    list.push_back(row_json(row, decl));
    restarts += x.restarts;
    if (x.kind == "supervisor")
      continue;
    ++actors;
    in += x.in;
    out += x.out;
    dropped += x.dropped;
    errors += x.errors;
    unconfirmed += x.unconfirmed;
    crashed += x.stopped == stop_reason::crashed ? 1 : 0;
    killed += x.stopped == stop_reason::killed ? 1 : 0;
    if (decl) {
      if (is_source(*decl))
        emitted += x.out;
      else if (is_sink(*decl))
        consumed += x.in;
    }
  }
  json doc = {
    {"file", t.file},
    {"outcome", r.outcome},
    {"exit_code", r.exit_code},
    {"lost", r.report_missing ? json() : json(r.lost)},
    {"report_missing", r.report_missing},
    {"totals",
     {
       {"actors", actors},
       {"emitted", emitted},
       {"consumed", consumed},
       {"in", in},
       {"out", out},
       {"dropped", dropped},
       {"errors", errors},
       {"restarts", restarts},
       {"unconfirmed", unconfirmed},
       {"crashed", crashed},
       {"killed", killed},
     }},
    {"actors", std::move(list)},
  };
  // Names are UTF-8 (toml++ checks), but rendered errors may carry any bytes.
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

} // namespace troupe
