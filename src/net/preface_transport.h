// PrefaceTransport: a Transport decorator that writes a few bytes on a new
// connection before anything else — after the inner transport connected and
// before the handshake of a transport over it. sluice uses it for the PROXY
// header it sends to upstreams (`send_proxy_protocol`): the receiver reads
// the header off the raw socket, so under TLS it must precede the
// ClientHello (HAProxy's `send-proxy` with `ssl` does the same). Owned by its
// Connection (or by the TLS transport over it).
#pragma once

#include <memory>

#include "buffer/buffer.h"
#include "net/transport.h"

namespace sluice::net {

class PrefaceTransport final : public Transport {
 public:
  PrefaceTransport(std::unique_ptr<Transport> inner, Buffer preface)
      : inner_(std::move(inner)), preface_(std::move(preface)) {}

  int fd() const override { return inner_->fd(); }
  // The inner handshake (the TCP connect), then the preface, written in as
  // many steps as the socket takes; kOk once it is all out.
  IoResult handshake() override;
  IoResult read(Buffer& into, size_t max) override { return inner_->read(into, max); }
  IoResult write(Buffer& from) override { return inner_->write(from); }
  IoResult shutdownWrite() override { return inner_->shutdownWrite(); }
  std::string reason() const override { return inner_->reason(); }
  const TransportInfo& info() const override { return inner_->info(); }
  void releaseIdleMemory() override { inner_->releaseIdleMemory(); }

 private:
  std::unique_ptr<Transport> inner_;
  Buffer preface_;
  bool inner_done_ = false;
};

}  // namespace sluice::net
