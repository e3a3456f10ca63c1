#include "troupe/tools/tool_main.hpp"

#include "troupe/supervision/shutdown.hpp"
#include "troupe/topology/duration.hpp"
#include "troupe/topology/graph.hpp"
#include "troupe/topology/kind.hpp"
#include "troupe/topology/run.hpp"
#include "troupe/topology/topology.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

#ifndef TROUPE_VERSION
#define TROUPE_VERSION "unknown"
#endif

namespace troupe {

namespace {

constexpr int exit_invalid = 2;

const char* exit_codes_text =
  "Exit codes: 0 success (run: the stream drained, or a signal's graceful\n"
  "shutdown did); 1 a run that did not end cleanly: the root supervisor gave\n"
  "up, a drain overran its deadline and was cancelled, a drain killed actors\n"
  "at its deadline, or the root sent no final report; 2 an invalid file or\n"
  "command line, or a run that could not start (a metrics address in use);\n"
  "130 a run cancelled by a second signal, or a signal during the teardown\n"
  "after the final report.\n"
  "The file format and the built-in kinds: docs/topology.md; the command,\n"
  "its reports and metrics: docs/troupe.md.";

/// Prints every error of a file that does not load; false then.
bool load(const std::string& file, topology& t) {
  try {
    t = load_topology(file);
    return true;
  } catch (const topology_errors& e) {
    for (auto& error : e.errors())
      std::cerr << error.render() << '\n';
    return false;
  }
}

// Which node each supervisor and actor starts on (the first candidate
// that can be reached; "else" the ones after it).
void print_placement(const topology& t) {
  auto where = [](const std::vector<std::string>& own,
                  const std::string& first) {
    if (own.size() <= 1)
      return first;
    std::string result = own.front();
    for (size_t i = 1; i < own.size(); ++i)
      result += ", else " + own[i];
    return result;
  };
  for (auto& n : t.nodes) {
    std::cout << "  node " << n.name << " (" << n.host << ":" << n.port
              << (n.certificate.empty() ? "" : ", TLS")
              << (n.name == t.home_node() ? ", home" : "") << ")\n";
  }
  std::cout << "  supervisor " << t.root.name << " @ " << t.home_node() << '\n';
  for (auto& s : t.supervisors)
    std::cout << "  supervisor " << s.name << " @ "
              << where(s.node, t.first_node_of_supervisor(s)) << '\n';
  for (auto& a : t.actors)
    std::cout << "  actor " << a.name << " @ "
              << where(a.node, t.first_node_of_actor(a)) << '\n';
}

int check(const std::vector<std::string>& files) {
  int result = 0;
  for (auto& file : files) {
    topology t;
    if (!load(file, t)) {
      result = exit_invalid;
      continue;
    }
    auto plural = [](size_t n, const char* noun) {
      return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
    };
    std::cout << file << ": ok (" << plural(t.actors.size(), "actor") << ", "
              << plural(1 + t.supervisors.size(), "supervisor");
    if (!t.nodes.empty())
      std::cout << ", " << plural(t.nodes.size(), "node");
    std::cout << ")\n";
    if (!t.nodes.empty())
      print_placement(t);
  }
  return result;
}

int graph(const std::string& file) {
  topology t;
  if (!load(file, t))
    return exit_invalid;
  std::cout << to_dot(t);
  return 0;
}

int list_kinds() {
  auto names = kinds().names();
  size_t width = 0;
  for (auto& name : names)
    width = std::max(width, name.size());
  for (auto& name : names) {
    auto def = kinds().find(name);
    std::cout << name << std::string(width - name.size() + 2, ' ') << '['
              << def->graph_group << "] " << def->summary << '\n';
  }
  return 0;
}

struct run_command {
  std::string file;
  std::string report;
  std::string metrics;
  bool view = false;
  bool no_view = false;
  std::string view_interval = "1s";
  std::string node;
};

int run(const run_command& cmd) {
  topology t;
  if (!load(cmd.file, t))
    return exit_invalid;
  // A file with nodes runs in one process unless a node is named: say so
  // rather than let it look distributed.
  if (!t.nodes.empty() && cmd.node.empty())
    std::cerr << "troupe: " << cmd.file
              << ": no --node given: every node's actors run in this "
                 "process\n";
  bool terminal = ::isatty(STDERR_FILENO) == 1;
  run_options opts;
  opts.log = &std::cerr;
  if (cmd.view || (terminal && !cmd.no_view)) {
    opts.view = &std::cerr;
    opts.view_in_place = terminal;
  }
  opts.view_interval = *parse_duration(cmd.view_interval);
  opts.metrics = cmd.metrics;
  opts.node = cmd.node;
  // Printed before the actor system is torn down, which an actor that
  // does not stop may hold until the teardown limit.
  opts.on_result = [&](const run_result& r) {
    if (!r.home) {
      // The home node reports for the whole tree.
      std::cerr << "troupe: " << cmd.file << " (node " << cmd.node
                << "): " << r.outcome << '\n';
      std::cerr.flush();
      return;
    }
    if (cmd.report == "json")
      std::cout << report_json(t, r) << '\n';
    else if (cmd.report == "text")
      std::cout << to_text(r.report);
    else if (!opts.view)
      std::cerr << to_text(r.report);
    std::cerr << "troupe: " << cmd.file << ": " << r.outcome;
    if (r.report_missing)
      std::cerr << ", lost unknown\n";
    else
      std::cerr << ", lost " << r.lost << '\n';
    std::cout.flush();
    std::cerr.flush();
  };
  try {
    return run_topology(t, opts).exit_code;
  } catch (const run_error& e) {
    std::cerr << "troupe: " << e.what() << '\n';
    return exit_invalid;
  }
}

std::string check_duration(const std::string& text) {
  auto d = parse_duration(text);
  if (!d)
    return "not a duration: \"" + text + "\" (write e.g. \"250ms\", \"1s\")";
  if (*d <= caf::timespan{0})
    return "must be more than 0";
  return {};
}

int dispatch(int argc, char** argv) {
  CLI::App app{"troupe: runs supervised actor systems described in TOML "
               "topology files.",
               "troupe"};
  app.footer(exit_codes_text);
  app.set_version_flag("--version", std::string{"troupe " TROUPE_VERSION});
  app.require_subcommand(1, 1);

  std::vector<std::string> check_files;
  auto check_cmd = app.add_subcommand(
    "check", "Validate topology files without running them. Prints "
             "'FILE: ok (N actors, M supervisors)', or every error as "
             "file:line:column: message on stderr (exit 2).");
  check_cmd->add_option("FILE", check_files, "Topology files to validate")
    ->required();

  run_command run_cmd;
  auto run_sub = app.add_subcommand(
    "run", "Run a topology until its stream has drained (or SIGINT/SIGTERM: "
           "the first drains gracefully, a second cancels). Ends with a "
           "summary on stderr.");
  run_sub->footer(exit_codes_text);
  run_sub->add_option("FILE", run_cmd.file, "The topology file")
    ->required();
  run_sub
    ->add_option("--report", run_cmd.report,
                 "Print the final report on stdout: 'json' (per actor in, "
                 "out, dropped, errors, restarts, how it stopped; totals; "
                 "lost) or 'text'. Without it the text report goes to stderr "
                 "unless the live view is on.")
    ->check(CLI::IsMember({"json", "text"}));
  run_sub->add_option("--metrics", run_cmd.metrics,
                      "Serve Prometheus metrics at http://HOST:PORT/metrics "
                      "while running. PORT alone or :PORT binds 127.0.0.1; "
                      "port 0 picks a free one. The address bound is printed "
                      "on stderr.")
    ->type_name("HOST:PORT")
    ->check(CLI::Validator(
      [](const std::string& text) {
        return text.empty() ? std::string{"must not be empty"} : std::string{};
      },
      "HOST:PORT"));
  auto view_flag = run_sub->add_flag(
    "--view", run_cmd.view,
    "Show the live view on stderr even when it is not a terminal (then as "
    "plain timestamped blocks).");
  run_sub
    ->add_flag("--no-view", run_cmd.no_view,
               "No live view (by default it is shown when stderr is a "
               "terminal, redrawn in place).")
    ->excludes(view_flag);
  run_sub
    ->add_option("--node", run_cmd.node,
                 "Run only this node's part of a file with [nodes.NAME]: "
                 "the home node (the root supervisor's) runs the tree and "
                 "reports on all of it; another node runs what is placed on "
                 "it until the home node ends the run. Without it every "
                 "node's actors run in this process.")
    ->type_name("NAME");
  run_sub
    ->add_option("--view-interval", run_cmd.view_interval,
                 "How often the live view is redrawn, e.g. 500ms, 2s.")
    ->capture_default_str()
    ->check(CLI::Validator(check_duration, "DURATION"));

  std::string graph_file;
  auto graph_cmd = app.add_subcommand(
    "graph", "Print the topology as Graphviz DOT on stdout: actors shaped "
             "by kind, data edges solid, service edges dashed, one cluster "
             "per supervisor. E.g. troupe graph f.toml | dot -Tsvg > f.svg");
  graph_cmd->add_option("FILE", graph_file, "The topology file")
    ->required();

  auto kinds_cmd = app.add_subcommand(
    "kinds", "List the kinds an actor may have in a file, with what each "
             "does.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto code = app.exit(e);
    return code == 0 ? 0 : exit_invalid;
  }
  if (*check_cmd)
    return check(check_files);
  if (*run_sub)
    return run(run_cmd);
  if (*graph_cmd)
    return graph(graph_file);
  if (*kinds_cmd)
    return list_kinds();
  return exit_invalid;
}

} // namespace

int tool_main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "troupe: internal error: " << e.what() << '\n';
    return 1;
  }
}

} // namespace troupe
