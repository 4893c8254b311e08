#include "buffer/buffer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sluice {
namespace {

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

TEST(Buffer, ReserveTailThenCommitAppendsWhatWasWritten) {
  Buffer buffer;
  buffer.append("ab");
  char* tail = buffer.reserveTail(100);
  ASSERT_NE(tail, nullptr);
  EXPECT_GE(buffer.capacity() - buffer.size(), 100u);
  tail[0] = 'c';
  tail[1] = 'd';
  buffer.commit(2);
  EXPECT_EQ(buffer.view(), "abcd");
  // Reserving more than a chunk grows the storage and keeps the bytes.
  tail = buffer.reserveTail(3 * Buffer::kReadChunk);
  std::memset(tail, 'e', 3 * Buffer::kReadChunk);
  buffer.commit(3 * Buffer::kReadChunk);
  EXPECT_EQ(buffer.size(), 4 + 3 * Buffer::kReadChunk);
  EXPECT_EQ(buffer.view().substr(0, 5), "abcde");
}

}  // namespace
}  // namespace sluice
