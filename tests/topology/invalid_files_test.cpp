#include "topology/loader_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#ifndef TROUPE_INVALID_TOPOLOGIES
#  error "the build passes the folder of invalid files as TROUPE_INVALID_TOPOLOGIES"
#endif

namespace troupe {

using test::loader_fixture;

namespace {

struct expectation {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string text;
};

// From the first line: "# error: LINE:COL: TEXT". Read with a stream, not
// std::regex: g++ 12 warns about std::regex's internals under the sanitizers.
std::optional<expectation> expected_error(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string first;
  std::getline(in, first);
  const std::string prefix = "# error: ";
  if (first.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  std::istringstream fields{first.substr(prefix.size())};
  expectation e;
  char colon1 = 0;
  char colon2 = 0;
  if (!(fields >> e.line >> colon1 >> e.column >> colon2) || colon1 != ':'
      || colon2 != ':')
    return std::nullopt;
  std::getline(fields >> std::ws, e.text);
  if (e.text.empty())
    return std::nullopt;
  return e;
}

std::vector<std::string> invalid_file_paths() {
  std::vector<std::string> result;
  for (auto& entry :
       std::filesystem::directory_iterator(TROUPE_INVALID_TOPOLOGIES))
    if (entry.path().extension() == ".toml")
      result.push_back(entry.path().string());
  std::sort(result.begin(), result.end());
  return result;
}

const char* valid_file = R"(# a topology with every section
[system]
threads = 2
credit = 64
shutdown = "10s"

[supervisor]
name = "top"
strategy = "one_for_all"
max_restarts = 5
period = "2s"

[supervisors.ingest]
restart = "transient"

[nodes.a]
host = "10.0.0.1"
port = 4242

[actors.source]
kind = "test_source"
supervisor = "ingest"
count = 5
rate = "5000/s"
next = "front"

[actors.front]
kind = "test_front"
service = "db"
credit = 16
next = ["sink", "other"]
node = "a"

[actors.sink]
kind = "test_sink"

[actors.other]
kind = "test_sink"
shutdown = "1s"

[actors.db]
kind = "test_pool"
worker = { kind = "test_service", delay = "1ms" }
)";

// The same with the built-in kinds, whose parse functions see the bytes too.
const char* valid_builtin_file = R"(# built-in kinds
[system]
threads = 2

[supervisor]
strategy = "rest_for_one"

[supervisors.ingest]
restart = "transient"

[actors.source]
kind = "generator"
supervisor = "ingest"
count = 50
rate = "5000/s"
next = "limit"

[actors.limit]
kind = "limiter"
rate = "1000/s"
burst = 10
next = "front"

[actors.front]
kind = "breaker"
service = "workers"
consecutive_failures = 3
next = ["sink", "tally"]

[actors.workers]
kind = "pool"
workers = 2
worker = { kind = "hash_service", rounds = 10, skew_every = 5, skew_factor = 2 }

[actors.tally]
kind = "state_count"
service = "store"
by_item = true
next = "out"

[actors.store]
kind = "state"
shards = 2

[actors.out]
kind = "file"
path = "/tmp/out.txt"

[actors.sink]
kind = "counter"
)";

// Every truncation of `valid`, random edits of it, and noise: each gives
// topology_errors with messages, or a topology, and nothing else.
void garbage_gives_only_topology_errors(const std::string& valid,
                                        const kind_registry& registry) {
  std::mt19937 rng{20240605};
  auto outcome = [&](const std::string& text) {
    try {
      parse_topology(text, "g.toml", registry);
    } catch (const topology_errors& e) {
      for (auto& x : e.errors())
        if (x.message.empty())
          return std::string{"an empty message"};
    } catch (const std::exception& e) {
      return std::string{"threw: "} + e.what();
    } catch (...) {
      return std::string{"threw something else"};
    }
    return std::string{};
  };
  // Every truncation.
  for (size_t n = 0; n <= valid.size(); ++n) {
    auto result = outcome(valid.substr(0, n));
    BOOST_CHECK_MESSAGE(result.empty(), "truncated at " << n << ": " << result);
  }
  // Random bytes changed, inserted or removed.
  for (int i = 0; i < 3000; ++i) {
    auto text = valid;
    auto edits = 1 + rng() % 4;
    for (unsigned k = 0; k < edits; ++k) {
      auto at = rng() % (text.size() + 1);
      auto byte = static_cast<char>(rng() % 256);
      switch (rng() % 3) {
        case 0:
          if (at < text.size())
            text[at] = byte;
          break;
        case 1:
          text.insert(at, 1, byte);
          break;
        default:
          if (at < text.size())
            text.erase(at, 1);
      }
    }
    auto result = outcome(text);
    BOOST_CHECK_MESSAGE(result.empty(), "mutation " << i << ": " << result);
  }
  // Plain noise, and noise made of TOML's own characters.
  const std::string toml_chars = "[]{}=\"'.,#\n \tabc123_-+:";
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 300, '\0');
    for (auto& c : text)
      c = i % 2 == 0 ? static_cast<char>(rng() % 256)
                     : toml_chars[rng() % toml_chars.size()];
    auto result = outcome(text);
    BOOST_CHECK_MESSAGE(result.empty(), "noise " << i << ": " << result);
  }
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(invalid_files, loader_fixture)

BOOST_AUTO_TEST_CASE(each_invalid_file_reports_its_error_at_its_position) {
  auto files = invalid_file_paths();
  BOOST_CHECK_GE(files.size(), 30u);
  for (auto& path : files) {
    BOOST_TEST_CONTEXT(path) {
      auto expected = expected_error(path);
      BOOST_REQUIRE_MESSAGE(expected, "no '# error: LINE:COL: TEXT' line");
      std::vector<topology_error> errors;
      try {
        load_topology(path, registry);
      } catch (const topology_errors& e) {
        errors = e.errors();
      }
      std::string listed;
      bool found = false;
      for (auto& e : errors) {
        listed += "\n  " + e.render();
        found = found
                || (e.where.file == path && e.where.line == expected->line
                    && e.where.column == expected->column
                    && e.message.find(expected->text) != std::string::npos);
      }
      BOOST_CHECK_MESSAGE(found, "expected " << expected->line << ":"
                                             << expected->column << ": "
                                             << expected->text
                                             << "\ngot:" << listed);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_valid_files_of_the_garbage_test_are_valid) {
  BOOST_CHECK_NO_THROW(parse_topology(valid_file, "v.toml", registry));
  BOOST_CHECK_NO_THROW(parse_topology(valid_builtin_file, "v.toml", kinds()));
}

BOOST_AUTO_TEST_CASE(garbage_bytes_give_only_topology_errors) {
  struct variant {
    const char* name;
    std::string valid;
    const kind_registry* kinds;
  };
  for (auto& v : {variant{"test kinds", valid_file, &registry},
                  variant{"built-in kinds", valid_builtin_file, &troupe::kinds()}})
    BOOST_TEST_CONTEXT(v.name) {
      garbage_gives_only_topology_errors(v.valid, *v.kinds);
    }
}

BOOST_AUTO_TEST_CASE(deeply_nested_values_are_an_error_not_a_crash) {
  auto text = "[actors.a]\nkind = \"test_sink\"\nx = " + std::string(100000, '[');
  BOOST_CHECK_THROW(parse_topology(text, "deep.toml", registry),
                    topology_errors);
  auto tables = "a = " + std::string(100000, '{');
  BOOST_CHECK_THROW(parse_topology(tables, "deep.toml", registry),
                    topology_errors);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
