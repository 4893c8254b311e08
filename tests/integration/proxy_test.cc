// Integration tests of the reverse-proxy path: the real sluice binary in
// front of an in-test backend (backend.h) that records exactly what it
// receives, raw sockets on the client side, byte-for-byte expectations.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool isHex32(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(),
                                       [](char c) { return std::isxdigit(c) && !std::isupper(c); });
}

// Splits a chunked body into its payload and trailer section; false when the
// framing is invalid or incomplete.
bool decodeChunked(std::string_view body, std::string* payload, std::string* trailers = nullptr) {
  payload->clear();
  for (;;) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos || eol == 0) return false;
    std::string_view size_text = body.substr(0, std::min(eol, body.substr(0, eol).find(';')));
    size_t size = 0;
    for (char c : size_text) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      size =
          size * 16 + static_cast<size_t>(std::isdigit(c) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    body.remove_prefix(eol + 2);
    if (size == 0) {
      size_t end = body.find("\r\n\r\n");
      if (body.starts_with("\r\n")) {
        if (trailers) trailers->clear();
        return body.size() == 2;
      }
      if (end == std::string_view::npos || end + 4 != body.size()) return false;
      if (trailers) trailers->assign(body.substr(0, end + 2));
      return true;
    }
    if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") return false;
    payload->append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

std::string bodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string headOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? response : response.substr(0, end + 4);
}

std::string patternString(size_t n) {
  std::string s(n, '\0');
  fillPattern(0, s.data(), n);
  return s;
}

const char k502[] =
    "HTTP/1.1 502 Bad Gateway\r\nServer: sluice\r\nDate: X\r\nContent-Type: text/plain\r\n"
    "Content-Length: 16\r\n\r\n502 Bad Gateway\n";
const char k504[] =
    "HTTP/1.1 504 Gateway Timeout\r\nServer: sluice\r\nDate: X\r\nContent-Type: text/plain\r\n"
    "Content-Length: 20\r\n\r\n504 Gateway Timeout\n";

// Samples a process's VmRSS every 50 ms on its own thread.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] { run(); }) {}
  ~RssSampler() { stop(); }
  long stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    return max_;
  }
  long maxKiB() const { return max_; }

 private:
  void run() {
    while (!done_) {
      max_ = std::max(max_.load(), vmRssKiB(pid_));
      std::this_thread::sleep_for(50ms);
    }
    max_ = std::max(max_.load(), vmRssKiB(pid_));
  }
  pid_t pid_;
  std::atomic<bool> done_{false};
  std::atomic<long> max_{0};
  std::thread thread_;
};

class ProxyTest : public ::testing::Test {
 protected:
  // Every sluice started by the test is stopped gracefully (so that a leak
  // report would be written) and its log checked for sanitizer reports.
  void TearDown() override {
    for (auto& sluice : sluices_) {
      int code = sluice->stop(SIGTERM);
      std::string log = sluice->errorLog();
      EXPECT_EQ(code, 0) << log;
      EXPECT_EQ(sanitizerReport(log), "") << log;
    }
  }

  static ProxyConfig configFor(const Backend& backend) {
    ProxyConfig config;
    config.servers = {{backend.port(), 1}};
    return config;
  }

  // Starts a sluice with `config`; returns its port (0 on failure).
  int startSluice(const ProxyConfig& config) {
    int port = freePort();
    auto sluice = std::make_unique<SluiceProcess>();
    bool ok = sluice->start(proxyConfigYaml(port, config), port);
    EXPECT_TRUE(ok) << sluice->errorLog();
    sluices_.push_back(std::move(sluice));
    return ok ? port : 0;
  }

  SluiceProcess& sluice() { return *sluices_.back(); }

  // The one worker process of the last sluice started (workers: 1), whose
  // memory is what a transfer costs; the master only supervises.
  // The listening socket accepts (in the kernel) before the master has
  // forked its worker, so wait for the worker to appear.
  pid_t workerPid() {
    std::vector<pid_t> children = waitForChildProcesses(sluice().pid(), 1);
    EXPECT_EQ(children.size(), 1u);
    return children.empty() ? -1 : children.front();
  }

  static RawClient connectTo(int port) {
    RawClient c;
    EXPECT_TRUE(c.connect(port));
    return c;
  }

  std::vector<std::unique_ptr<SluiceProcess>> sluices_;
};

Reply okWithTarget(const ReceivedRequest& request, int, int) {
  return Reply::send(httpResponse(200, request.target));
}

// --- 1. The re-serialized request head ---------------------------------------------------------

TEST_F(ProxyTest, GetIsForwardedWithRewrittenHeadAndResponseRelayed) {
  Backend backend([](const ReceivedRequest&, int, int) {
    return Reply::send(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: yes\r\n"
        "Content-Length: 5\r\n\r\nhello");
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send(
      "GET /path?q HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n"));
  EXPECT_EQ(c.readResponse(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: yes\r\n"
            "Content-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: abc-123\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);

  ASSERT_EQ(backend.requestCount(), 2);
  std::vector<ReceivedRequest> got = backend.requests();
  std::string id = got[0].value("X-Request-Id");
  EXPECT_TRUE(isHex32(id)) << id;
  EXPECT_EQ(got[0].head,
            "GET /path?q HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n"
            "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.com\r\nX-Request-Id: " +
                id + "\r\n\r\n");
  // A client's own request id is kept, and not doubled.
  EXPECT_EQ(got[1].value("X-Request-Id"), "abc-123");
  EXPECT_EQ(got[1].count("X-Request-Id"), 1);
  EXPECT_EQ(backend.connections(), 1);
}

TEST_F(ProxyTest, RequestIdsDifferPerRequest) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    EXPECT_EQ(statusOf(c.readResponse()), 200);
  }
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_NE(got[0].value("x-request-id"), got[1].value("x-request-id"));
  EXPECT_NE(got[1].value("x-request-id"), got[2].value("x-request-id"));
}

TEST_F(ProxyTest, AbsoluteFormAndHttp10AreForwardedAsOriginFormHttp11) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  // The absolute-form authority overrides Host (RFC 9112 §3.2.2).
  ASSERT_TRUE(
      c.send("GET http://Other.example:8080/p?x=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "/p?x=1");
  // HTTP/1.0 without Host: the upstream still gets a Host (the upstream's
  // name, as nginx's $proxy_host).
  RawClient old = connectTo(port);
  ASSERT_TRUE(old.send("GET /old HTTP/1.0\r\n\r\n"));
  std::string response = old.readUntilClose();
  EXPECT_EQ(response, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n/old");

  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].head.substr(0, got[0].head.find("\r\n")), "GET /p?x=1 HTTP/1.1");
  EXPECT_EQ(got[0].value("host"), "Other.example:8080");
  EXPECT_EQ(got[0].count("host"), 1);
  EXPECT_EQ(got[0].value("x-forwarded-host"), "Other.example:8080");
  EXPECT_EQ(got[1].head.substr(0, got[1].head.find("\r\n")), "GET /old HTTP/1.1");
  EXPECT_EQ(got[1].value("host"), "app");
}

// --- 2. Hop-by-hop headers ----------------------------------------------------------------------

TEST_F(ProxyTest, HopByHopHeadersRemovedInBothDirections) {
  Backend backend([](const ReceivedRequest&, int, int) {
    return Reply::send(
        "HTTP/1.1 200 OK\r\nConnection: X-Up\r\nX-Up: 1\r\nKeep-Alive: timeout=5\r\n"
        "X-Stay: 1\r\nContent-Length: 2\r\n\r\nok");
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("GET /h HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
             "Keep-Alive: 5\r\nTE: deflate\r\nUpgrade: foo\r\nProxy-Connection: x\r\n"
             "X-Keep: yes\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nX-Stay: 1\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(backend.requestCount(), 1);
  ReceivedRequest got = backend.requests()[0];
  for (const char* name :
       {"connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-connection"}) {
    EXPECT_FALSE(got.has(name)) << name << " reached the backend:\n" << got.head;
  }
  EXPECT_EQ(got.value("x-keep"), "yes");
}

// TE is hop-by-hop too, but a client's `TE: trailers` is regenerated for the
// upstream (so that a gRPC backend sends its trailers), and nothing else of it.
TEST_F(ProxyTest, TeTrailersIsRegeneratedForTheUpstream) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "ok")); });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /h HTTP/1.1\r\nHost: h\r\nTE: deflate;q=0.5, trailers\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  ASSERT_EQ(backend.requestCount(), 1);
  EXPECT_EQ(backend.requests()[0].value("te"), "trailers");
}

// --- 3. X-Forwarded-* ---------------------------------------------------------------------------

TEST_F(ProxyTest, ForwardedHeadersExtendedFromTrustedPeerReplacedFromOthers) {
  Backend backend(okWithTarget);
  ProxyConfig trusted = configFor(backend);
  trusted.trusted_proxies = "[127.0.0.1/32]";
  ProxyConfig untrusted = configFor(backend);
  untrusted.trusted_proxies = "[10.0.0.0/8, \"::1/128\"]";
  int trusted_port = startSluice(trusted);
  int untrusted_port = startSluice(untrusted);
  ASSERT_NE(trusted_port, 0);
  ASSERT_NE(untrusted_port, 0);
  const std::string request =
      "GET / HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 1.2.3.4\r\n"
      "X-Forwarded-For: 5.6.7.8\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: orig.example\r\n\r\n";
  for (int port : {trusted_port, untrusted_port}) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send(request));
    EXPECT_EQ(statusOf(c.readResponse()), 200);
  }
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value("x-forwarded-for"), "1.2.3.4, 5.6.7.8, 127.0.0.1");
  EXPECT_EQ(got[0].value("x-forwarded-proto"), "https");
  EXPECT_EQ(got[0].value("x-forwarded-host"), "orig.example");
  EXPECT_EQ(got[1].value("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(got[1].value("x-forwarded-proto"), "http");
  EXPECT_EQ(got[1].value("x-forwarded-host"), "h.example");
  for (const ReceivedRequest& r : got) {
    EXPECT_EQ(r.count("x-forwarded-for"), 1) << r.head;
    EXPECT_EQ(r.count("x-forwarded-proto"), 1) << r.head;
    EXPECT_EQ(r.count("x-forwarded-host"), 1) << r.head;
  }
}

// --- 4. Upstream keep-alive ---------------------------------------------------------------------

TEST_F(ProxyTest, UpstreamConnectionIsReusedAcrossClients) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  std::vector<RawClient> clients;
  for (int i = 0; i < 5; ++i)
    clients.push_back(connectTo(port));
  for (int i = 0; i < 50; ++i) {
    RawClient& c = clients[static_cast<size_t>(i % 5)];
    std::string target = "/r" + std::to_string(i);
    ASSERT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(bodyOf(c.readResponse()), target);
  }
  EXPECT_EQ(backend.connections(), 1);
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)].connection, 0);
    EXPECT_EQ(got[static_cast<size_t>(i)].index, i);
  }
}

TEST_F(ProxyTest, MaxIdleZeroOpensAConnectionPerRequest) {
  Backend backend(okWithTarget);
  ProxyConfig config = configFor(backend);
  config.keepalive = "{max_idle: 0, idle_timeout: 20s}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  std::vector<RawClient> clients;
  for (int i = 0; i < 5; ++i)
    clients.push_back(connectTo(port));
  for (int i = 0; i < 50; ++i) {
    RawClient& c = clients[static_cast<size_t>(i % 5)];
    ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(statusOf(c.readResponse()), 200);
  }
  EXPECT_EQ(backend.connections(), 50);
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)].connection, i);
    EXPECT_EQ(got[static_cast<size_t>(i)].index, 0);
  }
  // sluice closes each one after its response.
  EXPECT_TRUE(backend.waitForPeerClose(49, 2000ms));
}

TEST_F(ProxyTest, UpstreamConnectionCloseIsNotReused) {
  Backend backend([](const ReceivedRequest&, int, int) {
    // Says close but leaves the connection open: sluice must close it.
    return Reply::send(httpResponse(200, "x", "Connection: close\r\n"));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    // The client connection is not affected (Connection is hop-by-hop).
    EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
  }
  EXPECT_EQ(backend.connections(), 3);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(backend.waitForPeerClose(i, 2000ms)) << i;
}

TEST_F(ProxyTest, ClientConnectionCloseKeepsUpstreamConnectionPooled) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  for (int i = 0; i < 3; ++i) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    bool closed = false;
    EXPECT_EQ(c.readUntilClose(5000ms, &closed),
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n/c");
    EXPECT_TRUE(closed);
  }
  EXPECT_EQ(backend.connections(), 1);
  for (const ReceivedRequest& r : backend.requests())
    EXPECT_FALSE(r.has("connection")) << r.head;
}

TEST_F(ProxyTest, PooledConnectionClosedAfterIdleTimeout) {
  Backend backend(okWithTarget);
  ProxyConfig config = configFor(backend);
  config.keepalive = "{max_idle: 4, idle_timeout: 300ms}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  auto start = Clock::now();  // before the idle timer can start
  ASSERT_TRUE(c.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "/1");
  EXPECT_TRUE(backend.waitForPeerClose(0, 3000ms));
  EXPECT_GE(Clock::now() - start, 300ms);
  ASSERT_TRUE(c.send("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "/2");
  EXPECT_EQ(backend.connections(), 2);
}

// --- 5. Client keep-alive and pipelining --------------------------------------------------------

TEST_F(ProxyTest, PipelinedRequestsAnsweredInOrder) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
             "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
             "GET /three HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n/one");
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n/two");
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/three");
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].body, "abc");
  EXPECT_EQ(backend.connections(), 1);
}

// --- 6. Request bodies --------------------------------------------------------------------------

TEST_F(ProxyTest, ContentLengthBodyForwardedByteExact) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(201, "stored")); });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  // Every byte value, CRLFs and something that looks like a request.
  std::string body = patternString(300000) + "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 201 Created\r\nContent-Length: 6\r\n\r\nstored");
  ASSERT_EQ(backend.requestCount(), 1);
  ReceivedRequest got = backend.requests()[0];
  EXPECT_EQ(got.value("content-length"), std::to_string(body.size()));
  EXPECT_FALSE(got.has("transfer-encoding"));
  EXPECT_TRUE(got.body == body);
  EXPECT_EQ(got.raw_body.size(), body.size());
  // Nothing after the body: the backend saw exactly head + body.
  EXPECT_EQ(backend.rawSize(0), got.head.size() + body.size());
}

TEST_F(ProxyTest, ChunkedBodyReChunkedWithSamePayload) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "ok")); });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  std::string big = patternString(5000);
  RawClient c = connectTo(port);
  // Sent in pieces, with an extension and a trailer (passed on: every
  // HTTP/1.1 recipient of a chunked body accepts a trailer section).
  ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_TRUE(c.send("5;ext=1\r\nhello\r\n"));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c.send("1388\r\n" + big + "\r\n"));
  ASSERT_TRUE(c.send("0\r\nX-Trailer: t\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  ASSERT_EQ(backend.requestCount(), 1);
  ReceivedRequest got = backend.requests()[0];
  EXPECT_TRUE(got.chunked);
  EXPECT_EQ(got.value("transfer-encoding"), "chunked");
  EXPECT_FALSE(got.has("content-length"));
  EXPECT_FALSE(got.has("trailer"));
  std::string payload;
  std::string trailers;
  EXPECT_TRUE(decodeChunked(got.raw_body, &payload, &trailers)) << got.raw_body.size();
  EXPECT_EQ(trailers, "X-Trailer: t\r\n");
  EXPECT_TRUE(payload == "hello" + big);
  EXPECT_TRUE(got.body == "hello" + big);
  EXPECT_EQ(backend.rawSize(0), got.head.size() + got.raw_body.size());
}

TEST_F(ProxyTest, ExpectContinueAnsweredBySluiceAndNotForwarded) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    return Reply::send(httpResponse(200, "got " + r.body));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_EQ(c.readResponse(false, 2000ms), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.send("hello"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ngot hello");
  ASSERT_EQ(backend.requestCount(), 1);
  ReceivedRequest got = backend.requests()[0];
  EXPECT_FALSE(got.has("expect")) << got.head;
  EXPECT_EQ(got.body, "hello");
}

// --- 7. Response framings -----------------------------------------------------------------------

Reply framingScript(const ReceivedRequest& r, int, int) {
  if (r.target == "/cl") return Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  if (r.target == "/chunked") {
    return Reply::send(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
        "4\r\nWiki\r\n5;e=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n");
  }
  if (r.target == "/close") {
    return Reply::send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        .then(20ms, "close")
        .andClose();
  }
  if (r.target == "/head") return Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  if (r.target == "/204") return Reply::send("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
  if (r.target == "/304") {
    return Reply::send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n");
  }
  return Reply::send(httpResponse(404, ""));
}

TEST_F(ProxyTest, ContentLengthResponse) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
}

TEST_F(ProxyTest, ChunkedResponseRelayedChunkedWithTrailersDropped) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("GET /chunked HTTP/1.1\r\nHost: h\r\n\r\nGET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string response = c.readResponse();
  // Trailer fields are parsed and dropped (docs/http.md); the Trailer header
  // announcing them is hop-by-hop and dropped too.
  EXPECT_EQ(headOf(response), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string payload;
  std::string trailers;
  EXPECT_TRUE(decodeChunked(bodyOf(response), &payload, &trailers)) << response;
  EXPECT_EQ(payload, "Wikipedia");
  EXPECT_EQ(trailers, "");
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(backend.connections(), 1);
}

TEST_F(ProxyTest, CloseDelimitedResponseChunkedToHttp11Client) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /close HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::string response = c.readResponse();
  EXPECT_EQ(headOf(response),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string payload;
  EXPECT_TRUE(decodeChunked(bodyOf(response), &payload)) << response;
  EXPECT_EQ(payload, "until close");
  // The client connection stays usable; the upstream one could not be reused.
  ASSERT_TRUE(c.send("GET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(backend.connections(), 2);
}

TEST_F(ProxyTest, CloseDelimitedResponseToHttp10ClientEndsWithClose) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  for (const char* connection : {"", "Connection: keep-alive\r\n"}) {
    SCOPED_TRACE(connection);
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send(std::string("GET /close HTTP/1.0\r\n") + connection + "\r\n"));
    bool closed = false;
    std::string response = c.readUntilClose(5000ms, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil close");
  }
}

TEST_F(ProxyTest, HeadResponseHasNoBodyAndNextPipelinedRequestWorks) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("HEAD /head HTTP/1.1\r\nHost: h\r\n\r\nGET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(/*head_request=*/true),
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(backend.connections(), 1);
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method, "HEAD");
}

TEST_F(ProxyTest, NoContentAndNotModifiedHaveNoBody) {
  Backend backend(framingScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("GET /204 HTTP/1.1\r\nHost: h\r\n\r\nGET /304 HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
  // A 304's Content-Length describes the entity; it is passed on, with no body.
  EXPECT_EQ(c.readResponse(),
            "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n");
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(backend.connections(), 1);
}

TEST_F(ProxyTest, InterimResponsesFromUpstreamAreNotRelayed) {
  Backend backend([](const ReceivedRequest&, int, int) {
    return Reply::send(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(backend.connections(), 1);  // a complete exchange: reused
}

TEST_F(ProxyTest, LargeChunkedResponseReChunkedUnderBackpressure) {
  static constexpr uint64_t total = 4u << 20;
  Backend backend([](const ReceivedRequest&, int, int) {
    Reply reply = Reply::send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string block(70001, '\0');
    for (uint64_t sent = 0; sent < total;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), total - sent));
      fillPattern(sent, block.data(), n);
      char size[20];
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      reply.then(0ms, size + block.substr(0, n) + "\r\n");
      sent += n;
    }
    return reply.then(0ms, "0\r\n\r\n");
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(300ms);  // the client reads late: sluice must hold back
  std::string response = c.readResponse(false, 20000ms);
  EXPECT_EQ(headOf(response), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string payload;
  ASSERT_TRUE(decodeChunked(bodyOf(response), &payload)) << response.size();
  EXPECT_EQ(payload.size(), total);
  EXPECT_TRUE(payload == patternString(total));
}

// --- 8. Smooth weighted round robin -------------------------------------------------------------

TEST_F(ProxyTest, SmoothWeightedRoundRobinInterleaves) {
  Backend a([](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "a")); });
  Backend b([](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "b")); });
  ProxyConfig config;
  config.servers = {{a.port(), 3}, {b.port(), 1}};
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  std::string sequence;
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    sequence += bodyOf(c.readResponse());
  }
  EXPECT_EQ(std::count(sequence.begin(), sequence.end(), 'a'), 6) << sequence;
  EXPECT_EQ(std::count(sequence.begin(), sequence.end(), 'b'), 2) << sequence;
  EXPECT_EQ(sequence.find("bb"), std::string::npos) << sequence;
  EXPECT_EQ(sequence.find("aaaa"), std::string::npos) << sequence;
  EXPECT_EQ(a.connections(), 1);
  EXPECT_EQ(b.connections(), 1);
}

// --- 8b. The other balancing policies, through the real binary -----------------------------

Reply replyWithName(const char* name) {
  return Reply::send(httpResponse(200, name));
}

TEST_F(ProxyTest, RandomBalancerHonoursWeights) {
  Backend a([](const ReceivedRequest&, int, int) { return replyWithName("a"); });
  Backend b([](const ReceivedRequest&, int, int) { return replyWithName("b"); });
  ProxyConfig config;
  config.servers = {{a.port(), 3}, {b.port(), 1}};
  config.balance = "random";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  std::string sequence;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    sequence += bodyOf(c.readResponse());
  }
  const auto as = std::count(sequence.begin(), sequence.end(), 'a');
  // Expected 300; 6 standard deviations (σ ≈ 8.7) either side.
  EXPECT_GT(as, 248) << sequence;
  EXPECT_LT(as, 352) << sequence;
  EXPECT_EQ(as + std::count(sequence.begin(), sequence.end(), 'b'), 400);
}

// A request held by a slow server makes least_conn send the next ones to the
// other server, where round robin would alternate.
Reply slowOnHold(const ReceivedRequest& request, int, int) {
  if (request.target == "/hold") return Reply::send(httpResponse(200, "s")).delayed(1500ms);
  return replyWithName("s");
}

TEST_F(ProxyTest, LeastConnAvoidsTheServerWithARequestInFlight) {
  Backend slow(slowOnHold);
  Backend fast([](const ReceivedRequest&, int, int) { return replyWithName("f"); });
  ProxyConfig config;
  config.servers = {{slow.port(), 1}, {fast.port(), 1}};
  config.balance = "least_conn";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  // Round robin would put the first request on the slow server: make sure
  // the hold lands there by sending it when both are idle, until it does.
  RawClient held;
  ASSERT_TRUE(held.connect(port));
  RawClient c;
  ASSERT_TRUE(c.connect(port));
  bool held_on_slow = false;
  for (int attempt = 0; attempt < 8 && !held_on_slow; ++attempt) {
    ASSERT_TRUE(held.send("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n"));
    std::this_thread::sleep_for(100ms);
    held_on_slow = slow.requestCount() > 0;
    if (!held_on_slow) {
      ASSERT_EQ(bodyOf(held.readResponse()), "f");  // ties are random: again
    }
  }
  ASSERT_TRUE(held_on_slow);
  std::string sequence;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    sequence += bodyOf(c.readResponse());
  }
  EXPECT_EQ(sequence, "ffffff");
  EXPECT_EQ(bodyOf(held.readResponse()), "s");
}

// With two workers, the request held by one worker counts in the other's
// choice too: every fresh connection (whichever worker accepts it) goes to
// the idle server. Per-worker counts (nginx's) would send about half of those
// landing on the other worker to the busy server.
TEST_F(ProxyTest, LeastConnCountsRequestsInFlightInEveryWorker) {
  Backend slow(slowOnHold);
  Backend fast([](const ReceivedRequest&, int, int) { return replyWithName("f"); });
  ProxyConfig config;
  config.workers = 2;
  config.servers = {{slow.port(), 1}, {fast.port(), 1}};
  config.balance = "least_conn";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  // The first request to find both idle (a tie, broken at random) holds the
  // slow server; once it does, least_conn never adds a second there.
  RawClient held;
  bool holding = false;
  for (int attempt = 0; attempt < 16 && !holding; ++attempt) {
    if (held.fd() < 0) {
      ASSERT_TRUE(held.connect(port));
    }
    ASSERT_TRUE(held.send("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n"));
    std::this_thread::sleep_for(80ms);
    holding = slow.requestCount() > 0;
    if (!holding) {
      ASSERT_EQ(bodyOf(held.readResponse()), "f");
    }
  }
  ASSERT_TRUE(holding);
  // slow: 1 in flight (in one of the workers); fast: 0. Until the hold ends
  // (1.5 s), every request goes to fast, whichever worker takes it.
  std::string sequence;
  for (int i = 0; i < 16; ++i) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    sequence += bodyOf(c.readResponse());
  }
  EXPECT_EQ(sequence, std::string(16, 'f'));
  EXPECT_EQ(bodyOf(held.readResponse()), "s");
}

TEST_F(ProxyTest, P2cEwmaMovesAwayFromASlowServer) {
  Backend slow([](const ReceivedRequest&, int, int) {
    return Reply::send(httpResponse(200, "s")).delayed(100ms);
  });
  Backend fast([](const ReceivedRequest&, int, int) { return replyWithName("f"); });
  ProxyConfig config;
  config.servers = {{slow.port(), 1}, {fast.port(), 1}};
  config.balance = "p2c_ewma";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  std::string sequence;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    sequence += bodyOf(c.readResponse());
  }
  // Both start unmeasured; once the slow one has answered once (100 ms
  // against well under 1 ms), two choices out of two always prefer the fast
  // one until the slow one's latency has decayed (τ = 10 s).
  const auto slow_count = std::count(sequence.begin(), sequence.end(), 's');
  EXPECT_LE(slow_count, 2) << sequence;
  EXPECT_EQ(sequence.substr(sequence.size() - 30), std::string(30, 'f')) << sequence;
}

TEST_F(ProxyTest, HashByHeaderKeepsAKeyOnOneServer) {
  Backend a([](const ReceivedRequest&, int, int) { return replyWithName("a"); });
  Backend b([](const ReceivedRequest&, int, int) { return replyWithName("b"); });
  Backend d([](const ReceivedRequest&, int, int) { return replyWithName("d"); });
  ProxyConfig config;
  config.servers = {{a.port(), 1}, {b.port(), 1}, {d.port(), 1}};
  config.balance = "hash";
  config.hash = "{key: \"header:X-User\"}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  std::set<std::string> servers_used;
  for (int user = 0; user < 30; ++user) {
    std::string first;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          c.send("GET / HTTP/1.1\r\nHost: h\r\nX-User: u" + std::to_string(user) + "\r\n\r\n"));
      const std::string server = bodyOf(c.readResponse());
      if (i == 0) first = server;
      EXPECT_EQ(server, first) << "user " << user;  // sticky
    }
    servers_used.insert(first);
  }
  EXPECT_EQ(servers_used.size(), 3u);  // 30 keys spread over all three
}

TEST_F(ProxyTest, HashByCookieAndUri) {
  Backend a([](const ReceivedRequest&, int, int) { return replyWithName("a"); });
  Backend b([](const ReceivedRequest&, int, int) { return replyWithName("b"); });
  for (const std::string& key : {std::string("\"cookie:sid\""), std::string("uri")}) {
    ProxyConfig config;
    config.servers = {{a.port(), 1}, {b.port(), 1}};
    config.balance = "hash";
    config.hash = "{key: " + key + "}";
    int port = startSluice(config);
    ASSERT_NE(port, 0);
    RawClient c = connectTo(port);
    std::set<std::string> servers_used;
    for (int k = 0; k < 20; ++k) {
      const std::string request =
          "GET /item/" + (key == "uri" ? std::to_string(k) : std::string("x")) +
          " HTTP/1.1\r\nHost: h\r\nCookie: theme=dark; sid=" +
          (key == "uri" ? std::string("same") : std::to_string(k)) + "\r\n\r\n";
      ASSERT_TRUE(c.send(request));
      const std::string first = bodyOf(c.readResponse());
      ASSERT_TRUE(c.send(request));
      EXPECT_EQ(bodyOf(c.readResponse()), first) << key << " " << k;
      servers_used.insert(first);
    }
    EXPECT_EQ(servers_used.size(), 2u) << key;
  }
}

// --- 8b'. Passive health --------------------------------------------------------------------

// A server that resets every connection is ejected after `failures` in a
// row, counted over both workers, and then left alone: it sees about
// `failures` connections, not half of the 40 requests.
TEST_F(ProxyTest, PassiveHealthEjectsAFailingServerForEveryWorker) {
  Backend dead([](const ReceivedRequest&, int, int) { return Reply::closeNow(); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.workers = 2;
  config.servers = {{dead.port(), 1}, {good.port(), 1}};
  config.retries = 0;
  config.passive = "{failures: 3, ejection: 30s, max_ejected: 50%}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  int answered = 0, failed = 0;
  for (int i = 0; i < 40; ++i) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    const std::string response = c.readResponse();
    if (statusOf(response) == 200) {
      ++answered;
    } else {
      EXPECT_EQ(statusOf(response), 502) << response;
      ++failed;
    }
  }
  // Three failures eject it (two workers deciding at once could add one).
  EXPECT_GE(dead.connections(), 3);
  EXPECT_LE(dead.connections(), 4);
  EXPECT_EQ(failed, dead.connections());
  EXPECT_EQ(answered + failed, 40);
  const std::string log = sluice().errorLog();
  EXPECT_NE(log.find("ejected for 30000ms after 3 failures in a row"), std::string::npos) << log;
}

TEST_F(ProxyTest, PassiveHealthOffKeepsTryingTheServer) {
  Backend dead([](const ReceivedRequest&, int, int) { return Reply::closeNow(); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.servers = {{dead.port(), 1}, {good.port(), 1}};
  config.retries = 0;
  config.passive = "off";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  for (int i = 0; i < 20; ++i) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    c.readResponse();
  }
  EXPECT_EQ(dead.connections(), 10);  // round robin, every other request
}

// --- 8b''. Retries -------------------------------------------------------------------------

struct RetryCase {
  int ok = 0, passed_5xx = 0, generated_502 = 0, other = 0;
};

RetryCase sendMany(int port, int n, const std::string& request) {
  RetryCase r;
  for (int i = 0; i < n; ++i) {
    RawClient c;
    if (!c.connect(port) || !c.send(request)) {
      ++r.other;
      continue;
    }
    const std::string response = c.readResponse(false, 5000ms);
    const int status = statusOf(response);
    if (status == 200) {
      ++r.ok;
    } else if (status == 503) {
      ++r.passed_5xx;
    } else if (status == 502) {
      ++r.generated_502;
    } else {
      ++r.other;
    }
  }
  return r;
}

constexpr const char* kGetClose = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

TEST_F(ProxyTest, RetryOnStatusAsksAnotherServerForIdempotentRequestsOnly) {
  Backend busy(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(503, "busy")); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.servers = {{busy.port(), 1}, {good.port(), 1}};
  config.passive = "off";
  config.upstream_extra = "    retry_on: [connect_failure, 503]\n";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  const RetryCase gets = sendMany(port, 10, kGetClose);
  EXPECT_EQ(gets.ok, 10);
  EXPECT_EQ(busy.requestCount(), 5);  // every other first attempt, each retried
  // A request with a body is never replayed: the 503 goes to the client.
  const RetryCase posts = sendMany(
      port, 4, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  EXPECT_EQ(posts.ok, 2);
  EXPECT_EQ(posts.passed_5xx, 2);
}

// retry_non_idempotent on the route: a POST with a body is replayed on the
// next server (its body kept, up to 64 KiB); a larger one is still sent once.
TEST_F(ProxyTest, RouteMayAllowReplayingRequestsWithBodies) {
  Backend busy(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(503, "busy")); });
  Backend good([](const ReceivedRequest& r, int, int) {
    return Reply::send(httpResponse(
        200, r.method + " " + std::to_string(r.body_size) + " " + r.body.substr(0, 16)));
  });
  ProxyConfig config;
  config.servers = {{busy.port(), 1}, {good.port(), 1}};
  config.passive = "off";
  config.upstream_extra = "    retry_on: [connect_failure, 503]\n";
  config.route_extra = "        retry_non_idempotent: true\n";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  for (int i = 0; i < 4; ++i) {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"));
    const std::string response = c.readResponse();
    EXPECT_EQ(statusOf(response), 200) << response;
    EXPECT_EQ(bodyOf(response), "POST 5 hello");
  }
  EXPECT_EQ(busy.requestCount(), 2);  // every other first attempt, each replayed
  // Chunked, with the body and its end written again.
  {
    RawClient c = connectTo(port);
    c.send(
        "PATCH /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    EXPECT_EQ(bodyOf(c.readResponse()), "PATCH 5 abcde");
    RawClient d = connectTo(port);
    d.send(
        "PATCH /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    EXPECT_EQ(bodyOf(d.readResponse()), "PATCH 5 abcde");
  }
  // Over 64 KiB: not kept, so never replayed; half go to the busy server
  // and its 503 reaches the client.
  const std::string big(70 * 1024, 'x');
  int passed_503 = 0;
  for (int i = 0; i < 4; ++i) {
    RawClient c = connectTo(port);
    c.send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(big.size()) +
           "\r\n\r\n" + big);
    const int status = statusOf(c.readResponse());
    EXPECT_TRUE(status == 200 || status == 503) << status;
    passed_503 += status == 503 ? 1 : 0;
  }
  EXPECT_EQ(passed_503, 2);
}

TEST_F(ProxyTest, RetryOnResetAndPerTryTimeout) {
  Backend resetting([](const ReceivedRequest&, int, int) { return Reply::closeNow(); });
  Backend silent([](const ReceivedRequest&, int, int) { return Reply::silent(); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.servers = {{resetting.port(), 1}, {silent.port(), 1}, {good.port(), 1}};
  config.retries = 2;
  config.passive = "off";
  config.upstream_extra =
      "    retry_on: [connect_failure, reset, timeout]\n"
      "    per_try_timeout: 300ms\n";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  const auto started = std::chrono::steady_clock::now();
  const RetryCase gets = sendMany(port, 6, kGetClose);
  EXPECT_EQ(gets.ok, 6);
  // Each silent try costs 300 ms, not timeouts.response (5 s).
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
  EXPECT_GE(silent.requestCount(), 2);
  EXPECT_GE(resetting.requestCount(), 2);
  // A POST is not replayed after it reached a server.
  const RetryCase posts = sendMany(
      port, 3, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
  EXPECT_EQ(posts.ok, 1) << posts.generated_502 << " " << posts.other;
}

TEST_F(ProxyTest, WithoutRetryOnResetAResetIsA502) {
  Backend resetting([](const ReceivedRequest&, int, int) { return Reply::closeNow(); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.servers = {{resetting.port(), 1}, {good.port(), 1}};
  config.passive = "off";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  const RetryCase gets = sendMany(port, 6, kGetClose);
  EXPECT_EQ(gets.ok, 3);
  EXPECT_EQ(gets.generated_502, 3);
}

// A server answering 503 to everything: without a budget every other
// request is sent twice; with one (no ratio, 1 retry a second: 10 in the
// 10 s window) retries stop after 10 and the 503s reach the clients.
TEST_F(ProxyTest, RetryBudgetStopsARetryStorm) {
  Backend busy(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(503, "busy")); });
  Backend good([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  ProxyConfig config;
  config.servers = {{busy.port(), 1}, {good.port(), 1}};
  config.passive = "off";
  config.upstream_extra = "    retry_on: [503]\n    retry_budget: {ratio: 0%, min_per_second: 1}\n";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  const RetryCase r = sendMany(port, 60, kGetClose);
  EXPECT_EQ(r.ok + r.passed_5xx, 60);
  EXPECT_EQ(r.passed_5xx, 20);  // 30 started at the busy server, 10 retried
  EXPECT_NE(sluice().errorLog().find("retry budget exhausted"), std::string::npos);
}

// --- 8c. Out of file descriptors ---------------------------------------------------------

// The lowest descriptor number `pid` has free: with RLIMIT_NOFILE set to it,
// its next accept(2) fails with EMFILE.
int lowestFreeFd(pid_t pid) {
  std::set<int> used;
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return -1;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') used.insert(std::atoi(entry->d_name));
  }
  ::closedir(dir);
  int fd = 0;
  while (used.count(fd) != 0)
    ++fd;
  return fd;
}

// After EMFILE with no client connection open (nothing closes to wake the
// acceptor), accepting resumes on a timer once descriptors are available.
TEST_F(ProxyTest, AcceptingResumesAfterEmfileWithNoConnectionOpen) {
  Backend backend([](const ReceivedRequest&, int, int) { return replyWithName("ok"); });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  const pid_t worker = workerPid();
  ASSERT_GT(worker, 0);
  {
    // A request answered: the worker is up and has every descriptor it
    // keeps open (listeners, epoll, pipes) before we count them.
    RawClient warm = connectTo(port);
    ASSERT_TRUE(warm.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    ASSERT_EQ(bodyOf(warm.readResponse()), "ok");
  }
  std::this_thread::sleep_for(200ms);  // its connections (client and upstream) are closed
  const int limit = lowestFreeFd(worker);
  ASSERT_GT(limit, 0);
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);  // the worker inherited it
  const std::string set = "prlimit --pid " + std::to_string(worker) + " --nofile=";
  const std::string hard = ":" + std::to_string(original.rlim_max);
  ASSERT_EQ(std::system((set + std::to_string(limit) + hard).c_str()), 0);
  RawClient c = connectTo(port);  // queued by the kernel; accept(2) fails
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(std::system((set + std::to_string(original.rlim_cur) + hard).c_str()), 0);
  EXPECT_EQ(bodyOf(c.readResponse(false, 3000ms)), "ok");
  EXPECT_NE(sluice().errorLog().find("out of file descriptors"), std::string::npos)
      << sluice().errorLog();
}

// --- 9. Upstream down ---------------------------------------------------------------------------

TEST_F(ProxyTest, ConnectionRefusedWithoutRetriesIs502) {
  ProxyConfig config;
  config.servers = {{freePort(), 1}};
  config.retries = 0;
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  for (int i = 0; i < 2; ++i) {  // the client connection stays usable
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    EXPECT_EQ(maskDate(c.readResponse()), k502);
  }
  // A HEAD gets the same head without the body.
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse(true)), std::string(k502, sizeof k502 - 1 - 16));
}

TEST_F(ProxyTest, AllServersDownIs502AfterRetries) {
  ProxyConfig config;
  config.servers = {{freePort(), 1}, {freePort(), 1}};
  config.retries = 3;  // more retries than servers: each is tried once
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()), k502);
}

TEST_F(ProxyTest, RetryOnAnotherServerWhenOneIsDown) {
  Backend up(okWithTarget);
  ProxyConfig config;
  config.servers = {{freePort(), 1}, {up.port(), 1}};
  config.retries = 1;
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  for (int i = 0; i < 10; ++i) {
    // (Built with append: g++ 12 warns falsely (-Wrestrict) on "/" + to_string().)
    std::string target("/");
    target.append(std::to_string(i));
    ASSERT_TRUE(c.send("POST " + target + " HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"));
    EXPECT_EQ(bodyOf(c.readResponse()), target);
  }
  EXPECT_EQ(up.requestCount(), 10);
  for (const ReceivedRequest& r : up.requests())
    EXPECT_EQ(r.body, "x");
}

// --- 10. Upstream timeouts ----------------------------------------------------------------------

TEST_F(ProxyTest, SilentUpstreamGives504AfterResponseTimeout) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    return r.target == "/slow" ? Reply::silent() : Reply::send(httpResponse(200, "fast"));
  });
  ProxyConfig config = configFor(backend);
  config.upstream_timeouts = "{connect: 2s, response: 300ms, send: 5s}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  auto start = Clock::now();
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()), k504);
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 2000ms);
  // The timed-out upstream connection is closed, not pooled.
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms));
  ASSERT_TRUE(c.send("GET /fast HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "fast");
  EXPECT_EQ(backend.connections(), 2);
}

// A server whose accept queue is full drops new SYNs, so a connect to it
// hangs: the closest loopback gets to an unreachable host.
class BlackholeServer {
 public:
  BlackholeServer() : port_(freePort()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ =
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 0) == 0;
    // Fill the queue (never accepted): a backlog of 0 still admits one or two.
    for (int i = 0; i < 4 && ok_; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(100ms);
  }
  ~BlackholeServer() {
    for (int c : fillers_)
      ::close(c);
    ::close(fd_);
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  int port_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<int> fillers_;
};

TEST_F(ProxyTest, ConnectTimeoutGives504AndTriesTheNextServer) {
  BlackholeServer blackhole;
  ASSERT_TRUE(blackhole.ok());
  ProxyConfig config;
  config.servers = {{blackhole.port()}};
  config.retries = 0;
  config.upstream_timeouts = "{connect: 300ms, response: 5s, send: 5s}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  auto start = Clock::now();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(maskDate(c.readResponse()), k504);
  auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, 290ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_NE(sluice().errorLog().find("connect timed out"), std::string::npos);
}

TEST_F(ProxyTest, ConnectTimeoutMovesOnToAHealthyServer) {
  BlackholeServer blackhole;
  ASSERT_TRUE(blackhole.ok());
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "healthy")); });
  ProxyConfig config = configFor(backend);
  // The blackhole first (weight), then the healthy server on retry.
  config.servers = {{blackhole.port(), 2}, {backend.port(), 1}};
  config.retries = 1;
  config.upstream_timeouts = "{connect: 300ms, response: 5s, send: 5s}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "healthy");
}

TEST_F(ProxyTest, UpstreamThatStopsReadingGives504AfterSendTimeout) {
  Backend::Options options;
  options.read_delay = 10000ms;  // never reads within the test
  Backend backend([](const ReceivedRequest&, int, int) { return Reply::send(""); }, options);
  ProxyConfig config = configFor(backend);
  config.upstream_timeouts = "{connect: 2s, response: 5s, send: 300ms}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  const size_t total = 64u << 20;  // far more than the socket buffers on the way hold
  ASSERT_TRUE(c.send("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(total) +
                     "\r\n\r\n"));
  std::thread sender([&] {
    std::string block(1 << 20, 'x');
    for (size_t sent = 0; sent < total; sent += block.size()) {
      if (::send(c.fd(), block.data(), block.size(), MSG_NOSIGNAL) < 0) return;
    }
  });
  bool closed = false;
  std::string got = c.readUntilClose(10000ms, &closed);
  sender.join();
  EXPECT_EQ(
      maskDate(got),
      "HTTP/1.1 504 Gateway Timeout\r\nServer: sluice\r\nDate: X\r\nContent-Type: text/plain\r\n"
      "Content-Length: 20\r\nConnection: close\r\n\r\n504 Gateway Timeout\n");
  EXPECT_TRUE(closed);
}

// --- 11. The keep-alive race --------------------------------------------------------------------

// Connection 0 answers its first request, then closes when the second one
// arrives on it, as a server whose keep-alive timeout just expired would.
Reply raceScript(const ReceivedRequest& r, int connection, int index) {
  if (connection == 0 && index == 1) return Reply::closeNow();
  return Reply::send(httpResponse(200, r.method + " " + r.body));
}

TEST_F(ProxyTest, IdempotentRequestRetriedOnceAfterKeepAliveRace) {
  Backend backend(raceScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "GET ");
  ASSERT_TRUE(c.send("GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nGET ");
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].target, "/2");
  EXPECT_EQ(got[1].connection, 0);  // the dead connection
  EXPECT_EQ(got[2].target, "/2");
  EXPECT_EQ(got[2].connection, 1);  // the retry, on a fresh one
  EXPECT_EQ(got[2].index, 0);
  EXPECT_EQ(backend.connections(), 2);
}

TEST_F(ProxyTest, PostIsNeverReplayedAfterKeepAliveRace) {
  Backend backend(raceScript);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
  ASSERT_TRUE(c.send("POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_EQ(maskDate(c.readResponse()), k502);
  EXPECT_TRUE(backend.syncProbe());
  EXPECT_EQ(backend.connections(), 2);  // connection 0 and the probe: no replay
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].method, "POST");
  EXPECT_EQ(got[1].connection, 0);
  EXPECT_EQ(got[1].body, "hello");
}

// --- 12. Invalid upstream responses -------------------------------------------------------------

struct BadResponse {
  const char* name;
  std::string bytes;
  bool head_valid;  // the head is fine and only the body is broken
};

const std::vector<BadResponse>& badResponses() {
  static const std::vector<BadResponse> cases = {
      {"garbage status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"not http", "SSH-2.0-OpenSSH_9.2\r\n\r\n", false},
      {"status 600", "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", false},
      {"version 2.0", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"CL+TE",
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n",
       false},
      {"TE+CL",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
       "5\r\nhello\r\n0\r\n\r\n",
       false},
      {"two CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", false},
      {"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
      {"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", false},
      {"TE on 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
      {"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
       false},
      {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", false},
      {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false},
      {"control char in reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", false},
      {"head too large",
       "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'b') + "\r\nContent-Length: 0\r\n\r\n",
       false},
      {"invalid chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true},
      {"chunk without CRLF",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", true},
  };
  return cases;
}

TEST_F(ProxyTest, InvalidUpstreamResponsesGive502AndConnectionIsNotReused) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    if (r.target.starts_with("/bad/")) {
      return Reply::send(badResponses()[std::stoul(r.target.substr(5))].bytes);
    }
    return Reply::send(httpResponse(200, "good"));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  for (size_t i = 0; i < badResponses().size(); ++i) {
    const BadResponse& bad = badResponses()[i];
    SCOPED_TRACE(bad.name);
    RawClient c = connectTo(port);
    // A first good request leaves a pooled connection, which the bad
    // response then arrives on.
    ASSERT_TRUE(c.send("GET /good HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(bodyOf(c.readResponse()), "good");
    int before = backend.connections();
    ASSERT_TRUE(c.send("GET /bad/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n"));
    if (!bad.head_valid) {
      EXPECT_EQ(maskDate(c.readResponse()), k502);
    } else {
      // The head was valid and went out as the start of the response; as
      // nginx does, the only honest signal left is closing the connection
      // (the client never sees the end of the chunked body).
      bool closed = false;
      std::string got = c.readUntilClose(5000ms, &closed);
      EXPECT_TRUE(closed);
      EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos) << got;
      c = connectTo(port);
    }
    // The connection that carried the bad response is closed, never reused.
    std::vector<ReceivedRequest> got = backend.requests();
    ASSERT_FALSE(got.empty());
    ASSERT_EQ(got.back().target, "/bad/" + std::to_string(i));
    int bad_connection = got.back().connection;
    EXPECT_TRUE(backend.waitForPeerClose(bad_connection, 2000ms));
    ASSERT_TRUE(c.send("GET /good HTTP/1.1\r\nHost: h\r\n\r\n"));
    EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood");
    EXPECT_EQ(backend.connections(), before + 1);
    EXPECT_NE(backend.requests().back().connection, bad_connection);
  }
}

// --- 13. Bytes after a complete response --------------------------------------------------------

TEST_F(ProxyTest, BytesAfterResponseAreNeverDeliveredAsNextResponse) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    if (r.target == "/first") {
      return Reply::send(
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
          "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra");
    }
    return Reply::send(httpResponse(200, "own"));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /first HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
  ASSERT_TRUE(c.send("GET /second HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nown");
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].connection, 0);
  EXPECT_EQ(got[1].connection, 1);
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms));
}

TEST_F(ProxyTest, BodyAfterHeadResponseIsNeverDeliveredAsNextResponse) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    // A HEAD response has no body whatever its headers say; "hello" here is
    // stray bytes, and must not be read as (the start of) the next response.
    if (r.method == "HEAD") return Reply::send(httpResponse(200, "hello"));
    return Reply::send(httpResponse(200, "own"));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(true), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nown");
  EXPECT_EQ(backend.connections(), 2);
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms));
}

// --- 14. Upstream closes mid-body ---------------------------------------------------------------

TEST_F(ProxyTest, UpstreamClosingMidBodyClosesClientBeforeCompleteResponse) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    if (r.target == "/chunked") {
      return Reply::send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
          .andClose();
    }
    return Reply::send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").andClose();
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET /cl HTTP/1.1\r\nHost: h\r\n\r\n"));
    bool closed = false;
    std::string got = c.readUntilClose(5000ms, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
  }
  {
    RawClient c = connectTo(port);
    ASSERT_TRUE(c.send("GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n"));
    bool closed = false;
    std::string got = c.readUntilClose(5000ms, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
  }
}

// --- 15. Client leaves mid-request --------------------------------------------------------------

TEST_F(ProxyTest, ClientClosingMidRequestClosesUpstreamConnection) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  {
    RawClient c = connectTo(port);
    ASSERT_TRUE(
        c.send("POST /partial HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n0123456789"));
    // The head and the 10 body bytes reach the backend before the client leaves.
    ASSERT_TRUE(backend.waitForRawEnding(0, "\r\n\r\n0123456789", 2000ms));
  }
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms)) << sluice().errorLog();
  EXPECT_EQ(backend.requestCount(), 0);
  std::string raw = backend.raw(0);
  EXPECT_TRUE(raw.starts_with("POST /partial HTTP/1.1\r\n")) << raw;
  EXPECT_TRUE(raw.ends_with("\r\n\r\n0123456789")) << raw;
  // sluice is fine.
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "/next");
}

TEST_F(ProxyTest, InvalidChunkAfterHeadWasForwardedGets400AndUpstreamClosed) {
  Backend backend(okWithTarget);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  ASSERT_TRUE(
      c.send("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
  // The head and the first chunk are with the backend before the bad chunk.
  ASSERT_TRUE(backend.waitForRawEnding(0, "\r\n\r\n3\r\nabc\r\n", 2000ms));
  ASSERT_TRUE(c.send("zz\r\nabc\r\n0\r\n\r\n"));
  bool closed = false;
  std::string got = c.readUntilClose(5000ms, &closed);
  EXPECT_EQ(statusOf(got), 400) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(closed);
  // The upstream connection is closed with the request incomplete.
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms));
  EXPECT_EQ(backend.requestCount(), 0);
  EXPECT_TRUE(backend.raw(0).ends_with("\r\n\r\n3\r\nabc\r\n")) << backend.raw(0);
}

TEST_F(ProxyTest, StalledRequestBodyGets408AndUpstreamClosed) {
  Backend backend(okWithTarget);
  ProxyConfig config = configFor(backend);
  config.timeouts = "{header: 5s, body: 300ms, idle: 60s, send: 5s}";
  int port = startSluice(config);
  ASSERT_NE(port, 0);
  RawClient c = connectTo(port);
  auto start = Clock::now();
  ASSERT_TRUE(c.send("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789"));
  bool closed = false;
  std::string got = c.readUntilClose(5000ms, &closed);
  EXPECT_GE(Clock::now() - start, 290ms);
  EXPECT_EQ(maskDate(got),
            "HTTP/1.1 408 Request Timeout\r\nServer: sluice\r\nDate: X\r\n"
            "Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
            "408 Request Timeout\n");
  EXPECT_TRUE(closed);
  EXPECT_TRUE(backend.waitForPeerClose(0, 2000ms));
  EXPECT_EQ(backend.requestCount(), 0);
}

// --- 16. Large bodies in bounded memory ---------------------------------------------------------

constexpr uint64_t kLargeBody = 256ull << 20;
constexpr long kRssBoundKiB = 4 * 1024;
// Under AddressSanitizer a freed buffer sits in ASan's quarantine (256 MiB
// by default) instead of being reused, so RSS grows with how often the
// stream's buffers happened to empty and refill: 4.1-5.3 MiB seen on a busy
// machine. Unbounded buffering of the 256 MiB body would still show far
// above this; the uninstrumented build keeps the tight bound.
constexpr long kRssBoundUnderAsanKiB = 16 * 1024;
long rssBoundKiB() {
  return kUnderAddressSanitizer ? kRssBoundUnderAsanKiB : kRssBoundKiB;
}

TEST_F(ProxyTest, LargeUploadToSlowBackendInBoundedMemory) {
  Backend::Options options;
  options.body_read_delay = [](const ReceivedRequest& r) {
    return r.target == "/big" ? 1000ms : 0ms;
  };
  options.record_limit = 4096;
  Backend backend([](const ReceivedRequest& r, int,
                     int) { return Reply::send(httpResponse(200, std::to_string(r.body_size))); },
                  options);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  const uint64_t expected_hash = patternHash(kLargeBody);
  RawClient c = connectTo(port);
  // Warm up: the first request's allocations are not the transfer's.
  ASSERT_TRUE(c.send("POST /warm HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"));
  ASSERT_EQ(statusOf(c.readResponse()), 200);
  const pid_t worker = workerPid();
  const long before = vmRssKiB(worker);
  ASSERT_GT(before, 0);
  RssSampler sampler(worker);
  auto start = Clock::now();
  ASSERT_TRUE(c.send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " +
                     std::to_string(kLargeBody) + "\r\n\r\n"));
  std::string block(1 << 20, '\0');
  for (uint64_t sent = 0; sent < kLargeBody; sent += block.size()) {
    fillPattern(sent, block.data(), block.size());
    ASSERT_TRUE(c.send(block));
  }
  std::string response = c.readResponse(false, 30000ms);
  long max = sampler.stop();
  EXPECT_EQ(bodyOf(response), std::to_string(kLargeBody));
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].body_size, kLargeBody);
  EXPECT_EQ(got[1].body_hash, expected_hash);
  EXPECT_LT(max - before, rssBoundKiB()) << "RSS before " << before << " KiB, max " << max;
  RecordProperty(
      "upload_ms",
      static_cast<int>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count()));
  RecordProperty("upload_rss_growth_kib", static_cast<int>(max - before));
}

TEST_F(ProxyTest, UploadToBackendThatStaysSlowArrivesWholeAndInOrder) {
  // Many rounds of backpressure (small reads with pauses), not one long stall.
  Backend::Options options;
  options.read_size = 8192;
  options.read_pause = 1ms;
  options.record_limit = 4096;
  Backend backend([](const ReceivedRequest& r, int,
                     int) { return Reply::send(httpResponse(200, std::to_string(r.body_size))); },
                  options);
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  const uint64_t total = 6u << 20;
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("POST /slow HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string block(100000, '\0');  // odd-sized chunks
  for (uint64_t sent = 0; sent < total;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), total - sent));
    fillPattern(sent, block.data(), n);
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", n);
    ASSERT_TRUE(c.send(size + block.substr(0, n) + "\r\n"));
    sent += n;
  }
  ASSERT_TRUE(c.send("0\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse(false, 30000ms)), std::to_string(total));
  std::vector<ReceivedRequest> got = backend.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body_size, total);
  EXPECT_EQ(got[0].body_hash, patternHash(total));
}

TEST_F(ProxyTest, LargeDownloadToSlowClientInBoundedMemory) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    if (r.target == "/warm") return Reply::send(httpResponse(200, "w"));
    return Reply::send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kLargeBody) +
                       "\r\n\r\n")
        .pattern(kLargeBody);
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  const uint64_t expected_hash = patternHash(kLargeBody);
  RawClient c = connectTo(port);
  ASSERT_TRUE(c.send("GET /warm HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_EQ(statusOf(c.readResponse()), 200);
  const pid_t worker = workerPid();
  const long before = vmRssKiB(worker);
  ASSERT_GT(before, 0);
  RssSampler sampler(worker);
  auto start = Clock::now();
  ASSERT_TRUE(c.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(1000ms);  // a slow reader at first
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kLargeBody) + "\r\n\r\n";
  std::string received;
  uint64_t body_bytes = 0;
  uint64_t hash = kFnvOffset;
  std::vector<char> buf(1 << 20);
  auto deadline = Clock::now() + 30s;
  while (body_bytes < kLargeBody && Clock::now() < deadline) {
    ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    const char* p = buf.data();
    size_t len = static_cast<size_t>(n);
    if (received.size() < head.size()) {
      size_t take = std::min(len, head.size() - received.size());
      received.append(p, take);
      p += take;
      len -= take;
    }
    hash = fnv1a(hash, p, len);
    body_bytes += len;
  }
  long max = sampler.stop();
  EXPECT_EQ(received, head);
  EXPECT_EQ(body_bytes, kLargeBody);
  EXPECT_EQ(hash, expected_hash);
  EXPECT_LT(max - before, rssBoundKiB()) << "RSS before " << before << " KiB, max " << max;
  RecordProperty(
      "download_ms",
      static_cast<int>(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count()));
  RecordProperty("download_rss_growth_kib", static_cast<int>(max - before));
  // The connection is still in step: a next request works.
  ASSERT_TRUE(c.send("GET /warm HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(bodyOf(c.readResponse()), "w");
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

// Idle keep-alive connections hold no I/O buffers (nor a parser): 400 client
// connections that each made a proxied request and went idle cost the worker
// a few hundred bytes each, not the 16 KiB chunks they read and wrote with.
TEST_F(ProxyTest, IdleKeepAliveConnectionsHoldNoBuffers) {
  if (kUnderAddressSanitizer) {
    // The uninstrumented build runs this test.
    GTEST_SKIP() << "RSS per connection is not measurable under AddressSanitizer";
  }
  Backend backend([](const ReceivedRequest&, int, int) {
    return Reply::send(httpResponse(200, std::string(20000, 'x')));
  });
  int port = startSluice(configFor(backend));
  ASSERT_NE(port, 0);
  pid_t worker = workerPid();
  ASSERT_GT(worker, 0);
  // Warm up: the first connections allocate what every later one reuses.
  {
    RawClient warm = connectTo(port);
    ASSERT_TRUE(warm.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(statusOf(warm.readResponse()), 200);
  }
  long before = vmRssKiB(worker);
  constexpr int kConnections = 400;
  std::vector<RawClient> idle;
  idle.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    idle.push_back(connectTo(port));
    ASSERT_TRUE(idle.back().send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_EQ(statusOf(idle.back().readResponse()), 200) << "connection " << i;
  }
  long after = vmRssKiB(worker);
  double per_connection = static_cast<double>(after - before) / kConnections;
  // Holding even one 16 KiB buffer each would be > 16 KiB per connection.
  EXPECT_LT(per_connection, 4.0) << before << " KiB -> " << after << " KiB";
}

}  // namespace
}  // namespace sluice::testing
