// The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
// balancer in front of sluice sends first on a connection to say who the
// client really is, and the header sluice sends to an upstream for the same
// purpose. Parsing is strict and bounded; writing covers TCP over IPv4 and
// IPv6. Stateless functions and value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "buffer/buffer.h"
#include "net/address.h"

namespace sluice::net {

struct ProxyHeader {
  // False for a v2 LOCAL command or v1 UNKNOWN: the sender speaks for
  // itself (a health check), so the connection's own addresses stand.
  bool has_addresses = false;
  Address source;
  Address destination;
  int version = 0;  // 1 or 2
};

struct ProxyParseResult {
  enum class Status { kNeedMore, kDone, kError };
  Status status = Status::kNeedMore;
  size_t consumed = 0;  // for kDone: the header's length in bytes
  ProxyHeader header;   // for kDone
  std::string error;    // for kError
};

// The longest v1 header (107 bytes, "PROXY TCP6 …\r\n"), and the most a v2
// header may carry after its 16-byte preamble here (addresses and TLVs;
// the protocol allows 64 KiB, which no sender needs for TCP).
inline constexpr size_t kProxyV1MaxBytes = 107;
inline constexpr size_t kProxyV2MaxPayload = 2048;
inline constexpr size_t kProxyHeaderMaxBytes = 16 + kProxyV2MaxPayload;

// Parses the start of a connection's bytes. kNeedMore when `data` is a
// valid prefix of a header; kError when it cannot become one (wrong
// signature, bad syntax, an unsupported family, too long).
ProxyParseResult parseProxyHeader(std::string_view data);

enum class ProxyVersion : uint8_t { kV1, kV2 };
// Appends a header saying `source` connected to `destination` (both TCP;
// other families are sent as v1 UNKNOWN / v2 LOCAL).
void appendProxyHeader(ProxyVersion version, const Address& source, const Address& destination,
                       Buffer& out);
// Appends a header that speaks for no client (v1 `PROXY UNKNOWN`, v2 LOCAL):
// what the spec gives a proxy's own connections, such as health checks.
void appendProxyLocalHeader(ProxyVersion version, Buffer& out);

}  // namespace sluice::net
