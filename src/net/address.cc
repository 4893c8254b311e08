#include "net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/text.h"

namespace sluice::net {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";
// sun_path is 108 bytes on Linux and must hold the terminating NUL; we never
// rely on the kernel accepting an unterminated path (it does on Linux, not
// on the BSDs).
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un{}.sun_path) - 1;

bool setError(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Digits only: no sign, no spaces, no hex. `strtoul` would accept all of those.
bool parseDecimal(std::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

// inet_pton needs a NUL-terminated string.
bool parseIpv4(std::string_view text, in_addr* out) {
  if (text.size() >= INET_ADDRSTRLEN) return false;
  const std::string copy(text);
  return inet_pton(AF_INET, copy.c_str(), out) == 1;
}

bool parseIpv6(std::string_view text, in6_addr* out) {
  if (text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text);
  return inet_pton(AF_INET6, copy.c_str(), out) == 1;
}

std::string ipv4Text(const in_addr& addr) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

std::string ipv6Text(const in6_addr& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &addr, buf, sizeof(buf));
  return buf;
}

bool isV4Mapped(const uint8_t* b) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(b, kPrefix, sizeof(kPrefix)) == 0;
}

// Compares the first `bits` bits of two byte arrays.
bool prefixEqual(const uint8_t* a, const uint8_t* b, int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<Address> Address::parse(std::string_view text, std::string* error) {
  Address result;
  if (text.substr(0, kUnixPrefix.size()) == kUnixPrefix) {
    const std::string_view path = text.substr(kUnixPrefix.size());
    if (path.empty()) {
      setError(error, quote(text) + " has an empty socket path (expected unix:/path/to/socket)");
      return std::nullopt;
    }
    if (path.find('\0') != std::string_view::npos) {
      setError(error, quote(text) + " contains a NUL byte");
      return std::nullopt;
    }
    if (path.size() > kMaxUnixPath) {
      setError(error, quote(text) + " is too long: a unix socket path may have at most " +
                          std::to_string(kMaxUnixPath) + " bytes, this one has " +
                          std::to_string(path.size()));
      return std::nullopt;
    }
    result.family_ = Family::kUnix;
    result.text_ = std::string(path);
    return result;
  }

  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      setError(error, quote(text) + " has no closing ']' (expected [ipv6]:port, e.g. [::1]:8080)");
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) {
      setError(error, quote(text) + " has no port (expected [ipv6]:port, e.g. [::1]:8080)");
      return std::nullopt;
    }
    if (rest.front() != ':') {
      setError(error, quote(text) + " has unexpected text after ']' (expected [ipv6]:port)");
      return std::nullopt;
    }
    port_text = rest.substr(1);
    in6_addr addr;
    if (!parseIpv6(host, &addr)) {
      setError(error, quote(text) + ": " + quote(host) + " is not a valid IPv6 address");
      return std::nullopt;
    }
    result.family_ = Family::kIpv6;
    result.text_ = ipv6Text(addr);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      setError(error, quote(text) +
                          " has no port (expected host:port, e.g. 127.0.0.1:8080, "
                          "[::1]:8080 or unix:/path)");
      return std::nullopt;
    }
    if (text.find(':') != colon) {
      // Several colons and no brackets: an IPv6 address whose port we
      // cannot tell apart from its last group.
      setError(error, quote(text) +
                          " looks like an IPv6 address; write it in brackets with a "
                          "port, e.g. [::1]:8080");
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.empty()) {
      const std::string port(port_text);
      setError(error, quote(text) + " has no host (use 0.0.0.0:" + port + " or [::]:" + port +
                          " for all addresses)");
      return std::nullopt;
    }
    in_addr addr;
    if (equalsIgnoreCase(host, "localhost")) {
      // The one name we resolve, without DNS or /etc/hosts: a config must
      // mean the same thing on every machine and never block a reload.
      result.text_ = "127.0.0.1";
    } else if (parseIpv4(host, &addr)) {
      result.text_ = ipv4Text(addr);
    } else {
      setError(error, quote(text) + ": " + quote(host) +
                          " is not an IPv4 address (host names other than localhost are not "
                          "resolved; use a numeric address)");
      return std::nullopt;
    }
    result.family_ = Family::kIpv4;
  }

  uint64_t port = 0;
  if (!parseDecimal(port_text, 65535, &port)) {
    setError(error, quote(text) + " is not a valid port (1-65535)");
    return std::nullopt;
  }
  result.port_ = static_cast<uint16_t>(port);
  return result;
}

const std::string& Address::empty() {
  static const std::string kEmpty;
  return kEmpty;
}

Address Address::fromSockaddr(const sockaddr* sa, socklen_t len) {
  Address result;
  if (sa != nullptr && sa->sa_family == AF_INET &&
      len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof(sin));
    result.family_ = Family::kIpv4;
    result.text_ = ipv4Text(sin.sin_addr);
    result.port_ = ntohs(sin.sin_port);
    return result;
  }
  if (sa != nullptr && sa->sa_family == AF_INET6 &&
      len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof(sin6));
    result.family_ = Family::kIpv6;
    result.text_ = ipv6Text(sin6.sin6_addr);
    result.port_ = ntohs(sin6.sin6_port);
    return result;
  }
  if (sa != nullptr && sa->sa_family == AF_UNIX &&
      len >= static_cast<socklen_t>(offsetof(sockaddr_un, sun_path))) {
    sockaddr_un sun;
    std::memset(&sun, 0, sizeof(sun));
    const size_t copy = std::min(static_cast<size_t>(len), sizeof(sun));
    std::memcpy(&sun, sa, copy);
    const size_t path_len = copy - offsetof(sockaddr_un, sun_path);
    result.family_ = Family::kUnix;
    if (path_len > 0 && sun.sun_path[0] == '\0') {
      // Linux abstract socket: shown with the conventional '@' for logs only.
      // (Built with append: GCC 12 warns falsely about "@" + std::string.)
      result.text_.assign(1, '@');
      result.text_.append(sun.sun_path + 1, path_len - 1);
    } else {
      // Peers of a unix listener are usually unnamed (len covers no path).
      result.text_ = std::string(sun.sun_path, strnlen(sun.sun_path, path_len));
    }
    return result;
  }
  // The kernel only hands us families of sockets we created ourselves.
  std::fprintf(stderr, "sluice: Address::fromSockaddr: unsupported family %d (len %u)\n",
               sa == nullptr ? -1 : sa->sa_family, static_cast<unsigned>(len));
  std::abort();
}

std::string Address::toString() const {
  switch (family_) {
    case Family::kIpv4:
      return text_ + ":" + std::to_string(port_);
    case Family::kIpv6:
      return "[" + text_ + "]:" + std::to_string(port_);
    case Family::kUnix:
      return std::string(kUnixPrefix) + text_;
  }
  return {};
}

std::string Address::ipText() const {
  return family_ == Family::kUnix ? std::string("unix") : text_;
}

socklen_t Address::toSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  switch (family_) {
    case Family::kIpv4: {
      sockaddr_in sin;
      std::memset(&sin, 0, sizeof(sin));
      sin.sin_family = AF_INET;
      sin.sin_port = htons(port_);
      // text_ is always numeric text we produced ourselves.
      if (!parseIpv4(text_, &sin.sin_addr)) std::abort();
      std::memcpy(out, &sin, sizeof(sin));
      return sizeof(sin);
    }
    case Family::kIpv6: {
      sockaddr_in6 sin6;
      std::memset(&sin6, 0, sizeof(sin6));
      sin6.sin6_family = AF_INET6;
      sin6.sin6_port = htons(port_);
      if (!parseIpv6(text_, &sin6.sin6_addr)) std::abort();
      std::memcpy(out, &sin6, sizeof(sin6));
      return sizeof(sin6);
    }
    case Family::kUnix: {
      sockaddr_un sun;
      std::memset(&sun, 0, sizeof(sun));
      sun.sun_family = AF_UNIX;
      const size_t n = std::min(text_.size(), kMaxUnixPath);
      std::memcpy(sun.sun_path, text_.data(), n);
      std::memcpy(out, &sun, sizeof(sun));
      return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + 1);
    }
  }
  return 0;
}

std::optional<CidrRange> CidrRange::parse(std::string_view text, std::string* error) {
  CidrRange result;
  const size_t slash = text.find('/');
  const std::string_view ip = text.substr(0, slash);
  in6_addr v6;
  in_addr v4;
  int max_len = 0;
  if (parseIpv4(ip, &v4)) {
    result.v6_ = false;
    std::memcpy(result.bytes_, &v4, 4);
    max_len = 32;
  } else if (parseIpv6(ip, &v6)) {
    result.v6_ = true;
    std::memcpy(result.bytes_, &v6, 16);
    max_len = 128;
  } else {
    setError(error, quote(text) +
                        " is not a valid address range (expected an IP address or "
                        "CIDR, e.g. 10.0.0.0/8, 127.0.0.1 or ::1/128)");
    return std::nullopt;
  }
  result.prefix_len_ = max_len;
  if (slash != std::string_view::npos) {
    uint64_t len = 0;
    if (!parseDecimal(text.substr(slash + 1), static_cast<uint64_t>(max_len), &len)) {
      setError(error, quote(text) + " has an invalid prefix length (0-" + std::to_string(max_len) +
                          " for IPv" + (result.v6_ ? "6" : "4") + ")");
      return std::nullopt;
    }
    result.prefix_len_ = static_cast<int>(len);
  }
  // Bits set past the prefix are almost always a typo (192.168.1.0/16), and
  // in a list of trusted peers a silent widening or narrowing is a security
  // bug, so refuse rather than mask.
  CidrRange masked = result;
  const int bytes = max_len / 8;
  for (int i = 0; i < bytes; ++i) {
    const int bit_start = i * 8;
    if (bit_start >= result.prefix_len_) {
      masked.bytes_[i] = 0;
    } else if (bit_start + 8 > result.prefix_len_) {
      masked.bytes_[i] &= static_cast<uint8_t>(0xff << (8 - (result.prefix_len_ - bit_start)));
    }
  }
  if (std::memcmp(masked.bytes_, result.bytes_, sizeof(result.bytes_)) != 0) {
    setError(error, quote(text) + " has bits set after the prefix length (did you mean " +
                        quote(masked.toString()) + "?)");
    return std::nullopt;
  }
  return result;
}

bool CidrRange::contains(const Address& address) const {
  if (address.family() == Address::Family::kUnix) return false;
  uint8_t bytes[16] = {};
  if (address.family() == Address::Family::kIpv4) {
    if (v6_) return false;
    in_addr v4;
    if (!parseIpv4(address.host(), &v4)) return false;
    std::memcpy(bytes, &v4, 4);
    return prefixEqual(bytes, bytes_, prefix_len_);
  }
  in6_addr v6;
  if (!parseIpv6(address.host(), &v6)) return false;
  std::memcpy(bytes, &v6, 16);
  if (v6_) return prefixEqual(bytes, bytes_, prefix_len_);
  // A dual-stack [::] listener sees IPv4 peers as ::ffff:a.b.c.d; an IPv4
  // range should still recognise them.
  if (isV4Mapped(bytes)) return prefixEqual(bytes + 12, bytes_, prefix_len_);
  return false;
}

std::string CidrRange::toString() const {
  std::string ip;
  if (v6_) {
    in6_addr v6;
    std::memcpy(&v6, bytes_, 16);
    ip = ipv6Text(v6);
  } else {
    in_addr v4;
    std::memcpy(&v4, bytes_, 4);
    ip = ipv4Text(v4);
  }
  return ip + "/" + std::to_string(prefix_len_);
}

}  // namespace sluice::net
