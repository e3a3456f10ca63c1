#pragma once

// The second process of a workload that crosses processes (`remote`): this
// program run again in a hidden mode (`troupe-bench --remote-sink ...`),
// which prints `peer_port_prefix` and the port it listens on to its stdout,
// a pipe to this process. It is always reaped: the destructor kills it if it
// has not exited, and it dies with this process (peer_process_guard).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace troupe::bench {

/// What a peer process prints before its port.
inline constexpr char peer_port_prefix[] = "troupe-bench peer port ";

class peer_process {
public:
  /// Runs /proc/self/exe with `args` and this process's pid appended (for
  /// peer_process_guard). Throws std::runtime_error if it cannot start.
  explicit peer_process(std::vector<std::string> args);

  ~peer_process();

  peer_process(const peer_process&) = delete;
  peer_process& operator=(const peer_process&) = delete;

  /// The port the peer announces, waiting at most `patience`; throws if it
  /// says none in time (or exits first).
  uint16_t read_port(std::chrono::milliseconds patience);

  /// Waits at most `patience` for the peer to exit, killing it after that;
  /// its exit status, or -1 if it was killed or died of a signal.
  int wait_exit(std::chrono::milliseconds patience);

private:
  // Appends what the peer wrote; false at the end of its output or at the
  // deadline.
  bool read_some(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = 0;
  int out_ = -1;
  std::string buffer_;
};

/// Called first in a peer process with the pid its parent appended: the
/// peer is killed when the parent dies, whatever kills it. False if the
/// parent is gone already (the peer should exit at once).
bool peer_process_guard(const char* parent_pid);

} // namespace troupe::bench
