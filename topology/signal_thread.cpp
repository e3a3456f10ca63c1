#include "troupe/topology/signal_thread.hpp"

#include <ctime>

namespace troupe {

sigset_t blocked_signals::set() {
  sigset_t result;
  sigemptyset(&result);
  sigaddset(&result, SIGINT);
  sigaddset(&result, SIGTERM);
  return result;
}

blocked_signals::blocked_signals() {
  auto signals = set();
  pthread_sigmask(SIG_BLOCK, &signals, &previous_);
}

blocked_signals::~blocked_signals() {
  auto signals = set();
  timespec now{0, 0};
  while (sigtimedwait(&signals, nullptr, &now) > 0) {
    // Discarded: it came after the run had ended.
  }
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

signal_thread::signal_thread(std::function<void(int)> on_signal) {
  thread_ = std::thread{[this, on_signal = std::move(on_signal)] {
    auto signals = blocked_signals::set();
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0)
        continue;
      if (stopping_)
        return;
      on_signal(sig);
    }
  }};
}

signal_thread::~signal_thread() {
  // The destructor's own SIGTERM, aimed at the thread, ends its wait.
  stopping_ = true;
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

} // namespace troupe
