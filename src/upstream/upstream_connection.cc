#include "upstream/upstream_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/socket.h"
#include "upstream/conn_pool.h"

namespace sluice::upstream {

UpstreamConnection::UpstreamConnection(event::EventLoop& loop, ConnPool& pool, int fd,
                                       bool connecting)
    : loop_(loop), pool_(pool), fd_(fd), connecting_(connecting) {}

std::unique_ptr<UpstreamConnection> UpstreamConnection::connect(event::EventLoop& loop,
                                                                ConnPool& pool, int* error) {
  bool in_progress = false;
  int fd = net::connectTo(pool.address(), &in_progress);
  if (fd < 0) {
    *error = -fd;
    return nullptr;
  }
  std::unique_ptr<UpstreamConnection> connection(
      new UpstreamConnection(loop, pool, fd, in_progress));
  int err = loop.addFd(fd, connection.get());
  if (err != 0) {
    *error = err;
    return nullptr;
  }
  return connection;
}

UpstreamConnection::~UpstreamConnection() {
  idle_timer_.reset();
  loop_.removeFd(fd_);
  ::close(fd_);
}

void UpstreamConnection::onReady(uint32_t ready_bits) {
  if (owner_ != nullptr) {
    owner_->onUpstreamReady(ready_bits);
    return;
  }
  // Idle in the pool: a writable edge is expected and harmless; anything to
  // read (EOF, or bytes the server should never send unasked) ends it.
  if (ready_bits & (event::kReadable | event::kPeerClosed | event::kError)) {
    char probe;
    ssize_t n = ::recv(fd_, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    pool_.discardIdle(
        this, n == 0 ? "closed by upstream while idle" : "unexpected bytes or error while idle");
  }
}

}  // namespace sluice::upstream
