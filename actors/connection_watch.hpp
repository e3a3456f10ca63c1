#pragma once

// What CAF 0.17.6 does silently to a node's connections, told on the node's
// log: a refused TLS handshake (a certificate its CA did not sign, bytes
// that are not TLS), bytes that are not BASP (another protocol, random
// bytes), a message header announcing more than the size limit (which CAF
// would allocate in full). Debian's CAF is built with its log macros
// compiled out (CAF_LOG_LEVEL_QUIET) and has no hooks for this, so libtroupe
// defines three functions that CAF calls through the dynamic linker
// (SSL_CTX_set_verify, abstract_broker::configure_read,
// basp_broker::connection_cleanup): each does what the original does, after
// looking. docs/distribution.md lists what is told. Used by actors/node.cpp;
// not installed.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace troupe {

/// Tells dropped connections on `log` (stderr if null) as "node NAME: ...",
/// until unwatch_connections(name); the last node to call it is told.
void watch_connections(const std::string& name, std::ostream* log);

void unwatch_connections(const std::string& name);

/// The largest BASP payload a peer may announce; a longer one closes its
/// connection. One value per process.
void limit_message_size(uint32_t max_bytes);

/// What cannot be watched in this process, one line each (empty when all
/// is): a hook is not reached when the library it replaces is loaded before
/// libtroupe.
std::vector<std::string> unwatched(bool tls);

} // namespace troupe
