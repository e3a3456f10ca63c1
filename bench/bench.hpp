#pragma once

// What the workloads of the benchmark program share: the definitions of
// ../shared/bench/SPEC.md (splitmix64, checksums), one result line, and the
// table of workloads. Each workload runs on troupe's public patterns, as a
// user would write it; its baseline (baseline/) runs on plain CAF actors.

#include <troupe/actors/system.hpp>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/scoped_actor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace troupe::bench {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// `rounds` times splitmix64, starting from x.
inline uint64_t mix_rounds(uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i)
    x = splitmix64(x);
  return x;
}

/// The reference's Rng: the splitmix64 sequence from a seed (`state` clients).
inline uint64_t next_random(uint64_t& x) {
  x += 0x9E3779B97F4A7C15ull;
  auto z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The value a `state` set writes for a key: per key, so that the checksum
/// does not depend on how the clients interleave.
inline uint64_t state_value_of(uint64_t key) {
  return splitmix64(key ^ 0x55555555ull);
}

/// A `pool` job: 16 rounds of splitmix64; in the skewed run every 100th job
/// also spins 20 us first.
uint64_t pool_job(uint64_t j, bool skewed);

using bench_clock = std::chrono::steady_clock;

inline double seconds_between(bench_clock::time_point a, bench_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// One line of output (one workload run).
struct result {
  std::string impl = "troupe";
  std::string workload;
  uint64_t items = 0;
  double seconds = 0;
  uint64_t checksum = 0;
  uint64_t lost = 0;
  /// Extra fields in order, values already formatted as JSON.
  std::vector<std::pair<std::string, std::string>> extra;

  void add(std::string key, double value);
  void add(std::string key, uint64_t value);
  void add(std::string key, std::string value); // a JSON string
  std::string to_json() const;
};

struct options {
  bool quick = false;
  /// Also run the plain CAF baseline of each workload (impl "caf").
  bool baseline = false;
  /// Item counts of SPEC.md, divided by 20 with --quick.
  uint64_t scaled(uint64_t n) const {
    return quick ? n / 20 : n;
  }
};

/// A workload appends one or more results (e.g. pool and pool_skewed).
using workload_function = std::function<void(const options&, std::vector<result>&)>;

struct workload {
  std::string name;
  workload_function run;
  /// The same workload on plain CAF actors (impl "caf"); empty if none.
  workload_function baseline;
};

/// Every workload, in the order of SPEC.md.
std::vector<workload> all_workloads();

void pipeline_items(const options& opts, std::vector<result>& out);
void fanout_items(const options& opts, std::vector<result>& out);
void batcher_throughput(const options& opts, std::vector<result>& out);
void batcher_latency(const options& opts, std::vector<result>& out);
void limiter_accuracy(const options& opts, std::vector<result>& out);
void breaker_calls(const options& opts, std::vector<result>& out);
void breaker_trip(const options& opts, std::vector<result>& out);
void pool_jobs(const options& opts, std::vector<result>& out);
void state_ops(const options& opts, std::vector<result>& out);
void shutdown_units(const options& opts, std::vector<result>& out);
void spawn_idle(const options& opts, std::vector<result>& out);
void remote_items(const options& opts, std::vector<result>& out);

/// The second process of `remote` (troupe-bench --remote-sink CREDIT PID,
/// not listed in --help): publishes a sink on a node and prints its port.
int remote_sink_main(int argc, char** argv);

/// A troupe system that uses every core, as SPEC.md asks.
system_settings bench_settings();

/// Progress for people, on stderr.
void progress(const std::string& line);

/// The rest of `breaker_trip` once the breaker opened at `opened_at` (ns)
/// after `until_open` failing calls, the service now succeeding: one call per
/// ms until one is let through (the half-open probe), then 100 calls that must
/// pass. `call(k, value)` makes one call, tells whether it passed and counts
/// it in `calls`. Fills in `r` from `start` on.
void finish_breaker_trip(caf::scoped_actor& self,
                         const std::function<bool(uint64_t, uint64_t&)>& call,
                         const uint64_t& calls, uint64_t until_open,
                         int64_t opened_at, bench_clock::time_point start,
                         result& r);

/// What a driver's sink sends it once its stream has ended, with what it
/// counted: (done_atom, ...), the fields depending on the workload.
using done_atom = caf::atom_constant<caf::atom("benchdone")>;

using all_started_atom = caf::atom_constant<caf::atom("allstart")>;
using all_stopped_atom = caf::atom_constant<caf::atom("allstop")>;

/// What the `spawn` workloads count as their N idle actors start and stop;
/// the actor that reaches N tells the driver.
struct spawn_tally {
  uint64_t n = 0;
  caf::actor driver;
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> stopped{0};
  std::atomic<uint64_t> id_sum{0};
};

/// The figures of a `limiter` line from the times items were let through
/// and the items in arrival order at the sink: what passed within `window`
/// of the first, its sum, the rate, and the most let through in any 10 ms.
void limiter_figures(result& r, const std::vector<int64_t>& pass_stamps,
                     const std::vector<uint64_t>& values, double rate, double burst,
                     std::chrono::seconds window);

/// Nearest-rank percentile `p` of sorted nanoseconds, in milliseconds.
double percentile_ms(const std::vector<int64_t>& sorted, double p);

/// A field of /proc/self/status in kB; 0 if absent.
uint64_t status_kb(const std::string& key);

/// Resets VmHWM to the current RSS (Linux >= 4.0); false if not possible.
bool reset_peak_rss();

/// The plain CAF actor baselines (baseline/): the same workloads written
/// with CAF alone, to show what troupe's patterns cost.
namespace baseline {

void pipeline_items(const options& opts, std::vector<result>& out);
void fanout_items(const options& opts, std::vector<result>& out);
void pool_jobs(const options& opts, std::vector<result>& out);
void batcher_throughput(const options& opts, std::vector<result>& out);
void batcher_latency(const options& opts, std::vector<result>& out);
void limiter_accuracy(const options& opts, std::vector<result>& out);
void breaker_calls(const options& opts, std::vector<result>& out);
void breaker_trip(const options& opts, std::vector<result>& out);
void state_ops(const options& opts, std::vector<result>& out);
void shutdown_units(const options& opts, std::vector<result>& out);
void spawn_idle(const options& opts, std::vector<result>& out);
void remote_items(const options& opts, std::vector<result>& out);

/// The second process of the baseline `remote` (--remote-sink-caf PID).
int remote_sink_main(int argc, char** argv);

} // namespace baseline

} // namespace troupe::bench

#include <troupe/actors/stage.hpp>
#include <troupe/patterns/pipeline.hpp>

#include <memory>

namespace troupe::bench {

/// Nanoseconds on the steady clock, as messages carry them.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           bench_clock::now().time_since_epoch())
    .count();
}

/// A greedy source of the integers 0..n-1 (as uint64 items), as fast as
/// credit allows; stores when the first one entered.
produce_function count_to(uint64_t n, std::shared_ptr<int64_t> first_ns);

/// Items inside a pipeline (+1 at the source, -1 at the sink), for
/// `max_in_flight` as the reference counts it.
struct flight_gauge {
  std::atomic<int64_t> now{0};
  int64_t peak = 0; // written by the source only
};

/// The steps of `pipeline` before its sink: a source of 0..n-1 (stamping
/// `first` as the first item enters, counting into `gauge`), validate,
/// transform, enrich. `remote` puts its sink in another process.
std::vector<pipeline_step> pipeline_front(uint64_t n, std::shared_ptr<int64_t> first,
                                          std::shared_ptr<flight_gauge> gauge);

/// How long a stream workload may run before it counts as hung: far beyond
/// any full run, so that only a broken one reaches it.
inline const auto bench_patience = std::chrono::minutes(5);

/// Items lost for a `lost` field: any difference from `expected`, so that
/// duplicates cannot wrap around to a huge number or cancel out losses.
inline uint64_t count_lost(uint64_t expected, uint64_t got) {
  return got <= expected ? expected - got : got - expected;
}

/// Puts a second run of the same items (another way to configure the
/// pattern) into `main` as extra fields `<name>_per_s` and
/// `<name>_checksum_ok`; its lost items, and a checksum that differs, count
/// in `main.lost`.
inline void add_side_run(result& main, const result& other, const std::string& name) {
  bool same = other.checksum == main.checksum;
  main.add(name + "_per_s", static_cast<double>(other.items) / other.seconds);
  main.add(name + "_checksum_ok", std::string{same ? "yes" : "no"});
  main.lost += other.lost + (same ? 0 : 1);
}

/// Fills in what a counting sink says once its stream has ended (its
/// count, sum and end time): items, checksum, lost against `expected`, and
/// the seconds from the first item (`first_ns`) to `end_ns`.
inline void record_done(result& r, uint64_t expected, uint64_t count,
                        uint64_t sum, int64_t first_ns, int64_t end_ns) {
  r.items = count;
  r.checksum = sum;
  r.lost = count_lost(expected, count);
  r.seconds = static_cast<double>(end_ns - first_ns) / 1e9;
}

} // namespace troupe::bench
