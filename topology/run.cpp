#include "troupe/topology/run.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/system.hpp"
#include "troupe/supervision/shutdown.hpp"
#include "troupe/supervision/supervisor.hpp"
#include "troupe/topology/live_view.hpp"
#include "troupe/topology/metrics.hpp"
#include "troupe/topology/report_tree.hpp"
#include "troupe/topology/signal_thread.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <ostream>
#include <map>
#include <iostream>
#include <limits>
#include <set>
#include <sys/ioctl.h>
#include <unistd.h>

namespace troupe {

namespace {

/// An actor of the stream ended normally (from build_supervision's callback).
using stream_end_atom = caf::atom_constant<caf::atom("streamend")>;

/// A SIGINT or SIGTERM, from the signal thread.
using signal_atom = caf::atom_constant<caf::atom("signal")>;

using clock_type = std::chrono::steady_clock;

/// How much longer than its deadline the root may take to answer a drain or
/// a cancel before the runner escalates (cancel, then kill, then give up).
constexpr auto answer_margin = std::chrono::seconds(5);

/// How long the runner waits at a time when nothing is due.
constexpr auto idle_wait = std::chrono::hours(1);

/// How long a status request for the live view may take.
constexpr auto status_timeout = std::chrono::seconds(2);

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
      draw();
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

  void in_file_order(actor_report& r) const {
    order_children(r, [this](const std::string& name) {
      auto i = ranks_.find(name);
      return i != ranks_.end() ? i->second : std::numeric_limits<size_t>::max();
    });
  }

  void draw() {
    if (!view_)
      return;
    std::optional<actor_report> status;
    std::string failure;
    // An actor of its own per request: a blocking actor keeps the timeout
    // of an answered request in its mailbox, and every such stale message
    // would restart the runner's wait.
    caf::scoped_actor asker{self_->system()};
    asker->request(root_, status_timeout, status_atom::value)
      .receive([&](actor_report& r) { status = std::move(r); },
               [&](caf::error& e) { failure = self_->system().render(e); });
    if (opts_.view_in_place && opts_.view == &std::cerr) {
      winsize size{};
      if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0)
        view_->set_width(size.ws_col);
    }
    if (status) {
      in_file_order(*status);
      view_->draw(*status, clock_type::now());
    } else
      view_->draw_unavailable(failure, clock_type::now());
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
      r.report.name = t_.root.name;
      r.report.kind = "supervisor";
      return r;
    }
    r.report = std::move(*final_);
    in_file_order(r.report);
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
  bool by_signal_ = false;
  bool overran_ = false;
  bool root_down_ = false;
  bool abandoned_ = false;
  std::optional<actor_report> final_;
};

} // namespace

run_result run_topology(const topology& t, const run_options& opts) {
  if (!opts.metrics.empty())
    parse_metrics_address(opts.metrics); // throws before anything starts
  std::optional<blocked_signals> blocked;
  if (opts.handle_signals)
    blocked.emplace();
  troupe::system sys{settings_of(t.system)};
  std::unique_ptr<metrics_server> metrics;
  if (!opts.metrics.empty()) {
    metrics = std::make_unique<metrics_server>(sys.actors(), opts.metrics);
    if (opts.log)
      *opts.log << "metrics: " << metrics->url() << std::endl;
  }
  caf::scoped_actor self{sys.actors()};
  auto runner_handle = caf::actor_cast<caf::actor>(self);
  caf::actor root;
  try {
    auto spec = build_supervision(t, [runner_handle](const std::string& name) {
      caf::anon_send(runner_handle, stream_end_atom::value, name);
    });
    spawn_context ctx{sys.actors()};
    ctx.report_to(runner_handle);
    root = spawn_supervisor(ctx, std::move(spec));
  } catch (const config_error& e) {
    throw run_error(e.what());
  }
  self->monitor(root);
  if (metrics)
    metrics->serve(root);
  std::optional<signal_thread> signals;
  if (opts.handle_signals)
    signals.emplace([runner_handle](int sig) {
      caf::anon_send(runner_handle, signal_atom::value, sig);
    });
  runner r{t, opts, self, root};
  auto result = r.wait();
  signals.reset();
  if (metrics)
    metrics->serve(nullptr);
  if (r.abandoned())
    caf::anon_send_exit(root, caf::exit_reason::kill);
  return result;
}

} // namespace troupe
