#include "upstream/conn_pool.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "event/clock.h"
#include "event/event_loop.h"
#include "unit/support/memory_connector.h"
#include "upstream/upstream_connection.h"

namespace sluice::upstream {
namespace {

using event::Duration;

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.address = *net::Address::parse("127.0.0.1:9001", nullptr);
    host_.address_text = host_.address.toString();
    host_.counters = &counters_;
  }
  std::unique_ptr<UpstreamConnection> open() {
    int error = 0;
    auto c = UpstreamConnection::open(loop_, host_, connector_, &error);
    EXPECT_NE(c, nullptr) << error;
    step();
    return c;
  }
  void step() {
    for (int i = 0; i < 3; ++i)
      loop_.runOnce(Duration(0));
  }

  event::ManualClock clock_;
  event::EventLoop loop_{clock_};
  testing::MemoryConnector connector_;
  observe::ServerCounters counters_;
  Host host_;
};

TEST_F(PoolTest, ReusesTheMostRecentConnectionFirst) {
  ConnPool pool(loop_, host_, 4, Duration(20000));
  auto a = open();
  auto b = open();
  UpstreamConnection* b_raw = b.get();
  pool.release(std::move(a), Duration(0));
  pool.release(std::move(b), Duration(0));
  EXPECT_EQ(pool.idleCount(), 2u);
  EXPECT_EQ(counters_.connections_idle.load(), 2);
  EXPECT_EQ(counters_.connections_active.load(), 0);
  auto taken = pool.takeIdle();
  EXPECT_EQ(taken.get(), b_raw);
  EXPECT_EQ(counters_.connections_active.load(), 1);
  EXPECT_EQ(counters_.connections_opened.load(), 2u);
}

TEST_F(PoolTest, FullPoolClosesTheOldest) {
  ConnPool pool(loop_, host_, 1, Duration(20000));
  pool.release(open(), Duration(0));
  pool.release(open(), Duration(0));
  step();
  EXPECT_EQ(pool.idleCount(), 1u);
  EXPECT_TRUE(connector_.server(0).end->peerGone());
  EXPECT_FALSE(connector_.server(1).end->peerGone());
}

TEST_F(PoolTest, ServerClosingAnIdleConnectionRemovesItWithoutAPeek) {
  ConnPool pool(loop_, host_, 4, Duration(20000));
  pool.release(open(), Duration(0));
  connector_.last().end->shutdownWrite();
  step();
  // The idle connection stayed registered: the FIN arrived as an event and
  // removed it from the pool.
  EXPECT_EQ(pool.idleCount(), 0u);
  EXPECT_EQ(counters_.connections_idle.load(), 0);
  EXPECT_TRUE(connector_.server(0).end->peerGone());
}

TEST_F(PoolTest, ReuseCostsNoReadWhenTheServerStaysQuiet) {
  ConnPool pool(loop_, host_, 4, Duration(20000));
  pool.release(open(), Duration(0));
  net::MemoryTransport* proxy_end = connector_.last().proxy_end;
  step();
  const size_t reads = proxy_end->readCalls();
  auto again = pool.takeIdle();
  ASSERT_NE(again, nullptr);
  // No recv(MSG_PEEK) before reuse: taking a pooled connection is free.
  EXPECT_EQ(proxy_end->readCalls(), reads);
}

TEST_F(PoolTest, UnexpectedBytesWhileIdleDiscardTheConnection) {
  ConnPool pool(loop_, host_, 4, Duration(20000));
  pool.release(open(), Duration(0));
  connector_.last().end->send("HTTP/1.1 200 OK\r\n\r\n");
  step();
  EXPECT_EQ(pool.idleCount(), 0u);
}

TEST_F(PoolTest, IdleTimeoutAndTheServersShorterKeepAliveHint) {
  ConnPool pool(loop_, host_, 4, Duration(20000));
  pool.release(open(), Duration(4000));  // the server said Keep-Alive: timeout=4
  clock_.advance(Duration(2900));
  step();
  EXPECT_EQ(pool.idleCount(), 1u);
  // Closed a little before the server's own timeout (4 s - 1 s margin).
  clock_.advance(Duration(200));
  step();
  EXPECT_EQ(pool.idleCount(), 0u);

  pool.release(open(), Duration(0));
  clock_.advance(Duration(19900));
  step();
  EXPECT_EQ(pool.idleCount(), 1u);
  clock_.advance(Duration(200));
  step();
  EXPECT_EQ(pool.idleCount(), 0u);
}

// With max_idle: 0 a connection given back is closed — and must not be
// destroyed inside the callback that released it (the codec and the
// connection are still on the stack). AddressSanitizer reports a
// use-after-free if it is.
class ReleasingUser final : public UpstreamConnection::User {
 public:
  ReleasingUser(ConnPool& pool, std::unique_ptr<UpstreamConnection>& connection)
      : pool_(pool), connection_(connection) {}
  void onUpstreamConnected() override {}
  void onUpstreamClosed(int) override {}
  void onResponseHead(const http::ResponseHead&) override {}
  void onResponseBody(std::string_view) override {}
  void onResponseComplete() override {
    completed = true;
    pool_.release(std::move(connection_), Duration(0));
  }
  void onResponseError(std::string_view) override {}
  bool completed = false;

 private:
  ConnPool& pool_;
  std::unique_ptr<UpstreamConnection>& connection_;
};

TEST_F(PoolTest, ReleaseFromInsideItsOwnCallbackWithPoolingOffIsDeferred) {
  ConnPool pool(loop_, host_, 0, Duration(20000));
  std::unique_ptr<UpstreamConnection> connection = open();
  ReleasingUser user(pool, connection);
  connection->attach(&user);
  Buffer head;
  connection->codec().endRequestHead("GET", http::BodyFraming::kNone, 0, head);
  // The response and more bytes in one read: after onResponseComplete the
  // connection's own code still runs (it looks at the rest of its input).
  connector_.last().end->send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  step();
  EXPECT_TRUE(user.completed);
  EXPECT_EQ(connection, nullptr);
  EXPECT_EQ(pool.idleCount(), 0u);
  EXPECT_TRUE(connector_.last().end->peerGone());
  EXPECT_EQ(counters_.connections_active.load(), 0);
}

}  // namespace
}  // namespace sluice::upstream
