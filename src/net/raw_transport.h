// RawTransport: a Transport over a plain stream socket (TCP or unix) with
// read(2)/send(2). Owns the fd and closes it. Owned by its Connection.
#pragma once

#include "net/transport.h"

namespace sluice::net {

class RawTransport final : public Transport {
 public:
  // `connecting`: the fd is an outgoing socket whose non-blocking connect is
  // in progress; handshake() completes it. Otherwise handshake() is a no-op.
  RawTransport(int fd, bool connecting);
  ~RawTransport() override;
  RawTransport(const RawTransport&) = delete;
  RawTransport& operator=(const RawTransport&) = delete;

  int fd() const override { return fd_; }
  IoResult handshake() override;
  IoResult read(Buffer& into, size_t max) override;
  IoResult write(Buffer& from) override;
  IoResult shutdownWrite() override;

 private:
  int fd_;
  bool connecting_;
};

}  // namespace sluice::net
