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

}  // namespace
}  // namespace sluice::upstream
