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

// --- Routes match normalized paths --------------------------------------------------------------

const std::vector<std::string> kAdminRoutes = {
    "- match: {path_prefix: /admin}\n        respond: {status: 403, body: \"forbidden\\n\"}",
    "- upstream: app",
};

struct PathCase {
  const char* target;
  int status;  // from sluice itself; the backend must see nothing
};

TEST_F(SecurityTest, EverySpellingOfAProtectedPathHitsItsRoute) {
  Backend backend(okWithTarget);
  int port = start("", kAdminRoutes, {{"app", backend.port()}});
  ASSERT_NE(port, 0);
  const PathCase cases[] = {
      {"/admin", 403},
      {"//admin", 403},
      {"/./admin", 403},
      {"/x/../admin", 403},
      {"/%61dmin", 403},
      {"/%61%64%6d%69%6e/users", 403},
      {"/%2e/admin", 403},
      {"/x/%2e%2e/admin", 403},
      {"/x/.%2E/admin", 403},
      {"/x//..//admin", 403},
      {"http://z.example//admin", 403},
      {"http://z.example/x/../admin?q", 403},
      // What cannot be normalized safely is refused before routing.
      {"/admin%2Fx", 400},
      {"/x/..%2Fadmin", 400},
      {"/x/..%5Cadmin", 400},
      {"/x\\..\\admin", 400},
      {"/../admin", 400},
      {"/x/../../admin", 400},
      {"/admin%00", 400},
      {"/%zzadmin", 400},
  };
  for (const PathCase& c : cases) {
    SCOPED_TRACE(c.target);
    std::string got =
        roundTrip(port, std::string("GET ") + c.target + " HTTP/1.1\r\nHost: h.example\r\n\r\n");
    EXPECT_EQ(statusOf(got), c.status) << got;
  }
  ASSERT_TRUE(backend.syncProbe());
  EXPECT_EQ(backend.connections(), 1) << "a request reached the backend";
  EXPECT_EQ(backend.requestCount(), 0);
}

TEST_F(SecurityTest, RefusedPathWithABodyIsAnsweredAndClosed) {
  Backend backend(okWithTarget);
  int port = start("", kAdminRoutes, {{"app", backend.port()}});
  ASSERT_NE(port, 0);
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  ASSERT_TRUE(
      c.send("POST /x/..%2Fadmin HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
             "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  bool closed = false;
  std::string got = c.readUntilClose(5000ms, &closed);
  EXPECT_EQ(statusOf(got), 400) << got;
  EXPECT_TRUE(closed);
  EXPECT_EQ(got.find("HTTP/1.1", 1), std::string::npos) << "a second response: " << got;
  ASSERT_TRUE(backend.syncProbe());
  EXPECT_EQ(backend.requestCount(), 0);
}

TEST_F(SecurityTest, NormalizedPathIsWhatTheBackendGets) {
  Backend backend(okWithTarget);
  int port = start("", kAdminRoutes, {{"app", backend.port()}});
  ASSERT_NE(port, 0);
  const std::pair<const char*, const char*> cases[] = {
      {"/x/./y//z/../w?q=/../%2f&r=%41", "/x/y/w?q=/../%2f&r=%41"},
      {"/%7euser/%3b%41", "/~user/%3BA"},
      {"/adm/..", "/"},
      {"http://z.example", "/"},
      {"http://z.example?q", "/?q"},
      {"/administrator/../public", "/public"},
  };
  for (const auto& [target, expected] : cases) {
    SCOPED_TRACE(target);
    std::string got =
        roundTrip(port, std::string("GET ") + target + " HTTP/1.1\r\nHost: h.example\r\n\r\n");
    EXPECT_EQ(statusOf(got), 200) << got;
    EXPECT_NE(got.find(std::string("\r\n\r\n") + expected), std::string::npos) << got;
  }
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), std::size(cases));
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i].target, cases[i].second);
}

TEST_F(SecurityTest, ForwardOriginalSendsTheBytesAsReceived) {
  Backend backend(okWithTarget);
  int port = start("paths: {forward: original}\n", kAdminRoutes, {{"app", backend.port()}});
  ASSERT_NE(port, 0);
  // Routing still uses the normalized path.
  EXPECT_EQ(statusOf(roundTrip(port, "GET /x/../admin HTTP/1.1\r\nHost: h\r\n\r\n")), 403);
  EXPECT_EQ(statusOf(roundTrip(port, "GET /admin%2F HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
  EXPECT_EQ(statusOf(roundTrip(port, "GET /x/./y//%7ez?a=/./ HTTP/1.1\r\nHost: h\r\n\r\n")), 200);
  EXPECT_EQ(statusOf(roundTrip(port, "GET http://z.example?q HTTP/1.1\r\nHost: h\r\n\r\n")), 200);
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].target, "/x/./y//%7ez?a=/./");
  EXPECT_EQ(got[1].target, "/?q");
}

TEST_F(SecurityTest, KeptEscapedSlashesAreNotSeparators) {
  Backend backend(okWithTarget);
  int port = start("paths: {escaped_slashes: keep}\n", kAdminRoutes, {{"app", backend.port()}});
  ASSERT_NE(port, 0);
  EXPECT_EQ(statusOf(roundTrip(port, "GET /admin%2fx HTTP/1.1\r\nHost: h\r\n\r\n")), 403);
  // Not the /admin route: for sluice this is one segment "..%2Fadmin".
  EXPECT_EQ(statusOf(roundTrip(port, "GET /x/..%2fadmin HTTP/1.1\r\nHost: h\r\n\r\n")), 200);
  EXPECT_EQ(statusOf(roundTrip(port, "GET /a%5cb/./c HTTP/1.1\r\nHost: h\r\n\r\n")), 200);
  EXPECT_EQ(statusOf(roundTrip(port, "GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n")), 400);
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].target, "/x/..%2Fadmin");
  EXPECT_EQ(got[1].target, "/a%5Cb/c");
}

// --- Absolute-form targets: routing and forwarding agree -------------------------------------

TEST_F(SecurityTest, AbsoluteFormAuthorityDecidesRoutingHostAndForwardedHost) {
  Backend a([](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "A")); });
  Backend b([](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "B")); });
  int port = start("trusted_proxies: []\n",
                   {"- match: {host: a.example}\n        upstream: a",
                    "- match: {host: b.example}\n        upstream: b"},
                   {{"a", a.port()}, {"b", b.port()}});
  ASSERT_NE(port, 0);
  struct Case {
    const char* target;
    const char* host_header;
    const char* backend;
    const char* host;  // what the backend must get as Host and X-Forwarded-Host
    const char* origin_form;
  };
  const Case cases[] = {
      {"http://a.example/x", "b.example", "A", "a.example", "/x"},
      {"HTTP://A.EXAMPLE/x", "b.example", "A", "A.EXAMPLE", "/x"},
      {"http://a.example:8080/x?y", "b.example", "A", "a.example:8080", "/x?y"},
      {"http://a.example?q", "b.example", "A", "a.example", "/?q"},
      {"https://a.example", "b.example", "A", "a.example", "/"},
      {"http://b.example/x", "a.example", "B", "b.example", "/x"},
      {"/x", "b.example", "B", "b.example", "/x"},  // the control: origin-form uses Host
      {"/x", "A.Example:81", "A", "A.Example:81", "/x"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target + std::string(" Host: ") + c.host_header);
    const int a_before = a.requestCount();
    const int b_before = b.requestCount();
    std::string got = roundTrip(
        port, std::string("GET ") + c.target + " HTTP/1.1\r\nHost: " + c.host_header + "\r\n\r\n");
    ASSERT_EQ(statusOf(got), 200) << got;
    EXPECT_EQ(got.substr(got.size() - 1), c.backend) << got;
    Backend& chosen = std::string(c.backend) == "A" ? a : b;
    EXPECT_EQ(a.requestCount() + b.requestCount(), a_before + b_before + 1);
    ReceivedRequest r = chosen.requests().back();
    EXPECT_EQ(r.target, c.origin_form);
    EXPECT_EQ(r.count("Host"), 1) << r.head;
    EXPECT_EQ(r.value("Host"), c.host) << r.head;
    EXPECT_EQ(r.value("X-Forwarded-Host"), c.host) << r.head;
  }
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
