#include "troupe/actors/node.hpp"

#include "troupe/actors/connection_watch.hpp"
#include "troupe/actors/errors.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <ostream>
#include <thread>
#include <unordered_map>

namespace troupe {

namespace {

void require_readable(const std::string& path, const char* what) {
  if (path.empty())
    throw node_error(std::string{"TLS: no "} + what
                     + " is set (TLS needs certificate, key and cafile)");
  std::ifstream in{path};
  struct stat info {};
  if (!in || stat(path.c_str(), &info) != 0 || S_ISDIR(info.st_mode))
    throw node_error(std::string{"TLS: cannot read the "} + what + " file '"
                     + path + "'" + (in ? " (a directory)" : ""));
}

std::string openssl_reason() {
  auto code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0)
    return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

struct bio_deleter {
  void operator()(BIO* x) const {
    BIO_free(x);
  }
};
struct x509_deleter {
  void operator()(X509* x) const {
    X509_free(x);
  }
};
struct pkey_deleter {
  void operator()(EVP_PKEY* x) const {
    EVP_PKEY_free(x);
  }
};

std::unique_ptr<BIO, bio_deleter> open_bio(const std::string& path) {
  return std::unique_ptr<BIO, bio_deleter>{BIO_new_file(path.c_str(), "r")};
}

int passphrase_callback(char* buf, int size, int, void* user) {
  auto& pass = *static_cast<const std::string*>(user);
  if (pass.size() > static_cast<size_t>(size))
    return 0;
  pass.copy(buf, pass.size());
  return static_cast<int>(pass.size());
}

struct directory_state {
  std::unordered_map<std::string, caf::actor> entries;
  static inline const char* name = "troupe.directory";
};

bool from_here(caf::stateful_actor<directory_state>* self) {
  auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

caf::behavior directory_actor(caf::stateful_actor<directory_state>* self,
                        const std::string& node_name) {
  (void) node_name;
  self->set_down_handler([self](caf::down_msg& x) {
    auto& entries = self->state.entries;
    for (auto i = entries.begin(); i != entries.end();)
      if (i->second.address() == x.source)
        i = entries.erase(i);
      else
        ++i;
  });
  return {
    // Only this process publishes: a peer may look names up, not replace
    // what they stand for.
    [self](caf::put_atom, const std::string& name,
           caf::actor& whom) -> caf::result<void> {
      if (!from_here(self))
        return caf::sec::unexpected_message;
      self->monitor(whom);
      self->state.entries[name] = std::move(whom);
      return caf::unit;
    },
    [self](caf::delete_atom, const std::string& name) -> caf::result<void> {
      if (!from_here(self))
        return caf::sec::unexpected_message;
      self->state.entries.erase(name);
      return caf::unit;
    },
    [self](caf::get_atom,
           const std::string& name) -> caf::result<caf::actor> {
      auto i = self->state.entries.find(name);
      if (i == self->state.entries.end())
        return caf::make_error(caf::sec::no_actor_published_at_port,
                               "nothing published as '" + name + "'");
      return i->second;
    },
  };
}

// Sends `msg` to `dest` as a request and waits until it is done: an empty
// answer, an error, or `timeout`.
template <class Timeout>
void await_answer(caf::actor_system& sys, const caf::actor& dest,
                  Timeout timeout, caf::message msg) {
  caf::scoped_actor self{sys};
  self->request(dest, timeout, std::move(msg))
    .receive([] {}, [](const caf::error&) {});
}

std::string endpoint(const std::string& host, uint16_t port) {
  return host + ":" + std::to_string(port);
}

// A refusal is permanent: the peer is there and said no (a certificate its
// CA did not sign, TLS on one side only, another application).
bool refused(const caf::error& err) {
  return err == caf::sec::disconnect_during_handshake
         || err == caf::sec::incompatible_versions
         || err == caf::sec::incompatible_application_ids;
}

} // namespace

void check_tls(const tls_settings& tls) {
  if (!tls.enabled())
    return;
  require_readable(tls.certificate, "certificate");
  require_readable(tls.key, "key");
  require_readable(tls.cafile, "cafile");
  ERR_clear_error();
  std::unique_ptr<X509, x509_deleter> cert;
  if (auto in = open_bio(tls.certificate))
    cert.reset(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert)
    throw node_error("TLS: '" + tls.certificate
                     + "' holds no PEM certificate (" + openssl_reason() + ")");
  std::unique_ptr<EVP_PKEY, pkey_deleter> key;
  if (auto in = open_bio(tls.key))
    key.reset(PEM_read_bio_PrivateKey(
      in.get(), nullptr, passphrase_callback,
      const_cast<std::string*>(&tls.passphrase)));
  if (!key)
    throw node_error("TLS: cannot load the private key '" + tls.key + "'"
                     + (tls.passphrase.empty()
                          ? " (is it encrypted? set its passphrase)"
                          : " (wrong passphrase?)")
                     + ": " + openssl_reason());
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    throw node_error("TLS: the key '" + tls.key
                     + "' is not the key of the certificate '"
                     + tls.certificate + "'");
  std::unique_ptr<X509, x509_deleter> ca;
  if (auto in = open_bio(tls.cafile))
    ca.reset(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!ca)
    throw node_error("TLS: the cafile '" + tls.cafile
                     + "' holds no PEM certificate (" + openssl_reason() + ")");
  ERR_clear_error();
}

void enable_distribution(caf::actor_system_config& cfg,
                         const node_settings& settings) {
  check_tls(settings.tls);
  limit_message_size(settings.max_message_bytes);
  cfg.load<caf::io::middleman>();
  if (settings.heartbeat > caf::timespan{0}) {
    cfg.set("middleman.heartbeat-interval", settings.heartbeat);
    cfg.set("middleman.connection-timeout", settings.node_timeout);
  }
  if (settings.tls.enabled()) {
    cfg.load<caf::openssl::manager>();
    cfg.openssl_certificate = settings.tls.certificate;
    cfg.openssl_key = settings.tls.key;
    cfg.openssl_passphrase = settings.tls.passphrase;
    cfg.openssl_cafile = settings.tls.cafile;
  }
}

node::node(caf::actor_system& sys, const node_settings& settings,
           std::ostream* log)
  : sys_(sys), settings_(settings) {
  if (!sys.has_middleman())
    throw node_error("node " + settings.name
                     + ": the actor system was built without "
                       "enable_distribution()");
  directory_ = sys.spawn<caf::hidden>(directory_actor, settings.name);
  auto port = sys.has_openssl_manager()
                ? caf::openssl::publish(directory_, settings.port,
                                        settings.host.c_str(), true)
                : caf::io::publish(directory_, settings.port,
                                   settings.host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(directory_, caf::exit_reason::user_shutdown);
    throw node_error("node " + settings.name + ": cannot listen on "
                     + endpoint(settings.host, settings.port) + ": "
                     + sys.render(port.error()));
  }
  port_ = *port;
  watch_connections(settings.name, log);
  if (log)
    for (auto& gap : unwatched(sys.has_openssl_manager()))
      *log << "node " << settings.name << ": " << gap << std::endl;
  if (log)
    *log << "node " << settings.name << ": listening on "
         << endpoint(settings.host, port_)
         << (sys.has_openssl_manager() ? " (TLS)" : "") << std::endl;
}

node::~node() {
  // caf::openssl::unpublish does not compile in 0.17.6 (it names an atom
  // constant that does not exist), so both go to the manager directly.
  auto manager = sys_.has_openssl_manager()
                   ? sys_.openssl_manager().actor_handle()
                   : sys_.middleman().actor_handle();
  await_answer(sys_, caf::actor_cast<caf::actor>(manager),
               std::chrono::seconds(5),
               caf::make_message(caf::unpublish_atom::value,
                                 directory_.address(), port_));
  caf::anon_send_exit(directory_, caf::exit_reason::user_shutdown);
  unwatch_connections(settings_.name);
}

void node::publish(const std::string& name, caf::actor whom) {
  // A request, not a send: once it returns, a peer asking finds the name.
  await_answer(sys_, directory_, caf::infinite,
               caf::make_message(caf::put_atom::value, name, std::move(whom)));
}

void node::unpublish(const std::string& name) {
  await_answer(sys_, directory_, caf::infinite,
               caf::make_message(caf::delete_atom::value, name));
}

caf::expected<caf::actor> reach(caf::actor_system& sys, const std::string& host,
                                uint16_t port, const std::string& name,
                                caf::timespan patience, std::ostream* log) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto deadline = start + patience;
  auto next_log = start + std::chrono::seconds(1);
  auto pause = std::chrono::milliseconds(20);
  caf::error last;
  for (;;) {
    auto dir = sys.has_openssl_manager()
                 ? caf::openssl::remote_actor(sys, host, port)
                 : caf::io::remote_actor(sys, host, port);
    if (dir) {
      caf::scoped_actor self{sys};
      caf::expected<caf::actor> found{caf::actor{}};
      self->request(*dir, std::chrono::seconds(5), caf::get_atom::value, name)
        .receive([&](caf::actor& x) { found = std::move(x); },
                 [&](caf::error& e) { found = std::move(e); });
      if (found)
        return found;
      last = found.error();
    } else if (refused(dir.error())) {
      return make_error(errc::node_unreachable,
                        endpoint(host, port) + " refused the handshake ("
                          + sys.render(dir.error())
                          + "): a TLS certificate its CA did not sign, TLS "
                            "on one side only, or another application");
    } else {
      last = make_error(errc::node_unreachable,
                        endpoint(host, port) + ": " + sys.render(dir.error()));
    }
    auto now = clock::now();
    if (now >= deadline)
      return last;
    if (log && now >= next_log) {
      auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start);
      *log << "waiting for " << name << " at " << endpoint(host, port) << " ("
           << waited.count() << " s; " << sys.render(last) << ")" << std::endl;
      next_log = now + std::chrono::seconds(1);
    }
    // Not a sleep that hopes: the peer is not up yet, and this is the pause
    // between connection attempts, bounded by `patience`.
    std::this_thread::sleep_for(
      std::min<caf::timespan>(pause, deadline - clock::now()));
    pause = std::min(pause * 2, std::chrono::milliseconds(250));
  }
}

} // namespace troupe
