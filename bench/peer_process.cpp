#include "peer_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace troupe::bench {

peer_process::peer_process(std::vector<std::string> args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string{"pipe: "} + std::strerror(errno));
  out_ = fds[0];
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  args.insert(args.begin(), "troupe-bench");
  args.push_back(std::to_string(::getpid()));
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  auto rc = ::posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(),
                          environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    pid_ = 0;
    ::close(out_);
    out_ = -1;
    throw std::runtime_error(std::string{"cannot start the peer process: "}
                             + std::strerror(rc));
  }
}

peer_process::~peer_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_ >= 0)
    ::close(out_);
}

uint16_t peer_process::read_port(std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      auto line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (line.rfind(peer_port_prefix, 0) == 0)
        return static_cast<uint16_t>(
          std::stoul(line.substr(sizeof(peer_port_prefix) - 1)));
      continue;
    }
    if (!read_some(deadline))
      throw std::runtime_error("the peer process did not say its port");
  }
}

int peer_process::wait_exit(std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  // Its stdout closes as it exits: the end of the pipe is the signal.
  while (read_some(deadline))
    buffer_.clear();
  if (std::chrono::steady_clock::now() >= deadline)
    ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool peer_process::read_some(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{out_, POLLIN, 0};
    auto n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    char chunk[256];
    auto got = ::read(out_, chunk, sizeof(chunk));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    buffer_.append(chunk, static_cast<size_t>(got));
    return true;
  }
}

bool peer_process_guard(const char* parent_pid) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // A parent gone before the line above is caught here.
  return std::to_string(::getppid()) == parent_pid;
}

} // namespace troupe::bench
