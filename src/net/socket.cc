#include "net/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::net {
namespace {

std::string errnoText(const char* what, const Address& address) {
  return std::string(what) + " " + address.toString() + ": " + std::strerror(errno);
}

// SOCK_NONBLOCK|SOCK_CLOEXEC are Linux/BSD extensions; set them with fcntl
// where they do not exist (macOS).
int makeSocket(int family, int type) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = ::socket(family, type, 0);
  if (fd >= 0) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  return fd;
#endif
}

#if defined(SO_REUSEPORT_LB)
constexpr int kBalancingOption = SO_REUSEPORT_LB;  // FreeBSD 12+
#elif defined(__linux__)
constexpr int kBalancingOption = SO_REUSEPORT;  // Linux 3.9+: hashed across the group
#else
constexpr int kBalancingOption = -1;  // macOS, other BSDs: SO_REUSEPORT does not balance
#endif

// A plain bind (no listen) of `address`: fails with EADDRINUSE while anyone
// else listens there, whatever options they set.
bool probeBind(const Address& address, std::string* error) {
  sockaddr_storage storage;
  socklen_t len = address.toSockaddr(&storage);
  int fd = makeSocket(storage.ss_family, SOCK_STREAM);
  if (fd < 0) {
    *error = errnoText("socket for", address);
    return false;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (address.family() == Address::Family::kIpv6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&storage), len) == 0;
  if (!ok) *error = errnoText("cannot bind", address);
  ::close(fd);
  return ok;
}

}  // namespace

bool canBalanceListeners() {
  return kBalancingOption >= 0;
}

int listenOn(const Address& address, int backlog, std::string* error, ListenSharing sharing) {
  const bool balanced = sharing != ListenSharing::kExclusive && canBalanceListeners() &&
                        address.family() != Address::Family::kUnix;
  if (balanced && sharing == ListenSharing::kBalancedFirst && address.port() != 0 &&
      !probeBind(address, error)) {
    return -1;
  }
  sockaddr_storage storage;
  socklen_t len = address.toSockaddr(&storage);
  int fd = makeSocket(storage.ss_family, SOCK_STREAM);
  if (fd < 0) {
    *error = errnoText("socket for", address);
    return -1;
  }
  int one = 1;
  if (balanced && ::setsockopt(fd, SOL_SOCKET, kBalancingOption, &one, sizeof one) != 0) {
    *error = errnoText("cannot set SO_REUSEPORT on", address);
    ::close(fd);
    return -1;
  }
  if (address.family() == Address::Family::kUnix) {
    // A socket file left by a previous run would make bind fail with
    // EADDRINUSE; remove it only if it really is a socket.
    struct stat st;
    if (::stat(address.path().c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ::unlink(address.path().c_str());
    }
  } else {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (address.family() == Address::Family::kIpv6) {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    *error = errnoText("cannot bind", address);
    ::close(fd);
    return -1;
  }
  if (::listen(fd, backlog) != 0) {
    *error = errnoText("cannot listen on", address);
    ::close(fd);
    return -1;
  }
  return fd;
}

int acceptFrom(int listen_fd, Address* peer) {
  sockaddr_storage storage;
  socklen_t len = sizeof storage;
  for (;;) {
#if defined(__linux__) || defined(__FreeBSD__)
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&storage), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = ::accept(listen_fd, reinterpret_cast<sockaddr*>(&storage), &len);
    if (fd >= 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
#endif
    if (fd >= 0) {
      if (peer) *peer = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
      return fd;
    }
    // A connection reset while queued is not our listener's failure: skip it.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EWOULDBLOCK) return -EAGAIN;
    return -errno;
  }
}

int connectTo(const Address& address, bool* in_progress) {
  sockaddr_storage storage;
  socklen_t len = address.toSockaddr(&storage);
  int fd = makeSocket(storage.ss_family, SOCK_STREAM);
  if (fd < 0) return -errno;
  *in_progress = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    if (errno == EINPROGRESS || errno == EINTR) {
      *in_progress = true;
    } else {
      int err = errno;
      ::close(fd);
      return -err;
    }
  }
  if (address.family() != Address::Family::kUnix) setNoDelay(fd);
  return fd;
}

int takeSocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

Address localAddress(int fd) {
  sockaddr_storage storage;
  socklen_t len = sizeof storage;
  std::memset(&storage, 0, sizeof storage);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len);
  return Address::fromSockaddr(reinterpret_cast<sockaddr*>(&storage), len);
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace sluice::net
