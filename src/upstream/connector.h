// Connector: opens the transport of a new upstream connection. The socket
// connector makes a non-blocking TCP/unix connect; the TLS work wraps it;
// tests hand out in-memory transports. Owned by the worker, shared by its
// clusters; single-threaded.
#pragma once

#include <memory>

#include "buffer/buffer.h"
#include "net/address.h"
#include "net/transport.h"
#include "tls/client_context.h"

namespace sluice::upstream {

class Connector {
 public:
  virtual ~Connector() = default;
  // A transport whose handshake() completes the connection, or null with
  // *error set (an errno, e.g. ECONNREFUSED when loopback refuses at once).
  // `dns_name`: the name `address` was resolved from, or empty.
  // `preface`: bytes written on the connection before anything else (a
  // PROXY header), under TLS before the ClientHello; empty for none.
  virtual std::unique_ptr<net::Transport> connect(const net::Address& address,
                                                  const std::string& dns_name, Buffer preface,
                                                  int* error) = 0;
};

class SocketConnector final : public Connector {
 public:
  std::unique_ptr<net::Transport> connect(const net::Address& address, const std::string& dns_name,
                                          Buffer preface, int* error) override;
};

// TLS over another connector's transports (`upstreams.NAME.tls`): the
// handshake is part of connecting, so a refused certificate is a connect
// failure of that server.
class TlsConnector final : public Connector {
 public:
  TlsConnector(Connector& inner, std::shared_ptr<const tls::ClientContext> context)
      : inner_(inner), context_(std::move(context)) {}
  std::unique_ptr<net::Transport> connect(const net::Address& address, const std::string& dns_name,
                                          Buffer preface, int* error) override;

 private:
  Connector& inner_;
  std::shared_ptr<const tls::ClientContext> context_;
};

}  // namespace sluice::upstream
