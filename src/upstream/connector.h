// Connector: opens the transport of a new upstream connection. The socket
// connector makes a non-blocking TCP/unix connect; the TLS work wraps it;
// tests hand out in-memory transports. Owned by the worker, shared by its
// clusters; single-threaded.
#pragma once

#include <memory>

#include "net/address.h"
#include "net/transport.h"

namespace sluice::upstream {

class Connector {
 public:
  virtual ~Connector() = default;
  // A transport whose handshake() completes the connection, or null with
  // *error set (an errno, e.g. ECONNREFUSED when loopback refuses at once).
  virtual std::unique_ptr<net::Transport> connect(const net::Address& address, int* error) = 0;
};

class SocketConnector final : public Connector {
 public:
  std::unique_ptr<net::Transport> connect(const net::Address& address, int* error) override;
};

}  // namespace sluice::upstream
