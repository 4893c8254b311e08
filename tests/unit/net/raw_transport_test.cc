#include "net/raw_transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace sluice::net {
namespace {

// A non-blocking AF_UNIX pair: `near` goes to the transport (which closes it).
struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0); }
  ~Pair() { ::close(fds[1]); }
  int fds[2];
};

TEST(RawTransport, ReadsReportDrainedOnShortReadsAndEof) {
  Pair pair;
  RawTransport transport(pair.fds[0], false);
  Buffer in;
  EXPECT_TRUE(transport.read(in, 1024).isAgain());
  ASSERT_EQ(::write(pair.fds[1], "ping", 4), 4);
  IoResult r = transport.read(in, 1024);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_TRUE(r.drained);  // less than offered: nothing left
  EXPECT_EQ(in.view(), "ping");
  ASSERT_EQ(::write(pair.fds[1], "12345678", 8), 8);
  r = transport.read(in, 8);
  EXPECT_TRUE(r.isOk());
  EXPECT_FALSE(r.drained);  // filled what was offered: there may be more
  ::shutdown(pair.fds[1], SHUT_WR);
  EXPECT_TRUE(transport.read(in, 1024).isEof());
}

TEST(RawTransport, WriteStopsAtAgainWithoutLosingBytes) {
  Pair pair;
  RawTransport transport(pair.fds[0], false);
  Buffer out;
  const std::string big(4 * 1024 * 1024, 'z');
  out.append(big);
  IoResult r = transport.write(out);
  while (r.isOk() && !out.empty())
    r = transport.write(out);
  ASSERT_TRUE(r.isAgain());
  EXPECT_EQ(r.wait_for, WaitFor::kWritable);
  size_t received = 0;
  char sink[65536];
  while (received < big.size()) {
    ssize_t n = ::read(pair.fds[1], sink, sizeof sink);
    if (n > 0) received += static_cast<size_t>(n);
    if (!out.empty()) transport.write(out);
  }
  EXPECT_EQ(received, big.size());
  EXPECT_TRUE(out.empty());
}

TEST(RawTransport, WriteToClosedPeerIsAnErrorNotASignal) {
  Pair pair;
  RawTransport transport(pair.fds[0], false);
  ::shutdown(pair.fds[1], SHUT_RDWR);
  Buffer out;
  out.append("x");
  IoResult r = transport.write(out);
  EXPECT_TRUE(r.isError());
  EXPECT_EQ(r.error, EPIPE);
}

TEST(RawTransport, ShutdownWriteSendsFin) {
  Pair pair;
  RawTransport transport(pair.fds[0], false);
  EXPECT_TRUE(transport.shutdownWrite().isOk());
  char byte;
  EXPECT_EQ(::read(pair.fds[1], &byte, 1), 0);
}

}  // namespace
}  // namespace sluice::net
