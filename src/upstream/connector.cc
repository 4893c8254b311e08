#include "upstream/connector.h"

#include "tls/tls_transport.h"

#include "net/preface_transport.h"
#include "net/raw_transport.h"
#include "net/socket.h"

namespace sluice::upstream {

std::unique_ptr<net::Transport> SocketConnector::connect(const net::Address& address,
                                                         const std::string& /*dns_name*/,
                                                         Buffer preface, int* error) {
  bool in_progress = false;
  const int fd = net::connectTo(address, &in_progress);
  if (fd < 0) {
    *error = -fd;
    return nullptr;
  }
  // Even a connect that finished at once goes through handshake(): it
  // checks SO_ERROR on the first writable edge, which epoll reports as soon
  // as the fd is registered.
  auto raw = std::make_unique<net::RawTransport>(fd, /*connecting=*/true);
  if (preface.empty()) return raw;
  return std::make_unique<net::PrefaceTransport>(std::move(raw), std::move(preface));
}

std::unique_ptr<net::Transport> TlsConnector::connect(const net::Address& address,
                                                      const std::string& dns_name, Buffer preface,
                                                      int* error) {
  std::unique_ptr<net::Transport> raw =
      inner_.connect(address, dns_name, std::move(preface), error);
  if (!raw) return nullptr;
  SSL* ssl = context_->newSsl(address.ipText(), dns_name);
  if (ssl == nullptr) {
    *error = ENOMEM;
    return nullptr;
  }
  return std::make_unique<tls::TlsTransport>(std::move(raw), ssl);
}

}  // namespace sluice::upstream
