#pragma once

// A node: one process of a distributed troupe system, reachable at one TCP
// port. The port serves the node's directory, through which peers reach the
// actors the node publishes by name; messages then travel over CAF's
// middleman (BASP), encrypted and mutually authenticated when TLS is set.
// docs/distribution.md has the rules; in short:
//
//   - enable_distribution() goes on the actor_system_config before the
//     system is built: it loads CAF's middleman (and its openssl module with
//     TLS), turns heartbeats on, and checks the TLS files, so that a bad
//     certificate, key or passphrase is an error at start-up rather than an
//     abort at the first connection.
//   - node opens the port; node::publish(name, actor) makes an actor
//     reachable, until it exits or is unpublished.
//   - reach() connects to a peer, waiting for it (bounded) when it is not up
//     yet, and returns the actor it publishes under a name.
//   - A peer that dies or goes silent for node_timeout ends the connection:
//     whoever monitors one of its actors gets a down_msg with
//     caf::exit_reason::remote_link_unreachable.
//   - A connection the node drops is told on its log: a refused TLS
//     handshake, bytes that are not CAF's protocol, a message announced
//     larger than max_message_bytes (actors/connection_watch.hpp).

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>

namespace troupe {

/// TLS for every connection of a node: set all of certificate, key and
/// cafile (and passphrase if the key is encrypted), or none.
struct tls_settings {
  /// PEM file with this node's certificate.
  std::string certificate;
  /// PEM file with its private key.
  std::string key;
  /// The key's passphrase; empty if the key is not encrypted.
  std::string passphrase;
  /// PEM file with the CA that signed every node's certificate: a peer
  /// whose certificate it did not sign cannot connect, nor be connected to.
  std::string cafile;

  bool enabled() const {
    return !certificate.empty() || !key.empty() || !cafile.empty()
           || !passphrase.empty();
  }
};

struct node_settings {
  /// How the node calls itself in log lines.
  std::string name = "node";
  /// The address the port is bound to: only local peers by default.
  std::string host = "127.0.0.1";
  /// 0: any free port (node::port() tells which).
  uint16_t port = 0;
  /// How often a node tells its peers it is alive; zero turns heartbeats
  /// (and with them node_timeout) off.
  caf::timespan heartbeat = std::chrono::milliseconds(200);
  /// A peer not heard from for this long is taken for dead: its
  /// connection closes and its actors are down. Every node of a system
  /// needs heartbeats, or its healthy peers would take it for dead.
  caf::timespan node_timeout = std::chrono::seconds(2);
  /// The largest message (one BASP payload) a peer may send. CAF itself
  /// allocates whatever length a message header announces, up to 4 GiB,
  /// before reading it; a connection announcing more than this is closed
  /// instead (and logged). One value per process: the last node_settings
  /// given to enable_distribution() sets it.
  uint32_t max_message_bytes = 64u << 20;
  tls_settings tls;
};

/// A node that cannot start: a port in use, a TLS file that cannot be read,
/// a key that does not match its certificate or passphrase.
class node_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Prepares `cfg` for distribution; call before the actor_system is built.
/// Throws node_error if the TLS settings cannot work.
void enable_distribution(caf::actor_system_config& cfg,
                         const node_settings& settings);

/// Throws node_error naming what is wrong with `tls` (a file missing or
/// unreadable, no key, a wrong passphrase, a key that is not the
/// certificate's, a CA file without a certificate); enable_distribution
/// calls it.
void check_tls(const tls_settings& tls);

/// One node's port and directory. The system must have been built from a
/// config that enable_distribution() prepared.
class node {
public:
  /// Opens `settings.host:settings.port`. Throws node_error if it cannot.
  /// `log` gets the node's lines (dropped connections go to stderr when it
  /// is null) from several threads, one whole line per write: it must take
  /// concurrent writes (std::cerr does, an std::ostringstream does not).
  node(caf::actor_system& sys, const node_settings& settings,
       std::ostream* log = nullptr);

  /// Closes the port and stops the directory; published actors keep
  /// running.
  ~node();

  node(const node&) = delete;
  node& operator=(const node&) = delete;

  uint16_t port() const noexcept {
    return port_;
  }

  const std::string& name() const noexcept {
    return settings_.name;
  }

  /// Makes `whom` reachable under `name` until it exits or another actor
  /// is published under the same name.
  void publish(const std::string& name, caf::actor whom);

  void unpublish(const std::string& name);

  /// The actor published at the port: answers
  /// (caf::get_atom, std::string name) -> caf::actor.
  const caf::actor& directory() const noexcept {
    return directory_;
  }

private:
  caf::actor_system& sys_;
  node_settings settings_;
  caf::actor directory_;
  uint16_t port_ = 0;
};

/// The actor published as `name` at the node at `host:port`. Keeps trying
/// to connect (and asking, while the name is not published yet) until
/// `patience` has passed, saying on `log` what it waits for about once a
/// second; zero patience tries once. Errors: errc::node_unreachable (nothing
/// listening until patience ran out; or at once, without waiting, when the
/// peer refused the handshake: a TLS certificate its CA did not sign, TLS on
/// one side only, another application) or
/// caf::sec::no_actor_published_at_port (connected, but no such name).
caf::expected<caf::actor> reach(caf::actor_system& sys, const std::string& host,
                                uint16_t port, const std::string& name,
                                caf::timespan patience,
                                std::ostream* log = nullptr);

} // namespace troupe
