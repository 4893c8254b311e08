// Security properties of the proxy path, end to end: the real sluice binary
// in front of recording backends (backend.h). Each test checks what the
// backend never sees (forged forwarding headers, paths a route was meant to
// stop, unbounded chunk framing) and, as its control, what it does see.
#include <signal.h>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// A sluice config: one listener on `port` with `routes` (YAML list items,
// each starting with "- "), upstreams named after `backends` (name → port),
// and `top` added at the top level (e.g. "trusted_proxies: []\n").
std::string securityYaml(int port, const std::string& top, const std::vector<std::string>& routes,
                         const std::map<std::string, int>& backends) {
  std::string yaml =
      "workers: 1\n"
      "shutdown_timeout: 1s\n"
      "log: {level: debug, error: stderr, access: off}\n"
      "timeouts: {header: 5s, body: 5s, idle: 60s, send: 5s}\n"
      "limits: {max_header_bytes: 8k, max_headers: 50}\n" +
      top +
      "listeners:\n"
      "  - name: web\n"
      "    address: 127.0.0.1:" +
      std::to_string(port) + "\n    routes:\n";
  for (const std::string& route : routes)
    yaml += "      " + route + "\n";
  yaml += "upstreams:\n";
  for (const auto& [name, backend_port] : backends) {
    yaml += "  " + name + ":\n    servers: [{address: 127.0.0.1:" + std::to_string(backend_port) +
            "}]\n    timeouts: {connect: 2s, response: 5s, send: 5s}\n";
  }
  return yaml;
}

Reply okWithTarget(const ReceivedRequest& request, int, int) {
  return Reply::send(httpResponse(200, request.target));
}

class SecurityTest : public ::testing::Test {
 public:
  void TearDown() override {
    for (auto& sluice : sluices_) {
      int code = sluice->stop(SIGTERM);
      std::string log = sluice->errorLog();
      EXPECT_EQ(code, 0) << log;
      EXPECT_EQ(sanitizerReport(log), "") << log;
    }
  }

  // One upstream `app` for every request.
  int startSimple(const std::string& top, const Backend& backend) {
    return start(top, {"- upstream: app"}, {{"app", backend.port()}});
  }

  // Starts sluice on a fresh port; 0 on failure.
  int start(const std::string& top, const std::vector<std::string>& routes,
            const std::map<std::string, int>& backends) {
    int port = freePort();
    auto sluice = std::make_unique<SluiceProcess>();
    bool ok = sluice->start(securityYaml(port, top, routes, backends), port);
    EXPECT_TRUE(ok) << sluice->errorLog();
    sluices_.push_back(std::move(sluice));
    return ok ? port : 0;
  }

  std::vector<std::unique_ptr<SluiceProcess>> sluices_;
};

// Sends `request` on a fresh connection and returns the response.
std::string roundTrip(int port, const std::string& request) {
  RawClient c;
  if (!c.connect(port) || !c.send(request)) return "";
  return c.readResponse();
}

// --- Chunk lines are bounded (CVE-2024-22019 in Node.js) ----------------------------------------

TEST_F(SecurityTest, EightMebibyteChunkExtensionIs413AndNothingOfItIsForwarded) {
  Backend backend(okWithTarget);
  int port = startSimple("", backend);
  ASSERT_NE(port, 0);
  const std::string head = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  // Written from another thread: sluice answers long before the 8 MiB are
  // written, and reads (and drops) the rest while it closes.
  std::thread writer([&c, &head] {
    c.send(head + "1;" + std::string(8 << 20, 'a'));
    c.shutdownWrite();
  });
  bool closed = false;
  std::string got = c.readUntilClose(5000ms, &closed);
  writer.join();
  EXPECT_EQ(statusOf(got), 413) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(closed);
  // The backend may have received the head (bodies stream), never a byte of
  // the chunk line, and its connection is closed.
  ASSERT_TRUE(backend.syncProbe());
  EXPECT_EQ(backend.requestCount(), 0);
  for (int i = 0; i < backend.connections() - 1; ++i) {
    EXPECT_TRUE(backend.waitForPeerClose(i, 2000ms)) << "backend connection " << i;
    EXPECT_LT(backend.rawSize(i), 1024u) << backend.raw(i).substr(0, 300);
    EXPECT_EQ(backend.raw(i).find("1;a"), std::string::npos);
  }
}

TEST_F(SecurityTest, OrdinaryChunkExtensionsStillPass) {
  Backend backend(
      [](const ReceivedRequest& r, int, int) { return Reply::send(httpResponse(200, r.body)); });
  int port = startSimple("", backend);
  ASSERT_NE(port, 0);
  std::string got = roundTrip(port,
                              "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5;name=\"a value\";x=1\r\nhello\r\n" +
                                  std::string(100, '0') + "1\r\n!\r\n0\r\n\r\n");
  EXPECT_EQ(statusOf(got), 200) << got;
  EXPECT_NE(got.find("\r\n\r\nhello!"), std::string::npos) << got;
}

// --- Transfer-Encoding with trailing OWS ------------------------------------------------------

TEST_F(SecurityTest, TransferEncodingChunkedWithTrailingTabIsForwarded) {
  Backend backend(
      [](const ReceivedRequest& r, int, int) { return Reply::send(httpResponse(200, r.body)); });
  int port = startSimple("", backend);
  ASSERT_NE(port, 0);
  std::string got = roundTrip(port,
                              "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\t\r\n\r\n"
                              "3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(statusOf(got), 200) << got;
  ASSERT_EQ(backend.requestCount(), 1);
  ReceivedRequest r = backend.requests()[0];
  EXPECT_EQ(r.value("Transfer-Encoding"), "chunked");  // regenerated, without the tab
  EXPECT_EQ(r.body, "abc");
}

// --- Forwarding headers ------------------------------------------------------------------------

// Every header with which a client could speak for a proxy in front of sluice.
const char kForgedRequest[] =
    "GET /who HTTP/1.1\r\nHost: h\r\n"
    "X-Forwarded-For: 6.6.6.6\r\n"
    "Forwarded: for=6.6.6.6;proto=https\r\n"
    "X-Real-IP: 6.6.6.6\r\n"
    "X_Forwarded_For: 7.7.7.7\r\n"
    "X_Real_IP: 7.7.7.7\r\n"
    "X-Request-Id: forged-id\r\n"
    "X_Custom: u\r\n"
    "X-Plain: p\r\n\r\n";

ReceivedRequest forwardForged(SecurityTest* test, const std::string& top, bool* ok) {
  Backend backend(okWithTarget);
  *ok = false;
  int port = test->startSimple(top, backend);
  if (port == 0) return {};
  std::string got = roundTrip(port, kForgedRequest);
  if (statusOf(got) != 200 || backend.requestCount() != 1) {
    ADD_FAILURE() << got;
    return {};
  }
  *ok = true;
  return backend.requests()[0];
}

bool isFreshId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST_F(SecurityTest, UntrustedPeerCannotForgeForwardingHeaders) {
  // The harness connects from 127.0.0.1, outside both lists.
  for (const char* trusted : {"[]", "[10.0.0.0/8]"}) {
    SCOPED_TRACE(trusted);
    bool ok = false;
    ReceivedRequest r = forwardForged(this, std::string("trusted_proxies: ") + trusted + "\n", &ok);
    ASSERT_TRUE(ok);
    EXPECT_EQ(r.value("X-Forwarded-For"), "127.0.0.1") << r.head;
    EXPECT_EQ(r.count("X-Forwarded-For"), 1) << r.head;
    EXPECT_FALSE(r.has("Forwarded")) << r.head;
    EXPECT_FALSE(r.has("X-Real-IP")) << r.head;
    EXPECT_FALSE(r.has("X_Forwarded_For")) << r.head;
    EXPECT_FALSE(r.has("X_Real_IP")) << r.head;
    EXPECT_FALSE(r.has("X_Custom")) << r.head;
    EXPECT_EQ(r.count("X-Request-Id"), 1) << r.head;
    EXPECT_TRUE(isFreshId(r.value("X-Request-Id"))) << r.head;
    EXPECT_EQ(r.value("X-Plain"), "p");
  }
}

TEST_F(SecurityTest, TrustedPeerPassesForwardedRealIpAndRequestId) {
  bool ok = false;
  ReceivedRequest r = forwardForged(this, "trusted_proxies: [127.0.0.1/32]\n", &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(r.value("X-Forwarded-For"), "6.6.6.6, 127.0.0.1") << r.head;
  EXPECT_EQ(r.value("Forwarded"), "for=6.6.6.6;proto=https") << r.head;
  EXPECT_EQ(r.value("X-Real-IP"), "6.6.6.6") << r.head;
  EXPECT_EQ(r.value("X-Request-Id"), "forged-id") << r.head;
  EXPECT_EQ(r.count("X-Request-Id"), 1) << r.head;
  // Underscores are dropped from every peer by default.
  EXPECT_FALSE(r.has("X_Forwarded_For")) << r.head;
  EXPECT_FALSE(r.has("X_Custom")) << r.head;
}

TEST_F(SecurityTest, HeaderSettingsKeepUnderscoresAndUntrustedRequestIds) {
  bool ok = false;
  ReceivedRequest r = forwardForged(
      this, "trusted_proxies: []\nheaders: {underscores: keep, request_id: keep}\n", &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(r.value("X_Custom"), "u") << r.head;
  EXPECT_EQ(r.value("X-Request-Id"), "forged-id") << r.head;
  // Kept underscores still cannot stand in for what sluice replaces.
  EXPECT_FALSE(r.has("X_Forwarded_For")) << r.head;
  EXPECT_FALSE(r.has("X_Real_IP")) << r.head;
  EXPECT_FALSE(r.has("X-Real-IP")) << r.head;
  EXPECT_EQ(r.value("X-Forwarded-For"), "127.0.0.1") << r.head;
}

// --- Response framing ---------------------------------------------------------------------------

TEST_F(SecurityTest, NoContentLengthOn204AndHugeKeepAliveTimeoutIsHarmless) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    if (r.target == "/none") {
      // RFC 9110 §8.6 forbids this Content-Length; and timeout * 1000
      // overflowed int64_t before it was clamped.
      return Reply::send(
          "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n"
          "Keep-Alive: timeout=2305843009213693953\r\n\r\n");
    }
    return Reply::send("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"e\"\r\n\r\n");
  });
  int port = startSimple("", backend);
  ASSERT_NE(port, 0);
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  ASSERT_TRUE(c.send("GET /none HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string first = c.readResponse();
  EXPECT_EQ(statusOf(first), 204) << first;
  EXPECT_EQ(first.find("Content-Length"), std::string::npos) << first;
  EXPECT_EQ(first.find("Keep-Alive"), std::string::npos) << first;  // hop-by-hop
  // The pooled upstream connection (with the clamped hint) is reused.
  ASSERT_TRUE(c.send("GET /cached HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string second = c.readResponse();
  EXPECT_EQ(statusOf(second), 304) << second;
  EXPECT_NE(second.find("\r\nContent-Length: 5\r\n"), std::string::npos) << second;
  EXPECT_EQ(backend.connections(), 1);
  EXPECT_TRUE(sluices_.back()->running());
}

}  // namespace
}  // namespace sluice::testing
