#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace sluice::net {
namespace {

constexpr unsigned char kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

ProxyParseResult fail(std::string why) {
  ProxyParseResult r;
  r.status = ProxyParseResult::Status::kError;
  r.error = std::move(why);
  return r;
}

ProxyParseResult needMore() {
  return {};
}

bool parsePort(std::string_view text, uint16_t* out) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  *out = static_cast<uint16_t>(value);
  return true;
}

bool ipv4Address(std::string_view ip, uint16_t port, Address* out) {
  char text[INET_ADDRSTRLEN];
  if (ip.empty() || ip.size() >= sizeof text) return false;
  std::memcpy(text, ip.data(), ip.size());
  text[ip.size()] = '\0';
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, text, &sin.sin_addr) != 1) return false;
  *out = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  return true;
}

bool ipv6Address(std::string_view ip, uint16_t port, Address* out) {
  char text[INET6_ADDRSTRLEN];
  if (ip.empty() || ip.size() >= sizeof text) return false;
  std::memcpy(text, ip.data(), ip.size());
  text[ip.size()] = '\0';
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1) return false;
  *out = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
  return true;
}

// "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n" (exactly one space
// between fields), or "PROXY UNKNOWN…\r\n".
ProxyParseResult parseV1(std::string_view data) {
  static constexpr std::string_view kPrefix = "PROXY ";
  const size_t prefix = std::min(data.size(), kPrefix.size());
  if (data.substr(0, prefix) != kPrefix.substr(0, prefix)) return fail("not a PROXY header");
  const size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= kProxyV1MaxBytes) return fail("PROXY v1 header longer than 107 bytes");
    // A bare LF or CR inside is never valid.
    if (data.find('\n') != std::string_view::npos) return fail("PROXY v1 header without CRLF");
    return needMore();
  }
  if (end + 2 > kProxyV1MaxBytes) return fail("PROXY v1 header longer than 107 bytes");
  std::string_view line = data.substr(kPrefix.size(), end - kPrefix.size());
  ProxyParseResult result;
  result.status = ProxyParseResult::Status::kDone;
  result.consumed = end + 2;
  result.header.version = 1;
  if (line.starts_with("UNKNOWN")) return result;  // the rest of the line is ignored (spec)
  std::string_view fields[5];
  for (int i = 0; i < 5; ++i) {
    const size_t space = line.find(' ');
    if (i < 4) {
      if (space == std::string_view::npos || space == 0) return fail("malformed PROXY v1 header");
      fields[i] = line.substr(0, space);
      line.remove_prefix(space + 1);
    } else {
      if (space != std::string_view::npos || line.empty()) {
        return fail("malformed PROXY v1 header");
      }
      fields[i] = line;
    }
  }
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  if (!parsePort(fields[3], &source_port) || !parsePort(fields[4], &destination_port)) {
    return fail("invalid port in PROXY v1 header");
  }
  bool ok = false;
  if (fields[0] == "TCP4") {
    ok = ipv4Address(fields[1], source_port, &result.header.source) &&
         ipv4Address(fields[2], destination_port, &result.header.destination);
  } else if (fields[0] == "TCP6") {
    ok = ipv6Address(fields[1], source_port, &result.header.source) &&
         ipv6Address(fields[2], destination_port, &result.header.destination);
  } else {
    return fail("unsupported protocol in PROXY v1 header");
  }
  if (!ok) return fail("invalid address in PROXY v1 header");
  result.header.has_addresses = true;
  return result;
}

uint16_t readBe16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

ProxyParseResult parseV2(std::string_view data) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t signature = std::min(data.size(), sizeof kV2Signature);
  if (std::memcmp(bytes, kV2Signature, signature) != 0) return fail("not a PROXY header");
  if (data.size() < 16) return needMore();
  const unsigned version = bytes[12] >> 4;
  const unsigned command = bytes[12] & 0x0F;
  if (version != 2) return fail("unsupported PROXY protocol version");
  if (command > 1) return fail("unknown PROXY v2 command");
  const unsigned family = bytes[13] >> 4;
  const unsigned transport = bytes[13] & 0x0F;
  const size_t length = readBe16(bytes + 14);
  if (length > kProxyV2MaxPayload) return fail("PROXY v2 header too long");
  if (data.size() < 16 + length) return needMore();
  ProxyParseResult result;
  result.status = ProxyParseResult::Status::kDone;
  result.consumed = 16 + length;
  result.header.version = 2;
  // LOCAL: the proxy's own connection (a health check): no addresses.
  if (command == 0) return result;
  if (transport == 2) return fail("PROXY v2 datagram transport on a stream");
  const unsigned char* address = bytes + 16;
  if (family == 1) {  // AF_INET: 4 + 4 + 2 + 2
    if (length < 12) return fail("PROXY v2 IPv4 addresses truncated");
    sockaddr_in source{};
    sockaddr_in destination{};
    source.sin_family = destination.sin_family = AF_INET;
    std::memcpy(&source.sin_addr, address, 4);
    std::memcpy(&destination.sin_addr, address + 4, 4);
    std::memcpy(&source.sin_port, address + 8, 2);
    std::memcpy(&destination.sin_port, address + 10, 2);
    result.header.source =
        Address::fromSockaddr(reinterpret_cast<sockaddr*>(&source), sizeof source);
    result.header.destination =
        Address::fromSockaddr(reinterpret_cast<sockaddr*>(&destination), sizeof destination);
    result.header.has_addresses = true;
  } else if (family == 2) {  // AF_INET6: 16 + 16 + 2 + 2
    if (length < 36) return fail("PROXY v2 IPv6 addresses truncated");
    sockaddr_in6 source{};
    sockaddr_in6 destination{};
    source.sin6_family = destination.sin6_family = AF_INET6;
    std::memcpy(&source.sin6_addr, address, 16);
    std::memcpy(&destination.sin6_addr, address + 16, 16);
    std::memcpy(&source.sin6_port, address + 32, 2);
    std::memcpy(&destination.sin6_port, address + 34, 2);
    result.header.source =
        Address::fromSockaddr(reinterpret_cast<sockaddr*>(&source), sizeof source);
    result.header.destination =
        Address::fromSockaddr(reinterpret_cast<sockaddr*>(&destination), sizeof destination);
    result.header.has_addresses = true;
  } else if (family != 0 && family != 3) {
    return fail("unknown PROXY v2 address family");
  }
  // UNSPEC and AF_UNIX sources say nothing an IP-based rule can use: the
  // connection's own addresses stand. TLVs after the addresses are skipped.
  return result;
}

}  // namespace

ProxyParseResult parseProxyHeader(std::string_view data) {
  if (data.empty()) return needMore();
  if (data.front() == 'P') return parseV1(data);
  if (static_cast<unsigned char>(data.front()) == kV2Signature[0]) return parseV2(data);
  return fail("not a PROXY header");
}

void appendProxyLocalHeader(ProxyVersion version, Buffer& out) {
  if (version == ProxyVersion::kV1) {
    out.append("PROXY UNKNOWN\r\n");
    return;
  }
  unsigned char header[16];
  std::memcpy(header, kV2Signature, sizeof kV2Signature);
  header[12] = 0x20;  // version 2, LOCAL
  header[13] = 0x00;  // AF_UNSPEC
  header[14] = 0;
  header[15] = 0;
  out.append(reinterpret_cast<const char*>(header), sizeof header);
}

void appendProxyHeader(ProxyVersion version, const Address& source, const Address& destination,
                       Buffer& out) {
  const bool ip =
      source.family() != Address::Family::kUnix && source.family() == destination.family();
  if (!ip) {
    appendProxyLocalHeader(version, out);
    return;
  }
  if (version == ProxyVersion::kV1) {
    std::string line = source.family() == Address::Family::kIpv4 ? "PROXY TCP4 " : "PROXY TCP6 ";
    line += source.host() + " " + destination.host() + " " + std::to_string(source.port()) + " " +
            std::to_string(destination.port()) + "\r\n";
    out.append(line);
    return;
  }
  unsigned char header[16 + 36];
  std::memcpy(header, kV2Signature, sizeof kV2Signature);
  size_t length = 0;
  if (source.family() == Address::Family::kIpv4) {
    header[12] = 0x21;  // version 2, PROXY
    header[13] = 0x11;  // AF_INET, STREAM
    sockaddr_storage s;
    sockaddr_storage d;
    source.toSockaddr(&s);
    destination.toSockaddr(&d);
    const auto& sin = reinterpret_cast<const sockaddr_in&>(s);
    const auto& din = reinterpret_cast<const sockaddr_in&>(d);
    std::memcpy(header + 16, &sin.sin_addr, 4);
    std::memcpy(header + 20, &din.sin_addr, 4);
    std::memcpy(header + 24, &sin.sin_port, 2);
    std::memcpy(header + 26, &din.sin_port, 2);
    length = 12;
  } else {
    header[12] = 0x21;
    header[13] = 0x21;  // AF_INET6, STREAM
    sockaddr_storage s;
    sockaddr_storage d;
    source.toSockaddr(&s);
    destination.toSockaddr(&d);
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(s);
    const auto& din6 = reinterpret_cast<const sockaddr_in6&>(d);
    std::memcpy(header + 16, &sin6.sin6_addr, 16);
    std::memcpy(header + 32, &din6.sin6_addr, 16);
    std::memcpy(header + 48, &sin6.sin6_port, 2);
    std::memcpy(header + 50, &din6.sin6_port, 2);
    length = 36;
  }
  header[14] = static_cast<unsigned char>(length >> 8);
  header[15] = static_cast<unsigned char>(length & 0xFF);
  out.append(reinterpret_cast<const char*>(header), 16 + length);
}

}  // namespace sluice::net
