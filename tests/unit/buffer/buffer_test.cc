#include "buffer/buffer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0); }
  ~SocketPair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int a() const { return fds_[0]; }
  int b() const { return fds_[1]; }

 private:
  int fds_[2];
};

TEST(Buffer, StartsWithoutStorageAndReleasesWhenEmpty) {
  Buffer buffer;
  EXPECT_EQ(buffer.capacity(), 0u);
  buffer.append("hello");
  EXPECT_GT(buffer.capacity(), 0u);
  buffer.releaseIfEmpty();  // not empty: keeps storage
  EXPECT_EQ(buffer.view(), "hello");
  buffer.consume(5);
  buffer.releaseIfEmpty();
  EXPECT_EQ(buffer.capacity(), 0u);
}

TEST(Buffer, AppendConsumeAndCompact) {
  Buffer buffer;
  std::string chunk(Buffer::kReadChunk - 10, 'a');
  buffer.append(chunk);
  buffer.consume(chunk.size() - 4);
  size_t capacity = buffer.capacity();
  buffer.append(std::string(100, 'b'));  // fits after sliding the 4 bytes left
  EXPECT_EQ(buffer.capacity(), capacity);
  EXPECT_EQ(buffer.view(), std::string(4, 'a') + std::string(100, 'b'));
}

TEST(Buffer, GrowsForLargeAppends) {
  Buffer buffer;
  std::string big(100000, 'x');
  buffer.append(big);
  EXPECT_EQ(buffer.view(), big);
}

TEST(Buffer, ReadAndWriteThroughSockets) {
  SocketPair pair;
  Buffer in;
  EXPECT_TRUE(in.readFrom(pair.a()).isAgain());
  ASSERT_EQ(::write(pair.b(), "ping", 4), 4);
  IoResult r = in.readFrom(pair.a());
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_EQ(in.view(), "ping");

  Buffer out;
  out.append("pong");
  r = out.writeTo(pair.a());
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(out.empty());
  char got[4];
  ASSERT_EQ(::read(pair.b(), got, 4), 4);
  EXPECT_EQ(std::string(got, 4), "pong");

  ::shutdown(pair.b(), SHUT_WR);
  EXPECT_EQ(in.readFrom(pair.a()).kind, IoResult::Kind::kEof);
}

TEST(Buffer, WriteStopsAtAgainWithoutLosingBytes) {
  SocketPair pair;
  Buffer out;
  std::string big(4 * 1024 * 1024, 'z');
  out.append(big);
  IoResult r = out.writeTo(pair.a());
  while (r.isOk() && !out.empty())
    r = out.writeTo(pair.a());
  ASSERT_TRUE(r.isAgain());
  size_t queued = out.size();
  EXPECT_GT(queued, 0u);
  // Drain the peer and finish: every byte arrives exactly once.
  size_t received = 0;
  char sink[65536];
  while (received < big.size()) {
    ssize_t n = ::read(pair.b(), sink, sizeof sink);
    if (n > 0) received += static_cast<size_t>(n);
    if (!out.empty()) out.writeTo(pair.a());
  }
  EXPECT_EQ(received, big.size());
  EXPECT_TRUE(out.empty());
}

TEST(Buffer, WriteToClosedPeerIsAnErrorNotASignal) {
  SocketPair pair;
  ::close(::dup(pair.b()));
  ::shutdown(pair.b(), SHUT_RDWR);
  Buffer out;
  out.append("x");
  IoResult r = out.writeTo(pair.a());
  EXPECT_EQ(r.kind, IoResult::Kind::kError);
  EXPECT_EQ(r.error, EPIPE);
}

}  // namespace
}  // namespace sluice
