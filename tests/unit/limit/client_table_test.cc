#include "limit/client_table.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace sluice::limit {
namespace {

struct Table {
  explicit Table(size_t slots, bool shared = false)
      : table(shared ? ClientTable::create(slots) : ClientTable::createPrivate(slots)) {}
  ~Table() { ClientTable::destroy(table); }
  ClientTable* operator->() { return table; }
  ClientTable* table;
};

TEST(ClientTable, TokenBucketAllowsTheBurstThenTheRate) {
  Table t(1024);
  const uint64_t key = t->key("rate", 0, "192.0.2.1");
  // 10 per second, burst 5: a new client may send 5 at once.
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(t->takeToken(key, 10, 5, 1000).allowed) << i;
  ClientTable::RateDecision refused = t->takeToken(key, 10, 5, 1000);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 100);  // one token every 100 ms
  EXPECT_FALSE(t->takeToken(key, 10, 5, 1050).allowed);
  EXPECT_TRUE(t->takeToken(key, 10, 5, 1100).allowed);
  // Idle for long: the bucket refills to the burst, not beyond.
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(t->takeToken(key, 10, 5, 60000).allowed) << i;
  EXPECT_FALSE(t->takeToken(key, 10, 5, 60000).allowed);
  // Another key is not affected.
  EXPECT_TRUE(t->takeToken(t->key("rate", 0, "192.0.2.2"), 10, 5, 60000).allowed);
  // Nor the same value under another route.
  EXPECT_TRUE(t->takeToken(t->key("rate", 1, "192.0.2.1"), 10, 5, 60000).allowed);
}

TEST(ClientTable, ConnectionsAreCountedUpToTheLimit) {
  Table t(1024);
  const uint64_t key = t->key("connections", 0, "192.0.2.1");
  EXPECT_TRUE(t->acquireConnection(key, 2, 0));
  EXPECT_TRUE(t->acquireConnection(key, 2, 0));
  EXPECT_FALSE(t->acquireConnection(key, 2, 0));
  t->releaseConnection(key);
  EXPECT_TRUE(t->acquireConnection(key, 2, 0));
}

TEST(ClientTable, StaysBoundedUnderManyDistinctKeys) {
  Table t(4096);
  const uint64_t hot = t->key("connections", 0, "hot");
  ASSERT_TRUE(t->acquireConnection(hot, 10, 0));  // an entry eviction must not lose
  const uint64_t hot_rate = t->key("rate", 0, "regular");
  for (int i = 0; i < 100000; ++i) {
    t->takeToken(t->key("rate", 0, "client-" + std::to_string(i)), 1, 1, i);
    if (i % 10 == 0) t->takeToken(hot_rate, 1000, 1000, i);  // recently used
  }
  EXPECT_LE(t->entriesInUse(), t->slotCount());
  EXPECT_GT(t->evictions(), 90000u);
  // The counted connection survived every eviction.
  EXPECT_TRUE(t->acquireConnection(hot, 2, 100000));
  EXPECT_FALSE(t->acquireConnection(hot, 2, 100000));
}

TEST(ClientTable, SharedAcrossProcesses) {
  Table t(1024, /*shared=*/true);
  ASSERT_NE(t.table, nullptr);
  const uint64_t key = t->key("rate", 0, "192.0.2.1");
  const pid_t child = ::fork();
  if (child == 0) {
    // A "worker" takes the whole burst.
    for (int i = 0; i < 5; ++i)
      t->takeToken(key, 1, 5, 1000);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Another one finds the bucket empty.
  EXPECT_FALSE(t->takeToken(key, 1, 5, 1000).allowed);
}

}  // namespace
}  // namespace sluice::limit
