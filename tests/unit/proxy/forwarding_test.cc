#include "proxy/forwarding.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::proxy {
namespace {

http::Header header(std::string name, std::string value) {
  return http::Header{std::move(name), std::move(value)};
}

// The header lines of a serialized head (without the first line and the
// blank line), e.g. "Host: a".
std::vector<std::string> headerLines(const std::string& head) {
  std::vector<std::string> lines;
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head.find("\r\n", pos + 2);
    if (next == std::string::npos || next == pos + 2) break;
    lines.push_back(head.substr(pos + 2, next - pos - 2));
    pos = next;
  }
  return lines;
}

// Values of every header line named `name` (case-insensitive).
std::vector<std::string> valuesOf(const std::string& head, std::string_view name) {
  std::vector<std::string> values;
  for (const std::string& line : headerLines(head)) {
    size_t colon = line.find(':');
    if (colon != std::string::npos && http::equalsIgnoreCase(line.substr(0, colon), name)) {
      values.push_back(line.substr(colon + 2));
    }
  }
  return values;
}

TEST(IsHopByHop, FixedNamesAndConnectionTokens) {
  EXPECT_TRUE(isHopByHop("Keep-Alive", ""));
  EXPECT_TRUE(isHopByHop("TRANSFER-ENCODING", ""));
  EXPECT_FALSE(isHopByHop("X-A", ""));
  // Connection lists names with OWS (SP or HTAB) around the commas.
  EXPECT_TRUE(isHopByHop("x-a", "close,\tX-A"));
  EXPECT_TRUE(isHopByHop("X-B", " x-b \t, close"));
  EXPECT_FALSE(isHopByHop("X-A", "close, X-AB"));
  EXPECT_FALSE(isHopByHop("X-A", ",,"));
}

TEST(ConnectionTokens, JoinsEveryConnectionHeader) {
  std::vector<http::Header> headers = {header("Connection", "close"), header("X", "y"),
                                       header("connection", "X-A")};
  EXPECT_EQ(connectionTokens(headers), "close,X-A");
}

http::RequestHead getRequest(std::string target, std::vector<http::Header> headers) {
  http::RequestHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.headers = std::move(headers);
  if (const http::Header* host = head.find("host")) head.host = host->value;
  return head;
}

TEST(AppendUpstreamRequestHead, HopByHopHeadersAreNotForwarded) {
  http::RequestHead head = getRequest(
      "/p", {header("Host", "a"), header("Connection", "X-Secret"), header("X-Secret", "1"),
             header("Keep-Alive", "timeout=5"), header("X-Kept", "2")});
  std::string out;
  appendUpstreamRequestHead(head, ForwardedFor{}, &out);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /p HTTP/1.1");
  EXPECT_TRUE(valuesOf(out, "X-Secret").empty()) << out;
  EXPECT_TRUE(valuesOf(out, "Keep-Alive").empty()) << out;
  EXPECT_TRUE(valuesOf(out, "Connection").empty()) << out;
  EXPECT_EQ(valuesOf(out, "X-Kept"), std::vector<std::string>{"2"});
  EXPECT_EQ(valuesOf(out, "Host"), std::vector<std::string>{"a"});
}

TEST(AppendUpstreamRequestHead, AbsoluteFormBecomesOriginFormWithItsAuthorityAsHost) {
  http::RequestHead head = getRequest("http://A.example:81?q", {header("Host", "b.example")});
  std::string out;
  appendUpstreamRequestHead(head, ForwardedFor{}, &out);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /?q HTTP/1.1");
  EXPECT_EQ(valuesOf(out, "Host"), std::vector<std::string>{"A.example:81"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Host"), std::vector<std::string>{"A.example:81"}) << out;
}

TEST(AppendUpstreamRequestHead, GivenTargetReplacesTheReceivedOne) {
  http::RequestHead head = getRequest("http://a.example/x/../y?q", {header("Host", "b.example")});
  ForwardedFor forwarded;
  forwarded.target = "/y?q";
  std::string out;
  appendUpstreamRequestHead(head, forwarded, &out);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /y?q HTTP/1.1");
  // The authority still comes from the absolute-form target.
  EXPECT_EQ(valuesOf(out, "Host"), std::vector<std::string>{"a.example"}) << out;
}

// --- Forwarding headers from trusted and untrusted peers --------------------------------------

const net::Address& peerAddress() {
  static const net::Address address = *net::Address::parse("192.0.2.7:5555", nullptr);
  return address;
}

// A request carrying every header a client could use to pose as a proxy.
http::RequestHead forgedRequest() {
  return getRequest(
      "/p", {header("Host", "a.example"), header("X-Forwarded-For", "1.1.1.1"),
             header("X-Forwarded-Proto", "https"), header("X-Forwarded-Host", "forged.example"),
             header("Forwarded", "for=1.1.1.1;proto=https"), header("X-Real-IP", "1.1.1.1"),
             header("X-Request-Id", "client-id"), header("X_Forwarded_For", "2.2.2.2"),
             header("X_Real_IP", "2.2.2.2"), header("x_request_id", "client-id-2"),
             header("X_Custom", "c"), header("X-Other", "o")});
}

std::string forward(const http::RequestHead& head, bool trusted, bool keep_underscores = false,
                    bool keep_request_id = false) {
  ForwardedFor forwarded;
  forwarded.peer = &peerAddress();
  forwarded.peer_trusted = trusted;
  forwarded.request_id = "fresh-id";
  forwarded.keep_underscores = keep_underscores;
  forwarded.keep_untrusted_request_id = keep_request_id;
  std::string out;
  appendUpstreamRequestHead(head, forwarded, &out);
  return out;
}

using Values = std::vector<std::string>;

TEST(AppendUpstreamRequestHead, UntrustedPeerCannotForgeItsIdentity) {
  const std::string out = forward(forgedRequest(), /*trusted=*/false);
  EXPECT_EQ(valuesOf(out, "X-Forwarded-For"), Values{"192.0.2.7"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Proto"), Values{"http"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Host"), Values{"a.example"}) << out;
  EXPECT_EQ(valuesOf(out, "Forwarded"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X-Real-IP"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X-Request-Id"), Values{"fresh-id"}) << out;
  // CGI and WSGI servers read X_Forwarded_For as X-Forwarded-For.
  EXPECT_EQ(valuesOf(out, "X_Forwarded_For"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X_Real_IP"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "x_request_id"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X_Custom"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X-Other"), Values{"o"}) << out;
}

TEST(AppendUpstreamRequestHead, TrustedPeerPassesItsForwardingHeaders) {
  const std::string out = forward(forgedRequest(), /*trusted=*/true);
  EXPECT_EQ(valuesOf(out, "X-Forwarded-For"), Values{"1.1.1.1, 192.0.2.7"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Proto"), Values{"https"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Host"), Values{"forged.example"}) << out;
  EXPECT_EQ(valuesOf(out, "Forwarded"), Values{"for=1.1.1.1;proto=https"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Real-IP"), Values{"1.1.1.1"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Request-Id"), Values{"client-id"}) << out;
  // Underscores are dropped from every peer by default (nginx's
  // underscores_in_headers off).
  EXPECT_EQ(valuesOf(out, "X_Forwarded_For"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X_Custom"), Values{}) << out;
}

TEST(AppendUpstreamRequestHead, TrustedPeerWithoutRequestIdGetsAFreshOne) {
  const std::string out = forward(getRequest("/", {header("Host", "h")}), /*trusted=*/true);
  EXPECT_EQ(valuesOf(out, "X-Request-Id"), Values{"fresh-id"}) << out;
}

TEST(AppendUpstreamRequestHead, KeptUnderscoresStillCannotAliasForwardingHeaders) {
  const std::string untrusted = forward(forgedRequest(), false, /*keep_underscores=*/true);
  EXPECT_EQ(valuesOf(untrusted, "X_Custom"), Values{"c"}) << untrusted;
  // The aliases of headers sluice replaces are replaced like them.
  EXPECT_EQ(valuesOf(untrusted, "X_Forwarded_For"), Values{}) << untrusted;
  EXPECT_EQ(valuesOf(untrusted, "X_Real_IP"), Values{}) << untrusted;
  EXPECT_EQ(valuesOf(untrusted, "x_request_id"), Values{}) << untrusted;
  EXPECT_EQ(valuesOf(untrusted, "X-Forwarded-For"), Values{"192.0.2.7"}) << untrusted;
  EXPECT_EQ(valuesOf(untrusted, "X-Request-Id"), Values{"fresh-id"}) << untrusted;

  // From a trusted peer an alias counts as the header it aliases.
  const std::string trusted = forward(forgedRequest(), true, /*keep_underscores=*/true);
  EXPECT_EQ(valuesOf(trusted, "X-Forwarded-For"), Values{"1.1.1.1, 2.2.2.2, 192.0.2.7"}) << trusted;
  EXPECT_EQ(valuesOf(trusted, "X_Forwarded_For"), Values{}) << trusted;
  EXPECT_EQ(valuesOf(trusted, "X_Real_IP"), Values{"2.2.2.2"}) << trusted;
  EXPECT_EQ(valuesOf(trusted, "x_request_id"), Values{"client-id-2"}) << trusted;
  EXPECT_EQ(valuesOf(trusted, "X-Request-Id"), Values{"client-id"}) << trusted;
}

TEST(AppendUpstreamRequestHead, KeepRequestIdFromUntrustedPeers) {
  const std::string out = forward(forgedRequest(), false, false, /*keep_request_id=*/true);
  EXPECT_EQ(valuesOf(out, "X-Request-Id"), Values{"client-id"}) << out;
  // Only the request id: the rest is still replaced.
  EXPECT_EQ(valuesOf(out, "X-Real-IP"), Values{}) << out;
  EXPECT_EQ(valuesOf(out, "X-Forwarded-For"), Values{"192.0.2.7"}) << out;
  const std::string none = forward(getRequest("/", {header("Host", "h")}), false, false, true);
  EXPECT_EQ(valuesOf(none, "X-Request-Id"), Values{"fresh-id"}) << none;
}

// --- Response heads ------------------------------------------------------------------------------

http::ResponseHead response(int status, std::vector<http::Header> headers) {
  http::ResponseHead head;
  head.status = status;
  head.reason = "R";
  head.headers = std::move(headers);
  return head;
}

TEST(AppendClientResponseHeaders, FramingIsLeftToTheCodec) {
  // Content-Length, Transfer-Encoding and Connection are written by
  // http::ServerCodec::endHead() for the client's request (its tests cover
  // 1xx/204/HEAD/304); only end-to-end headers pass here.
  http::ResponseHead head =
      response(200, {header("Content-Length", "42"), header("Transfer-Encoding", "chunked"),
                     header("Connection", "close, X-Hop"), header("X-Hop", "1"),
                     header("Keep-Alive", "timeout=5"), header("X", "y")});
  Buffer out;
  appendClientResponseHeaders(head, out);
  EXPECT_EQ(out.view(), "X: y\r\n");
}

TEST(StatedContentLength, OnlyAValidOne) {
  uint64_t n = 0;
  EXPECT_TRUE(statedContentLength(response(304, {header("Content-Length", "42")}), &n));
  EXPECT_EQ(n, 42u);
  EXPECT_FALSE(statedContentLength(response(304, {header("Content-Length", "4 2")}), &n));
  EXPECT_FALSE(statedContentLength(response(304, {}), &n));
}

int64_t keepAliveMs(std::string value) {
  return keepAliveTimeoutMs(response(200, {header("Keep-Alive", std::move(value))}));
}

TEST(KeepAliveTimeoutMs, ParsesTheTimeoutParameter) {
  EXPECT_EQ(keepAliveMs("timeout=5"), 5000);
  EXPECT_EQ(keepAliveMs("timeout=5, max=100"), 5000);
  EXPECT_EQ(keepAliveMs("max=100, timeout=3"), 3000);
  EXPECT_EQ(keepAliveTimeoutMs(response(200, {})), 0);
  EXPECT_EQ(keepAliveMs("timeout=0"), 0);
}

TEST(KeepAliveTimeoutMs, NamesAreCaseInsensitiveAndWhole) {
  // RFC 9110 §5.6.6: parameter names are case-insensitive.
  EXPECT_EQ(keepAliveMs("Timeout=4"), 4000);
  EXPECT_EQ(keepAliveMs("max=1,TIMEOUT=2"), 2000);
  // Not a parameter named timeout.
  EXPECT_EQ(keepAliveMs("xtimeout=5"), 0);
  EXPECT_EQ(keepAliveMs("max=1, mytimeout=5"), 0);
  EXPECT_EQ(keepAliveMs("timeouts=5"), 0);
  // A quoted value is the same value (§5.6.6); a quoted name is not a name.
  EXPECT_EQ(keepAliveMs("timeout=\"6\""), 6000);
  EXPECT_EQ(keepAliveMs("x=\"timeout=5\""), 0);
  EXPECT_EQ(keepAliveMs("x=\"a, timeout=9\", timeout=1"), 1000);
}

TEST(KeepAliveTimeoutMs, InvalidValuesGiveNoHint) {
  EXPECT_EQ(keepAliveMs("timeout=-5"), 0);
  EXPECT_EQ(keepAliveMs("timeout=5s"), 0);
  EXPECT_EQ(keepAliveMs("timeout="), 0);
  EXPECT_EQ(keepAliveMs("timeout"), 0);
  EXPECT_EQ(keepAliveMs("timeout=0x10"), 0);
}

TEST(KeepAliveTimeoutMs, HugeValuesAreClampedNotOverflowed) {
  // 2305843009213693953 * 1000 overflows int64_t (undefined behaviour; the
  // sanitizer build's worker died on it). No timeout sluice can be
  // configured with is longer than a year, so that is the ceiling.
  constexpr int64_t kYearMs = int64_t{365} * 24 * 3600 * 1000;
  EXPECT_EQ(keepAliveMs("timeout=2305843009213693953"), kYearMs);
  EXPECT_EQ(keepAliveMs("timeout=9223372036854775807"), kYearMs);
  EXPECT_EQ(keepAliveMs("timeout=99999999999999999999999999999"), kYearMs);
  EXPECT_EQ(keepAliveMs("timeout=31536000"), kYearMs);
  EXPECT_EQ(keepAliveMs("timeout=31535999"), kYearMs - 1000);
}

}  // namespace
}  // namespace sluice::proxy

namespace sluice::proxy {
namespace {

std::string upstreamHead(const http::RequestHead& head, ForwardedFor forwarded) {
  std::string out;
  appendUpstreamRequestHead(head, forwarded, &out);
  return out;
}

TEST(RouteHeaderRules, SetAddRemoveWithVariables) {
  const net::Address peer = *net::Address::parse("192.0.2.9:4321", nullptr);
  http::RequestHead head;
  head.method = "GET";
  head.target = "/";
  head.host = "app.example";
  head.headers = {
      {"Host", "app.example"}, {"X-Debug", "1"}, {"X-Env", "client's"}, {"Accept", "*/*"}};
  config::HeaderRules rules;
  rules.set = {{"X-Env", "prod"},
               {"X-Client", "${client_ip}:${client_port} ${scheme}"},
               {"Host", "internal.svc"},
               {"X-Forwarded-Proto", "https"}};
  rules.add = {{"Via", "1.1 sluice (${request_id})"}};
  rules.remove = {"x-debug"};
  ForwardedFor forwarded;
  forwarded.peer = &peer;
  forwarded.request_id = "rid";
  forwarded.rules = &rules;
  forwarded.rule_context = {"192.0.2.9", 4321, "http", "app.example", "rid"};
  const std::string out = upstreamHead(head, forwarded);
  EXPECT_EQ(valuesOf(out, "Host"), std::vector<std::string>{"internal.svc"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Debug"), std::vector<std::string>{}) << out;
  EXPECT_EQ(valuesOf(out, "X-Env"), std::vector<std::string>{"prod"}) << out;
  EXPECT_EQ(valuesOf(out, "X-Client"), std::vector<std::string>{"192.0.2.9:4321 http"}) << out;
  EXPECT_EQ(valuesOf(out, "Via"), std::vector<std::string>{"1.1 sluice (rid)"}) << out;
  // A rule replaces what sluice generates too.
  EXPECT_EQ(valuesOf(out, "X-Forwarded-Proto"), std::vector<std::string>{"https"}) << out;
  EXPECT_EQ(valuesOf(out, "Accept"), std::vector<std::string>{"*/*"}) << out;
}

TEST(Rfc7239Forwarded, ExtendedForTrustedPeersReplacedForOthers) {
  const net::Address v4 = *net::Address::parse("192.0.2.9:1", nullptr);
  const net::Address v6 = *net::Address::parse("[2001:db8::7]:1", nullptr);
  http::RequestHead head;
  head.method = "GET";
  head.target = "/";
  head.host = "a.example:8080";
  head.headers = {{"Host", "a.example:8080"}, {"Forwarded", "for=198.51.100.1"}};
  ForwardedFor forwarded;
  forwarded.peer = &v4;
  forwarded.rfc7239 = true;
  forwarded.peer_trusted = true;
  EXPECT_EQ(valuesOf(upstreamHead(head, forwarded), "Forwarded"),
            std::vector<std::string>{
                "for=198.51.100.1, for=192.0.2.9;proto=http;host=\"a.example:8080\""});
  forwarded.peer_trusted = false;
  forwarded.peer = &v6;
  forwarded.scheme = "https";
  EXPECT_EQ(valuesOf(upstreamHead(head, forwarded), "Forwarded"),
            std::vector<std::string>{"for=\"[2001:db8::7]\";proto=https;host=\"a.example:8080\""});
  forwarded.rfc7239 = false;  // off: an untrusted peer's is dropped, none is written
  EXPECT_EQ(valuesOf(upstreamHead(head, forwarded), "Forwarded"), std::vector<std::string>{});
}

TEST(RouteHeaderRules, ResponseHeaders) {
  http::ResponseHead head;
  head.status = 200;
  head.headers = {{"Server", "backend/1.0"}, {"X-Powered-By", "php"}, {"Cache-Control", "no"}};
  config::HeaderRules rules;
  rules.remove = {"x-powered-by", "server"};
  rules.set = {{"Cache-Control", "max-age=60"}};
  rules.add = {{"X-Request-Id", "${request_id}"}};
  RuleContext context{"1.2.3.4", 1, "http", "h", "rid"};
  Buffer out;
  appendClientResponseHeaders(head, out, &rules, &context);
  EXPECT_EQ(out.view(), "Cache-Control: max-age=60\r\nX-Request-Id: rid\r\n");
}

}  // namespace
}  // namespace sluice::proxy
