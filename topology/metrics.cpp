#include "troupe/topology/metrics.hpp"

#include "troupe/topology/report_tree.hpp"
#include "troupe/topology/run.hpp"

#include <caf/scoped_actor.hpp>

#include <httplib.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <functional>
#include <sstream>
#include <vector>

namespace troupe {

namespace {

std::string label_value(const std::string& text) {
  std::string result;
  result.reserve(text.size());
  for (auto c : text) {
    switch (c) {
      case '\\':
        result += "\\\\";
        break;
      case '"':
        result += "\\\"";
        break;
      case '\n':
        result += "\\n";
        break;
      default:
        result += c;
    }
  }
  return result;
}

// The actor by its place in the tree: bare names repeat (every state has a
// "shard-0"), and a series must be unique.
std::string labels(const report_row& row) {
  return "actor=\"" + label_value(qualified_name(row)) + "\",kind=\""
         + label_value(row.report->kind) + "\"";
}

struct counter_family {
  const char* name;
  const char* help;
  std::function<uint64_t(const actor_report&)> value;
};

const std::vector<counter_family>& counter_families() {
  static const std::vector<counter_family> families = {
    {"troupe_actor_in_total", "Items the actor took in.",
     [](const actor_report& r) { return r.in; }},
    {"troupe_actor_out_total", "Items the actor emitted.",
     [](const actor_report& r) { return r.out; }},
    {"troupe_actor_dropped_total", "Items the actor discarded and counted.",
     [](const actor_report& r) { return r.dropped; }},
    {"troupe_actor_errors_total", "Items whose processing failed.",
     [](const actor_report& r) { return r.errors; }},
    {"troupe_actor_restarts_total", "Restarts of the actor by its supervisor.",
     [](const actor_report& r) { return uint64_t{r.restarts}; }},
    {"troupe_actor_lost_total",
     "Items missing from its input links plus messages its address could "
     "not deliver.",
     [](const actor_report& r) { return r.lost; }},
  };
  return families;
}

uint16_t parse_port(const std::string& text, const std::string& whole) {
  unsigned value = 0;
  auto end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value > 65535)
    throw run_error("metrics address '" + whole
                    + "': the port must be a number from 0 to 65535");
  return static_cast<uint16_t>(value);
}

} // namespace

metrics_address parse_metrics_address(const std::string& text) {
  metrics_address result;
  result.host = "127.0.0.1";
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size()
        || text[close + 1] != ':')
      throw run_error("metrics address '" + text
                      + "': write [IPv6]:PORT, HOST:PORT or PORT");
    result.host = text.substr(1, close - 1);
    result.port = parse_port(text.substr(close + 2), text);
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    if (text.find(':') != colon)
      throw run_error("metrics address '" + text
                      + "': put an IPv6 address in brackets, [::1]:PORT");
    if (colon > 0)
      result.host = text.substr(0, colon);
    result.port = parse_port(text.substr(colon + 1), text);
  } else {
    result.port = parse_port(text, text);
  }
  if (result.host.empty())
    throw run_error("metrics address '" + text + "': the host is empty");
  return result;
}

std::string prometheus_text(const actor_report* status) {
  std::ostringstream out;
  out << "# HELP troupe_up Whether the root supervisor answered this scrape.\n"
      << "# TYPE troupe_up gauge\n"
      << "troupe_up " << (status ? 1 : 0) << '\n';
  if (!status)
    return out.str();
  auto rows = flatten(*status);
  for (auto& family : counter_families()) {
    out << "# HELP " << family.name << ' ' << family.help << '\n'
        << "# TYPE " << family.name << " counter\n";
    for (auto& row : rows)
      out << family.name << '{' << labels(row) << "} "
          << family.value(*row.report) << '\n';
  }
  out << "# HELP troupe_actor_stat A pattern's own counters and gauges "
         "(queued, held, batches, ...).\n"
      << "# TYPE troupe_actor_stat gauge\n";
  for (auto& row : rows)
    for (auto& [key, value] : row.report->stats)
      out << "troupe_actor_stat{" << labels(row) << ",stat=\""
          << label_value(key) << "\"} " << value << '\n';
  out << "# HELP troupe_actor_state The actor's state: 1 for the current one "
         "(running, open, completed, ...).\n"
      << "# TYPE troupe_actor_state gauge\n";
  for (auto& row : rows)
    out << "troupe_actor_state{" << labels(row) << ",state=\""
        << label_value(state_word(*row.report)) << "\"} 1\n";
  return out.str();
}

namespace {

// The address `host` stands for, as digits: what the server binds and the
// URL names ("0" is 0.0.0.0, "localhost" 127.0.0.1 or ::1). Empty when it
// does not resolve.
std::string numeric_host(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found)
    return {};
  char text[INET6_ADDRSTRLEN] = {};
  const void* address = nullptr;
  if (found->ai_family == AF_INET)
    address = &reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr;
  else if (found->ai_family == AF_INET6)
    address = &reinterpret_cast<const sockaddr_in6*>(found->ai_addr)->sin6_addr;
  std::string result;
  if (address && ::inet_ntop(found->ai_family, address, text, sizeof(text)))
    result = text;
  ::freeaddrinfo(found);
  return result;
}

} // namespace

metrics_server::metrics_server(caf::actor_system& sys,
                               const std::string& address,
                               caf::timespan scrape_timeout)
  : sys_(sys), scrape_timeout_(scrape_timeout) {
  auto where = parse_metrics_address(address);
  host_ = numeric_host(where.host);
  if (host_.empty())
    throw run_error("metrics: cannot listen on " + address + ": the host '"
                    + where.host + "' does not resolve");
  server_ = std::make_unique<httplib::Server>();
  // A few threads, and no connection kept open after its answer: a scraper
  // that holds a keep-alive connection (or connects and says nothing) then
  // blocks neither the other scrapes nor, for long, the server's stop.
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  server_->set_keep_alive_max_count(1);
  server_->set_keep_alive_timeout(1);
  server_->set_read_timeout(std::chrono::seconds(1));
  server_->set_write_timeout(std::chrono::seconds(1));
  // httplib's default sets SO_REUSEPORT, which lets a second server share a
  // port in use without a word; SO_REUSEADDR alone only allows a restart.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server_->Get("/metrics", [this](const httplib::Request&,
                                  httplib::Response& res) {
    res.set_content(scrape(), "text/plain; version=0.0.4; charset=utf-8");
  });
  bool bound = false;
  if (where.port == 0) {
    auto port = server_->bind_to_any_port(host_);
    bound = port > 0;
    port_ = static_cast<uint16_t>(bound ? port : 0);
  } else {
    bound = server_->bind_to_port(host_, where.port);
    port_ = where.port;
  }
  if (!bound)
    throw run_error("metrics: cannot listen on " + address
                    + " (a port in use, or a host that is not local?)");
  thread_ = std::thread{[this] { server_->listen_after_bind(); }};
  // stop() does nothing until the server loop runs: wait for it, so that
  // the destructor can always stop it.
  auto bound_wait = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server_->is_running() && std::chrono::steady_clock::now() < bound_wait)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

metrics_server::~metrics_server() {
  server_->stop();
  thread_.join();
}

void metrics_server::serve(caf::actor root,
                           std::function<void(actor_report&)> prepare) {
  std::lock_guard<std::mutex> guard{mtx_};
  root_ = std::move(root);
  prepare_ = std::move(prepare);
}

std::string metrics_server::url() const {
  auto host = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
  return "http://" + host + ":" + std::to_string(port_) + "/metrics";
}

std::string metrics_server::scrape() {
  caf::actor root;
  std::function<void(actor_report&)> prepare;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    root = root_;
    prepare = prepare_;
  }
  if (!root)
    return prometheus_text(nullptr);
  std::optional<actor_report> status;
  caf::scoped_actor self{sys_};
  self->request(root, scrape_timeout_, status_atom::value)
    .receive([&](actor_report& r) { status = std::move(r); },
             [](caf::error&) {});
  if (status && prepare)
    prepare(*status);
  return prometheus_text(status ? &*status : nullptr);
}

} // namespace troupe
