// Thin, exception-free wrappers over the socket calls sluice makes: listening
// sockets, accept, non-blocking connect, socket options. Free functions; the
// caller owns every fd they return.
#pragma once

#include <string>

#include "net/address.h"

namespace sluice::net {

// How a listening socket shares its address.
enum class ListenSharing {
  kExclusive,  // the only socket on the address
  // One of a group that the kernel balances new connections across
  // (SO_REUSEPORT on Linux, SO_REUSEPORT_LB on FreeBSD). The first of a
  // group first checks with a plain bind that nobody holds the address, so
  // that a second sluice (or anything else) is still refused with
  // EADDRINUSE instead of silently sharing the port.
  kBalancedFirst,
  kBalancedMember,
};

// Whether this platform balances connections across a group of listening
// sockets on one address (ListenSharing::kBalanced*).
bool canBalanceListeners();

// Creates a non-blocking, close-on-exec listening socket bound to `address`
// (SO_REUSEADDR; IPV6_V6ONLY for `[::]` so v4 and v6 can be bound apart; a
// stale unix socket file is removed first). Returns the fd, or -1 and *error.
int listenOn(const Address& address, int backlog, std::string* error,
             ListenSharing sharing = ListenSharing::kExclusive);

// Accepts one connection as a non-blocking, close-on-exec fd. Returns the fd,
// or -errno (-EAGAIN when the queue is empty).
int acceptFrom(int listen_fd, Address* peer);

// Starts a non-blocking connect. Returns the fd and sets *in_progress when the
// connect has not finished yet (wait for writability, then takeSocketError),
// or returns -errno.
int connectTo(const Address& address, bool* in_progress);

// SO_ERROR: the pending error of a socket (0 = none).
int takeSocketError(int fd);

// The address a socket is bound to (for port 0 listeners in tests and logs).
Address localAddress(int fd);

void setNoDelay(int fd);

}  // namespace sluice::net
