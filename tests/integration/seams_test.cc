// Integration tests for defects found in review of the connection layer
// (issues 8 and 14): each runs the real binary on loopback and failed
// against the build before its fix (run with SLUICE_BINARY_UNDER_TEST=<old
// sluice> to see it).
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string yamlFor(
    int port, const std::string& upstream_port, const std::string& timeouts,
    const std::string& upstream_timeouts = "{connect: 2s, response: 5s, send: 5s}") {
  return "workers: 1\n"
         "shutdown_timeout: 1s\n"
         "log: {level: debug, error: stderr, access: off}\n"
         "timeouts: " +
         timeouts +
         "\n"
         "listeners:\n"
         "  - name: web\n"
         "    address: 127.0.0.1:" +
         std::to_string(port) +
         "\n"
         "    routes:\n"
         "      - match: {path_prefix: /local}\n"
         "        respond: {status: 200, body: \"local\\n\"}\n"
         "      - upstream: app\n"
         "upstreams:\n"
         "  app:\n"
         "    retries: 0\n"
         "    servers: [{address: 127.0.0.1:" +
         upstream_port + "}]\n    timeouts: " + upstream_timeouts + "\n";
}

class SeamsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sluice_.running()) {
      sluice_.stop(SIGTERM);
      EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
    }
  }
  void start(const std::string& yaml) {
    ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  }

  int port_ = freePort();
  SluiceProcess sluice_;
};

// The first request's head must arrive within timeouts.header of accept;
// its first byte must not restart the clock (a client got up to twice the
// timeout before).
TEST_F(SeamsTest, FirstHeaderTimeoutRunsFromAccept) {
  start(yamlFor(port_, "1", "{header: 1500ms, body: 10s, idle: 60s, send: 10s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  const auto accepted = Clock::now();
  std::this_thread::sleep_for(1000ms);
  ASSERT_TRUE(c.send("GET /local HTTP/1.1\r\n"));
  const std::string got = c.readUntilClose(5000ms);
  const auto waited = Clock::now() - accepted;
  EXPECT_EQ(statusOf(got), 408) << got;
  // 1.5 s from accept (plus scheduling slack), not 1 s + 1.5 s.
  EXPECT_LT(waited, 2300ms);
}

// An access log on stdout that nobody reads (a stuck log collector) must
// not stall the worker: requests keep being answered, lines are dropped
// and counted, never written blocking.
TEST_F(SeamsTest, AccessLogOnAStalledStdoutPipeNeverBlocksTheWorker) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);  // the read end stays open and unread
  sluice_.setStdout(pipe_fds[1]);
  std::string yaml = yamlFor(port_, "1", "{header: 5s, body: 5s, idle: 60s, send: 5s}");
  const std::string off = "access: off";
  yaml.replace(yaml.find(off), off.size(), "access: stdout");
  start(yaml);
  ::close(pipe_fds[1]);
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  const std::string long_path = "/local/" + std::string(300, 'p');  // ~400 B a line
  const auto started = Clock::now();
  for (int i = 0; i < 3000; ++i) {  // ~1.2 MB of log: the 64 KiB pipe fills early
    if (i % 500 == 499) {           // within keepalive_requests
      c = RawClient();
      ASSERT_TRUE(c.connect(port_));
    }
    ASSERT_TRUE(c.send("GET " + long_path + " HTTP/1.1\r\nHost: h\r\n\r\n"));
    const std::string response = c.readResponse(false, 3000ms);
    ASSERT_EQ(statusOf(response), 200) << "request " << i << " not answered";
  }
  EXPECT_LT(Clock::now() - started, 30s);
  ASSERT_EQ(sluice_.stop(SIGTERM), 0);
  const std::string log = sluice_.errorLog();
  std::smatch dropped;
  ASSERT_TRUE(std::regex_search(log, dropped, std::regex("(\\d+) access log lines dropped")))
      << log;
  EXPECT_GT(std::stoi(dropped[1]), 1000) << log;
  ::close(pipe_fds[0]);
}

// A locally generated 502 for a complete request keeps the connection.
TEST_F(SeamsTest, LocalBadGatewayKeepsAKeepAliveConnection) {
  start(yamlFor(port_, std::to_string(freePort()), "{header: 5s, body: 5s, idle: 60s, send: 5s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"));  // nothing listens upstream
  const std::string first = c.readResponse();
  EXPECT_EQ(statusOf(first), 502) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos) << first;
  ASSERT_TRUE(c.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
}

// An HTTP/1.0 client asking for keep-alive gets `Connection: keep-alive`
// (or a close); without it, it waits for a close that never comes.
TEST_F(SeamsTest, Http10KeepAliveIsAnswered) {
  Backend backend(
      [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "b")); });
  start(yamlFor(port_, std::to_string(backend.port()),
                "{header: 5s, body: 5s, idle: 60s, send: 5s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  for (const char* target : {"/local", "/proxied"}) {
    ASSERT_TRUE(
        c.send(std::string("GET ") + target + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    const std::string got = c.readResponse();
    EXPECT_EQ(statusOf(got), 200) << target;
    EXPECT_NE(got.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << target << got;
  }
}

// A tiny origin that answers as soon as it has the request head, before the
// body, then reads (and counts) whatever else arrives.
class EarlyAnswerServer {
 public:
  explicit EarlyAnswerServer(std::string response) : response_(std::move(response)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    port_ = freePort();
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    thread_ = std::thread([this] { run(); });
  }
  ~EarlyAnswerServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_; }
  bool closedBySluice() const { return closed_by_peer_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      ::send(fd, response_.data(), response_.size(), MSG_NOSIGNAL);
      // Read on until sluice closes: a pooled-out-of-step connection would
      // instead stay open waiting for its next request.
      auto deadline = Clock::now() + 5s;
      while (!stop_ && Clock::now() < deadline) {
        pollfd q{fd, POLLIN, 0};
        if (::poll(&q, 1, 50) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          closed_by_peer_ = true;
          break;
        }
      }
      ::close(fd);
    }
  }
  std::string response_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<bool> closed_by_peer_{false};
};

// The upstream answers before it has read the whole request body: the client
// gets the response, marked `Connection: close` since sluice will close
// (RFC 9110 §9.6); the upstream connection is closed, never pooled out of
// step; the client is not left waiting.
TEST_F(SeamsTest, EarlyUpstreamResponseSaysCloseAndClosesTheUpstream) {
  EarlyAnswerServer origin("HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n");
  start(yamlFor(port_, std::to_string(origin.port()),
                "{header: 5s, body: 5s, idle: 60s, send: 5s, linger: 1s, linger_total: 3s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n" +
                     std::string(1000, 'x')));
  const std::string got = c.readResponse();
  EXPECT_EQ(statusOf(got), 403) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  // The client keeps sending a while (it has not seen the answer yet); the
  // linger absorbs it and then closes — the response is not destroyed by a
  // reset, and the client is not left hanging.
  for (int i = 0; i < 5; ++i)
    c.send(std::string(10000, 'x'));
  bool closed = false;
  c.readUntilClose(6000ms, &closed);
  EXPECT_TRUE(closed);
  auto deadline = Clock::now() + 3s;
  while (!origin.closedBySluice() && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(origin.closedBySluice());
}

// The response timeout measures time spent waiting on the upstream, not time
// spent waiting for a slow client to read (which timeouts.send governs).
// The client stalls for longer than the response timeout, several times,
// while sluice holds the upstream back: it still gets the whole body.
TEST_F(SeamsTest, StallingReaderGetsTheWholeBodyThroughAShortResponseTimeout) {
  // More than the kernel's socket buffers on both sides and sluice's own
  // 256 KiB can hold, so that sluice must stop reading the upstream.
  constexpr size_t kBody = 24u << 20;
  Backend backend([](const ReceivedRequest&, int, int) {
    return Reply::send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n")
        .pattern(kBody);
  });
  start(yamlFor(port_, std::to_string(backend.port()),
                "{header: 5s, body: 5s, idle: 60s, send: 10s}",
                "{connect: 2s, response: 1s, send: 5s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n"));
  size_t received = 0;
  std::vector<char> buf(1 << 20);
  const auto deadline = Clock::now() + 30s;
  bool eof = false;
  for (int stall = 0; !eof && received < kBody + 40 && Clock::now() < deadline; ++stall) {
    if (stall < 3) std::this_thread::sleep_for(1500ms);  // longer than the response timeout
    // Then read for a while at full speed.
    const auto burst_end = Clock::now() + (stall < 3 ? 150ms : 10s);
    while (Clock::now() < burst_end && received < kBody + 40) {
      pollfd p{c.fd(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      ssize_t n = ::recv(c.fd(), buf.data(), buf.size(), 0);
      if (n <= 0) {
        eof = true;
        break;
      }
      received += static_cast<size_t>(n);
    }
  }
  EXPECT_FALSE(eof) << "closed after " << received << " bytes";
  EXPECT_GE(received, kBody);
  EXPECT_EQ(sluice_.errorLog().find("response timed out"), std::string::npos);
}

// A request whose small body is still unread when sluice answers it itself
// (the upstream is down) keeps its connection: the rest of the body is read
// and discarded, as nginx does, instead of closing a healthy client.
TEST_F(SeamsTest, LocalBadGatewayToAPostKeepsTheConnection) {
  start(yamlFor(port_, std::to_string(freePort()), "{header: 5s, body: 5s, idle: 60s, send: 5s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"));
  const std::string first = c.readResponse();
  EXPECT_EQ(statusOf(first), 502) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos) << first;
  ASSERT_TRUE(c.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse()), 200);
}

// Chunked trailers reach a client that sent TE: trailers (gRPC-web style),
// with the Trailer header; without TE they are dropped as before.
TEST_F(SeamsTest, TrailersForwardedOnlyToClientsThatAcceptThem) {
  Backend backend([](const ReceivedRequest& r, int, int) {
    return Reply::send(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                   "Trailer: grpc-status\r\n\r\n2\r\nok\r\n0\r\n") +
                       "grpc-status: " + (r.has("te") ? "0" : "no-te") + "\r\n\r\n");
  });
  start(yamlFor(port_, std::to_string(backend.port()),
                "{header: 5s, body: 5s, idle: 60s, send: 5s}"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("GET /grpc HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n"));
  std::string got = c.readResponse();
  EXPECT_NE(got.find("\r\nTrailer: grpc-status\r\n"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("2\r\nok\r\n0\r\ngrpc-status: 0\r\n\r\n")) << got;
  ASSERT_TRUE(c.send("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"));
  got = c.readResponse();
  EXPECT_TRUE(got.ends_with("2\r\nok\r\n0\r\n\r\n")) << got;
  EXPECT_EQ(got.find("Trailer"), std::string::npos) << got;
}

// A client that closes its connection (not a half-close) while its request
// is at the upstream cancels the upstream request (nginx's 499); a client
// that only shut down its sending side still gets its response; a route with
// ignore_client_abort lets the request finish.
class ClientAbortTest : public SeamsTest {
 protected:
  void startWithSlowBackend() {
    std::string yaml = yamlFor(port_, std::to_string(backend_.port()),
                               "{header: 5s, body: 5s, idle: 60s, send: 5s}");
    yaml.replace(yaml.find("      - upstream: app\n"), 0,
                 "      - match: {path_prefix: /ignore}\n        upstream: app\n"
                 "        ignore_client_abort: true\n");
    yaml.replace(yaml.find("access: off"), 11, "access: stdout");
    start(yaml);
  }
  Backend backend_{[](const ReceivedRequest&, int, int) {
    return Reply::send(httpResponse(200, "slow")).delayed(1000ms);
  }};
};

TEST_F(ClientAbortTest, ClosedClientCancelsTheUpstreamRequest) {
  startWithSlowBackend();
  {
    RawClient full;
    ASSERT_TRUE(full.connect(port_));
    ASSERT_TRUE(full.send("GET /cancel HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_TRUE(backend_.waitForRequests(1, 2000ms));
  }  // closed for good
  // The backend answers into a connection sluice closed: it sees the close
  // right after its (delayed) answer, and sluice logged a 499.
  EXPECT_TRUE(backend_.waitForPeerClose(0, 3000ms));
  auto deadline = Clock::now() + 3s;
  while (sluice_.errorLog().find("\" 499 ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_NE(sluice_.errorLog().find("\"GET /cancel HTTP/1.1\" 499 "), std::string::npos)
      << sluice_.errorLog();
}

TEST_F(ClientAbortTest, HalfClosedClientStillGetsItsResponse) {
  startWithSlowBackend();
  RawClient half;
  ASSERT_TRUE(half.connect(port_));
  ASSERT_TRUE(half.send("GET /half HTTP/1.1\r\nHost: h\r\n\r\n"));
  half.shutdownWrite();
  const std::string got = half.readUntilClose(5000ms);
  EXPECT_NE(got.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("slow"), std::string::npos) << got;
}

TEST_F(ClientAbortTest, IgnoreClientAbortLetsTheRequestFinish) {
  startWithSlowBackend();
  {
    RawClient gone;
    ASSERT_TRUE(gone.connect(port_));
    ASSERT_TRUE(gone.send("GET /ignore HTTP/1.1\r\nHost: h\r\n\r\n"));
    ASSERT_TRUE(backend_.waitForRequests(1, 2000ms));
  }
  // The exchange completes and the upstream connection goes back to the
  // pool instead of being cut.
  EXPECT_FALSE(backend_.waitForPeerClose(0, 2500ms));
  EXPECT_NE(sluice_.errorLog().find("\"GET /ignore HTTP/1.1\" 200 "), std::string::npos)
      << sluice_.errorLog();
}

}  // namespace
}  // namespace sluice::testing
