// The proxy state machine — ServerConnection, ProxyHandler, the codecs, the
// pool — over in-memory transports with a driven clock: no sockets, no
// sleeps. The test plays both the client and the upstream servers.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/clock.h"
#include "event/event_loop.h"
#include "net/memory_transport.h"
#include "observe/request_observers.h"
#include "proxy/server_connection.h"
#include "proxy/server_context.h"
#include "unit/support/memory_connector.h"

namespace sluice::proxy {
namespace {

using event::Duration;
using net::MemoryTransport;

constexpr char kConfig[] = R"(
timeouts: { header: 10s, body: 5s, idle: 60s, send: 30s, linger: 5s, linger_total: 30s,
            tunnel_idle: 20s }
listeners:
  - name: web
    address: 127.0.0.1:8080
    routes:
      - match: { path_prefix: /local }
        respond: { status: 200, body: "local\n" }
      - match: { path_prefix: /pair }
        upstream: pair
      - match: { path_prefix: /ws }
        upstream: app
        upgrade: [websocket]
      - match: { path_prefix: /retry }
        upstream: retrying
      - match: { path_prefix: /quick }
        upstream: app
        timeouts: { response: 500ms, body: 1s }
      - upstream: app
upstreams:
  app:
    servers: [{ address: 127.0.0.1:9001 }]
    keepalive: { max_idle: 8, idle_timeout: 20s }
    timeouts: { connect: 2s, response: 2s, send: 30s }
  pair:
    servers: [{ address: 127.0.0.1:9002 }, { address: 127.0.0.1:9003 }]
    retries: 1
    timeouts: { connect: 2s, response: 2s, send: 30s }
  retrying:
    servers: [{ address: 127.0.0.1:9004 }, { address: 127.0.0.1:9005 }]
    retries: 1
    retry_on: [connect_failure, reset, 503]
    passive: off
)";

// What the test keeps of each finished request.
struct Finished {
  int status;
  int upstream_status;
  std::string upstream;
  std::string server;
  uint32_t attempts;
  observe::RequestOutcome outcome;
  std::string target;
};

class Recorder final : public observe::RequestObserver {
 public:
  void onRequestFinished(const observe::RequestRecord& r) override {
    finished.push_back({r.status, r.upstream_status, std::string(r.upstream), std::string(r.server),
                        r.attempts, r.outcome, std::string(r.target)});
  }
  std::vector<Finished> finished;
};

class ProxyMachineTest : public ::testing::Test {
 protected:
  void SetUp() override { configure(kConfig); }

  void configure(const std::string& yaml) {
    config::LoadResult loaded = config::loadConfigText(yaml, "test.yaml");
    ASSERT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors.front());
    server_.loop = &loop_;
    server_.config = loaded.config;
    server_.connector = &connector_;
    client_table_ = limit::ClientTable::createPrivate(1024);
    server_.client_table = client_table_;
    server_.parser_limits = http::ParserLimits{};
    route_counters_ = std::vector<observe::RouteCounters>(server_.config->routeCount());
    server_counters_ = std::vector<observe::ServerCounters>(server_.config->serverCount());
    server_.worker_counters = &worker_counters_;
    server_.route_counters = route_counters_.data();
    server_.server_counters = server_counters_.data();
    counting_ =
        std::make_unique<observe::CountingObserver>(worker_counters_, route_counters_.data());
    server_.observers = {&recorder_, counting_.get()};
    server_.on_closed = [this](ServerConnection* c) { closed_.push_back(c); };
    ListenerContext listener;
    listener.listener = &server_.config->listeners[0];
    listener.name = "web";
    listener.router = std::make_unique<Router>(server_.config->listeners[0].routes);
    server_.listeners.push_back(std::move(listener));
    for (const config::Upstream& upstream : server_.config->upstreams) {
      server_.clusters.emplace(upstream.name,
                               std::make_unique<upstream::Cluster>(loop_, upstream, connector_,
                                                                   server_.server_counters));
    }
  }

  void TearDown() override {
    clients_.clear();
    step();
    server_.clusters.clear();
    step();
    limit::ClientTable::destroy(client_table_);
  }

  // A new client connection; returns the test's end of it.
  MemoryTransport& connectClient(size_t capacity = 1 << 20) {
    auto pair = MemoryTransport::makePair(capacity);
    client_ends_.push_back(std::move(pair.second));
    net::Address peer = *net::Address::parse("127.0.0.1:40000", nullptr);
    clients_.push_back(std::make_unique<ServerConnection>(server_, server_.listeners[0],
                                                          std::move(pair.first), peer));
    EXPECT_TRUE(clients_.back()->start());
    return *client_ends_.back();
  }

  void step(int passes = 6) {
    for (int i = 0; i < passes; ++i)
      loop_.runOnce(Duration(0));
  }
  void advance(int ms) {
    clock_.advance(Duration(ms));
    step();
  }
  bool clientClosed(size_t index = 0) const {
    for (ServerConnection* c : closed_) {
      if (c == clients_[index].get()) return true;
    }
    return false;
  }
  testing::MemoryConnector::Server& upstream(size_t index) { return connector_.server(index); }

  event::ManualClock clock_;
  event::EventLoop loop_{clock_};
  testing::MemoryConnector connector_;
  observe::WorkerCounters worker_counters_;
  std::vector<observe::RouteCounters> route_counters_;
  std::vector<observe::ServerCounters> server_counters_;
  Recorder recorder_;
  std::unique_ptr<observe::CountingObserver> counting_;
  limit::ClientTable* client_table_ = nullptr;
  ServerContext server_;
  std::vector<std::unique_ptr<MemoryTransport>> client_ends_;
  std::vector<std::unique_ptr<ServerConnection>> clients_;
  std::vector<ServerConnection*> closed_;
};

const char kGet[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

TEST_F(ProxyMachineTest, KeepAliveRequestsShareOnePooledUpstreamConnection) {
  MemoryTransport& client = connectClient();
  for (int i = 0; i < 3; ++i) {
    client.send(kGet);
    step();
    ASSERT_EQ(connector_.connections(), 1u) << i;
    std::string sent = upstream(0).end->takeReceived();
    EXPECT_TRUE(sent.starts_with("GET /a HTTP/1.1\r\nHost: h\r\n")) << sent;
    upstream(0).end->send(kOk);
    step();
    EXPECT_EQ(client.takeReceived(), kOk) << i;
  }
  ASSERT_EQ(recorder_.finished.size(), 3u);
  EXPECT_EQ(recorder_.finished[2].status, 200);
  EXPECT_EQ(recorder_.finished[2].upstream, "app");
  EXPECT_EQ(recorder_.finished[2].server, "127.0.0.1:9001");
  EXPECT_EQ(recorder_.finished[2].outcome, observe::RequestOutcome::kOk);
  EXPECT_EQ(server_counters_[0].requests.load(), 3u);
  EXPECT_EQ(route_counters_[5].requests[1].load(), 3u);  // route 5 (app), 2xx
}

TEST_F(ProxyMachineTest, PipelinedRequestsGoUpstreamOneAtATimeAndAnswerInOrder) {
  MemoryTransport& client = connectClient();
  client.send(std::string("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n") +
              "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  std::string first = upstream(0).end->takeReceived();
  EXPECT_TRUE(first.starts_with("GET /1 ")) << first;
  EXPECT_EQ(first.find("GET /2"), std::string::npos);  // not before /1 is answered
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
  step();
  std::string second = upstream(0).end->takeReceived();
  EXPECT_TRUE(second.starts_with("GET /2 ")) << second;
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
  step();
  EXPECT_EQ(client.takeReceived(),
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
}

TEST_F(ProxyMachineTest, LocallyGenerated502KeepsAKeepAliveConnection) {
  connector_.refuse("127.0.0.1:9002");
  connector_.refuse("127.0.0.1:9003");
  MemoryTransport& client = connectClient();
  client.send("GET /pair HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  std::string got = client.takeReceived();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << got;
  // The request was complete: nothing forces a close.
  EXPECT_EQ(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_FALSE(clientClosed());
  client.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 200 OK\r\n"));
  ASSERT_EQ(recorder_.finished.size(), 2u);
  EXPECT_EQ(recorder_.finished[0].attempts, 2u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kUpstreamUnavailable);
  EXPECT_EQ(server_counters_[1].connect_failures.load(), 1u);
  EXPECT_EQ(server_counters_[2].connect_failures.load(), 1u);
}

TEST_F(ProxyMachineTest, Http10KeepAliveGetsConnectionKeepAlive) {
  MemoryTransport& client = connectClient();
  client.send("GET /local HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  step();
  std::string got = client.takeReceived();
  EXPECT_NE(got.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << got;
  client.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send(kOk);
  step();
  got = client.takeReceived();
  EXPECT_EQ(got, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  EXPECT_FALSE(clientClosed());
}

TEST_F(ProxyMachineTest, FirstHeaderTimeoutRunsFromAcceptNotFromTheFirstByte) {
  MemoryTransport& client = connectClient();
  advance(6000);
  client.send("GET /a HTTP/1.1\r\n");  // the first byte, late
  step();
  advance(4100);  // 10.1 s after accept
  std::string got = client.takeReceived();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << got;
}

TEST_F(ProxyMachineTest, LaterHeaderTimeoutsRunFromTheirFirstByte) {
  MemoryTransport& client = connectClient();
  client.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  client.takeReceived();
  advance(30000);  // idle, within timeouts.idle
  client.send("GET /local HTTP/1.1\r\n");
  step();
  advance(9000);
  EXPECT_EQ(client.takeReceived(), "");
  advance(1100);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 408 "));
}

TEST_F(ProxyMachineTest, EarlyResponseSaysCloseAndLingersPerRead) {
  MemoryTransport& client = connectClient();
  client.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" +
              std::string(1000, 'b'));
  step();
  // The upstream answers before the body is complete.
  upstream(0).end->send("HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig\n");
  step();
  std::string got = client.takeReceived();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413 ")) << got;
  // RFC 9110 §9.6: sluice will close, so it says so.
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(client.peerClosedWrite());  // our FIN after the response
  // Never pooled out of step: the upstream connection is closed.
  EXPECT_TRUE(upstream(0).end->peerGone());
  // The client keeps sending its body: each read re-arms the linger, so it
  // is not reset while its response may still be unread.
  for (int i = 0; i < 7; ++i) {  // 28 s of a steady sender
    client.send(std::string(1000, 'b'));
    advance(4000);
    EXPECT_FALSE(clientClosed()) << i;
  }
  // linger_total (30 s) ends it even so.
  client.send("b");
  advance(2100);
  EXPECT_TRUE(clientClosed());
}

TEST_F(ProxyMachineTest, LingerEndsAfterOneSilentLingerTimeout) {
  MemoryTransport& client = connectClient();
  client.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nxx");
  step();
  upstream(0).end->send(kOk);
  step();
  EXPECT_FALSE(clientClosed());
  advance(4900);
  EXPECT_FALSE(clientClosed());
  advance(200);
  EXPECT_TRUE(clientClosed());
}

TEST_F(ProxyMachineTest, UpstreamResetBeforeRespondingIs502) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->reset();
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kUpstreamReset);
  EXPECT_EQ(server_counters_[0].resets.load(), 1u);
}

TEST_F(ProxyMachineTest, UpstreamResetMidHeadIs502) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Le");
  step();
  upstream(0).end->reset();
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
}

TEST_F(ProxyMachineTest, UpstreamResetMidBodyClosesTheClientWithoutEndingTheBody) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  step();
  upstream(0).end->reset();
  step();
  EXPECT_EQ(client.takeReceived(), "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_TRUE(clientClosed());
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kUpstreamReset);
}

TEST_F(ProxyMachineTest, UpstreamClosingMidChunkedBodyClosesTheClient) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  step();
  upstream(0).end->shutdownWrite();
  step();
  std::string got = client.takeReceived();
  EXPECT_EQ(got.find("0\r\n\r\n"), std::string::npos) << got;  // never a false end
  EXPECT_TRUE(clientClosed());
}

TEST_F(ProxyMachineTest, PooledConnectionClosedAsItIsReusedIsRetriedOnceForAGet) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send(kOk);
  step();
  client.takeReceived();
  // The keep-alive race: the server closes the pooled connection just as
  // the next request goes out on it.
  client.send(kGet);
  step();
  upstream(0).end->reset();
  step();
  ASSERT_EQ(connector_.connections(), 2u);
  EXPECT_EQ(upstream(1).address, "127.0.0.1:9001");  // same server, fresh connection
  EXPECT_TRUE(upstream(1).end->takeReceived().starts_with("GET /a "));
  upstream(1).end->send(kOk);
  step();
  EXPECT_EQ(client.takeReceived(), kOk);
}

TEST_F(ProxyMachineTest, PostIsNeverReplayedAfterTheKeepAliveRace) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send(kOk);
  step();
  client.takeReceived();
  client.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  step();
  upstream(0).end->reset();
  step();
  EXPECT_EQ(connector_.connections(), 1u);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 "));
}

// retry_on: reset and 503, for a replayable request, before any byte of
// the response has reached the client — and never otherwise.
TEST_F(ProxyMachineTest, ResetAfterSendingAGetIsRetriedOnTheOtherServer) {
  MemoryTransport& client = connectClient();
  client.send("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  ASSERT_EQ(connector_.connections(), 1u);
  EXPECT_TRUE(upstream(0).end->takeReceived().starts_with("GET /retry HTTP/1.1\r\n"));
  upstream(0).end->reset();
  step();
  ASSERT_EQ(connector_.connections(), 2u);
  EXPECT_EQ(upstream(1).address, "127.0.0.1:9005");
  EXPECT_TRUE(upstream(1).end->takeReceived().starts_with("GET /retry HTTP/1.1\r\n"));
  upstream(1).end->send(kOk);
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 200 "));
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].attempts, 2u);
}

TEST_F(ProxyMachineTest, A503HeadIsReplacedByTheOtherServersAnswer) {
  MemoryTransport& client = connectClient();
  client.send("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send("HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy");
  step();
  ASSERT_EQ(connector_.connections(), 2u);
  upstream(1).end->takeReceived();
  upstream(1).end->send(kOk);
  step();
  const std::string got = client.takeReceived();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 ")) << got;
  EXPECT_EQ(got.find("busy"), std::string::npos) << got;
}

TEST_F(ProxyMachineTest, AResponseThatStartedIsNeverRetried) {
  MemoryTransport& client = connectClient();
  client.send("GET /retry HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  step();
  upstream(0).end->reset();
  step();
  EXPECT_EQ(connector_.connections(), 1u);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 200 "));
  EXPECT_TRUE(clientClosed());  // the only honest signal left
}

TEST_F(ProxyMachineTest, APostIsNotRetriedAfterItReachedAServer) {
  MemoryTransport& client = connectClient();
  client.send("POST /retry HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->reset();
  step();
  EXPECT_EQ(connector_.connections(), 1u);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 "));
}

TEST_F(ProxyMachineTest, ConnectFailureMovesTheQueuedRequestToTheNextServer) {
  connector_.holdHandshakes(true);
  MemoryTransport& client = connectClient();
  client.send("POST /pair HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody");
  step();
  ASSERT_EQ(connector_.connections(), 1u);
  EXPECT_EQ(upstream(0).address, "127.0.0.1:9002");
  upstream(0).proxy_end->failHandshake(ECONNREFUSED);
  step();
  ASSERT_EQ(connector_.connections(), 2u);
  EXPECT_EQ(upstream(1).address, "127.0.0.1:9003");
  upstream(1).proxy_end->completeHandshake();
  step();
  std::string sent = upstream(1).end->takeReceived();
  EXPECT_TRUE(sent.starts_with("POST /pair HTTP/1.1\r\n")) << sent;
  EXPECT_TRUE(sent.ends_with("Content-Length: 4\r\n\r\nbody")) << sent;
  upstream(1).end->send(kOk);
  step();
  EXPECT_EQ(client.takeReceived(), kOk);
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].attempts, 2u);
  EXPECT_EQ(server_counters_[2].retries.load(), 1u);
}

TEST_F(ProxyMachineTest, ConnectTimeoutIs504WhenNoServerIsLeft) {
  connector_.holdHandshakes(true);
  MemoryTransport& client = connectClient();
  client.send("GET /pair HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  advance(2100);  // first server's connect timeout; the second is tried
  ASSERT_EQ(connector_.connections(), 2u);
  advance(2100);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 504 Gateway Timeout\r\n"));
}

TEST_F(ProxyMachineTest, ClientLeavingDuringConnectCancelsTheAttempt) {
  connector_.holdHandshakes(true);
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  client.reset();
  step();
  EXPECT_TRUE(clientClosed());
  EXPECT_TRUE(upstream(0).end->peerGone());
  EXPECT_EQ(server_counters_[0].in_flight.load(), 0);
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kClientAbort);
}

TEST_F(ProxyMachineTest, ClientLeavingMidUploadClosesTheUpstreamConnection) {
  MemoryTransport& client = connectClient();
  client.send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nhalf");
  step();
  EXPECT_NE(upstream(0).end->takeReceived().find("half"), std::string::npos);
  client.shutdownWrite();  // truncated request
  step();
  EXPECT_TRUE(clientClosed());
  EXPECT_TRUE(upstream(0).end->peerGone());
}

TEST_F(ProxyMachineTest, ClientLeavingMidResponseDiscardsTheUpstreamConnection) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
  step();
  client.reset();
  step();
  EXPECT_TRUE(clientClosed());
  // Part of a response is in flight on it: never pooled.
  EXPECT_TRUE(upstream(0).end->peerGone());
}

TEST_F(ProxyMachineTest, HalfClosedClientStillGetsItsResponse) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  client.shutdownWrite();
  step();
  upstream(0).end->send(kOk);
  step();
  // The 100 Continue told sluice the client still reads (a closed client
  // would have answered it with a reset).
  EXPECT_EQ(client.takeReceived(),
            "HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  EXPECT_TRUE(clientClosed());
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kOk);
}

TEST_F(ProxyMachineTest, ClientClosingBeforeItsResponseCancelsTheUpstreamRequest) {
  connectClient().send(kGet);
  step();
  ASSERT_EQ(connector_.connections(), 1u);
  client_ends_[0].reset();  // a full close: the FIN, and nobody reads any more
  step();
  EXPECT_TRUE(clientClosed());
  EXPECT_TRUE(upstream(0).end->peerGone());  // the upstream request is cancelled
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kClientAbort);
  EXPECT_EQ(recorder_.finished[0].status, 499);
  EXPECT_EQ(server_counters_[0].in_flight.load(), 0);
}

TEST_F(ProxyMachineTest, Http10ClientClosingIsAnAbortWithoutAProbe) {
  MemoryTransport& client = connectClient();
  client.send("GET /a HTTP/1.0\r\n\r\n");
  client.shutdownWrite();
  step();
  EXPECT_TRUE(clientClosed());
  EXPECT_EQ(client.takeReceived(), "");  // no 1xx to an HTTP/1.0 client
  EXPECT_TRUE(upstream(0).end->peerGone());
}

TEST_F(ProxyMachineTest, SlowClientGetsTheWholeBodyDespiteAShortResponseTimeout) {
  // The response timeout (2 s) measures only time spent waiting on the
  // upstream; a client that reads slowly is governed by timeouts.send.
  MemoryTransport& client = connectClient(/*capacity=*/16 * 1024);
  client.send(kGet);
  step();
  constexpr size_t kBody = 4 << 20;
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n" +
                        std::string(kBody, 'z'));
  step();
  size_t received = 0;
  std::string first;
  for (int i = 0; i < 2000 && received < kBody; ++i) {
    advance(500);  // 16 KiB every 0.5 s: 32 KiB/s
    std::string piece = client.takeReceived();
    if (first.empty()) first = piece.substr(0, 40);
    received += piece.size();
    if (clientClosed()) break;
  }
  EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_GE(received, kBody);
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kOk);
}

TEST_F(ProxyMachineTest, SilentUpstreamStillTimesOutAfterTheRequestIsSent) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  advance(1900);
  EXPECT_EQ(client.takeReceived(), "");
  advance(200);
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 504 Gateway Timeout\r\n"));
  EXPECT_EQ(server_counters_[0].timeouts.load(), 1u);
}

TEST_F(ProxyMachineTest, UpstreamStallingMidBodyTimesOut) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
  step();
  advance(2100);
  EXPECT_TRUE(clientClosed());
}

TEST_F(ProxyMachineTest, UploadToASlowUpstreamIsHeldBackNotBuffered) {
  connector_.setCapacity(64 * 1024);  // the upstream takes 64 KiB per step
  MemoryTransport& client = connectClient(/*capacity=*/8 << 20);
  const std::string head = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 8388608\r\n\r\n";
  client.send(head);
  constexpr size_t kBody = 8u << 20;
  size_t sent = 0;
  size_t arrived = 0;
  int64_t most_held = 0;
  for (int i = 0; i < 4000 && arrived < kBody + head.size(); ++i) {
    // The client offers much more than the upstream takes each step.
    if (sent < kBody && client.unreadByPeer() < (1u << 20)) {
      const size_t n = std::min<size_t>(512 * 1024, kBody - sent);
      client.send(std::string(n, 'u'));
      sent += n;
    }
    step(2);
    arrived += upstream(0).end->takeReceived().size();
    // What sluice holds: read from the client, not yet taken by the upstream.
    // (Signed: the forwarded head is longer than the client's by the
    // headers sluice adds.)
    const int64_t held = static_cast<int64_t>(head.size() + sent) -
                         static_cast<int64_t>(client.unreadByPeer() + arrived);
    most_held = std::max(most_held, held);
  }
  EXPECT_GE(arrived, kBody);
  // The upstream's buffer stops at its high watermark (256 KiB) and the
  // client's input at its own bound: never the 8 MiB on offer.
  EXPECT_LT(most_held, 1 << 20) << most_held;
  EXPECT_GT(most_held, 0);
}

TEST_F(ProxyMachineTest, InvalidResponseIs502AndTheConnectionIsNotReused) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx");
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 "));
  EXPECT_TRUE(upstream(0).end->peerGone());
  EXPECT_EQ(server_counters_[0].invalid_responses.load(), 1u);
}

TEST_F(ProxyMachineTest, NoContentFromUpstreamLosesItsContentLength) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  upstream(0).end->send("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX: y\r\n\r\n");
  step();
  EXPECT_EQ(client.takeReceived(), "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n");
}

TEST_F(ProxyMachineTest, EveryRequestIsRecordedExactlyOnce) {
  MemoryTransport& client = connectClient();
  client.send("GET /local HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  client.send(kGet);
  step();
  upstream(0).end->send(kOk);
  step();
  client.send("BAD\r\n\r\n");
  step();
  ASSERT_EQ(recorder_.finished.size(), 3u);
  EXPECT_EQ(recorder_.finished[0].target, "/local");
  EXPECT_EQ(recorder_.finished[0].upstream, "");
  EXPECT_EQ(recorder_.finished[1].upstream_status, 200);
  EXPECT_EQ(recorder_.finished[2].status, 400);
  EXPECT_EQ(recorder_.finished[2].outcome, observe::RequestOutcome::kBadRequest);
  EXPECT_EQ(worker_counters_.requests.load(), 3u);
}

const char kUpgrade[] =
    "GET /ws/chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const char k101[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

TEST_F(ProxyMachineTest, UpgradeSwitchesBothSidesIntoATunnel) {
  MemoryTransport& client = connectClient();
  client.send(kUpgrade);
  step();
  const std::string sent = upstream(0).end->takeReceived();
  EXPECT_NE(sent.find("\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"), std::string::npos)
      << sent;
  EXPECT_NE(sent.find("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), std::string::npos);
  upstream(0).end->send(std::string(k101) + "\x81\x05hello");
  step();
  const std::string got = client.takeReceived();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 101 Switching Protocols\r\n")) << got;
  EXPECT_NE(got.find("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello"),
            std::string::npos)
      << got;
  EXPECT_EQ(got.find("Content-Length"), std::string::npos);
  // Bytes both ways, unchanged.
  client.send(
      "\x81\x83"
      "abcdefg");
  step();
  EXPECT_EQ(upstream(0).end->takeReceived(),
            "\x81\x83"
            "abcdefg");
  upstream(0).end->send("\x88\x00");
  step();
  EXPECT_EQ(client.takeReceived(), "\x88\x00");
  // Each side's FIN is passed on; both done ends the tunnel.
  client.shutdownWrite();
  step();
  EXPECT_TRUE(upstream(0).end->peerClosedWrite());
  EXPECT_FALSE(clientClosed());
  upstream(0).end->shutdownWrite();
  step();
  EXPECT_TRUE(client.peerClosedWrite());
  EXPECT_TRUE(clientClosed());
  ASSERT_EQ(recorder_.finished.size(), 1u);
  EXPECT_EQ(recorder_.finished[0].status, 101);
  EXPECT_EQ(recorder_.finished[0].outcome, observe::RequestOutcome::kOk);
  EXPECT_EQ(server_counters_[0].in_flight.load(), 0);
}

TEST_F(ProxyMachineTest, UpgradeOnARouteThatDoesNotAllowItIsAnOrdinaryRequest) {
  MemoryTransport& client = connectClient();
  std::string request = kUpgrade;
  request.replace(request.find("/ws/chat"), 8, "/plain");
  client.send(request);
  step();
  const std::string sent = upstream(0).end->takeReceived();
  EXPECT_EQ(sent.find("Upgrade"), std::string::npos) << sent;
  // A 101 nobody asked for cannot be relayed.
  upstream(0).end->send(k101);
  step();
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 502 "));
}

TEST_F(ProxyMachineTest, UpstreamRefusingTheUpgradeGivesAnOrdinaryResponse) {
  MemoryTransport& client = connectClient();
  client.send(kUpgrade);
  step();
  upstream(0).end->takeReceived();
  upstream(0).end->send("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
  step();
  EXPECT_EQ(client.takeReceived(), "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
  client.send(kGet);  // the connection goes on as HTTP
  step();
  EXPECT_TRUE(upstream(0).end->takeReceived().starts_with("GET /a "));
}

TEST_F(ProxyMachineTest, IdleTunnelIsClosedAfterTunnelIdle) {
  MemoryTransport& client = connectClient();
  client.send(kUpgrade);
  step();
  upstream(0).end->send(k101);
  step();
  client.takeReceived();
  advance(15000);
  client.send("x");
  step();
  advance(15000);  // 15 s since the last byte
  EXPECT_FALSE(clientClosed());
  advance(6000);
  EXPECT_TRUE(clientClosed());
  EXPECT_TRUE(upstream(0).end->peerGone());
}

TEST_F(ProxyMachineTest, TunnelBackpressureHoldsTheFastSide) {
  MemoryTransport& client = connectClient(/*capacity=*/16 * 1024);
  client.send(kUpgrade);
  step();
  upstream(0).end->send(k101);
  step();
  client.takeReceived();
  // The upstream offers 8 MiB; the client reads nothing: sluice must stop
  // reading the upstream instead of buffering it.
  upstream(0).end->send(std::string(8 << 20, 'w'));
  step(20);
  EXPECT_GT(upstream(0).end->unreadByPeer(), 7u << 20);
  size_t received = 0;
  for (int i = 0; i < 4000 && received < (8u << 20); ++i) {
    received += client.takeReceived().size();
    step(2);
  }
  EXPECT_EQ(received, 8u << 20);
}

const char kChunkedWithTrailers[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n"
    "3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\nContent-Type: x\r\n\r\n";

TEST_F(ProxyMachineTest, TrailersReachAClientThatAcceptsThem) {
  MemoryTransport& client = connectClient();
  client.send("GET /a HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n");
  step();
  // The upstream is told the client takes trailers (TE is hop-by-hop).
  EXPECT_NE(upstream(0).end->takeReceived().find("\r\nTE: trailers\r\n"), std::string::npos);
  upstream(0).end->send(kChunkedWithTrailers);
  step();
  // Passed on (with the Trailer header announcing them), except fields a
  // trailer must not carry (Content-Type).
  EXPECT_EQ(client.takeReceived(),
            "HTTP/1.1 200 OK\r\nTrailer: grpc-status\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n");
}

TEST_F(ProxyMachineTest, TrailersAreDroppedForAClientThatDidNotAskForThem) {
  MemoryTransport& client = connectClient();
  client.send(kGet);
  step();
  EXPECT_EQ(upstream(0).end->takeReceived().find("TE:"), std::string::npos);
  upstream(0).end->send(kChunkedWithTrailers);
  step();
  const std::string got = client.takeReceived();
  EXPECT_TRUE(got.ends_with("3\r\nabc\r\n0\r\n\r\n")) << got;
}

TEST_F(ProxyMachineTest, RequestTrailersGoToTheUpstream) {
  MemoryTransport& client = connectClient();
  client.send(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nhi\r\n0\r\nX-Checksum: 42\r\nHost: evil\r\n\r\n");
  step();
  const std::string sent = upstream(0).end->takeReceived();
  EXPECT_TRUE(sent.ends_with("2\r\nhi\r\n0\r\nX-Checksum: 42\r\n\r\n")) << sent;
}

TEST_F(ProxyMachineTest, RouteTimeoutsOverrideTheUpstreamsAndTheListeners) {
  MemoryTransport& client = connectClient();
  client.send("GET /quick HTTP/1.1\r\nHost: h\r\n\r\n");
  step();
  advance(400);
  EXPECT_EQ(client.takeReceived(), "");
  advance(200);  // the route's 500 ms, not the upstream's 2 s
  EXPECT_TRUE(client.takeReceived().starts_with("HTTP/1.1 504 "));

  MemoryTransport& uploader = connectClient();
  uploader.send("POST /quick HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
  step();
  advance(900);
  EXPECT_EQ(uploader.takeReceived(), "");
  advance(200);  // the route's 1 s body timeout, not the listener's 5 s
  EXPECT_TRUE(uploader.takeReceived().starts_with("HTTP/1.1 408 "));
}

}  // namespace
}  // namespace sluice::proxy
