#include "troupe/actors/connection_watch.hpp"

#include <caf/io/abstract_broker.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/sec.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <ostream>

namespace troupe {

namespace {

// The log of the node that opened its port last: one node per process is
// the rule, and a connection CAF drops does not say which port it came to.
struct connection_log_state {
  std::mutex mtx;
  std::ostream* out = nullptr;
  std::string name;
};

connection_log_state& connection_log() {
  static connection_log_state state;
  return state;
}

void tell(const std::string& line) {
  auto& log = connection_log();
  std::lock_guard<std::mutex> guard{log.mtx};
  auto& out = log.out ? *log.out : std::cerr;
  if (log.name.empty())
    out << "troupe: " << line << std::endl;
  else
    out << "node " << log.name << ": " << line << std::endl;
}

std::string peer_of(const SSL* ssl) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  auto fd = SSL_get_fd(ssl);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return "an unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(addr);
    inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
    port = ntohs(in.sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto& in = reinterpret_cast<sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in.sin6_addr, host, sizeof(host));
    port = ntohs(in.sin6_port);
  }
  return std::string{host} + ":" + std::to_string(port);
}

std::string subject_line(X509_NAME* name) {
  if (!name)
    return "?";
  auto free_bio = [](BIO* x) { BIO_free(x); };
  std::unique_ptr<BIO, decltype(free_bio)> out{BIO_new(BIO_s_mem()), free_bio};
  X509_NAME_print_ex(out.get(), name, 0, XN_FLAG_ONELINE);
  char* data = nullptr;
  auto size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

const char* side(const SSL* ssl) {
  return SSL_is_server(ssl) ? "accepting" : "connecting to";
}

// One line per refused handshake: the first of a bad certificate, a fatal
// alert and a failed handshake marks the connection as told.
bool first_tell(const SSL* ssl) {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr,
                                                nullptr);
  auto x = const_cast<SSL*>(ssl);
  if (index < 0 || SSL_get_ex_data(x, index) != nullptr)
    return false;
  SSL_set_ex_data(x, index, x);
  return true;
}

int log_refused_certificate(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 1)
    return 1;
  auto ssl = static_cast<SSL*>(
    X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (!ssl || !first_tell(ssl))
    return 0;
  auto cert = X509_STORE_CTX_get_current_cert(store);
  auto err = X509_STORE_CTX_get_error(store);
  tell(std::string{"refused a TLS peer ("} + side(ssl) + " " + peer_of(ssl)
           + "): its certificate [" + subject_line(X509_get_subject_name(cert))
           + "] issued by [" + subject_line(X509_get_issuer_name(cert))
           + "] does not verify: " + X509_verify_cert_error_string(err));
  return 0;
}

void log_failed_handshakes(const SSL* ssl, int where, int ret) {
  // What ends a connection after its handshake is not a refusal.
  if (where & SSL_CB_HANDSHAKE_DONE) {
    first_tell(ssl);
    return;
  }
  if ((where & SSL_CB_ALERT) != 0 && (ret >> 8) == SSL3_AL_FATAL) {
    if (!first_tell(ssl))
      return;
    if (where & SSL_CB_READ)
      tell(std::string{"a TLS peer refused us ("} + side(ssl) + " "
               + peer_of(ssl) + "): it sent the alert '"
               + SSL_alert_desc_string_long(ret) + "'");
    else
      tell(std::string{"refused a TLS peer ("} + side(ssl) + " "
               + peer_of(ssl) + "): sent the alert '"
               + SSL_alert_desc_string_long(ret) + "'");
  } else if ((where & SSL_CB_EXIT) != 0 && ret <= 0
             && SSL_get_error(ssl, ret) == SSL_ERROR_SSL && first_tell(ssl)) {
    // Not TLS at all (another protocol, random bytes): no alert to tell.
    auto code = ERR_peek_error();
    tell(std::string{"dropped a connection ("} + side(ssl) + " "
             + peer_of(ssl) + "): not a TLS handshake ("
             + (code != 0 ? ERR_reason_error_string(code) : "?") + ")");
  }
}

std::atomic<uint32_t> max_message_bytes{64u << 20};

// Whether `fn` (found by name in the program) is libtroupe's own.
bool ours(void* fn) {
  Dl_info seen{};
  Dl_info here{};
  return fn && dladdr(fn, &seen) != 0
         && dladdr(reinterpret_cast<void*>(&tell), &here) != 0
         && seen.dli_fbase == here.dli_fbase;
}

constexpr const char* configure_read_symbol
  = "_ZN3caf2io15abstract_broker14configure_readENS0_17connection_"
    "handleESt4pairINS0_19receive_policy_flagEmE";

constexpr const char* connection_cleanup_symbol
  = "_ZN3caf2io11basp_broker18connection_cleanupENS0_17connection_"
    "handleENS_3secE";

// The original of a function libtroupe replaces. CAF calls the replacement
// only through the dynamic linker, which found the original after it; if
// it were missing, the connection could not be served safely.
void* original(const char* symbol) {
  auto fn = dlsym(RTLD_NEXT, symbol);
  if (!fn) {
    std::cerr << "troupe: " << symbol << " not found after libtroupe"
              << std::endl;
    std::abort();
  }
  return fn;
}

} // namespace

void watch_connections(const std::string& name, std::ostream* log) {
  auto& told = connection_log();
  std::lock_guard<std::mutex> guard{told.mtx};
  told.out = log;
  told.name = name;
}

void unwatch_connections(const std::string& name) {
  auto& told = connection_log();
  std::lock_guard<std::mutex> guard{told.mtx};
  if (told.name == name) {
    told.out = nullptr;
    told.name.clear();
  }
}

void limit_message_size(uint32_t max_bytes) {
  max_message_bytes = max_bytes;
}

std::vector<std::string> unwatched(bool tls) {
  std::vector<std::string> result;
  if (!ours(dlsym(RTLD_DEFAULT, configure_read_symbol)))
    result.emplace_back("message sizes are not checked (libcaf_io is loaded "
                        "before libtroupe)");
  if (!ours(dlsym(RTLD_DEFAULT, connection_cleanup_symbol)))
    result.emplace_back("connections CAF drops as malformed are not logged "
                        "(libcaf_io is loaded before libtroupe)");
  if (tls && !ours(dlsym(RTLD_DEFAULT, "SSL_CTX_set_verify")))
    result.emplace_back("refused TLS peers are not logged (libssl is loaded "
                        "before libtroupe)");
  return result;
}

} // namespace troupe

// CAF's openssl module builds an SSL_CTX per connection and, when
// certificates are set, calls SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
// SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr) on it. OpenSSL still decides
// here: the mode goes on unchanged, with a callback that returns OpenSSL's
// own verdict and tells a refused certificate, and an info callback that
// tells a handshake that failed otherwise (an alert, bytes that are not
// TLS).
extern "C" void SSL_CTX_set_verify(SSL_CTX* ctx, int mode, SSL_verify_cb cb) {
  using fn = void (*)(SSL_CTX*, int, SSL_verify_cb);
  static auto real = reinterpret_cast<fn>(troupe::original("SSL_CTX_set_verify"));
  if (cb != nullptr || (mode & SSL_VERIFY_PEER) == 0) {
    real(ctx, mode, cb);
    return;
  }
  real(ctx, mode, troupe::log_refused_certificate);
  SSL_CTX_set_info_callback(ctx, troupe::log_failed_handshakes);
}

// CAF's BASP broker reads a message in two steps: its 32-byte header, then
// configure_read(hdl, exactly(payload_len)) for the payload, and the stream
// allocates (and zeroes) that many bytes at once, up to 4 GiB for a header
// a peer made up. For a length over the limit, the stream reads one byte
// instead: the BASP broker then finds a payload shorter than its header
// said and closes the connection its own way (closing it here, in the
// middle of the broker's handler, leaves the broker refusing later peers).
void caf::io::abstract_broker::configure_read(connection_handle hdl,
                                              receive_policy::config cfg) {
  using fn = void (*)(abstract_broker*, connection_handle,
                      receive_policy::config);
  static auto real = reinterpret_cast<fn>(
    troupe::original(troupe::configure_read_symbol));
  auto limit = troupe::max_message_bytes.load();
  // Only CAF's own BASP broker: a broker a program writes itself may ask
  // for large reads on purpose.
  if (cfg.first == receive_policy_flag::exactly && cfg.second > limit
      && dynamic_cast<basp_broker*>(this) != nullptr) {
    troupe::tell("dropping a connection from " + remote_addr(hdl) + ":"
                 + std::to_string(remote_port(hdl))
                 + ": it announced a message of " + std::to_string(cfg.second)
                 + " bytes (the limit is " + std::to_string(limit) + ")");
    cfg = receive_policy::exactly(1);
  }
  real(this, hdl, cfg);
}

// The BASP broker cleans up after every connection it closes, with the
// reason: none when the peer went away, malformed_basp_message for bytes
// that are not BASP (another protocol, random bytes), and so on.
void caf::io::basp_broker::connection_cleanup(connection_handle hdl,
                                              sec code) {
  using fn = void (*)(basp_broker*, connection_handle, sec);
  static auto real = reinterpret_cast<fn>(
    troupe::original(troupe::connection_cleanup_symbol));
  if (code != sec::none && code != sec::redundant_connection)
    troupe::tell("dropped a connection from " + remote_addr(hdl) + ":"
                 + std::to_string(remote_port(hdl)) + ": "
                 + (code == sec::malformed_basp_message
                      ? std::string{"its bytes are not CAF's BASP (another "
                                    "protocol, or garbage)"}
                      : to_string(code)));
  real(this, hdl, code);
}
