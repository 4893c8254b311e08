#include "net/proxy_protocol.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "net/proxy_protocol_transport.h"
#include "net/raw_transport.h"

namespace sluice::net {
namespace {

using Status = ProxyParseResult::Status;

std::string v2(unsigned char command_byte, unsigned char family, const std::string& payload) {
  std::string h("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);
  h.push_back(static_cast<char>(command_byte));
  h.push_back(static_cast<char>(family));
  h.push_back(static_cast<char>(payload.size() >> 8));
  h.push_back(static_cast<char>(payload.size() & 0xFF));
  return h + payload;
}

TEST(ProxyProtocol, V1Tcp4AndTcp6) {
  ProxyParseResult r = parseProxyHeader("PROXY TCP4 192.0.2.7 198.51.100.2 51000 443\r\nGET /");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.consumed, 45u);
  EXPECT_EQ(r.header.version, 1);
  EXPECT_TRUE(r.header.has_addresses);
  EXPECT_EQ(r.header.source.toString(), "192.0.2.7:51000");
  EXPECT_EQ(r.header.destination.toString(), "198.51.100.2:443");
  r = parseProxyHeader("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.header.source.toString(), "[2001:db8::1]:1");
  r = parseProxyHeader("PROXY UNKNOWN whatever\r\n");
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_FALSE(r.header.has_addresses);
}

TEST(ProxyProtocol, V1MalformedIsRefused) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.7  198.51.100.2 1 2\r\n",   // two spaces
           "PROXY TCP4 192.0.2.7 198.51.100.2 1\r\n",      // a field missing
           "PROXY TCP4 192.0.2.7 198.51.100.2 1 2 3\r\n",  // one too many
           "PROXY TCP4 192.0.2.300 198.51.100.2 1 2\r\n",  // not an address
           "PROXY TCP4 ::1 ::1 1 2\r\n",                   // v6 under TCP4
           "PROXY TCP4 192.0.2.7 198.51.100.2 1 65536\r\n",
           "PROXY TCP4 192.0.2.7 198.51.100.2 -1 2\r\n",
           "PROXY UDP4 192.0.2.7 198.51.100.2 1 2\r\n",
           "PROXY TCP4 192.0.2.7 198.51.100.2 1 2\n",  // bare LF
           "GET / HTTP/1.1\r\n",                       // no header at all
           "proxy TCP4 192.0.2.7 198.51.100.2 1 2\r\n",
       }) {
    EXPECT_EQ(parseProxyHeader(bad).status, Status::kError) << bad;
  }
  // Longer than the 107 bytes the specification allows, without CRLF.
  EXPECT_EQ(parseProxyHeader("PROXY TCP4 " + std::string(120, '1')).status, Status::kError);
}

TEST(ProxyProtocol, EveryPrefixOfAValidHeaderNeedsMore) {
  const std::string v1 = "PROXY TCP4 192.0.2.7 198.51.100.2 51000 443\r\n";
  std::string payload(12, '\0');
  payload[0] = '\xC0';
  payload[1] = '\x00';
  payload[2] = '\x02';
  payload[3] = '\x07';
  const std::string v2_header = v2(0x21, 0x11, payload);
  for (const std::string& header : {v1, v2_header}) {
    for (size_t n = 0; n < header.size(); ++n) {
      EXPECT_EQ(parseProxyHeader(header.substr(0, n)).status, Status::kNeedMore)
          << n << " of " << header.size();
    }
    EXPECT_EQ(parseProxyHeader(header).status, Status::kDone);
  }
}

TEST(ProxyProtocol, V2ProxyLocalAndTlvs) {
  std::string addresses = std::string("\xC0\x00\x02\x07", 4) + std::string("\xC6\x33\x64\x02", 4) +
                          std::string("\xC7\x38\x01\xBB", 4);  // ports 51000, 443
  const std::string tlv = std::string("\x04\x00\x02xy", 5);    // a NOOP TLV, skipped
  ProxyParseResult r = parseProxyHeader(v2(0x21, 0x11, addresses + tlv) + "rest");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.consumed, 16u + 12u + 5u);
  EXPECT_EQ(r.header.source.toString(), "192.0.2.7:51000");
  EXPECT_EQ(r.header.destination.toString(), "198.51.100.2:443");
  // LOCAL (a health check from the balancer itself): no addresses.
  r = parseProxyHeader(v2(0x20, 0x00, ""));
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_FALSE(r.header.has_addresses);
}

TEST(ProxyProtocol, V2MalformedIsRefused) {
  const std::string addresses(12, '\x01');
  EXPECT_EQ(parseProxyHeader(v2(0x11, 0x11, addresses)).status, Status::kError);  // version 1
  EXPECT_EQ(parseProxyHeader(v2(0x22, 0x11, addresses)).status, Status::kError);  // command 2
  EXPECT_EQ(parseProxyHeader(v2(0x21, 0x11, addresses.substr(0, 8))).status,
            Status::kError);                                                      // IPv4 truncated
  EXPECT_EQ(parseProxyHeader(v2(0x21, 0x21, addresses)).status, Status::kError);  // IPv6 short
  EXPECT_EQ(parseProxyHeader(v2(0x21, 0x12, addresses)).status, Status::kError);  // datagram
  EXPECT_EQ(parseProxyHeader(v2(0x21, 0x41, addresses)).status, Status::kError);  // family 4
  // Longer than sluice accepts (the protocol allows 64 KiB of TLVs).
  std::string big = v2(0x21, 0x11, std::string(kProxyV2MaxPayload + 1, '\0'));
  EXPECT_EQ(parseProxyHeader(big.substr(0, 16)).status, Status::kError);
  std::string wrong_signature = v2(0x21, 0x11, addresses);
  wrong_signature[5] = 'X';
  EXPECT_EQ(parseProxyHeader(wrong_signature).status, Status::kError);
}

TEST(ProxyProtocol, WrittenHeadersParseBack) {
  const Address v4s = *Address::parse("192.0.2.7:51000", nullptr);
  const Address v4d = *Address::parse("198.51.100.2:443", nullptr);
  const Address v6s = *Address::parse("[2001:db8::1]:1234", nullptr);
  const Address v6d = *Address::parse("[2001:db8::2]:80", nullptr);
  for (ProxyVersion version : {ProxyVersion::kV1, ProxyVersion::kV2}) {
    for (const auto& [s, d] : {std::pair{v4s, v4d}, std::pair{v6s, v6d}}) {
      Buffer out;
      appendProxyHeader(version, s, d, out);
      ProxyParseResult r = parseProxyHeader(out.view());
      ASSERT_EQ(r.status, Status::kDone) << r.error;
      EXPECT_EQ(r.consumed, out.size());
      EXPECT_EQ(r.header.source, s);
      EXPECT_EQ(r.header.destination, d);
      EXPECT_EQ(r.header.version, version == ProxyVersion::kV1 ? 1 : 2);
    }
  }
  Buffer v1;
  appendProxyHeader(ProxyVersion::kV1, v4s, v4d, v1);
  EXPECT_EQ(v1.view(), "PROXY TCP4 192.0.2.7 198.51.100.2 51000 443\r\n");
}

// The header of a connection that speaks for no client (health checks):
// it parses back with no addresses, and the receiver keeps its own view.
TEST(ProxyProtocol, LocalHeadersParseBackWithoutAddresses) {
  Buffer v1;
  appendProxyLocalHeader(ProxyVersion::kV1, v1);
  EXPECT_EQ(v1.view(), "PROXY UNKNOWN\r\n");
  Buffer v2;
  appendProxyLocalHeader(ProxyVersion::kV2, v2);
  EXPECT_EQ(v2.size(), 16u);
  for (const Buffer* header : {&v1, &v2}) {
    ProxyParseResult r = parseProxyHeader(header->view());
    ASSERT_EQ(r.status, Status::kDone) << r.error;
    EXPECT_EQ(r.consumed, header->size());
    EXPECT_FALSE(r.header.has_addresses);
  }
}

struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0); }
  ~SocketPair() { ::close(fds[1]); }
  int fds[2];
};

TEST(ProxyProtocolTransport, TakesExactlyTheHeaderAndLeavesTheRest) {
  SocketPair pair;
  ProxyProtocolTransport transport(std::make_unique<RawTransport>(pair.fds[0], false));
  EXPECT_TRUE(transport.handshake().isAgain());  // nothing yet
  const std::string part1 = "PROXY TCP4 192.0.2.7 198.51.";
  ASSERT_EQ(::write(pair.fds[1], part1.data(), part1.size()), static_cast<ssize_t>(part1.size()));
  EXPECT_TRUE(transport.handshake().isAgain());  // incomplete: wait for more
  const std::string part2 = "100.2 51000 443\r\nGET / HTTP/1.1\r\n";
  ASSERT_EQ(::write(pair.fds[1], part2.data(), part2.size()), static_cast<ssize_t>(part2.size()));
  ASSERT_TRUE(transport.handshake().isOk());
  ASSERT_TRUE(transport.info().proxied_source.has_value());
  EXPECT_EQ(transport.info().proxied_source->toString(), "192.0.2.7:51000");
  Buffer in;
  ASSERT_TRUE(transport.read(in, 1024).isOk());
  EXPECT_EQ(in.view(), "GET / HTTP/1.1\r\n");
}

TEST(ProxyProtocolTransport, GarbageFailsWithAReason) {
  SocketPair pair;
  ProxyProtocolTransport transport(std::make_unique<RawTransport>(pair.fds[0], false));
  ASSERT_EQ(::write(pair.fds[1], "GET / HTTP/1.1\r\n", 16), 16);
  IoResult r = transport.handshake();
  EXPECT_TRUE(r.isError());
  EXPECT_EQ(r.error, EPROTO);
  EXPECT_EQ(transport.reason(), "not a PROXY header");
}

TEST(ProxyProtocolTransport, CloseBeforeTheHeaderEndsFails) {
  SocketPair pair;
  ProxyProtocolTransport transport(std::make_unique<RawTransport>(pair.fds[0], false));
  ASSERT_EQ(::write(pair.fds[1], "PROXY TCP4 1", 12), 12);
  ::shutdown(pair.fds[1], SHUT_WR);
  EXPECT_TRUE(transport.handshake().isError());
}

}  // namespace
}  // namespace sluice::net
