#include "process/counter_region.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace sluice::process {
namespace {

TEST(CounterRegion, SlotsAreSeparateAndAligned) {
  auto region = CounterRegion::create(3, 2, 5);
  ASSERT_NE(region, nullptr);
  for (uint32_t slot = 0; slot < 3; ++slot) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(&region->worker(slot)) % observe::kCacheLine, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(region->serverCounters(slot)) % observe::kCacheLine, 0u);
    observe::add(region->worker(slot).requests, slot + 1);
    observe::add(region->routeCounters(slot)[1].bytes_sent, 10 * (slot + 1));
    observe::add(region->serverCounters(slot)[4].in_flight, 100);
  }
  for (uint32_t slot = 0; slot < 3; ++slot) {
    EXPECT_EQ(region->worker(slot).requests.load(), slot + 1);
    EXPECT_EQ(region->routeCounters(slot)[0].bytes_sent.load(), 0u);
    EXPECT_EQ(region->routeCounters(slot)[1].bytes_sent.load(), 10 * (slot + 1));
    EXPECT_EQ(region->serverCounters(slot)[3].in_flight.load(), 0);
    EXPECT_EQ(region->serverCounters(slot)[4].in_flight.load(), 100);
  }
}

TEST(CounterRegion, WritesOfAForkedWorkerAreSeenByTheParent) {
  auto region = CounterRegion::create(2, 1, 1);
  ASSERT_NE(region, nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    observe::add(region->worker(1).requests, 42);
    observe::add(region->serverCounters(1)[0].in_flight, 3);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(region->worker(1).requests.load(), 42u);
  EXPECT_EQ(region->serverCounters(1)[0].in_flight.load(), 3);
  EXPECT_EQ(region->worker(0).requests.load(), 0u);
}

TEST(CounterRegion, ResetGaugesKeepsCumulativeCounters) {
  auto region = CounterRegion::create(1, 1, 1);
  ASSERT_NE(region, nullptr);
  observe::add(region->worker(0).requests, 7);
  observe::add(region->worker(0).connections_active, 4);
  observe::add(region->serverCounters(0)[0].in_flight, 2);
  observe::add(region->serverCounters(0)[0].connect_failures, 5);
  region->resetGauges(0);
  EXPECT_EQ(region->worker(0).requests.load(), 7u);
  EXPECT_EQ(region->worker(0).connections_active.load(), 0);
  EXPECT_EQ(region->serverCounters(0)[0].in_flight.load(), 0);
  EXPECT_EQ(region->serverCounters(0)[0].connect_failures.load(), 5u);
}

TEST(CounterRegion, WorkerTotalsAddUpCumulativeFieldsOnly) {
  auto region = CounterRegion::create(2, 0, 0);
  ASSERT_NE(region, nullptr);
  observe::add(region->worker(0).requests, 3);
  observe::add(region->worker(1).requests, 4);
  observe::add(region->worker(1).connections_active, 9);
  observe::WorkerCounters totals;
  observe::add(totals.requests, 100);  // carried from an earlier generation
  region->addWorkerTotalsTo(&totals);
  EXPECT_EQ(totals.requests.load(), 107u);
  EXPECT_EQ(totals.connections_active.load(), 0);
}

}  // namespace
}  // namespace sluice::process
