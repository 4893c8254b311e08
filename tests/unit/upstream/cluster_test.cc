#include "upstream/cluster.h"

#include <gtest/gtest.h>

#include <vector>

#include "config/config.h"
#include "event/clock.h"
#include "event/event_loop.h"
#include "unit/support/memory_connector.h"

namespace sluice::upstream {
namespace {

using event::Duration;

config::Upstream twoServers() {
  config::Upstream upstream;
  upstream.name = "app";
  for (int i = 0; i < 2; ++i) {
    config::UpstreamServer server;
    server.address = *net::Address::parse("127.0.0.1:900" + std::to_string(i + 1), nullptr);
    server.index = static_cast<uint32_t>(5 + i);  // slots in a larger counter array
    upstream.servers.push_back(server);
  }
  return upstream;
}

TEST(Cluster, HostsUseTheirConfiguredCounterSlots) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(8);
  const config::Upstream config = twoServers();
  Cluster cluster(loop, config, connector, counters.data());
  ASSERT_EQ(cluster.hostCount(), 2u);
  EXPECT_EQ(cluster.host(0).counters, &counters[5]);
  EXPECT_EQ(cluster.host(1).counters, &counters[6]);
  EXPECT_EQ(cluster.host(1).cluster_index, 1u);
}

TEST(Cluster, EveryAttemptOutcomeReachesHostAndCounters) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(8);
  const config::Upstream config = twoServers();
  Cluster cluster(loop, config, connector, counters.data());
  Host& host = cluster.host(0);
  const AttemptOutcome failures[] = {AttemptOutcome::kConnectFailure, AttemptOutcome::kTimeout,
                                     AttemptOutcome::kReset, AttemptOutcome::kHttp5xx,
                                     AttemptOutcome::kInvalid};
  for (AttemptOutcome outcome : failures) {
    cluster.attemptStarted(host, false);
    EXPECT_EQ(host.in_flight, 1);
    cluster.attemptDone(host, outcome, Duration(3));
    EXPECT_EQ(host.in_flight, 0);
  }
  EXPECT_EQ(host.consecutive_failures, 5u);
  observe::ServerCounters& c = counters[5];
  EXPECT_EQ(c.requests.load(), 5u);
  EXPECT_EQ(c.connect_failures.load(), 1u);
  EXPECT_EQ(c.timeouts.load(), 1u);
  EXPECT_EQ(c.resets.load(), 1u);
  EXPECT_EQ(c.responses_5xx.load(), 1u);
  EXPECT_EQ(c.invalid_responses.load(), 1u);
  EXPECT_EQ(c.in_flight.load(), 0);
  // A cancelled attempt says nothing about the host; a success resets.
  cluster.attemptStarted(host, true);
  cluster.attemptDone(host, AttemptOutcome::kCancelled, Duration(1));
  EXPECT_EQ(host.consecutive_failures, 5u);
  EXPECT_EQ(c.retries.load(), 1u);
  cluster.attemptStarted(host, false);
  cluster.attemptDone(host, AttemptOutcome::kSuccess, Duration(1));
  EXPECT_EQ(host.consecutive_failures, 0u);
}

config::Upstream servers(int n) {
  config::Upstream upstream;
  upstream.name = "app";
  for (int i = 0; i < n; ++i) {
    config::UpstreamServer server;
    server.address = *net::Address::parse("127.0.0.1:90" + std::to_string(10 + i), nullptr);
    server.index = static_cast<uint32_t>(i);
    upstream.servers.push_back(server);
  }
  upstream.passive.failures = 3;
  upstream.passive.ejection = std::chrono::seconds(10);
  upstream.passive.max_ejected_percent = 50;
  return upstream;
}

void fail(Cluster& cluster, Host& host, int times) {
  for (int i = 0; i < times; ++i) {
    cluster.attemptStarted(host, false);
    cluster.attemptDone(host, AttemptOutcome::kConnectFailure, Duration(1));
  }
}

TEST(PassiveHealth, EjectsAfterConsecutiveFailuresAndBringsBackAfterTheEjection) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(4);
  const config::Upstream config = servers(4);
  Cluster cluster(loop, config, connector, counters.data());
  Host& bad = cluster.host(0);
  fail(cluster, bad, 2);
  cluster.attemptStarted(bad, false);
  cluster.attemptDone(bad, AttemptOutcome::kSuccess, Duration(1));  // the run is broken
  fail(cluster, bad, 2);
  EXPECT_EQ(bad.health, HealthState::kHealthy);
  fail(cluster, bad, 1);  // 3 in a row
  EXPECT_EQ(bad.health, HealthState::kEjected);
  EXPECT_EQ(counters[0].ejections.load(), 1u);
  for (int i = 0; i < 40; ++i) {
    Host* picked = cluster.pick({});
    ASSERT_NE(picked, nullptr);
    EXPECT_NE(picked, &bad);
  }
  clock.advance(std::chrono::milliseconds(10001));
  loop.runOnce(event::Duration(0));  // the loop reads the time once per pass
  bool seen = false;
  for (int i = 0; i < 8; ++i)
    seen |= cluster.pick({}) == &bad;
  EXPECT_TRUE(seen) << "back in service after the ejection";
  // Failing again at once: ejected for twice as long.
  fail(cluster, bad, 3);
  EXPECT_EQ(bad.health, HealthState::kEjected);
  clock.advance(std::chrono::milliseconds(10001));
  loop.runOnce(event::Duration(0));  // the loop reads the time once per pass
  cluster.pick({});
  EXPECT_EQ(bad.health, HealthState::kEjected);
  clock.advance(std::chrono::milliseconds(10000));
  loop.runOnce(event::Duration(0));  // the loop reads the time once per pass
  cluster.pick({});
  EXPECT_EQ(bad.health, HealthState::kHealthy);
}

TEST(PassiveHealth, NeverEjectsMoreThanMaxEjected) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(4);
  const config::Upstream config = servers(4);  // 50%: at most 2 of 4
  Cluster cluster(loop, config, connector, counters.data());
  for (size_t i = 0; i < 4; ++i)
    fail(cluster, cluster.host(i), 3);
  int ejected = 0;
  for (size_t i = 0; i < 4; ++i)
    ejected += cluster.host(i).health == HealthState::kEjected ? 1 : 0;
  EXPECT_EQ(ejected, 2);
}

TEST(PassiveHealth, StateIsSharedByClustersOfTheSameGeneration) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> worker_a(2), worker_b(2);
  std::vector<ServerHealth> shared(2);  // what CounterRegion holds for the generation
  const config::Upstream config = servers(2);
  Cluster a(loop, config, connector, worker_a.data(), shared.data());
  Cluster b(loop, config, connector, worker_b.data(), shared.data());
  fail(a, a.host(1), 2);
  fail(b, b.host(1), 1);  // the third failure in a row, seen by another worker
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(a.pick({}), &a.host(0));
    EXPECT_EQ(b.pick({}), &b.host(0));
  }
}

TEST(PassiveHealth, OffMeansNoEjection) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(2);
  config::Upstream config = servers(2);
  config.passive.failures = 0;
  Cluster cluster(loop, config, connector, counters.data());
  fail(cluster, cluster.host(0), 50);
  EXPECT_EQ(cluster.host(0).health, HealthState::kHealthy);
}

}  // namespace
}  // namespace sluice::upstream
