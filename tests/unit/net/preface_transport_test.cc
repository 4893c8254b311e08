// PrefaceTransport: the preface (a PROXY header) goes out after the inner
// transport connected and before anything of the transport over it, in as
// many writes as the peer's window allows.
#include "net/preface_transport.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "net/memory_transport.h"

namespace sluice::net {
namespace {

constexpr std::string_view kHeader = "PROXY TCP4 192.0.2.1 192.0.2.2 51000 443\r\n";

Buffer bufferOf(std::string_view bytes) {
  Buffer buffer;
  buffer.append(bytes);
  return buffer;
}

TEST(PrefaceTransport, WritesThePrefaceOnlyAfterTheInnerHandshake) {
  auto [near, far] = MemoryTransport::makePair();
  near->holdHandshake();
  MemoryTransport* inner = near.get();
  PrefaceTransport transport(std::move(near), bufferOf(kHeader));
  EXPECT_TRUE(transport.handshake().isAgain());  // still connecting
  EXPECT_EQ(far->pendingBytes(), 0u);
  inner->completeHandshake();
  EXPECT_TRUE(transport.handshake().isOk());
  EXPECT_EQ(far->takeReceived(), kHeader);
  // Application bytes follow it, through the inner transport.
  Buffer request = bufferOf("GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(transport.write(request).isOk());
  EXPECT_EQ(far->takeReceived(), "GET / HTTP/1.1\r\n\r\n");
}

TEST(PrefaceTransport, APrefaceLargerThanTheWindowTakesSeveralHandshakeSteps) {
  auto [near, far] = MemoryTransport::makePair(/*capacity=*/8);
  PrefaceTransport transport(std::move(near), bufferOf(kHeader));
  std::string received;
  int steps = 0;
  for (; steps < 100; ++steps) {
    const IoResult r = transport.handshake();
    if (r.isOk()) break;
    ASSERT_TRUE(r.isAgain());
    EXPECT_EQ(r.wait_for, WaitFor::kWritable);
    received += far->takeReceived();
  }
  received += far->takeReceived();
  EXPECT_GT(steps, 1);
  EXPECT_EQ(received, kHeader);
}

TEST(PrefaceTransport, AFailedConnectIsReportedAsIs) {
  auto [near, far] = MemoryTransport::makePair();
  near->holdHandshake();
  MemoryTransport* inner = near.get();
  PrefaceTransport transport(std::move(near), bufferOf(kHeader));
  inner->failHandshake(ECONNREFUSED);
  const IoResult r = transport.handshake();
  ASSERT_TRUE(r.isError());
  EXPECT_EQ(r.error, ECONNREFUSED);
  EXPECT_EQ(far->pendingBytes(), 0u);
}

}  // namespace
}  // namespace sluice::net
