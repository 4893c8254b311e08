// ProxyProtocolTransport: a Transport decorator for listeners with
// `proxy_protocol: true`. Its handshake first takes the PROXY header off the
// socket — peeking, then consuming exactly its bytes, so that what follows
// (HTTP, or a TLS ClientHello for the inner transport) is untouched — and
// then runs the inner transport's handshake. The header's addresses are
// reported through info(). Owned by its Connection, like any Transport.
#pragma once

#include <memory>
#include <string>

#include "net/proxy_protocol.h"
#include "net/transport.h"

namespace sluice::net {

class ProxyProtocolTransport final : public Transport {
 public:
  explicit ProxyProtocolTransport(std::unique_ptr<Transport> inner);

  int fd() const override { return inner_->fd(); }
  IoResult handshake() override;
  IoResult read(Buffer& into, size_t max) override { return inner_->read(into, max); }
  IoResult write(Buffer& from) override { return inner_->write(from); }
  IoResult shutdownWrite() override { return inner_->shutdownWrite(); }
  std::string reason() const override { return reason_.empty() ? inner_->reason() : reason_; }
  const TransportInfo& info() const override;
  void releaseIdleMemory() override { inner_->releaseIdleMemory(); }

 private:
  IoResult readHeader();

  std::unique_ptr<Transport> inner_;
  bool header_done_ = false;
  std::string reason_;
  mutable TransportInfo info_;
};

}  // namespace sluice::net
