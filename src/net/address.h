// Address: a listen/connect address parsed from text — `host:port`,
// `[v6]:port` or `unix:/path`. Value type.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::net {

class Address {
 public:
  enum class Family : uint8_t { kIpv4, kIpv6, kUnix };

  // Parses `127.0.0.1:8080`, `[::1]:8080`, `[::]:80`, `0.0.0.0:80`,
  // `localhost:8080` (resolved numerically only for the literal "localhost",
  // which maps to 127.0.0.1; other host names are rejected), `unix:/path`.
  // Port 0 is accepted (ephemeral). On failure returns nullopt and sets
  // *error to a message a user can act on, e.g.
  // `"127.0.0.1:99999" is not a valid port (1-65535)`.
  static std::optional<Address> parse(std::string_view text, std::string* error);
  // From a kernel sockaddr (accept/getsockname).
  static Address fromSockaddr(const sockaddr* sa, socklen_t len);

  // The same IP with another port (an IP answer from DNS + the configured port).
  Address withPort(uint16_t port) const {
    Address copy = *this;
    copy.port_ = port;
    return copy;
  }

  Family family() const { return family_; }
  uint16_t port() const { return port_; }  // 0 for unix
  // Numeric IP text without brackets (empty for unix), and the socket path
  // (unix only; empty otherwise).
  const std::string& host() const { return family_ == Family::kUnix ? empty() : text_; }
  const std::string& path() const { return family_ == Family::kUnix ? text_ : empty(); }
  // Canonical text: `1.2.3.4:80`, `[::1]:80`, `unix:/path`.
  std::string toString() const;
  // IP without port (`1.2.3.4`, `::1`), or `unix` — for X-Forwarded-For / logs.
  std::string ipText() const;

  // Fills a sockaddr_storage for bind/connect; returns its length.
  socklen_t toSockaddr(sockaddr_storage* out) const;

  bool operator==(const Address& other) const = default;

 private:
  static const std::string& empty();
  // The IP text or the unix path, by family: one string, since an address
  // has only one of them (every client connection keeps its peer's).
  std::string text_;
  uint16_t port_ = 0;
  Family family_ = Family::kIpv4;
};

// CidrRange: an IPv4 or IPv6 prefix such as `127.0.0.1/32` or `::1/128`
// (a bare address means a full-length prefix). Used for trusted_proxies.
class CidrRange {
 public:
  static std::optional<CidrRange> parse(std::string_view text, std::string* error);
  bool contains(const Address& address) const;  // false for unix addresses
  std::string toString() const;

 private:
  bool v6_ = false;
  uint8_t bytes_[16] = {};
  int prefix_len_ = 0;
};

}  // namespace sluice::net
