// Connection: one stream connection on the event loop — its Transport (and so
// its fd), its single edge-triggered registration, an input and an output
// Buffer, output watermarks with one callback per crossing, read
// backpressure, coalesced writes, a send timeout, half-close and graceful
// close. Client connections (proxy::ServerConnection) and upstream
// connections (upstream::UpstreamConnection) are both built on it.
// Owned by that higher-level connection; lives on one loop. Never destroy it
// from inside one of its own callbacks (defer to the end of the pass).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "buffer/buffer.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "net/raw_transport.h"
#include "net/transport.h"

namespace sluice::net {

// What a Connection tells its owner. Each call comes from the loop (never
// from inside a Connection method the owner called), except onAbove/Below
// watermark calls, which can also come from write() and flush().
class ConnectionCallbacks {
 public:
  // The transport finished establishing (outgoing connect, TLS handshake).
  virtual void onConnected() {}
  // New bytes were appended to input() — or, after redeliver(), the owner
  // asked to look at input() again (it may be empty then). Consume what can
  // be used; the rest stays.
  virtual void onReadable() = 0;
  // The peer shut down its sending side (EOF). input() may still hold bytes.
  virtual void onPeerClosed() = 0;
  // output() grew to the high watermark / fell back to the low one. Called
  // once per crossing, so the producer can stop and resume.
  virtual void onAboveHighWatermark() {}
  virtual void onBelowLowWatermark() {}
  // Every queued byte has been written (called only after a write had to
  // wait, or when asked with notifyWhenDrained()).
  virtual void onOutputDrained() {}
  // The connection has failed and is already closed: a reset, a broken pipe,
  // a failed connect or handshake, or the send timeout (ETIMEDOUT).
  virtual void onTransportError(int error) = 0;

 protected:
  ~ConnectionCallbacks() = default;
};

class Connection final : public event::IoHandler {
 public:
  // Readiness bit used internally for the coalesced flush at the end of the
  // loop pass (never produced by a poller).
  static constexpr uint32_t kFlushBit = 1u << 8;
  // Same, for redeliver(): look at input() again without reading.
  static constexpr uint32_t kRedeliverBit = 1u << 9;
  static constexpr size_t kDefaultHighWatermark = 256 * 1024;
  static constexpr size_t kDefaultLowWatermark = 64 * 1024;

  Connection(event::EventLoop& loop, std::unique_ptr<Transport> transport);
  // A plain socket: its RawTransport lives inside the Connection (no heap
  // block; most client connections are plain, and an idle one should be
  // small). `connecting` as for RawTransport.
  Connection(event::EventLoop& loop, int fd, bool connecting);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void setCallbacks(ConnectionCallbacks* callbacks) { callbacks_ = callbacks; }
  // Registers with the loop. `handshake`: the transport must complete
  // handshake() before application bytes (outgoing connect, TLS); the owner
  // hears onConnected(). Returns 0 or an errno.
  int start(bool handshake);

  bool open() const { return transport_ != nullptr; }
  bool connected() const { return connected_; }
  bool peerClosed() const { return peer_closed_; }
  Buffer& input() { return input_; }
  const Buffer& input() const { return input_; }
  Buffer& output() { return output_; }
  Transport& transport() { return *transport_; }
  const Transport& transport() const { return *transport_; }
  event::EventLoop& loop() const { return loop_; }

  // Queues bytes; they are written at the end of this loop pass (one write
  // for everything queued in the pass), or at once with flush().
  void write(std::string_view bytes);
  // After appending to output() directly.
  void wrote();
  // Writes what is queued now, unless a write is already waiting for
  // readiness.
  void flush();
  bool writeBlocked() const { return write_blocked_; }
  bool aboveHighWatermark() const { return above_high_; }
  void setWatermarks(size_t high, size_t low);
  // Calls onOutputDrained() once the output is (or becomes) empty.
  void notifyWhenDrained();

  // Backpressure: while disabled nothing is read; readiness that arrived
  // meanwhile is remembered and served when reads are enabled again.
  void setReadEnabled(bool enabled);
  bool readEnabled() const { return read_enabled_; }
  // The socket may hold input not read yet: the last read did not drain it
  // (a budget, a pause) or readiness arrived since.
  bool readPending() const { return read_ready_; }
  // Calls onReadable() again from this loop pass's pending list (not
  // re-entrantly): for bytes held back while a response was busy, or for
  // an EOF the owner deferred.
  void redeliver();

  // Gap allowed between writes while output waits (zero = none); on expiry
  // the connection fails with ETIMEDOUT.
  // Up to 49 days (32-bit milliseconds; longer is clamped).
  void setSendTimeout(event::Duration timeout) {
    send_timeout_ms_ = static_cast<uint32_t>(
        std::clamp<int64_t>(timeout.count(), 0, std::numeric_limits<uint32_t>::max()));
  }

  // Shuts down the sending side once every queued byte is written (FIN, TLS
  // close_notify); reading goes on. writeShutDown() turns true when done.
  void shutdownWriteWhenFlushed();
  bool writeShutDown() const { return write_shut_down_; }
  // Closes now: unregisters and closes the fd; queued output is dropped.
  void close();

  // Returns the buffers' storage (when empty) and the transport's idle
  // memory, for a connection idle between requests.
  void releaseIdleMemory();

  // Why the transport failed (its reason() as it closed), for the log.
  const std::string& failureReason() const;

  uint64_t bytesRead() const { return bytes_read_; }
  uint64_t bytesWritten() const { return bytes_written_; }

  void onReady(uint32_t ready_bits) override;

 private:
  void continueHandshake();
  void doRead();
  void doWrite();
  void afterOutputShrank();
  void tryShutdownWrite();
  void fail(int error);
  void armSendTimer();
  void scheduleFlush();
  static constexpr uint8_t kFirstReadChunkKib = Buffer::kReadChunk / 1024;
  static_assert(Buffer::kReadChunk % 1024 == 0);
  size_t readChunk() const { return size_t{read_chunk_kib_} * 1024; }
  RawTransport* inlineRaw() { return std::launder(reinterpret_cast<RawTransport*>(raw_storage_)); }

  // What few connections need, allocated the first time one of them is:
  // the send timer (a write had to wait) and the transport's failure reason
  // (a failed TLS handshake, say).
  struct Extras {
    explicit Extras(Connection& connection);
    event::Timer send_timer;
    std::string failure_reason;
  };
  Extras& extras();

  event::EventLoop& loop_;
  // Owned: the RawTransport in raw_storage_, or a heap object.
  Transport* transport_ = nullptr;
  ConnectionCallbacks* callbacks_ = nullptr;
  Buffer input_;
  Buffer output_;
  std::unique_ptr<Extras> extras_;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  // The 32-bit fields together, so that they and fd_ fill 16 bytes.
  uint32_t high_watermark_ = kDefaultHighWatermark;
  uint32_t low_watermark_ = kDefaultLowWatermark;
  uint32_t send_timeout_ms_ = 0;
  int fd_ = -1;  // transport_->fd(), kept for removeFd after the transport is gone
  alignas(RawTransport) unsigned char raw_storage_[sizeof(RawTransport)];
  // How much one read asks for, in KiB (one byte: it is at most 128).
  uint8_t read_chunk_kib_ = kFirstReadChunkKib;
  WaitFor read_wait_ = WaitFor::kReadable;
  WaitFor write_wait_ = WaitFor::kWritable;
  WaitFor handshake_wait_ = WaitFor::kWritable;
  // One bit each: every open connection has them.
  bool connected_ : 1 = false;
  bool read_enabled_ : 1 = true;
  // The transport may have bytes for us: an edge arrived and no read has
  // since come back empty. Survives a read pause.
  bool read_ready_ : 1 = false;
  // The peer's FIN was signalled (EPOLLRDHUP): read until EOF even after a
  // short read.
  bool eof_signalled_ : 1 = false;
  bool peer_closed_ : 1 = false;
  bool write_blocked_ : 1 = false;
  bool flush_scheduled_ : 1 = false;
  bool above_high_ : 1 = false;
  bool notify_drained_ : 1 = false;
  bool shutdown_wanted_ : 1 = false;
  bool write_shut_down_ : 1 = false;
};

}  // namespace sluice::net
