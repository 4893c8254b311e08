#include "net/proxy_protocol_transport.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace sluice::net {
namespace {

#ifdef POLLRDHUP
constexpr short kPeerShutdownEvents = POLLRDHUP;  // Linux: the peer's FIN
#else
constexpr short kPeerShutdownEvents = POLLHUP;
#endif

}  // namespace

ProxyProtocolTransport::ProxyProtocolTransport(std::unique_ptr<Transport> inner)
    : inner_(std::move(inner)) {}

IoResult ProxyProtocolTransport::handshake() {
  if (!header_done_) {
    IoResult r = readHeader();
    if (!r.isOk()) return r;
    header_done_ = true;
  }
  return inner_->handshake();
}

IoResult ProxyProtocolTransport::readHeader() {
  char peeked[kProxyHeaderMaxBytes];
  for (;;) {
    const ssize_t n = ::recv(fd(), peeked, sizeof peeked, MSG_PEEK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return IoResult::again(WaitFor::kReadable);
    }
    if (n < 0) return IoResult::failed(errno);
    if (n == 0) {
      reason_ = "connection closed before a complete PROXY header";
      return IoResult::failed(ECONNABORTED);
    }
    const ProxyParseResult parsed =
        parseProxyHeader(std::string_view(peeked, static_cast<size_t>(n)));
    if (parsed.status == ProxyParseResult::Status::kError) {
      reason_ = parsed.error;
      return IoResult::failed(EPROTO);
    }
    if (parsed.status == ProxyParseResult::Status::kNeedMore) {
      // A peek cannot see an EOF behind pending bytes: ask whether the
      // sender shut down (only on this rare path of a header in pieces).
      pollfd p{fd(), kPeerShutdownEvents, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & (kPeerShutdownEvents | POLLHUP | POLLERR)) != 0) {
        reason_ = "connection closed before a complete PROXY header";
        return IoResult::failed(ECONNABORTED);
      }
      // Edge-triggered: the rest of the header brings a new edge. (A sender
      // that never completes it is closed by the header timeout.)
      return IoResult::again(WaitFor::kReadable);
    }
    // Consume exactly the header; what follows stays in the socket for the
    // inner transport.
    size_t left = parsed.consumed;
    while (left > 0) {
      const ssize_t got = ::recv(fd(), peeked, left, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return IoResult::failed(got == 0 ? ECONNABORTED : errno);
      left -= static_cast<size_t>(got);
    }
    if (parsed.header.has_addresses) {
      info_.proxied_source = parsed.header.source;
      info_.proxied_destination = parsed.header.destination;
    }
    return IoResult::ok(0);
  }
}

const TransportInfo& ProxyProtocolTransport::info() const {
  // The inner transport's (TLS) facts, with what the header said.
  const TransportInfo& inner = inner_->info();
  const auto source = info_.proxied_source;
  const auto destination = info_.proxied_destination;
  info_ = inner;
  info_.proxied_source = source;
  info_.proxied_destination = destination;
  return info_;
}

}  // namespace sluice::net
