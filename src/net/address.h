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
  enum class Family { kIpv4, kIpv6, kUnix };

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
  uint16_t port() const { return port_; }            // 0 for unix
  const std::string& host() const { return host_; }  // numeric IP text, no brackets
  const std::string& path() const { return path_; }  // unix only
  // Canonical text: `1.2.3.4:80`, `[::1]:80`, `unix:/path`.
  std::string toString() const;
  // IP without port (`1.2.3.4`, `::1`), or `unix` — for X-Forwarded-For / logs.
  std::string ipText() const;

  // Fills a sockaddr_storage for bind/connect; returns its length.
  socklen_t toSockaddr(sockaddr_storage* out) const;

  bool operator==(const Address& other) const = default;

 private:
  Family family_ = Family::kIpv4;
  std::string host_;
  uint16_t port_ = 0;
  std::string path_;
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
