#include "net/connection.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

#include "event/clock.h"
#include "event/event_loop.h"
#include "net/memory_transport.h"

namespace sluice::net {
namespace {

using event::Duration;

// Records what a Connection tells its owner; optionally consumes input.
struct Recorder final : ConnectionCallbacks {
  explicit Recorder(Connection* c = nullptr) : connection(c) {}
  void onConnected() override { ++connected; }
  void onReadable() override {
    ++readable;
    if (consume && connection) {
      received += connection->input().view();
      connection->input().clear();
    }
  }
  void onPeerClosed() override { ++peer_closed; }
  void onAboveHighWatermark() override { ++above; }
  void onBelowLowWatermark() override {
    ++below;
    below_at_size = connection ? connection->output().size() : 0;
  }
  void onOutputDrained() override { ++drained; }
  void onTransportError(int error) override { last_error = error; }

  Connection* connection;
  bool consume = true;
  std::string received;
  int connected = 0, readable = 0, peer_closed = 0, above = 0, below = 0, drained = 0;
  size_t below_at_size = 0;
  int last_error = 0;
};

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = MemoryTransport::makePair(1 << 20);
    near_ = pair.first.get();
    far_ = std::move(pair.second);
    connection_ = std::make_unique<Connection>(loop_, std::move(pair.first));
    recorder_.connection = connection_.get();
    connection_->setCallbacks(&recorder_);
  }
  void step(int passes = 3) {
    for (int i = 0; i < passes; ++i)
      loop_.runOnce(Duration(0));
  }

  event::ManualClock clock_;
  event::EventLoop loop_{clock_};
  MemoryTransport* near_ = nullptr;  // owned by connection_
  std::unique_ptr<MemoryTransport> far_;
  std::unique_ptr<Connection> connection_;
  Recorder recorder_;
};

TEST_F(ConnectionTest, ShortReadDrainsWithoutReadingAgainForEagain) {
  ASSERT_EQ(connection_->start(false), 0);
  far_->send("hello");
  step();
  EXPECT_EQ(recorder_.received, "hello");
  // Edge-triggered: the read that returned less than offered emptied the
  // transport; no second read just to learn EAGAIN.
  EXPECT_EQ(near_->readCalls(), 1u);
  far_->send(" world");
  step();
  EXPECT_EQ(recorder_.received, "hello world");
  EXPECT_EQ(near_->readCalls(), 2u);
}

TEST_F(ConnectionTest, EofIsReportedOnce) {
  ASSERT_EQ(connection_->start(false), 0);
  far_->send("last");
  far_->shutdownWrite();
  step();
  EXPECT_EQ(recorder_.received, "last");
  EXPECT_EQ(recorder_.peer_closed, 1);
  EXPECT_TRUE(connection_->peerClosed());
  step();
  EXPECT_EQ(recorder_.peer_closed, 1);
}

TEST_F(ConnectionTest, WritesInOnePassAreCoalescedIntoOneTransportWrite) {
  ASSERT_EQ(connection_->start(false), 0);
  step();
  connection_->write("a");
  connection_->write("b");
  connection_->write("c");
  EXPECT_EQ(near_->writeCalls(), 0u);  // nothing before the end of the pass
  step(1);
  EXPECT_EQ(far_->takeReceived(), "abc");
  EXPECT_EQ(near_->writeCalls(), 1u);
}

TEST_F(ConnectionTest, WatermarksCallOncePerCrossingAndResumeAtTheLowMark) {
  far_->setReceiveCapacity(100);  // the peer takes 100 bytes, then blocks us
  connection_->setWatermarks(1000, 400);
  ASSERT_EQ(connection_->start(false), 0);
  connection_->write(std::string(600, 'x'));
  EXPECT_EQ(recorder_.above, 0);
  connection_->write(std::string(600, 'y'));
  EXPECT_EQ(recorder_.above, 1);
  connection_->write(std::string(10, 'z'));  // still above: no second call
  EXPECT_EQ(recorder_.above, 1);
  step();
  EXPECT_EQ(far_->takeReceived().size(), 100u);
  step();
  EXPECT_EQ(recorder_.below, 0);
  // The reader drains in steps; "below" comes once the queue is at or under
  // the low mark — not only when it is empty (no stop-and-go).
  for (int i = 0; i < 20 && recorder_.below == 0; ++i) {
    far_->takeReceived();
    step();
  }
  EXPECT_EQ(recorder_.below, 1);
  EXPECT_GT(recorder_.below_at_size, 0u);
  EXPECT_LE(recorder_.below_at_size, 400u);
}

TEST_F(ConnectionTest, PausedReadsRememberReadinessAndResume) {
  ASSERT_EQ(connection_->start(false), 0);
  connection_->setReadEnabled(false);
  far_->send("held");
  step();
  EXPECT_EQ(recorder_.received, "");
  EXPECT_EQ(near_->readCalls(), 0u);
  // The edge was consumed while paused; enabling must not wait for another.
  connection_->setReadEnabled(true);
  step();
  EXPECT_EQ(recorder_.received, "held");
}

TEST_F(ConnectionTest, RedeliverOffersInputAgainWithoutReading) {
  recorder_.consume = false;
  ASSERT_EQ(connection_->start(false), 0);
  far_->send("pipelined");
  step();
  EXPECT_EQ(recorder_.readable, 1);
  const size_t reads = near_->readCalls();
  connection_->redeliver();
  step();
  EXPECT_EQ(recorder_.readable, 2);
  EXPECT_EQ(near_->readCalls(), reads);
  EXPECT_EQ(connection_->input().view(), "pipelined");
}

TEST_F(ConnectionTest, SendTimeoutFailsAConnectionWhoseWritesStall) {
  far_->setReceiveCapacity(10);
  connection_->setSendTimeout(Duration(5000));
  ASSERT_EQ(connection_->start(false), 0);
  connection_->write(std::string(100, 'x'));
  step();
  EXPECT_TRUE(connection_->writeBlocked());
  clock_.advance(Duration(4000));
  step();
  EXPECT_EQ(recorder_.last_error, 0);
  clock_.advance(Duration(1500));
  step();
  EXPECT_EQ(recorder_.last_error, ETIMEDOUT);
  EXPECT_FALSE(connection_->open());
}

TEST_F(ConnectionTest, SendTimeoutMeasuresTheGapBetweenProgress) {
  far_->setReceiveCapacity(10);
  connection_->setSendTimeout(Duration(5000));
  ASSERT_EQ(connection_->start(false), 0);
  connection_->write(std::string(100, 'x'));
  step();
  // A slow but steady reader: each 4 s it takes 10 bytes. Never a 5 s gap.
  for (int i = 0; i < 8; ++i) {
    clock_.advance(Duration(4000));
    far_->takeReceived();
    step();
    EXPECT_EQ(recorder_.last_error, 0) << i;
  }
}

TEST_F(ConnectionTest, ShutdownWriteWhenFlushedSendsEverythingThenTheFin) {
  far_->setReceiveCapacity(10);
  ASSERT_EQ(connection_->start(false), 0);
  connection_->write("0123456789abcdef");
  connection_->shutdownWriteWhenFlushed();
  step();
  EXPECT_FALSE(far_->peerClosedWrite());
  EXPECT_EQ(far_->takeReceived(), "0123456789");
  step();
  EXPECT_EQ(far_->takeReceived(), "abcdef");
  EXPECT_TRUE(far_->peerClosedWrite());
  EXPECT_TRUE(connection_->writeShutDown());
  // Reading goes on after our side is shut (lingering close).
  far_->send("late");
  step();
  EXPECT_EQ(recorder_.received, "late");
}

TEST_F(ConnectionTest, HandshakeCompletesBeforeApplicationBytes) {
  near_->holdHandshake();
  ASSERT_EQ(connection_->start(true), 0);
  connection_->write("request");
  step();
  EXPECT_EQ(recorder_.connected, 0);
  EXPECT_EQ(far_->takeReceived(), "");
  near_->completeHandshake();
  step();
  EXPECT_EQ(recorder_.connected, 1);
  EXPECT_EQ(far_->takeReceived(), "request");
}

TEST_F(ConnectionTest, FailedHandshakeIsATransportError) {
  near_->holdHandshake();
  ASSERT_EQ(connection_->start(true), 0);
  step();
  near_->failHandshake(ECONNREFUSED);
  step();
  EXPECT_EQ(recorder_.connected, 0);
  EXPECT_EQ(recorder_.last_error, ECONNREFUSED);
  EXPECT_FALSE(connection_->open());
}

TEST_F(ConnectionTest, ResetIsATransportError) {
  ASSERT_EQ(connection_->start(false), 0);
  far_->reset();
  step();
  EXPECT_EQ(recorder_.last_error, ECONNRESET);
}

TEST_F(ConnectionTest, IdleConnectionHoldsNoBuffersAfterItsBytesAreUsed) {
  ASSERT_EQ(connection_->start(false), 0);
  far_->send("request");
  step();
  connection_->write("response");
  step();
  EXPECT_EQ(far_->takeReceived(), "response");
  connection_->releaseIdleMemory();
  EXPECT_EQ(connection_->input().capacity(), 0u);
  EXPECT_EQ(connection_->output().capacity(), 0u);
  // A readiness edge with nothing to read does not leave a chunk behind.
  connection_->setReadEnabled(false);
  connection_->setReadEnabled(true);
  step();
  EXPECT_EQ(connection_->input().capacity(), 0u);
}

// A transport that, like TLS mid-record, answers its first read with "wait
// for writable": the Connection must retry the read on a writable edge.
class ReadNeedsWritable final : public Transport {
 public:
  explicit ReadNeedsWritable(std::unique_ptr<MemoryTransport> inner) : inner_(std::move(inner)) {}
  int fd() const override { return inner_->fd(); }
  IoResult handshake() override { return inner_->handshake(); }
  IoResult read(Buffer& into, size_t max) override {
    if (!blocked_once_) {
      blocked_once_ = true;
      return IoResult::again(WaitFor::kWritable);
    }
    return inner_->read(into, max);
  }
  IoResult write(Buffer& from) override { return inner_->write(from); }
  IoResult shutdownWrite() override { return inner_->shutdownWrite(); }

 private:
  std::unique_ptr<MemoryTransport> inner_;
  bool blocked_once_ = false;
};

TEST(ConnectionTransport, ReadThatWaitsForWritableIsRetriedOnWritable) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  auto pair = MemoryTransport::makePair();
  std::unique_ptr<MemoryTransport> far = std::move(pair.second);
  Connection connection(loop, std::make_unique<ReadNeedsWritable>(std::move(pair.first)));
  Recorder recorder(&connection);
  connection.setCallbacks(&recorder);
  ASSERT_EQ(connection.start(false), 0);
  far->send("record");
  for (int i = 0; i < 4; ++i)
    loop.runOnce(Duration(0));
  EXPECT_EQ(recorder.received, "");  // waiting for writable, not readable
  far->setReceiveCapacity(1 << 20);  // room to write: a writable edge
  for (int i = 0; i < 4; ++i)
    loop.runOnce(Duration(0));
  EXPECT_EQ(recorder.received, "record");
}

}  // namespace
}  // namespace sluice::net
