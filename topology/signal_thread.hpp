#pragma once

// SIGINT and SIGTERM for `troupe run`, taken by one thread with sigwait
// rather than by a handler: what it does with them (messages to actors) is
// not async-signal-safe. For that, both are blocked in every other thread,
// which inherit the mask of the thread that starts them.

#include <atomic>
#include <csignal>
#include <functional>
#include <pthread.h>
#include <thread>

namespace troupe {

/// Blocks SIGINT and SIGTERM in the calling thread while it lives, and so in
/// every thread started meanwhile; create it before any of them. The
/// destructor discards those that arrived too late for anyone to take, then
/// restores the mask.
class blocked_signals {
public:
  blocked_signals();
  blocked_signals(const blocked_signals&) = delete;
  blocked_signals& operator=(const blocked_signals&) = delete;
  ~blocked_signals();

  /// SIGINT and SIGTERM.
  static sigset_t set();

private:
  sigset_t previous_;
};

/// Hands each SIGINT and SIGTERM to `on_signal`, on a thread of its own,
/// until destroyed. The signals must be blocked (blocked_signals).
class signal_thread {
public:
  explicit signal_thread(std::function<void(int)> on_signal);
  signal_thread(const signal_thread&) = delete;
  signal_thread& operator=(const signal_thread&) = delete;
  ~signal_thread();

private:
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace troupe
