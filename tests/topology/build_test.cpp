#include "fixture.hpp"
#include "topology/loader_fixture.hpp"

#include <troupe/supervision/supervisor.hpp>
#include <troupe/topology/topology.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>

namespace troupe {

namespace {

using ended_atom = caf::atom_constant<caf::atom("ended")>;

struct build_fixture : test::system_fixture, test::loader_fixture {
  /// Tells the test's scoped actor which stream actor ended.
  std::function<void(const std::string&)> report_ends() {
    auto me = caf::actor_cast<caf::actor>(self);
    return [me](const std::string& name) {
      caf::anon_send(me, ended_atom::value, name);
    };
  }

  std::string next_end() {
    std::string result;
    self->receive([&](ended_atom, const std::string& name) { result = name; },
                  caf::after(test::patience) >> [] {
                    BOOST_FAIL("no stream actor ended");
                  });
    return result;
  }

  static std::vector<std::string> names(const supervisor_spec& spec) {
    std::vector<std::string> result;
    for (auto& c : spec.children)
      result.push_back(c.name);
    return result;
  }
};

using names_t = std::vector<std::string>;

} // namespace

BOOST_FIXTURE_TEST_SUITE(build, build_fixture)

BOOST_AUTO_TEST_CASE(a_loaded_topology_runs_every_item_to_its_sink) {
  auto t = load(R"(
[supervisors.ingest]

[actors.source]
kind = "test_source"
supervisor = "ingest"
count = 2000
next = "stage"

[actors.stage]
kind = "test_stage"
next = ["sink", "other"]

[actors.sink]
kind = "test_sink"

[actors.other]
kind = "test_sink"

[actors.db]
kind = "test_service"
)");
  auto root = spawn_supervisor(sys, build_supervision(t, report_ends()));
  std::multiset<std::string> ended;
  for (int i = 0; i < 4; ++i)
    ended.insert(next_end());
  BOOST_CHECK((ended == std::multiset<std::string>{"source", "stage", "sink",
                                                   "other"}));
  BOOST_CHECK_EQUAL(counters->sink_items.load(), 4000u);
  auto report = request_report(root, caf::make_message(drain_atom::value));
  auto sink = test::find_report(report, "sink");
  BOOST_REQUIRE(sink);
  BOOST_CHECK_EQUAL(sink->in, 2000u);
  BOOST_CHECK(sink->stopped == stop_reason::completed);
  BOOST_REQUIRE(test::find_report(report, "ingest"));
  BOOST_CHECK(test::find_report(report, "db"));
}

BOOST_AUTO_TEST_CASE(services_resolve_to_their_stable_address) {
  auto t = load(R"(
[actors.source]
kind = "test_source"
count = 0
next = "front"

[actors.front]
kind = "test_front"
service = "db"
next = "sink"

[actors.sink]
kind = "test_sink"

[actors.db]
kind = "test_service"
)");
  auto wired = std::make_shared<std::vector<wiring>>();
  auto mutex = std::make_shared<std::mutex>();
  auto& front = const_cast<actor_decl&>(*t.find_actor("front"));
  auto start = front.start;
  front.start = [=](const spawn_context& ctx, const wiring& w) {
    {
      std::lock_guard<std::mutex> guard{*mutex};
      wired->push_back(w);
    }
    return start(ctx, w);
  };
  auto root = spawn_supervisor(sys, build_supervision(t));
  auto db = address_of(root, "db");
  status(root); // a round trip: every child has started
  std::lock_guard<std::mutex> guard{*mutex};
  BOOST_REQUIRE_EQUAL(wired->size(), 1u);
  auto& w = wired->front();
  BOOST_REQUIRE_EQUAL(w.services.size(), 1u);
  BOOST_CHECK(w.services[0] == db);
  BOOST_REQUIRE_EQUAL(w.links.next.size(), 1u);
  BOOST_CHECK(w.links.next[0] == address_of(root, "sink"));
  BOOST_CHECK_EQUAL(w.links.inputs, 1u);
  BOOST_CHECK_EQUAL(w.links.kind, "test_front");
  self->request(db, test::patience, uint64_t{7})
    .receive([](uint64_t x) { BOOST_CHECK_EQUAL(x, 7u); }, fail_on_error());
  request_report(root, caf::make_message(cancel_atom::value));
}

// The window each of `names` is started with, filled in as they start.
std::shared_ptr<std::map<std::string, uint32_t>>
record_credits(topology& t, std::initializer_list<const char*> names) {
  auto seen = std::make_shared<std::map<std::string, uint32_t>>();
  auto mutex = std::make_shared<std::mutex>();
  for (auto name : names) {
    auto& decl = const_cast<actor_decl&>(*t.find_actor(name));
    auto start = decl.start;
    decl.start = [=, n = std::string{name}](const spawn_context& ctx,
                                             const wiring& w) {
      {
        std::lock_guard<std::mutex> guard{*mutex};
        (*seen)[n] = w.links.credit;
      }
      return start(ctx, w);
    };
  }
  return seen;
}

BOOST_AUTO_TEST_CASE(credit_comes_from_the_actor_or_the_system) {
  auto t = load(R"(
[system]
credit = 32
[actors.source]
kind = "test_source"
next = ["a", "b"]
[actors.a]
kind = "test_sink"
credit = 8
[actors.b]
kind = "test_sink"
)");
  auto spec = build_supervision(t);
  BOOST_CHECK_EQUAL(t.find_actor("a")->credit, 8u);
  BOOST_CHECK_EQUAL(t.find_actor("b")->credit, 0u);
  auto seen = record_credits(t, {"a", "b"});
  auto root = spawn_supervisor(sys, build_supervision(t, report_ends()));
  for (int i = 0; i < 3; ++i)
    next_end();
  BOOST_CHECK_EQUAL((*seen)["a"], 8u);
  BOOST_CHECK_EQUAL((*seen)["b"], 32u);
  request_report(root, caf::make_message(drain_atom::value));
}

BOOST_AUTO_TEST_CASE(what_an_actor_names_starts_before_it) {
  auto t = load(R"(
[actors.source]
kind = "test_source"
next = "mid"
[actors.db]
kind = "test_service"
[actors.mid]
kind = "test_front"
service = "db"
next = "sink"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK((names(build_supervision(t))
               == names_t{"db", "sink", "mid", "source"}));
}

BOOST_AUTO_TEST_CASE(unrelated_actors_keep_file_order) {
  auto t = load(R"(
[actors.a]
kind = "test_service"
[actors.source]
kind = "test_source"
next = "sink"
[actors.b]
kind = "test_service"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK((names(build_supervision(t))
               == names_t{"a", "b", "sink", "source"}));
}

BOOST_AUTO_TEST_CASE(a_nested_supervisor_starts_after_what_its_subtree_names) {
  auto t = load(R"(
[supervisors.front]
[supervisors.inner]
parent = "front"
[actors.source]
kind = "test_source"
supervisor = "inner"
next = "sink"
[actors.sink]
kind = "test_sink"
)");
  auto spec = build_supervision(t);
  BOOST_CHECK((names(spec) == names_t{"sink", "front"}));
}

BOOST_AUTO_TEST_CASE(a_cycle_starts_in_file_order_after_what_it_names) {
  auto t = load(R"(
[actors.source]
kind = "test_source"
next = "b"
[actors.a]
kind = "test_loop"
next = ["b", "sink"]
[actors.b]
kind = "test_loop"
next = "a"
[actors.sink]
kind = "test_sink"
)");
  BOOST_CHECK((names(build_supervision(t))
               == names_t{"sink", "a", "b", "source"}));
}

BOOST_AUTO_TEST_CASE(the_supervision_tree_follows_the_file) {
  auto t = load(R"(
[supervisor]
name = "top"
strategy = "rest_for_one"
stop_order = "concurrent"
max_restarts = 7
[supervisors.ingest]
strategy = "one_for_all"
restart = "transient"
shutdown = "3s"
[actors.source]
kind = "test_source"
supervisor = "ingest"
next = "sink"
restart = "transient"
shutdown = "2s"
[actors.sink]
kind = "test_sink"
)");
  auto spec = build_supervision(t);
  BOOST_CHECK_EQUAL(spec.name, "top");
  BOOST_CHECK(spec.strategy == restart_strategy::rest_for_one);
  BOOST_CHECK(spec.stop_order == stop_order::concurrent);
  BOOST_CHECK_EQUAL(spec.intensity.max_restarts, 7);
  BOOST_REQUIRE_EQUAL(spec.children.size(), 2u);
  auto& ingest = spec.children[1];
  BOOST_CHECK_EQUAL(ingest.name, "ingest");
  BOOST_CHECK(ingest.restart == restart_type::transient);
  BOOST_CHECK(ingest.shutdown == caf::timespan{std::chrono::seconds(3)});
  BOOST_CHECK_NO_THROW(validate(spec));
}

BOOST_AUTO_TEST_CASE(a_large_file_loads_and_builds_in_linear_time) {
  // A chain of 2000 nested supervisors, and under the deepest one a chain of
  // 20000 actors whose sink is at the root. Work per actor that walked the
  // graph or the tree made such files take minutes (the stream flags: 95 s
  // for 20000 actors; the start order: 23 s for 3000 nested supervisors, and
  // more with the actors deep down); linear, this one takes a fraction of a
  // second. The bound is generous: it fails only on such a regression.
  constexpr size_t actors = 20000;
  constexpr size_t depth = 2000;
  std::string text;
  for (size_t s = 1; s <= depth; ++s)
    text += "[supervisors.s" + std::to_string(s) + "]\nparent = \""
            + (s == 1 ? std::string{"root"} : "s" + std::to_string(s - 1)) + "\"\n";
  for (size_t i = 0; i < actors; ++i) {
    auto kind = i == 0 ? "test_source" : i + 1 == actors ? "test_sink" : "test_stage";
    text += "[actors.a" + std::to_string(i) + "]\nkind = \"" + kind + "\"\n";
    if (i + 1 < actors)
      text += "next = \"a" + std::to_string(i + 1) + "\"\nsupervisor = \"s"
              + std::to_string(depth) + "\"\n";
  }
  auto began = std::chrono::steady_clock::now();
  auto t = load(text);
  auto spec = build_supervision(t);
  auto took = std::chrono::steady_clock::now() - began;
  BOOST_CHECK_EQUAL(t.actors.size(), actors);
  BOOST_CHECK(std::all_of(t.actors.begin(), t.actors.end(),
                          [](const actor_decl& a) { return a.awaited; }));
  // The sink starts first: the subtree of s1 names it.
  BOOST_REQUIRE_EQUAL(spec.children.size(), 2u);
  BOOST_CHECK_EQUAL(spec.children[0].name, "a" + std::to_string(actors - 1));
  BOOST_CHECK_EQUAL(spec.children[1].name, "s1");
  BOOST_CHECK_MESSAGE(took < test::linear_load_bound,
                      "loading and building took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms");
}

namespace {

/// Records what build_supervision places elsewhere, and starts it here.
class recording_placement : public placement {
public:
  struct call {
    std::vector<std::string> candidates;
    std::string name;
    bool supervisor;
    std::vector<std::string> names;
  };

  explicit recording_placement(std::string here) : here_(std::move(here)) {
  }

  const std::string& here() const override {
    return here_;
  }

  child_factory place(std::vector<std::string> candidates, std::string name,
                      bool supervisor, std::vector<std::string> names,
                      child_factory local) override {
    calls.push_back(call{std::move(candidates), std::move(name), supervisor,
                         std::move(names)});
    return local;
  }

  child_factory spread(std::vector<std::string>, std::string, std::string,
                       child_factory local) override {
    return local;
  }

  std::vector<call> calls;

private:
  std::string here_;
};

} // namespace

BOOST_AUTO_TEST_CASE(children_on_other_nodes_are_placed_with_what_they_name) {
  auto t = load(R"(
[nodes.a]
port = 4000
[nodes.b]
port = 4001

[supervisors.far]
node = ["b", "a"]

[actors.source]
kind = "test_source"
supervisor = "far"
next = "probe"

[actors.probe]
kind = "test_front"
supervisor = "far"
next = "sink"
service = "db"

[actors.here]
kind = "test_sink"
node = "a"

[actors.sink]
kind = "test_sink"
supervisor = "far"

[actors.front]
kind = "test_front"
node = "b"
next = "here"
service = "db"

[actors.db]
kind = "test_service"
)");
  auto where = std::make_shared<recording_placement>("a");
  auto spec = build_supervision(t, {}, where);
  std::map<std::string, recording_placement::call> placed;
  for (auto& c : where->calls)
    placed.emplace(c.name, c);
  // `here` names this node only: started here without a detour.
  BOOST_CHECK_EQUAL(placed.size(), 2u);
  BOOST_REQUIRE_EQUAL(placed.count("far"), 1u);
  BOOST_CHECK(placed.at("far").supervisor);
  BOOST_CHECK((placed.at("far").candidates == names_t{"b", "a"}));
  // What its subtree names outside of it, for the home side to resolve.
  BOOST_CHECK((placed.at("far").names == names_t{"db"}));
  BOOST_REQUIRE_EQUAL(placed.count("front"), 1u);
  BOOST_CHECK(!placed.at("front").supervisor);
  BOOST_CHECK((placed.at("front").candidates == names_t{"b"}));
  BOOST_CHECK((placed.at("front").names == names_t{"here", "db"}));
  // On node b, the nested supervisor is built as it starts there: its
  // children have no node, so nothing is placed again.
  auto on_b = std::make_shared<recording_placement>("b");
  auto far = build_child(t, "far", {}, on_b);
  BOOST_CHECK_EQUAL(far.name, "far");
  BOOST_CHECK(on_b->calls.empty());
  BOOST_CHECK_THROW(build_child(t, "nobody", {}, on_b), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(links_from_another_node_get_the_remote_credit) {
  auto t = load(R"(
[system]
credit = 32
remote_credit = 4096
[nodes.a]
port = 4000
[nodes.b]
port = 4001
[actors.source]
kind = "test_source"
next = ["near", "far", "pinned"]
[actors.near]
kind = "test_sink"
[actors.far]
kind = "test_sink"
node = ["b", "a"]
[actors.pinned]
kind = "test_sink"
node = "b"
credit = 8
)");
  auto seen = record_credits(t, {"near", "far", "pinned"});
  // Every factory is the local one: the windows are what is under test.
  auto where = std::make_shared<recording_placement>("a");
  auto root = spawn_supervisor(sys, build_supervision(t, report_ends(), where));
  for (int i = 0; i < 4; ++i)
    next_end();
  BOOST_CHECK_EQUAL((*seen)["near"], 32u);
  BOOST_CHECK_EQUAL((*seen)["far"], 4096u);
  BOOST_CHECK_EQUAL((*seen)["pinned"], 8u);
  request_report(root, caf::make_message(drain_atom::value));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace troupe
