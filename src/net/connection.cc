#include "net/connection.h"

#include <algorithm>
#include <cerrno>

#include "net/socket.h"

namespace sluice::net {
namespace {

// Bytes read from one connection per loop pass before yielding to the others
// (edge-triggered: we re-queue ourselves, the kernel will not).
constexpr size_t kReadBudgetPerPass = 256 * 1024;
// Reads start at one buffer chunk (a request head fits); a read that fills
// its chunk means a body is streaming, and reads grow up to this.
constexpr size_t kMaxReadChunk = 128 * 1024;
static_assert(kMaxReadChunk / 1024 <= UINT8_MAX, "Connection keeps the read size in a byte");

}  // namespace

Connection::Connection(event::EventLoop& loop, std::unique_ptr<Transport> transport)
    : loop_(loop), transport_(transport.release()), fd_(transport_ ? transport_->fd() : -1) {}

Connection::Connection(event::EventLoop& loop, int fd, bool connecting)
    : loop_(loop), transport_(new (raw_storage_) RawTransport(fd, connecting)), fd_(fd) {}

Connection::Extras::Extras(Connection& connection)
    : send_timer(connection.loop_.timers(), [&connection] { connection.fail(ETIMEDOUT); }) {}

Connection::Extras& Connection::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>(*this);
  return *extras_;
}

Connection::~Connection() {
  close();
}

int Connection::start(bool handshake) {
  if (!transport_) return EBADF;
  const int error = loop_.addFd(fd_, this);
  if (error != 0) return error;
  connected_ = !handshake;
  return 0;
}

void Connection::write(std::string_view bytes) {
  output_.append(bytes);
  wrote();
}

void Connection::wrote() {
  if (!above_high_ && output_.size() >= high_watermark_) {
    above_high_ = true;
    if (callbacks_) callbacks_->onAboveHighWatermark();
  }
  scheduleFlush();
}

void Connection::scheduleFlush() {
  if (!open() || output_.empty() || write_blocked_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  loop_.addPending(fd_, kFlushBit);
}

void Connection::flush() {
  if (!open() || !connected_ || write_blocked_) return;
  if (output_.empty()) {
    afterOutputShrank();
    return;
  }
  doWrite();
}

void Connection::setWatermarks(size_t high, size_t low) {
  high_watermark_ = static_cast<uint32_t>(high);
  low_watermark_ = static_cast<uint32_t>(std::min(low, high));
}

void Connection::notifyWhenDrained() {
  notify_drained_ = true;
  if (output_.empty() && open()) {
    // Not re-entrantly: the owner asked from inside its own code.
    flush_scheduled_ = true;
    loop_.addPending(fd_, kFlushBit);
  }
}

void Connection::setReadEnabled(bool enabled) {
  if (read_enabled_ == enabled) return;
  read_enabled_ = enabled;
  // The kernel will not repeat an edge we consumed while paused.
  if (enabled && read_ready_ && open()) loop_.addPending(fd_, event::kReadable);
}

void Connection::redeliver() {
  if (!open()) return;
  loop_.addPending(fd_, kRedeliverBit);
}

void Connection::shutdownWriteWhenFlushed() {
  shutdown_wanted_ = true;
  if (output_.empty()) tryShutdownWrite();
}

void Connection::close() {
  if (!transport_) return;
  if (extras_) extras_->send_timer.cancel();
  // The transport closes the fd just below, and a socket is held by its
  // connection alone (workers do not fork), so the kernel drops it from
  // the poller.
  loop_.forgetFd(fd_);
  // Closes the fd.
  if (transport_ == inlineRaw()) {
    inlineRaw()->~RawTransport();
  } else {
    delete transport_;
  }
  transport_ = nullptr;
}

void Connection::releaseIdleMemory() {
  input_.releaseIfEmpty();
  output_.releaseIfEmpty();
  read_chunk_kib_ = kFirstReadChunkKib;
  if (transport_) transport_->releaseIdleMemory();
}

void Connection::onReady(uint32_t ready_bits) {
  if (!open()) return;
  if (ready_bits & kFlushBit) flush_scheduled_ = false;
  const bool readable = ready_bits & (event::kReadable | event::kPeerClosed | event::kError);
  const bool writable = ready_bits & (event::kWritable | event::kError);
  if (ready_bits & event::kPeerClosed) eof_signalled_ = true;
  if (peer_closed_ && (ready_bits & event::kError)) {
    // After the peer's FIN nothing is read any more, so a reset (the peer
    // had closed for good, and our write reached a closed socket) would go
    // unnoticed until a write failed; it ends the connection now.
    const int error = net::takeSocketError(fd_);
    fail(error != 0 ? error : ECONNRESET);
    return;
  }
  if (!connected_) {
    if ((handshake_wait_ == WaitFor::kReadable && readable) ||
        (handshake_wait_ == WaitFor::kWritable && writable) || (ready_bits & event::kError)) {
      continueHandshake();
    }
    if (!connected_ || !open()) return;
  }
  // Writes first: a write waiting for readiness frees room that a read
  // callback may want to fill.
  if (write_blocked_ && ((write_wait_ == WaitFor::kWritable && writable) ||
                         (write_wait_ == WaitFor::kReadable && readable))) {
    write_blocked_ = false;
  }
  if (!write_blocked_ && (!output_.empty() || (ready_bits & kFlushBit))) {
    flush();
    if (!open()) return;
  }
  if ((read_wait_ == WaitFor::kReadable && readable) ||
      (read_wait_ == WaitFor::kWritable && writable)) {
    read_ready_ = true;
  }
  if (ready_bits & kRedeliverBit) {
    if (callbacks_) {
      callbacks_->onReadable();
      if (!open()) return;
    }
  }
  if (read_ready_ && read_enabled_ && !peer_closed_) doRead();
}

void Connection::continueHandshake() {
  IoResult r = transport_->handshake();
  if (r.isAgain()) {
    handshake_wait_ = r.wait_for;
    return;
  }
  if (!r.isOk()) {
    fail(r.error != 0 ? r.error : ECONNABORTED);
    return;
  }
  connected_ = true;
  // Readiness that arrived during the handshake may hold application bytes.
  read_ready_ = true;
  if (callbacks_) callbacks_->onConnected();
}

void Connection::doRead() {
  size_t budget = kReadBudgetPerPass;
  while (open() && read_enabled_ && read_ready_ && !peer_closed_) {
    const size_t chunk = readChunk();
    IoResult r = transport_->read(input_, chunk);
    if (r.isOk()) {
      bytes_read_ += r.bytes;
      // Edge-triggered: a short read emptied the socket, and new bytes will
      // bring a new edge — unless the peer's FIN is already signalled, which
      // brings none, so read on to the EOF.
      if (r.drained && !eof_signalled_) read_ready_ = false;
      if (r.bytes == chunk) {
        read_chunk_kib_ = static_cast<uint8_t>(std::min(chunk * 4, kMaxReadChunk) / 1024);
      }
      if (callbacks_) callbacks_->onReadable();
      if (!open()) return;
      if (r.bytes >= budget) {
        if (read_ready_) loop_.addPending(fd_, event::kReadable);
        return;
      }
      budget -= r.bytes;
      continue;
    }
    read_ready_ = false;
    // The read reserved a chunk for nothing: an idle connection holds none.
    input_.releaseIfEmpty();
    if (r.isAgain()) {
      read_wait_ = r.wait_for;
      return;
    }
    if (r.isEof()) {
      peer_closed_ = true;
      if (callbacks_) callbacks_->onPeerClosed();
      return;
    }
    fail(r.error);
    return;
  }
}

void Connection::doWrite() {
  bool progress = false;
  while (!output_.empty()) {
    IoResult r = transport_->write(output_);
    if (r.isOk()) {
      bytes_written_ += r.bytes;
      progress = true;
      continue;
    }
    if (r.isAgain()) {
      write_blocked_ = true;
      write_wait_ = r.wait_for;
      // The send timeout measures the gap between progress.
      if (progress || !extras_ || !extras_->send_timer.armed()) armSendTimer();
      afterOutputShrank();
      return;
    }
    fail(r.error);
    return;
  }
  if (extras_) extras_->send_timer.cancel();
  afterOutputShrank();
}

void Connection::afterOutputShrank() {
  if (above_high_ && output_.size() <= low_watermark_) {
    above_high_ = false;
    if (callbacks_) callbacks_->onBelowLowWatermark();
    if (!open()) return;
  }
  if (!output_.empty()) return;
  if (shutdown_wanted_) {
    tryShutdownWrite();
    if (!open()) return;
  }
  if (notify_drained_) {
    notify_drained_ = false;
    if (callbacks_) callbacks_->onOutputDrained();
  }
}

void Connection::tryShutdownWrite() {
  if (write_shut_down_ || !open()) return;
  IoResult r = transport_->shutdownWrite();
  if (r.isAgain()) {
    write_blocked_ = true;
    write_wait_ = r.wait_for;
    return;
  }
  if (r.isError()) {
    fail(r.error);
    return;
  }
  shutdown_wanted_ = false;
  write_shut_down_ = true;
}

void Connection::armSendTimer() {
  if (send_timeout_ms_ == 0) return;
  extras().send_timer.arm(event::Duration(send_timeout_ms_));
}

const std::string& Connection::failureReason() const {
  static const std::string kNone;
  return extras_ ? extras_->failure_reason : kNone;
}

void Connection::fail(int error) {
  if (transport_) {
    std::string reason = transport_->reason();
    if (!reason.empty()) extras().failure_reason = std::move(reason);
  }
  close();
  if (callbacks_) callbacks_->onTransportError(error);
}

}  // namespace sluice::net
