// PROXY protocol on the real binary: a listener that expects the header
// (v1, v2; only from trusted_proxies; malformed, truncated and slow headers)
// and an upstream that is sent one.
#include <signal.h>

#include <gtest/gtest.h>

#include <string>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

std::string config(int port, int backend_port, const std::string& trusted,
                   const std::string& send_proxy = "") {
  std::string yaml =
      "workers: 1\n"
      "shutdown_timeout: 1s\n"
      "log: {level: info, error: stderr, access: off}\n"
      "timeouts: {header: 1s, body: 5s, idle: 60s, send: 5s}\n"
      "trusted_proxies: " +
      trusted +
      "\n"
      "listeners:\n"
      "  - name: behind-lb\n"
      "    address: 127.0.0.1:" +
      std::to_string(port) +
      "\n"
      "    proxy_protocol: true\n"
      "    routes:\n"
      "      - upstream: app\n"
      "upstreams:\n"
      "  app:\n"
      "    servers: [{address: 127.0.0.1:" +
      std::to_string(backend_port) + "}]\n";
  if (!send_proxy.empty()) yaml += "    send_proxy_protocol: " + send_proxy + "\n";
  return yaml;
}

Reply echoForwardedFor(const ReceivedRequest& r, int, int) {
  return Reply::send(httpResponse(200, r.value("x-forwarded-for")));
}

std::string bodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

class ProxyProtocolTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sluice_.running()) {
      sluice_.stop(SIGTERM);
      EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
    }
  }
  int port_ = freePort();
  SluiceProcess sluice_;
};

TEST_F(ProxyProtocolTest, V1HeaderGivesTheClientAddress) {
  Backend backend(echoForwardedFor);
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[127.0.0.1/32]"), port_));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(
      c.send("PROXY TCP4 192.0.2.7 198.51.100.2 51000 80\r\n"
             "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  // The proxied client, not the load balancer (127.0.0.1), is what the
  // upstream is told about.
  EXPECT_EQ(bodyOf(c.readResponse()), "192.0.2.7");
  // And on the next request of the same connection.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "192.0.2.7");
}

TEST_F(ProxyProtocolTest, V2HeaderGivesTheClientAddress) {
  Backend backend(echoForwardedFor);
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[127.0.0.1/32]"), port_));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  std::string header("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x21\x11\x00\x0C", 16);
  header += std::string("\xC0\x00\x02\x09\x7F\x00\x00\x01\x13\x88\x00\x50", 12);
  ASSERT_TRUE(c.send(header + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "192.0.2.9");
}

TEST_F(ProxyProtocolTest, HeaderFromAnUntrustedPeerClosesTheConnection) {
  Backend backend(echoForwardedFor);
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[10.0.0.0/8]"), port_));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  c.send("PROXY TCP4 192.0.2.7 198.51.100.2 51000 80\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string unexpected;
  EXPECT_TRUE(c.closedByPeer(3000ms, &unexpected)) << unexpected;
  EXPECT_EQ(backend.requestCount(), 0);
  EXPECT_NE(sluice_.errorLog().find("is not in trusted_proxies"), std::string::npos);
}

TEST_F(ProxyProtocolTest, MalformedAndTruncatedHeadersCloseTheConnection) {
  Backend backend(echoForwardedFor);
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[127.0.0.1/32]"), port_));
  for (const std::string& bad : {std::string("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),  // none
                                 std::string("PROXY TCP4 192.0.2.7 nope 1 2\r\n"),
                                 std::string("PROXY TCP4 192.0.2.7 198.51.100.2 1\r\n"),
                                 std::string("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
                                             "\x21\x11\x00\x04\x01\x02\x03\x04",
                                             20)}) {
    RawClient c;
    ASSERT_TRUE(c.connect(port_));
    c.send(bad);
    std::string unexpected;
    EXPECT_TRUE(c.closedByPeer(3000ms, &unexpected)) << bad << unexpected;
  }
  // Cut short: the sender closes halfway.
  RawClient cut;
  ASSERT_TRUE(cut.connect(port_));
  cut.send("PROXY TCP4 192.0.2.7 198");
  cut.shutdownWrite();
  EXPECT_TRUE(cut.closedByPeer(3000ms));
  EXPECT_EQ(backend.requestCount(), 0);
  EXPECT_NE(sluice_.errorLog().find("not a PROXY header"), std::string::npos);
}

TEST_F(ProxyProtocolTest, SlowHeaderIsClosedByTheHeaderTimeout) {
  Backend backend(echoForwardedFor);
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[127.0.0.1/32]"), port_));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  c.send("PROXY TCP4 192.0.2.7 ");  // and then nothing (timeouts.header: 1s)
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closedByPeer(5000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3000ms);
}

TEST_F(ProxyProtocolTest, UpstreamIsSentAHeaderOnEachNewConnection) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "ok")); });
  ASSERT_TRUE(sluice_.start(config(port_, backend.port(), "[127.0.0.1/32]", "v1"), port_));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(
      c.send("PROXY TCP4 192.0.2.7 198.51.100.2 51000 8443\r\n"
             "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "ok");
  ASSERT_TRUE(backend.waitForConnections(1, 2000ms));
  EXPECT_TRUE(backend.raw(0).starts_with("PROXY TCP4 192.0.2.7 198.51.100.2 51000 8443\r\nGET / "))
      << backend.raw(0);
  // Such a connection speaks for one client: the next request opens another.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "ok");
  ASSERT_TRUE(backend.syncProbe());
  EXPECT_EQ(backend.connections(), 3);  // two for sluice, one for the probe
}

}  // namespace
}  // namespace sluice::testing
