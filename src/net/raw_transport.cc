#include "net/raw_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/socket.h"

namespace sluice::net {

RawTransport::RawTransport(int fd, bool connecting) : fd_(fd), connecting_(connecting) {}

RawTransport::~RawTransport() {
  if (fd_ >= 0) ::close(fd_);
}

IoResult RawTransport::handshake() {
  if (!connecting_) return IoResult::ok(0);
  // A non-blocking connect has finished once the socket is writable; its
  // outcome is in SO_ERROR (0 = connected). Before that, SO_ERROR is 0 too,
  // so a call made before writability could be mistaken for success: the
  // Connection calls this only on a writable (or error) edge.
  const int error = takeSocketError(fd_);
  if (error != 0) return IoResult::failed(error);
  connecting_ = false;
  return IoResult::ok(0);
}

IoResult RawTransport::read(Buffer& into, size_t max) {
  char* tail = into.reserveTail(max);
  for (;;) {
    const ssize_t n = ::read(fd_, tail, max);
    if (n > 0) {
      into.commit(static_cast<size_t>(n));
      // Less than offered: the socket's receive queue is empty now.
      return IoResult::ok(static_cast<size_t>(n), static_cast<size_t>(n) < max);
    }
    if (n == 0) return IoResult::eof();
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::again(WaitFor::kReadable);
    return IoResult::failed(errno);
  }
}

IoResult RawTransport::write(Buffer& from) {
  for (;;) {
    // MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill the worker.
    const ssize_t n = ::send(fd_, from.data(), from.size(), MSG_NOSIGNAL);
    if (n > 0) {
      from.consume(static_cast<size_t>(n));
      return IoResult::ok(static_cast<size_t>(n));
    }
    if (n == 0) return IoResult::again(WaitFor::kWritable);  // only for an empty buffer
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::again(WaitFor::kWritable);
    return IoResult::failed(errno);
  }
}

IoResult RawTransport::shutdownWrite() {
  if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) return IoResult::failed(errno);
  return IoResult::ok(0);
}

}  // namespace sluice::net
