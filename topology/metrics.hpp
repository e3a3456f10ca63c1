#pragma once

// The Prometheus endpoint of `troupe run --metrics HOST:PORT`: GET /metrics
// answers with each actor's counters and gauges in the text format 0.0.4,
// from a status report of the root supervisor taken for that scrape.

#include "troupe/actors/messages.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace httplib {
class Server;
} // namespace httplib

namespace troupe {

struct metrics_address {
  std::string host;
  uint16_t port = 0;
};

/// "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT" (the last two on
/// 127.0.0.1); port 0 means any free port. Throws run_error when malformed.
metrics_address parse_metrics_address(const std::string& text);

/// Every series of one scrape: per actor (supervisors too; label `actor` its
/// name qualified by its place in the tree, the root left out, as
/// "counts/shard-0"; label `kind` its kind) troupe_actor_{in,out,dropped,errors,restarts,lost}_total, a
/// troupe_actor_stat gauge per entry of its stats, troupe_actor_state (1 for
/// its state word), and troupe_up (0 when `status` is null: no report).
std::string prometheus_text(const actor_report* status);

class metrics_server {
public:
  /// Binds to `address` at once and serves on threads of its own (a few, so
  /// that a slow or idle client holds up no other scrape; a connection is
  /// closed after one answer, and stays idle 1 s at most); throws run_error
  /// when the address is malformed or cannot be bound (a port in use, a
  /// host that is not local). Until serve() it reports troupe_up 0.
  metrics_server(caf::actor_system& sys, const std::string& address,
                 caf::timespan scrape_timeout = std::chrono::seconds(2));
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  ~metrics_server();

  /// From now on, scrapes ask `root` for its status, and pass it through
  /// `prepare` (if set) before rendering it; a null handle stops asking.
  void serve(caf::actor root, std::function<void(actor_report&)> prepare = {});

  /// The address bound, as digits ("0" binds 0.0.0.0, and says so), with
  /// the port chosen when it was 0.
  const std::string& host() const noexcept {
    return host_;
  }
  uint16_t port() const noexcept {
    return port_;
  }

  /// "http://HOST:PORT/metrics".
  std::string url() const;

private:
  std::string scrape();

  caf::actor_system& sys_;
  caf::timespan scrape_timeout_;
  std::string host_;
  uint16_t port_ = 0;
  std::mutex mtx_;
  caf::actor root_;
  std::function<void(actor_report&)> prepare_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

} // namespace troupe
