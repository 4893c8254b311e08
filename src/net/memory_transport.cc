#include "net/memory_transport.h"

#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace sluice::net {

// Direction d carries bytes towards side d.
struct MemoryTransport::Shared {
  struct Direction {
    std::string bytes;
    size_t capacity = 0;
    bool writer_closed = false;  // FIN: the sender shut down its write side
  };
  Direction towards[2];
  bool gone[2] = {false, false};
  bool reset_for[2] = {false, false};  // side s gets ECONNRESET
  int notify_fd[2] = {-1, -1};         // write end of each side's wake-up fd
};

MemoryTransport::Pair MemoryTransport::makePair(size_t capacity) {
  auto shared = std::make_shared<Shared>();
  shared->towards[0].capacity = capacity;
  shared->towards[1].capacity = capacity;
  Pair pair(std::unique_ptr<MemoryTransport>(new MemoryTransport(shared, 0)),
            std::unique_ptr<MemoryTransport>(new MemoryTransport(shared, 1)));
  return pair;
}

MemoryTransport::MemoryTransport(std::shared_ptr<Shared> shared, int side)
    : shared_(std::move(shared)), side_(side) {
#ifdef __linux__
  notify_read_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  notify_write_fd_ = notify_read_fd_;
#else
  int fds[2] = {-1, -1};
  if (::pipe(fds) == 0) {
    for (int fd : fds) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  notify_read_fd_ = fds[0];
  notify_write_fd_ = fds[1];
#endif
  shared_->notify_fd[side_] = notify_write_fd_;
}

MemoryTransport::~MemoryTransport() {
  shared_->gone[side_] = true;
  shared_->towards[1 - side_].writer_closed = true;
  shared_->notify_fd[side_] = -1;
  notify(1 - side_);
  if (notify_write_fd_ != notify_read_fd_ && notify_write_fd_ >= 0) ::close(notify_write_fd_);
  if (notify_read_fd_ >= 0) ::close(notify_read_fd_);
}

void MemoryTransport::notify(int side) {
  const int fd = shared_->notify_fd[side];
  if (fd < 0) return;
    // Each write is a new readiness edge for the loop watching that side (an
    // eventfd wakes its epoll waiters on every write, as a socket does on
    // every arriving segment).
#ifdef __linux__
  const uint64_t one = 1;
  ssize_t n = ::write(fd, &one, sizeof one);
#else
  const char one = 1;
  ssize_t n = ::write(fd, &one, 1);
#endif
  (void)n;
}

IoResult MemoryTransport::handshake() {
  if (handshake_error_ != 0) return IoResult::failed(handshake_error_);
  if (handshake_held_) return IoResult::again(WaitFor::kWritable);
  return IoResult::ok(0);
}

void MemoryTransport::completeHandshake() {
  handshake_held_ = false;
  notify(side_);
}

void MemoryTransport::failHandshake(int error) {
  handshake_held_ = false;
  handshake_error_ = error;
  notify(side_);
}

IoResult MemoryTransport::read(Buffer& into, size_t max) {
  ++read_calls_;
  if (shared_->reset_for[side_]) return IoResult::failed(ECONNRESET);
  Shared::Direction& in = shared_->towards[side_];
  if (in.bytes.empty()) {
    if (in.writer_closed) return IoResult::eof();
    return IoResult::again(WaitFor::kReadable);
  }
  const bool was_full = in.bytes.size() >= in.capacity;
  const size_t n = std::min(max, in.bytes.size());
  std::memcpy(into.reserveTail(n), in.bytes.data(), n);
  into.commit(n);
  in.bytes.erase(0, n);
  // The writer may be waiting for room.
  if (was_full) notify(1 - side_);
  return IoResult::ok(n, in.bytes.empty() && !in.writer_closed);
}

IoResult MemoryTransport::write(Buffer& from) {
  ++write_calls_;
  if (shared_->reset_for[side_]) return IoResult::failed(ECONNRESET);
  if (shared_->gone[1 - side_]) return IoResult::failed(EPIPE);
  Shared::Direction& out = shared_->towards[1 - side_];
  if (out.writer_closed) return IoResult::failed(EPIPE);
  if (out.bytes.size() >= out.capacity) return IoResult::again(WaitFor::kWritable);
  const size_t n = std::min(from.size(), out.capacity - out.bytes.size());
  out.bytes.append(from.data(), n);
  from.consume(n);
  notify(1 - side_);
  return IoResult::ok(n);
}

IoResult MemoryTransport::shutdownWrite() {
  shared_->towards[1 - side_].writer_closed = true;
  notify(1 - side_);
  return IoResult::ok(0);
}

void MemoryTransport::setReceiveCapacity(size_t bytes) {
  shared_->towards[side_].capacity = bytes;
  notify(1 - side_);
}

void MemoryTransport::reset() {
  shared_->reset_for[1 - side_] = true;
  shared_->towards[0].bytes.clear();
  shared_->towards[1].bytes.clear();
  notify(1 - side_);
}

void MemoryTransport::send(std::string_view bytes) {
  shared_->towards[1 - side_].bytes.append(bytes);
  notify(1 - side_);
}

std::string MemoryTransport::takeReceived() {
  Shared::Direction& in = shared_->towards[side_];
  const bool was_full = in.bytes.size() >= in.capacity;
  std::string out = std::move(in.bytes);
  in.bytes.clear();
  if (was_full) notify(1 - side_);
  return out;
}

size_t MemoryTransport::pendingBytes() const {
  return shared_->towards[side_].bytes.size();
}

size_t MemoryTransport::unreadByPeer() const {
  return shared_->towards[1 - side_].bytes.size();
}

bool MemoryTransport::peerClosedWrite() const {
  return shared_->towards[side_].writer_closed;
}

bool MemoryTransport::peerGone() const {
  return shared_->gone[1 - side_];
}

}  // namespace sluice::net
