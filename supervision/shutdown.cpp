#include "troupe/supervision/shutdown.hpp"

#include "troupe/actors/errors.hpp"
#include "troupe/actors/system.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace troupe {

caf::expected<actor_report> shutdown(caf::actor_system& sys,
                                     const caf::actor& root, shutdown_mode mode,
                                     caf::timespan deadline) {
  if (deadline <= caf::timespan{0})
    deadline = shutdown_deadline(sys);
  // The supervisor answers by its deadline; the margin covers the last kills.
  auto bound = deadline + std::chrono::seconds(5);
  caf::scoped_actor self{sys, true};
  caf::expected<actor_report> result{caf::sec::request_timeout};
  auto on_report = [&](actor_report& r) { result = std::move(r); };
  auto on_error = [&](caf::error& e) { result = std::move(e); };
  if (mode == shutdown_mode::graceful)
    self->request(root, bound, drain_atom::value, deadline)
      .receive(on_report, on_error);
  else
    self->request<caf::message_priority::high>(root, bound, cancel_atom::value)
      .receive(on_report, on_error);
  return result;
}

namespace {

// The self-pipe: a signal handler may only write(2); the watcher thread does
// the rest.
int signal_pipe[2] = {-1, -1};
std::atomic<int> seen_signals{0};
std::atomic<bool> hooked{false};
struct sigaction previous_int;
struct sigaction previous_term;

constexpr char quit_byte = 'q';

void on_signal(int) {
  char byte = 's';
  auto ignored = ::write(signal_pipe[1], &byte, 1);
  static_cast<void>(ignored);
}

} // namespace

signal_hook::signal_hook(caf::actor root) {
  if (hooked.exchange(true))
    throw std::logic_error("signal_hook: one already exists");
  if (::pipe(signal_pipe) != 0) {
    hooked = false;
    throw std::runtime_error("signal_hook: pipe() failed");
  }
  seen_signals = 0;
  watcher_ = std::thread{[root = std::move(root)] {
    char byte = 0;
    while (::read(signal_pipe[0], &byte, 1) == 1 && byte != quit_byte) {
      if (++seen_signals == 1) {
        std::fputs("troupe: shutting down gracefully (signal again to cancel)\n",
                   stderr);
        caf::anon_send(root, drain_atom::value);
      } else {
        std::fputs("troupe: cancelling\n", stderr);
        caf::anon_send<caf::message_priority::high>(root, cancel_atom::value);
      }
    }
  }};
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);
}

signal_hook::~signal_hook() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  char byte = quit_byte;
  auto ignored = ::write(signal_pipe[1], &byte, 1);
  static_cast<void>(ignored);
  watcher_.join();
  ::close(signal_pipe[0]);
  ::close(signal_pipe[1]);
  hooked = false;
}

int signal_hook::signals_seen() const noexcept {
  return seen_signals;
}

namespace {

void add(report_totals& t, const actor_report& r) {
  if (r.kind == "supervisor") {
    t.restarts += r.restarts;
    for (auto& child : r.children)
      add(t, child);
    return;
  }
  ++t.actors;
  t.in += r.in;
  t.out += r.out;
  t.dropped += r.dropped;
  t.errors += r.errors;
  t.lost += r.lost;
  t.unconfirmed += r.unconfirmed;
  t.restarts += r.restarts;
  if (r.stopped == stop_reason::crashed)
    ++t.crashed;
  if (r.stopped == stop_reason::killed)
    ++t.killed;
}

void print(std::ostringstream& out, const actor_report& r, int depth) {
  out << std::string(static_cast<size_t>(depth) * 2, ' ') << r.name << " ["
      << r.kind << "] " << to_string(r.stopped);
  if (r.kind != "supervisor")
    out << ": in " << r.in << ", out " << r.out << " (flushed " << r.flushed
        << "), dropped " << r.dropped << ", errors " << r.errors << ", lost "
        << r.lost;
  if (r.unconfirmed > 0)
    out << ", unconfirmed " << r.unconfirmed;
  if (r.restarts > 0)
    out << ", restarts " << r.restarts;
  if (!r.state.empty())
    out << ", state " << r.state;
  // A pattern's own counters say what in and out cannot: a counter sink's
  // items when it took batches, a breaker's calls, a pool's retries.
  const char* separator = "; ";
  for (auto& [name, value] : r.stats) {
    if (value == 0)
      continue;
    out << separator << name << ' ' << value;
    separator = ", ";
  }
  if (!r.error.empty())
    out << " -- " << r.error;
  out << '\n';
  for (auto& child : r.children)
    print(out, child, depth + 1);
}

} // namespace

report_totals totals(const actor_report& root) {
  report_totals result;
  add(result, root);
  return result;
}

std::string to_text(const actor_report& root) {
  std::ostringstream out;
  print(out, root, 0);
  return out.str();
}

} // namespace troupe
