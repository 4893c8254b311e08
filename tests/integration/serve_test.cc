// Integration tests of the serving path: the real binary, a generated config,
// raw sockets, byte-for-byte responses.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>

#include "integration/harness.h"

namespace sluice::testing {
namespace {

struct Settings {
  std::string timeouts = "{header: 10s, body: 10s, idle: 60s, send: 10s}";
  std::string limits = "{max_header_bytes: 4k, max_headers: 20, max_requests_per_connection: 100}";
};

std::string serveConfig(int port, const Settings& s = {}) {
  return "workers: 1\n"
         "log: {level: debug, error: stderr}\n"
         "timeouts: " +
         s.timeouts +
         "\n"
         "limits: " +
         s.limits +
         "\n"
         "listeners:\n"
         "  - name: web\n"
         "    address: 127.0.0.1:" +
         std::to_string(port) +
         "\n"
         "    routes:\n"
         "      - match: {host: api.example.com}\n"
         "        respond: {status: 200, body: \"api\\n\"}\n"
         "      - match: {host: \"*.example.com\"}\n"
         "        respond: {status: 200, body: \"wild\\n\"}\n"
         "      - match: {path_prefix: /healthz}\n"
         "        respond: {status: 200, body: \"ok\\n\", headers: {content-type: text/plain}}\n"
         "      - match: {path_prefix: /empty}\n"
         "        respond: {status: 204}\n"
         "      - match: {path_prefix: /a}\n"
         "        respond: {status: 200, body: \"A\"}\n"
         "      - match: {path_prefix: /b}\n"
         "        respond: {status: 201, body: \"BB\"}\n";
}

class ServeTest : public ::testing::Test {
 protected:
  void startWith(const Settings& settings) {
    port_ = freePort();
    ASSERT_TRUE(sluice_.start(serveConfig(port_, settings), port_)) << sluice_.errorLog();
  }
  void SetUp() override {}
  RawClient client() {
    RawClient c;
    EXPECT_TRUE(c.connect(port_));
    return c;
  }

  int port_ = 0;
  SluiceProcess sluice_;
};

const char kHealthzResponse[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: sluice\r\n"
    "Date: X\r\n"
    "content-type: text/plain\r\n"
    "Content-Length: 3\r\n"
    "\r\n"
    "ok\n";

TEST_F(ServeTest, RespondRouteByteForByte) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()), kHealthzResponse);
}

TEST_F(ServeTest, KeepAliveServesManyRequestsOnOneConnection) {
  startWith({});
  RawClient c = client();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    EXPECT_EQ(maskDate(c.readResponse()), kHealthzResponse) << "request " << i;
  }
}

TEST_F(ServeTest, PipelinedRequestsAnsweredInOrder) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(
      c.send("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string first = c.readResponse();
  std::string second = c.readResponse();
  std::string third = c.readResponse();
  EXPECT_EQ(maskDate(first),
            "HTTP/1.1 201 Created\r\nServer: sluice\r\nDate: X\r\nContent-Length: 2\r\n\r\nBB");
  EXPECT_EQ(maskDate(second),
            "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: X\r\nContent-Length: 1\r\n\r\nA");
  EXPECT_EQ(maskDate(third), kHealthzResponse);
}

TEST_F(ServeTest, HeadGetsHeadersWithoutBody) {
  startWith({});
  RawClient c = client();
  // The pipelined GET proves no body bytes followed the HEAD response.
  ASSERT_TRUE(
      c.send("HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse(/*head_request=*/true)),
            "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: X\r\ncontent-type: text/plain\r\n"
            "Content-Length: 3\r\n\r\n");
  EXPECT_EQ(maskDate(c.readResponse()),
            "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: X\r\nContent-Length: 1\r\n\r\nA");
}

TEST_F(ServeTest, NoContentHasNoBodyOrLength) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /empty HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()),
            "HTTP/1.1 204 No Content\r\nServer: sluice\r\nDate: X\r\n\r\n");
}

TEST_F(ServeTest, HostRoutingExactAndWildcard) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: API.example.com:8080\r\n\r\n"));
  EXPECT_NE(c.readResponse().find("\r\n\r\napi\n"), std::string::npos);
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: a.b.example.com\r\n\r\n"));
  EXPECT_NE(c.readResponse().find("\r\n\r\nwild\n"), std::string::npos);
  // The bare domain is not covered by "*.example.com": no route → 404.
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 404);
}

TEST_F(ServeTest, NoMatchingRouteIs404AndKeepsConnection) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /nothing-here HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()),
            "HTTP/1.1 404 Not Found\r\nServer: sluice\r\nDate: X\r\nContent-Type: text/plain\r\n"
            "Content-Length: 14\r\n\r\n404 Not Found\n");
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
}

TEST_F(ServeTest, MalformedRequestGets400AndClose) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readUntilClose()),
            "HTTP/1.1 400 Bad Request\r\nServer: sluice\r\nDate: X\r\nContent-Type: text/plain\r\n"
            "Content-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n");
}

TEST_F(ServeTest, ErrorAfterGoodPipelinedRequestKeepsOrder) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /a HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  std::string rest = c.readUntilClose();
  EXPECT_EQ(statusOf(rest), 400) << rest;  // missing Host on HTTP/1.1
}

TEST_F(ServeTest, MissingHostOnHttp11Is400) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readUntilClose()), 400);
}

TEST_F(ServeTest, HeaderTimeoutGives408) {
  Settings s;
  s.timeouts = "{header: 300ms, body: 10s, idle: 60s, send: 10s}";
  startWith(s);
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n"));  // head never finishes
  std::string got = c.readUntilClose(std::chrono::milliseconds(5000));
  EXPECT_EQ(maskDate(got),
            "HTTP/1.1 408 Request Timeout\r\nServer: sluice\r\nDate: X\r\n"
            "Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
            "408 Request Timeout\n");
}

TEST_F(ServeTest, SilentConnectionClosedWithoutResponse) {
  Settings s;
  s.timeouts = "{header: 300ms, body: 10s, idle: 60s, send: 10s}";
  startWith(s);
  RawClient c = client();
  std::string unexpected;
  EXPECT_TRUE(c.closedByPeer(std::chrono::milliseconds(5000), &unexpected)) << unexpected;
}

TEST_F(ServeTest, IdleKeepAliveConnectionClosed) {
  Settings s;
  s.timeouts = "{header: 10s, body: 10s, idle: 300ms, send: 10s}";
  startWith(s);
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  std::string unexpected;
  EXPECT_TRUE(c.closedByPeer(std::chrono::milliseconds(5000), &unexpected)) << unexpected;
}

TEST_F(ServeTest, BodyTimeoutGives408) {
  Settings s;
  s.timeouts = "{header: 10s, body: 300ms, idle: 60s, send: 10s}";
  startWith(s);
  RawClient c = client();
  ASSERT_TRUE(c.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
  // The route answers at once; the stalled body then times out.
  std::string got = c.readUntilClose();
  EXPECT_EQ(statusOf(got), 200);
  EXPECT_NE(got.find("HTTP/1.1 408 Request Timeout"), std::string::npos) << got;
}

TEST_F(ServeTest, RequestBodyIsDiscardedAndKeepAliveContinues) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(
      c.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
             "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n0\r\n\r\n"
             "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  EXPECT_EQ(statusOf(c.readResponse()), 201);
  EXPECT_EQ(maskDate(c.readResponse()), kHealthzResponse);
}

TEST_F(ServeTest, OversizedHeadersGive431) {
  startWith({});
  RawClient c = client();
  std::string big(5000, 'x');
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readUntilClose()), 431);
}

TEST_F(ServeTest, TooManyHeadersGive431) {
  startWith({});
  RawClient c = client();
  std::string request = "GET /a HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 25; ++i)
    request += "X-H" + std::to_string(i) + ": v\r\n";
  ASSERT_TRUE(c.send(request + "\r\n"));
  EXPECT_EQ(statusOf(c.readUntilClose()), 431);
}

TEST_F(ServeTest, OversizedRequestLineGives414) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readUntilClose()), 414);
}

TEST_F(ServeTest, OversizedBodyGives413) {
  Settings s;
  s.limits = "{max_body_bytes: 10}";
  startWith(s);
  RawClient c = client();
  ASSERT_TRUE(c.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readUntilClose()), 413);
}

TEST_F(ServeTest, MaxRequestsPerConnectionClosesAfterLast) {
  Settings s;
  s.limits = "{max_requests_per_connection: 2}";
  startWith(s);
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string first = c.readResponse();
  EXPECT_EQ(first.find("Connection: close"), std::string::npos);
  ASSERT_TRUE(c.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string second = c.readResponse();
  EXPECT_NE(second.find("\r\nConnection: close\r\n"), std::string::npos) << second;
  EXPECT_TRUE(c.closedByPeer(std::chrono::milliseconds(5000)));
}

TEST_F(ServeTest, ClientConnectionCloseIsHonoured) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(
      c.send("GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
             "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string all = c.readUntilClose();
  EXPECT_EQ(maskDate(all),
            "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: X\r\nContent-Length: 1\r\n"
            "Connection: close\r\n\r\nA");
}

TEST_F(ServeTest, Http10WithoutKeepAliveCloses) {
  startWith({});
  RawClient c = client();
  ASSERT_TRUE(c.send("GET /a HTTP/1.0\r\n\r\n"));
  std::string all = c.readUntilClose();
  EXPECT_EQ(statusOf(all), 200);
  EXPECT_NE(all.find("Connection: close"), std::string::npos);
}

TEST_F(ServeTest, SigtermDrainsAndExitsZero) {
  startWith({});
  RawClient idle = client();
  ASSERT_TRUE(idle.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(idle.readResponse()), 200);
  EXPECT_EQ(sluice_.stop(SIGTERM), 0) << sluice_.errorLog();
  EXPECT_TRUE(idle.closedByPeer(std::chrono::milliseconds(1000)));
}

TEST(ServeListeners, Ipv6AndUnixListenersServe) {
  TempDir dir;
  int port = freePort();
  std::string sock = dir.path() + "/s.sock";
  std::string yaml =
      "listeners:\n"
      "  - address: \"[::1]:" +
      std::to_string(port) +
      "\"\n"
      "    routes: [{respond: {status: 200, body: v6}}]\n"
      "  - address: unix:" +
      sock +
      "\n"
      "    routes: [{respond: {status: 200, body: unix}}]\n";
  SluiceProcess sluice;
  ASSERT_TRUE(sluice.startUnix(yaml, sock)) << sluice.errorLog();
  RawClient v6;
  ASSERT_TRUE(v6.connect(port, "::1"));
  ASSERT_TRUE(v6.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_NE(v6.readResponse().find("\r\n\r\nv6"), std::string::npos);
  RawClient local;
  ASSERT_TRUE(local.connectUnix(sock));
  ASSERT_TRUE(local.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_NE(local.readResponse().find("\r\n\r\nunix"), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
