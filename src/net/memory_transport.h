// MemoryTransport: one end of an in-memory connection, for tests that run
// the HTTP codecs and the proxy state machines without sockets. Bytes go
// into a bounded queue towards the other end; readiness is signalled through
// an eventfd (a pipe off Linux) that the event loop watches like a socket, so
// a test drives everything with EventLoop::runOnce and a ManualClock, with no
// sleeps. Each end is owned by whoever uses it (a Connection under test, or
// the test itself acting as the peer); the shared state lives as long as
// either end.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "net/transport.h"

namespace sluice::net {

class MemoryTransport final : public Transport {
 public:
  using Pair = std::pair<std::unique_ptr<MemoryTransport>, std::unique_ptr<MemoryTransport>>;
  // Two connected ends. `capacity`: bytes that may wait unread in each
  // direction before the writer gets kAgain (a receive window).
  static Pair makePair(size_t capacity = 1 << 20);
  ~MemoryTransport() override;  // the peer sees an EOF (after queued bytes), and EPIPE on write
  MemoryTransport(const MemoryTransport&) = delete;
  MemoryTransport& operator=(const MemoryTransport&) = delete;

  int fd() const override { return notify_read_fd_; }
  IoResult handshake() override;
  IoResult read(Buffer& into, size_t max) override;
  IoResult write(Buffer& from) override;
  IoResult shutdownWrite() override;

  // --- test controls (either end) ---
  // handshake() answers kAgain until completeHandshake() or failHandshake().
  void holdHandshake() { handshake_held_ = true; }
  void completeHandshake();
  void failHandshake(int error);
  // The window towards this end (how much the peer may queue).
  void setReceiveCapacity(size_t bytes);
  // Every later read or write of the *peer* fails with ECONNRESET, and queued
  // bytes are lost (a TCP reset).
  void reset();

  // --- for a test acting as the peer without a Connection ---
  // Queues bytes towards the other end regardless of the window.
  void send(std::string_view bytes);
  // Everything the other end wrote to us so far (and removes it).
  std::string takeReceived();
  // Bytes waiting to be read by this end.
  size_t pendingBytes() const;
  // Bytes this end wrote or sent that the other end has not read yet.
  size_t unreadByPeer() const;
  // The other end shut down its write side (or was destroyed).
  bool peerClosedWrite() const;
  // The other end was destroyed.
  bool peerGone() const;

  // Calls made on this end, like syscall counts (handshake not included).
  size_t readCalls() const { return read_calls_; }
  size_t writeCalls() const { return write_calls_; }

 private:
  struct Shared;
  MemoryTransport(std::shared_ptr<Shared> shared, int side);
  void notify(int side);

  std::shared_ptr<Shared> shared_;
  int side_;
  int notify_read_fd_ = -1;   // watched by the loop
  int notify_write_fd_ = -1;  // written to wake it (same fd for an eventfd)
  bool handshake_held_ = false;
  int handshake_error_ = 0;
  size_t read_calls_ = 0;
  size_t write_calls_ = 0;
};

}  // namespace sluice::net
