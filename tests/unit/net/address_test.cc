#include "net/address.h"

#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace sluice::net {
namespace {

Address parseOk(const std::string& text) {
  std::string error;
  auto address = Address::parse(text, &error);
  EXPECT_TRUE(address.has_value()) << text << ": " << error;
  return address.value_or(Address{});
}

std::string parseError(const std::string& text) {
  std::string error;
  auto address = Address::parse(text, &error);
  EXPECT_FALSE(address.has_value()) << text << " parsed as " << address->toString();
  return error;
}

TEST(AddressTest, ParsesIpv4) {
  const Address a = parseOk("127.0.0.1:8080");
  EXPECT_EQ(a.family(), Address::Family::kIpv4);
  EXPECT_EQ(a.host(), "127.0.0.1");
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.toString(), "127.0.0.1:8080");
  EXPECT_EQ(a.ipText(), "127.0.0.1");
  EXPECT_EQ(parseOk("0.0.0.0:80").toString(), "0.0.0.0:80");
  EXPECT_EQ(parseOk("255.255.255.255:65535").port(), 65535);
}

TEST(AddressTest, LocalhostIsLoopbackWithoutResolving) {
  EXPECT_EQ(parseOk("localhost:8080").toString(), "127.0.0.1:8080");
  EXPECT_EQ(parseOk("LocalHost:1").toString(), "127.0.0.1:1");
  EXPECT_EQ(parseOk("localhost:8080"), parseOk("127.0.0.1:8080"));
}

TEST(AddressTest, RejectsOtherHostNames) {
  EXPECT_EQ(parseError("example.com:80"),
            "\"example.com:80\": \"example.com\" is not an IPv4 address (host names other than "
            "localhost are not resolved; use a numeric address)");
  parseError("localhost.:80");
  // inet_pton refuses shorthand and octal forms that inet_aton would take.
  parseError("127.1:80");
  parseError("010.0.0.1:80");
  parseError("1.2.3.256:80");
}

TEST(AddressTest, ParsesBracketedIpv6Canonically) {
  const Address a = parseOk("[0:0:0:0:0:0:0:1]:443");
  EXPECT_EQ(a.family(), Address::Family::kIpv6);
  EXPECT_EQ(a.host(), "::1");
  EXPECT_EQ(a.ipText(), "::1");
  EXPECT_EQ(a.toString(), "[::1]:443");
  EXPECT_EQ(parseOk("[::]:80").toString(), "[::]:80");
  EXPECT_EQ(parseOk("[2001:DB8::A]:80").toString(), "[2001:db8::a]:80");
  EXPECT_EQ(parseOk("[::ffff:1.2.3.4]:80").toString(), "[::ffff:1.2.3.4]:80");
}

TEST(AddressTest, RejectsMalformedIpv6) {
  EXPECT_EQ(parseError("::1:8080"),
            "\"::1:8080\" looks like an IPv6 address; write it in brackets with a port, e.g. "
            "[::1]:8080");
  EXPECT_EQ(parseError("[::1]"), "\"[::1]\" has no port (expected [ipv6]:port, e.g. [::1]:8080)");
  parseError("[::1:80");
  parseError("[::1]80");
  parseError("[1.2.3.4]:80");
  parseError("[fe80::1%eth0]:80");  // zone ids are not supported
  parseError("[gg::1]:80");
}

TEST(AddressTest, RejectsMissingOrBadPorts) {
  EXPECT_EQ(parseError("127.0.0.1"),
            "\"127.0.0.1\" has no port (expected host:port, e.g. 127.0.0.1:8080, [::1]:8080 or "
            "unix:/path)");
  EXPECT_EQ(parseError("127.0.0.1:99999"), "\"127.0.0.1:99999\" is not a valid port (1-65535)");
  EXPECT_EQ(parseError("127.0.0.1:65536"), "\"127.0.0.1:65536\" is not a valid port (1-65535)");
  parseError("127.0.0.1:");
  parseError("127.0.0.1:-1");
  parseError("127.0.0.1:+80");
  parseError("127.0.0.1: 80");
  parseError("127.0.0.1:0x50");
  parseError("127.0.0.1:99999999999999999999999");
  EXPECT_EQ(parseError(":8080"),
            "\":8080\" has no host (use 0.0.0.0:8080 or [::]:8080 for all addresses)");
  parseError("");
}

TEST(AddressTest, AcceptsPortZeroForEphemeralBinds) {
  EXPECT_EQ(parseOk("127.0.0.1:0").port(), 0);
  EXPECT_EQ(parseOk("[::1]:0").port(), 0);
}

TEST(AddressTest, ParsesUnixPaths) {
  const Address a = parseOk("unix:/run/sluice.sock");
  EXPECT_EQ(a.family(), Address::Family::kUnix);
  EXPECT_EQ(a.path(), "/run/sluice.sock");
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.toString(), "unix:/run/sluice.sock");
  EXPECT_EQ(a.ipText(), "unix");
  EXPECT_EQ(parseOk("unix:relative.sock").path(), "relative.sock");
}

TEST(AddressTest, RejectsEmptyAndOverlongUnixPaths) {
  EXPECT_EQ(parseError("unix:"),
            "\"unix:\" has an empty socket path (expected unix:/path/to/socket)");
  const std::string longest = "/" + std::string(106, 'a');  // 107 bytes + NUL fills sun_path
  EXPECT_EQ(parseOk("unix:" + longest).path(), longest);
  const std::string too_long = longest + "b";
  EXPECT_EQ(parseError("unix:" + too_long),
            "\"unix:" + too_long +
                "\" is too long: a unix socket path may have at most 107 bytes, this one has 108");
  parseError(std::string("unix:/a\0b", 9));
}

TEST(AddressTest, NullErrorPointerIsAllowed) {
  EXPECT_FALSE(Address::parse("nonsense", nullptr).has_value());
}

TEST(AddressTest, SockaddrRoundTripIpv4) {
  const Address a = parseOk("10.1.2.3:4567");
  sockaddr_storage ss;
  const socklen_t len = a.toSockaddr(&ss);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
  EXPECT_EQ(sin->sin_family, AF_INET);
  EXPECT_EQ(ntohs(sin->sin_port), 4567);
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x0a010203u);
  EXPECT_EQ(Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len), a);
}

TEST(AddressTest, SockaddrRoundTripIpv6) {
  const Address a = parseOk("[2001:db8::1]:80");
  sockaddr_storage ss;
  const socklen_t len = a.toSockaddr(&ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  EXPECT_EQ(sin6->sin6_family, AF_INET6);
  EXPECT_EQ(ntohs(sin6->sin6_port), 80);
  EXPECT_EQ(sin6->sin6_addr.s6_addr[0], 0x20);
  EXPECT_EQ(sin6->sin6_addr.s6_addr[15], 0x01);
  EXPECT_EQ(Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len), a);
}

TEST(AddressTest, SockaddrRoundTripUnix) {
  const Address a = parseOk("unix:/tmp/sluice-test.sock");
  sockaddr_storage ss;
  const socklen_t len = a.toSockaddr(&ss);
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
  EXPECT_EQ(sun->sun_family, AF_UNIX);
  EXPECT_STREQ(sun->sun_path, "/tmp/sluice-test.sock");
  EXPECT_EQ(Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len), a);
}

TEST(AddressTest, FromSockaddrOfUnnamedUnixPeer) {
  sockaddr_un sun;
  std::memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  const Address a =
      Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sun), sizeof(sa_family_t));
  EXPECT_EQ(a.family(), Address::Family::kUnix);
  EXPECT_EQ(a.path(), "");
  EXPECT_EQ(a.toString(), "unix:");
}

CidrRange cidrOk(const std::string& text) {
  std::string error;
  auto range = CidrRange::parse(text, &error);
  EXPECT_TRUE(range.has_value()) << text << ": " << error;
  return range.value_or(CidrRange{});
}

std::string cidrError(const std::string& text) {
  std::string error;
  auto range = CidrRange::parse(text, &error);
  EXPECT_FALSE(range.has_value()) << text << " parsed as " << range->toString();
  return error;
}

TEST(CidrRangeTest, Ipv4Prefixes) {
  const CidrRange r = cidrOk("10.0.0.0/8");
  EXPECT_EQ(r.toString(), "10.0.0.0/8");
  EXPECT_TRUE(r.contains(parseOk("10.0.0.0:1")));
  EXPECT_TRUE(r.contains(parseOk("10.255.255.255:1")));
  EXPECT_FALSE(r.contains(parseOk("11.0.0.0:1")));
  EXPECT_FALSE(r.contains(parseOk("9.255.255.255:1")));

  const CidrRange odd = cidrOk("192.168.4.0/22");
  EXPECT_TRUE(odd.contains(parseOk("192.168.7.255:1")));
  EXPECT_FALSE(odd.contains(parseOk("192.168.8.0:1")));
}

TEST(CidrRangeTest, Ipv4HostAndAll) {
  const CidrRange host = cidrOk("127.0.0.1/32");
  EXPECT_TRUE(host.contains(parseOk("127.0.0.1:5")));
  EXPECT_FALSE(host.contains(parseOk("127.0.0.2:5")));
  const CidrRange bare = cidrOk("127.0.0.1");
  EXPECT_EQ(bare.toString(), "127.0.0.1/32");
  EXPECT_TRUE(bare.contains(parseOk("127.0.0.1:5")));

  const CidrRange all = cidrOk("0.0.0.0/0");
  EXPECT_TRUE(all.contains(parseOk("1.2.3.4:5")));
  EXPECT_TRUE(all.contains(parseOk("255.255.255.255:5")));
  EXPECT_FALSE(all.contains(parseOk("[::1]:5")));
}

TEST(CidrRangeTest, Ipv6Prefixes) {
  const CidrRange r = cidrOk("2001:db8::/32");
  EXPECT_EQ(r.toString(), "2001:db8::/32");
  EXPECT_TRUE(r.contains(parseOk("[2001:db8:ffff::1]:80")));
  EXPECT_FALSE(r.contains(parseOk("[2001:db9::1]:80")));

  const CidrRange host = cidrOk("::1/128");
  EXPECT_TRUE(host.contains(parseOk("[::1]:80")));
  EXPECT_FALSE(host.contains(parseOk("[::2]:80")));
  EXPECT_EQ(cidrOk("::1").toString(), "::1/128");

  const CidrRange all = cidrOk("::/0");
  EXPECT_TRUE(all.contains(parseOk("[ffff::1]:80")));
  EXPECT_TRUE(all.contains(parseOk("[::]:80")));
}

TEST(CidrRangeTest, FamiliesDoNotMix) {
  EXPECT_FALSE(cidrOk("::/0").contains(parseOk("1.2.3.4:80")));
  EXPECT_FALSE(cidrOk("::ffff:0:0/96").contains(parseOk("1.2.3.4:80")));
  EXPECT_FALSE(cidrOk("0.0.0.0/0").contains(parseOk("unix:/x")));
  EXPECT_FALSE(cidrOk("::/0").contains(parseOk("unix:/x")));
}

TEST(CidrRangeTest, Ipv4RangeMatchesV4MappedPeers) {
  // What accept() reports for an IPv4 client of a dual-stack [::] listener.
  EXPECT_TRUE(cidrOk("127.0.0.0/8").contains(parseOk("[::ffff:127.0.0.1]:80")));
  EXPECT_FALSE(cidrOk("10.0.0.0/8").contains(parseOk("[::ffff:127.0.0.1]:80")));
  EXPECT_FALSE(cidrOk("0.0.0.0/0").contains(parseOk("[::1]:80")));
}

TEST(CidrRangeTest, RejectsBadRanges) {
  EXPECT_EQ(cidrError("10.0.0.1/8"),
            "\"10.0.0.1/8\" has bits set after the prefix length (did you mean \"10.0.0.0/8\"?)");
  EXPECT_EQ(cidrError("2001:db8::1/32"),
            "\"2001:db8::1/32\" has bits set after the prefix length (did you mean "
            "\"2001:db8::/32\"?)");
  EXPECT_EQ(cidrError("10.0.0.0/33"),
            "\"10.0.0.0/33\" has an invalid prefix length (0-32 for IPv4)");
  EXPECT_EQ(cidrError("::/129"), "\"::/129\" has an invalid prefix length (0-128 for IPv6)");
  cidrError("10.0.0.0/");
  cidrError("10.0.0.0/-1");
  cidrError("10.0.0.0/8/8");
  cidrError("localhost");
  cidrError("");
  EXPECT_EQ(cidrError("example"),
            "\"example\" is not a valid address range (expected an IP address or CIDR, e.g. "
            "10.0.0.0/8, 127.0.0.1 or ::1/128)");
}

}  // namespace
}  // namespace sluice::net
