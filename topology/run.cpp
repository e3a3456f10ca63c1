#include "troupe/topology/run.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/system.hpp"
#include "troupe/supervision/shutdown.hpp"
#include "troupe/supervision/supervisor.hpp"
#include "troupe/topology/cluster.hpp"
#include "troupe/topology/duration.hpp"
#include "troupe/topology/live_view.hpp"
#include "troupe/topology/metrics.hpp"
#include "troupe/topology/report_tree.hpp"
#include "troupe/topology/signal_thread.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <thread>
#include <sys/ioctl.h>
#include <unistd.h>

namespace troupe {

namespace {

/// A SIGINT or SIGTERM, from the signal thread.
using signal_atom = caf::atom_constant<caf::atom("signal")>;

/// The root's status for a frame of the live view, or why there is none.
using frame_atom = caf::atom_constant<caf::atom("frame")>;

using clock_type = std::chrono::steady_clock;

/// How much longer than its deadline the root may take to answer a drain or
/// a cancel before the runner escalates (cancel, then kill, then give up).
constexpr auto answer_margin = std::chrono::seconds(5);

/// How long the runner waits at a time when nothing is due.
constexpr auto idle_wait = std::chrono::hours(1);

/// The least a status request for the live view may take: shorter view
/// intervals would turn every frame into a timeout.
constexpr auto least_status_timeout = std::chrono::milliseconds(100);

system_settings settings_of(const system_decl& decl) {
  system_settings result;
  result.scheduler_threads = decl.threads;
  if (decl.credit > 0)
    result.default_credit = decl.credit;
  result.shutdown_deadline = decl.shutdown;
  return result;
}

enum class phase {
  running,    // waiting for the stream to end or a signal
  draining,   // asked the root to drain
  cancelling, // asked the root to cancel (a second signal, or an overdue drain)
  killing,    // the root ignored a cancel: killed, waiting for its report
};

// Waits for the end of a run, asks the root to drain or cancel when it is
// time, and draws the live view meanwhile.
class runner {
public:
  runner(const topology& t, const run_options& opts, caf::scoped_actor& self,
         caf::actor root)
    : t_(t), opts_(opts), self_(self), root_(std::move(root)) {
    for (auto& a : t.actors)
      if (a.awaited)
        streaming_.insert(a.name);
    // Actors and nested supervisors by where the file declares them.
    auto rank = [](const source_position& p) {
      return size_t{p.line} << 32 | p.column;
    };
    for (auto& a : t.actors)
      ranks_.emplace(a.name, rank(a.where));
    for (auto& s : t.supervisors)
      ranks_.emplace(s.name, rank(s.where));
    if (opts.view) {
      view_.emplace(*opts.view, opts.view_in_place, "troupe run " + t.file);
      next_frame_ = clock_type::now();
    }
    if (streaming_.empty())
      say("no stream in " + t.file + ": running until a signal");
  }

  run_result wait() {
    while (!final_ && !abandoned_) {
      auto delay = caf::timespan{idle_wait};
      if (auto wake = next_wake()) {
        auto now = clock_type::now();
        delay = *wake > now ? caf::timespan{*wake - now} : caf::timespan{0};
      }
      self_->receive(
        [this](stream_end_atom, const std::string& name) {
          on_stream_end(name);
        },
        [this](signal_atom, int sig) { on_signal(sig); },
        [this](actor_report& r) { final_ = std::move(r); },
        [this](frame_atom, actor_report& status) {
          frame_pending_ = false;
          draw(status);
        },
        [this](frame_atom, const std::string& why) {
          frame_pending_ = false;
          if (view_)
            view_->draw_unavailable(why, clock_type::now());
        },
        [this](caf::down_msg& x) {
          if (x.source == root_.address() && !root_down_) {
            root_down_ = true;
            bound_ = clock_type::now() + answer_margin;
          }
        },
        caf::after(delay) >> [] {});
      // After any message too, so that a busy mailbox delays nothing due.
      on_timeout();
    }
    return result();
  }

  /// Whether it stopped waiting for a root that did not report.
  bool abandoned() const noexcept {
    return abandoned_;
  }

private:
  std::optional<clock_type::time_point> next_wake() const {
    std::optional<clock_type::time_point> result;
    auto consider = [&](const std::optional<clock_type::time_point>& t) {
      if (t && (!result || *t < *result))
        result = t;
    };
    consider(next_frame_);
    consider(bound_);
    return result;
  }

  // Does what is due: a frame of the view, an escalation.
  void on_timeout() {
    auto now = clock_type::now();
    if (bound_ && now >= *bound_)
      overdue();
    if (next_frame_ && now >= *next_frame_) {
      ask_for_frame();
      // A zero or negative interval would redraw without a pause.
      next_frame_ = clock_type::now()
                    + std::max(opts_.view_interval,
                               caf::timespan{std::chrono::milliseconds(10)});
    }
  }

  void on_stream_end(const std::string& name) {
    if (streaming_.erase(name) == 0 || !streaming_.empty()
        || phase_ != phase::running)
      return;
    say("the stream ended: draining");
    drain();
  }

  void on_signal(int sig) {
    auto name = std::string(sig == SIGINT ? "SIGINT" : "SIGTERM");
    switch (phase_) {
      case phase::running:
        say(name + ": shutting down gracefully (again to cancel)");
        by_signal_ = true;
        drain();
        break;
      case phase::draining:
        // The stream ended by itself: the first signal is no second one.
        if (!by_signal_ && !signalled_in_drain_) {
          signalled_in_drain_ = true;
          say(name + ": the stream has ended and the drain is under way "
                     "(again to cancel)");
          break;
        }
        say(name + ": cancelling");
        cancel();
        break;
      default:
        break;
    }
  }

  void drain() {
    phase_ = phase::draining;
    caf::anon_send(root_, drain_atom::value, t_.system.shutdown);
    bound_ = clock_type::now() + t_.system.shutdown + answer_margin;
  }

  void cancel() {
    phase_ = phase::cancelling;
    caf::anon_send<caf::message_priority::high>(root_, cancel_atom::value);
    bound_ = clock_type::now() + t_.system.shutdown + answer_margin;
  }

  // The root did not answer in time: escalate one step.
  void overdue() {
    if (root_down_ || phase_ == phase::killing) {
      say("no final report from the root supervisor: giving up on it");
      abandoned_ = true;
      return;
    }
    if (phase_ == phase::draining) {
      say("the drain overran its deadline: cancelling");
      overran_ = true;
      cancel();
      return;
    }
    say("the root supervisor does not stop: killing it");
    phase_ = phase::killing;
    caf::anon_send_exit(root_, caf::exit_reason::kill);
    bound_ = clock_type::now() + answer_margin;
  }

  // Children of supervisors in file order; what a pattern supervises
  // itself keeps its order.
  void in_file_order(actor_report& r) const {
    order_children(r, [this](const report_row& row) {
      auto unranked = std::numeric_limits<size_t>::max();
      std::string name;
      if (auto decl = declared_actor(t_, row))
        name = decl->name;
      else if (row.report->kind == "supervisor")
        name = row.report->name;
      else
        return unranked;
      auto i = ranks_.find(name);
      return i != ranks_.end() ? i->second : unranked;
    });
  }

  // Asks the root for its status on behalf of the view, without waiting: an
  // actor of its own forwards the answer (or why there is none) as a
  // frame_atom message, so that signals and the stream's end are taken
  // while the root is slow to answer. A frame whose request is still out
  // is skipped.
  void ask_for_frame() {
    if (!view_ || frame_pending_)
      return;
    frame_pending_ = true;
    auto timeout = std::max(opts_.view_interval,
                            caf::timespan{least_status_timeout});
    auto runner = caf::actor_cast<caf::actor>(self_);
    // What it needs travels as spawn arguments: CAF 0.17 trips UBSan when a
    // spawned function takes no arguments besides its self pointer.
    auto ask = [](caf::event_based_actor* asker, caf::actor root,
                  caf::actor runner, caf::timespan timeout) {
      asker->request(root, timeout, status_atom::value)
        .then(
          [asker, runner](actor_report& r) {
            asker->send(runner, frame_atom::value, std::move(r));
          },
          [asker, runner](caf::error& e) {
            asker->send(runner, frame_atom::value, asker->system().render(e));
          });
    };
    self_->system().spawn(ask, root_, runner, timeout);
  }

  // Rows without a report of their own, then the declared kinds and the
  // file's order, as every view of a report shows it.
  std::set<std::string> prepare(actor_report& r) const {
    std::set<std::string> no_data;
    for (auto& row : flatten(r))
      if (is_placeholder(row) && declared_actor(t_, row))
        no_data.insert(qualified_name(row));
    use_declared_kinds(t_, r);
    in_file_order(r);
    return no_data;
  }

  void draw(actor_report& status) {
    if (!view_)
      return;
    if (opts_.view_in_place && opts_.view == &std::cerr) {
      winsize size{};
      if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0)
        view_->set_width(size.ws_col);
    }
    auto no_data = prepare(status);
    view_->draw(status, clock_type::now(), no_data);
  }

  void say(const std::string& line) {
    if (view_ && opts_.log == opts_.view)
      view_->note("troupe: " + line);
    else if (opts_.log)
      *opts_.log << "troupe: " << line << std::endl;
  }

  run_result result() {
    run_result r;
    if (!final_) {
      r.exit_code = 1;
      r.outcome = "no final report from the root supervisor";
      r.report_missing = true;
      r.report.name = t_.root.name;
      r.report.kind = "supervisor";
      return r;
    }
    r.report = std::move(*final_);
    prepare(r.report);
    r.lost = total_lost(r.report);
    if (view_)
      view_->draw(r.report, clock_type::now());
    auto stopped = r.report.stopped;
    switch (phase_) {
      case phase::running:
        if (stopped == stop_reason::completed) {
          r.outcome = "completed";
        } else {
          r.exit_code = 1;
          r.outcome = "the root supervisor gave up";
          if (!r.report.error.empty())
            r.outcome += ": " + r.report.error;
        }
        break;
      case phase::draining:
        if (stopped == stop_reason::drained) {
          r.outcome = by_signal_ ? "drained after a signal" : "drained";
          // What a killed actor held did not drain: not a clean end.
          auto killed = totals(r.report).killed;
          if (killed > 0) {
            r.exit_code = 1;
            r.outcome += ", but " + std::to_string(killed)
                         + " killed at the deadline";
          }
        } else {
          r.exit_code = 1;
          r.outcome = "the root supervisor gave up while draining";
          if (!r.report.error.empty())
            r.outcome += ": " + r.report.error;
        }
        break;
      case phase::cancelling:
      case phase::killing:
        if (overran_) {
          r.exit_code = 1;
          r.outcome = "the drain overran its deadline and was cancelled";
        } else {
          r.exit_code = 130;
          r.outcome = "cancelled by a second signal";
        }
        break;
    }
    return r;
  }

  const topology& t_;
  const run_options& opts_;
  caf::scoped_actor& self_;
  caf::actor root_;
  std::set<std::string> streaming_;
  std::map<std::string, size_t> ranks_;
  std::optional<live_view> view_;
  std::optional<clock_type::time_point> next_frame_;
  /// When the root's answer is overdue (escalation), while one is awaited.
  std::optional<clock_type::time_point> bound_;
  phase phase_ = phase::running;
  /// A status request for the view is out.
  bool frame_pending_ = false;
  /// The drain was started by a signal (not by the stream's end).
  bool by_signal_ = false;
  /// A signal came during a drain the stream's end started.
  bool signalled_in_drain_ = false;
  bool overran_ = false;
  bool root_down_ = false;
  bool abandoned_ = false;
  std::optional<actor_report> final_;
};

/// Where the signal thread sends signals: the runner while it runs; once
/// the result is out, a signal ends the process (130), and one that comes
/// while the result is printed ends it when that is done.
class signal_target {
public:
  explicit signal_target(caf::actor runner) : runner_(std::move(runner)) {
  }

  void on_signal(int sig) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (runner_) {
      caf::anon_send(runner_, signal_atom::value, sig);
      return;
    }
    if (out_)
      exit_cancelled();
    signalled_ = true;
  }

  /// The runner is done; drops the handle, which must not outlive the
  /// actor system.
  void run_ended() {
    std::lock_guard<std::mutex> guard{mtx_};
    runner_ = nullptr;
  }

  void result_is_out() {
    std::lock_guard<std::mutex> guard{mtx_};
    out_ = true;
    if (signalled_)
      exit_cancelled();
  }

private:
  [[noreturn]] static void exit_cancelled() {
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(130);
  }

  std::mutex mtx_;
  caf::actor runner_;
  bool signalled_ = false;
  bool out_ = false;
};

std::string actors_phrase(size_t n) {
  return std::to_string(n) + (n == 1 ? " actor" : " actors");
}

/// Calls `on_overdue` on a thread of its own unless it is destroyed within
/// `limit` of its start.
class watchdog {
public:
  watchdog(caf::timespan limit, std::function<void()> on_overdue)
    : thread_([this, limit, on_overdue = std::move(on_overdue)] {
        std::unique_lock<std::mutex> guard{mtx_};
        if (!cv_.wait_for(guard, limit, [this] { return finished_; }))
          on_overdue();
      }) {
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  ~watchdog() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      finished_ = true;
      cv_.notify_all();
    }
    thread_.join();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread thread_;
};

/// Says why the process ends now, flushes and ends it.
[[noreturn]] void exit_now(std::ostream* log, const std::string& why,
                           int exit_code) {
  if (log)
    *log << "troupe: " << why << std::endl;
  std::cout.flush();
  std::cerr.flush();
  std::_Exit(exit_code);
}

/// Destroys `sys`, which waits for every actor to stop; if that takes longer
/// than `limit`, says so on `log` and exits the process with `exit_code`.
/// The system is destroyed on the calling thread: CAF's logger is held by
/// the thread that made the system, and its destructor waits for it.
void tear_down(std::unique_ptr<troupe::system> sys, caf::timespan limit,
               std::ostream* log, int exit_code) {
  if (limit <= caf::timespan{0}) {
    sys.reset();
    return;
  }
  auto deadline = clock_type::now() + limit;
  auto within = " did not stop within " + format_duration(limit) + " of the end";
  auto& registry = sys->actors().registry();
  {
    // The system lives while this waits, so the count can be read.
    struct {
      std::mutex mtx;
      std::condition_variable cv;
      bool stopped = false;
    } actors;
    std::thread waiter{[&] {
      registry.await_running_count_equal(0);
      std::lock_guard<std::mutex> guard{actors.mtx};
      actors.stopped = true;
      actors.cv.notify_all();
    }};
    std::unique_lock<std::mutex> guard{actors.mtx};
    if (!actors.cv.wait_until(guard, deadline, [&] { return actors.stopped; }))
      exit_now(log,
               actors_phrase(registry.running()) + within
                 + "; exiting without waiting for them",
               exit_code);
    guard.unlock();
    waiter.join();
  }
  watchdog overdue{std::max(caf::timespan{deadline - clock_type::now()},
                            caf::timespan{std::chrono::milliseconds(100)}),
                   [log, within, exit_code] {
                     exit_now(log,
                              "the actor system" + within
                                + "; exiting without waiting for it",
                              exit_code);
                   }};
  sys.reset();
}

/// The config of node `name` of `t`: distribution, TLS and the file's
/// settings.
std::unique_ptr<caf::actor_system_config>
node_config(const topology& t, const std::string& name) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  apply_settings(*cfg, settings_of(t.system));
  register_cluster_types(*cfg);
  try {
    enable_distribution(*cfg, node_settings_of(t, name));
  } catch (const node_error& e) {
    throw run_error(e.what());
  }
  return cfg;
}

std::shared_ptr<cluster_member> join(const topology& t, const std::string& name,
                                     troupe::system& sys, std::ostream* log) {
  try {
    return std::make_shared<cluster_member>(t, name, sys.actors(), log);
  } catch (const node_error& e) {
    throw run_error(e.what());
  }
}

/// The part of a node other than the home node: its agent starts what the
/// home node's tree places here, until the home node says the run has
/// ended or is gone.
run_result run_node_part(const topology& t, const run_options& opts) {
  std::optional<blocked_signals> blocked;
  if (opts.handle_signals)
    blocked.emplace();
  auto cfg = node_config(t, opts.node);
  auto sys = std::make_unique<troupe::system>(*cfg);
  auto cluster = join(t, opts.node, *sys, opts.log);
  auto home_name = t.home_node();
  auto say = [&](const std::string& line) {
    if (opts.log)
      *opts.log << "troupe: node " << opts.node << ": " << line << std::endl;
  };
  run_result result;
  result.home = false;
  {
    caf::scoped_actor self{sys->actors()};
    auto waiter = caf::actor_cast<caf::actor>(self);
    cluster->start_agent(
      [waiter] { caf::anon_send(waiter, node_stop_atom::value); },
      [waiter](caf::actor home) {
        caf::anon_send(waiter, node_hello_atom::value, std::move(home));
      });
    std::optional<signal_thread> signals;
    if (opts.handle_signals)
      signals.emplace(
        [waiter](int sig) { caf::anon_send(waiter, signal_atom::value, sig); });
    // The home node dials this one and says hello (cluster.hpp says why
    // not the other way round).
    say("waiting for the home node " + home_name);
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    auto next_say = start + std::chrono::seconds(1);
    caf::actor home;
    bool done = false;
    int signals_seen = 0;
    auto on_stop = [&](node_stop_atom) {
      result.outcome = "the home node " + home_name + " ended the run";
      done = true;
    };
    auto on_signal = [&](signal_atom, int sig) {
      auto name = std::string(sig == SIGINT ? "SIGINT" : "SIGTERM");
      if (!home) {
        say(name + ": the home node " + home_name
            + " was not reached: stopping");
        result.exit_code = 1;
        result.outcome = "stopped by " + name + " before the home node "
                         + home_name + " was reached";
        done = true;
        return;
      }
      say(name
          + (++signals_seen == 1
               ? ": asking the home node " + home_name
                   + " to shut down gracefully (again to cancel)"
               : ": asking the home node " + home_name + " to cancel"));
      caf::anon_send(home, node_signal_atom::value, sig);
    };
    while (!done && !home) {
      auto now = clock::now();
      if (now - start >= t.system.connect_timeout) {
        result.exit_code = 1;
        result.outcome = "the home node " + home_name
                         + " cannot be reached: it did not connect within "
                         + format_duration(t.system.connect_timeout);
        break;
      }
      if (now >= next_say) {
        auto waited
          = std::chrono::duration_cast<std::chrono::seconds>(now - start);
        say("waiting for the home node " + home_name + " to connect ("
            + std::to_string(waited.count()) + " s)");
        next_say = now + std::chrono::seconds(1);
      }
      // Pauses bounded by connect_timeout, for the progress lines.
      self->receive(on_stop, on_signal,
                    [&](node_hello_atom, caf::actor& h) { home = std::move(h); },
                    caf::after(std::chrono::milliseconds(200)) >> [] {});
    }
    if (home) {
      self->monitor(home);
      say("joined the home node " + home_name + "; running until it stops");
      while (!done)
        self->receive(on_stop, on_signal, [&](caf::down_msg& x) {
          if (x.source != home.address())
            return;
          result.exit_code = 1;
          result.outcome = "the home node " + home_name + " is gone ("
                           + sys->actors().render(x.reason)
                           + "): stopped this node's actors";
          done = true;
        });
    }
    cluster->stop_started();
    signals.reset();
  }
  if (opts.on_result)
    opts.on_result(result);
  cluster->close();
  cluster.reset();
  tear_down(std::move(sys), opts.teardown_limit, opts.log, result.exit_code);
  return result;
}

} // namespace

run_result run_topology(const topology& t, const run_options& opts) {
  if (!opts.metrics.empty())
    parse_metrics_address(opts.metrics); // throws before anything starts
  if (!opts.node.empty()) {
    if (!t.find_node(opts.node)) {
      std::string names;
      for (auto& n : t.nodes)
        names += (names.empty() ? "" : ", ") + n.name;
      throw run_error("--node " + opts.node + ": " + t.file
                      + (names.empty() ? " has no nodes"
                                       : " has no such node (its nodes: "
                                           + names + ")"));
    }
    if (opts.node != t.home_node())
      return run_node_part(t, opts);
  }
  std::optional<blocked_signals> blocked;
  if (opts.handle_signals)
    blocked.emplace();
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<troupe::system> sys;
  std::shared_ptr<cluster_member> cluster;
  if (!opts.node.empty()) {
    cfg = node_config(t, opts.node);
    sys = std::make_unique<troupe::system>(*cfg);
    cluster = join(t, opts.node, *sys, opts.log);
    cluster->start_agent({}, {});
    cluster->greet_peers();
  } else {
    sys = std::make_unique<troupe::system>(settings_of(t.system));
  }
  std::unique_ptr<metrics_server> metrics;
  if (!opts.metrics.empty()) {
    metrics = std::make_unique<metrics_server>(sys->actors(), opts.metrics);
    if (opts.log)
      *opts.log << "metrics: " << metrics->url() << std::endl;
  }
  std::optional<signal_thread> signals;
  std::shared_ptr<signal_target> target;
  run_result result;
  {
    caf::scoped_actor self{sys->actors()};
    auto runner_handle = caf::actor_cast<caf::actor>(self);
    caf::actor root;
    if (cluster) {
      cluster->set_observer(runner_handle);
      cluster->on_remote_signal([runner_handle](int sig) {
        caf::anon_send(runner_handle, signal_atom::value, sig);
      });
    }
    try {
      auto spec = build_supervision(
        t,
        [runner_handle](const std::string& name) {
          caf::anon_send(runner_handle, stream_end_atom::value, name);
        },
        cluster);
      spawn_context ctx{sys->actors()};
      ctx.report_to(runner_handle);
      root = spawn_supervisor(ctx, std::move(spec));
    } catch (const config_error& e) {
      throw run_error(e.what());
    }
    self->monitor(root);
    if (metrics)
      metrics->serve(root, [&t](actor_report& r) { use_declared_kinds(t, r); });
    if (opts.handle_signals) {
      target = std::make_shared<signal_target>(runner_handle);
      signals.emplace([target](int sig) { target->on_signal(sig); });
    }
    runner r{t, opts, self, root};
    result = r.wait();
    if (cluster) {
      cluster->on_remote_signal({});
      cluster->set_observer(nullptr);
    }
    if (target)
      target->run_ended();
    if (metrics)
      metrics->serve(nullptr);
    if (r.abandoned())
      caf::anon_send_exit(root, caf::exit_reason::kill);
  }
  if (cluster) {
    cluster->stop_peers();
    cluster->close();
    cluster.reset();
  }
  // The report goes out before the teardown, which an actor that does not
  // stop would hold forever; signals stay taken until the end.
  if (opts.on_result)
    opts.on_result(result);
  if (target)
    target->result_is_out();
  metrics.reset();
  tear_down(std::move(sys), opts.teardown_limit, opts.log, result.exit_code);
  signals.reset();
  return result;
}

} // namespace troupe
