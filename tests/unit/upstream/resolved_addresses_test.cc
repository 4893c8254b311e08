// The DNS table between the master (writer) and the workers (readers), and
// a Cluster following it: hosts appear, move and leave with the answers,
// the balancer only offers present ones, and an upstream with no address
// says why.
#include "upstream/resolved_addresses.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "config/config.h"
#include "event/clock.h"
#include "event/event_loop.h"
#include "unit/support/memory_connector.h"
#include "upstream/cluster.h"

namespace sluice::upstream {
namespace {

net::Address ip(const std::string& text) {
  return *net::Address::parse(text, nullptr);
}

struct Table {
  explicit Table(size_t count) : slots(count) {}
  std::atomic<uint64_t> sequence{0};
  std::vector<ResolvedSlot> slots;
  AddressTable view() { return {&sequence, slots.data()}; }
};

TEST(ResolvedAddresses, WrittenSlotsReadBackWithTheirState) {
  Table table(6);
  NameState state = NameState::kResolved;
  auto empty = readSlots(table.view(), 2, 3, &state);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(state, NameState::kPending);
  for (const auto& slot : *empty)
    EXPECT_FALSE(slot.has_value());
  writeSlots(table.view(), 2, {ip("10.0.0.1:80"), std::nullopt, ip("[2001:db8::7]:8080")},
             NameState::kResolved);
  EXPECT_EQ(table.sequence.load(), 2u);  // even: no write in progress
  auto read = readSlots(table.view(), 2, 3, &state);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(state, NameState::kResolved);
  ASSERT_TRUE((*read)[0].has_value());
  EXPECT_EQ((*read)[0]->toString(), "10.0.0.1:80");
  EXPECT_FALSE((*read)[1].has_value());
  EXPECT_EQ((*read)[2]->toString(), "[2001:db8::7]:8080");
  // Other entries' slots are untouched.
  auto other = readSlots(table.view(), 0, 2, &state);
  EXPECT_FALSE((*other)[0].has_value());
  EXPECT_FALSE((*other)[1].has_value());
}

TEST(ResolvedAddresses, AReaderRacingTheWriterGetsNothingRatherThanAMix) {
  Table table(2);
  table.sequence.store(3);  // odd: the writer is in the middle of a change
  NameState state;
  EXPECT_FALSE(readSlots(table.view(), 0, 2, &state).has_value());
}

config::Upstream namedUpstream(uint32_t slots, config::BalancePolicy policy) {
  config::Upstream upstream;
  upstream.name = "app";
  upstream.balance = policy;
  config::UpstreamServer fixed;
  fixed.address = ip("127.0.0.1:9000");
  fixed.index = 0;
  upstream.servers.push_back(fixed);
  config::UpstreamServer named;
  named.name = "app.test";
  named.port = 8080;
  named.index = 1;
  named.slots = slots;
  upstream.servers.push_back(named);
  return upstream;
}

std::set<std::string> pickedAddresses(Cluster& cluster, int picks) {
  std::set<std::string> seen;
  for (int i = 0; i < picks; ++i) {
    Host* host = cluster.pick({});
    if (host != nullptr) seen.insert(host->address_text);
  }
  return seen;
}

TEST(ClusterFollowsDns, HostsAppearMoveAndLeaveWithTheAnswers) {
  for (auto policy : {config::BalancePolicy::kRoundRobin, config::BalancePolicy::kLeastConn,
                      config::BalancePolicy::kRandom, config::BalancePolicy::kP2cEwma,
                      config::BalancePolicy::kHash}) {
    SCOPED_TRACE(config::balancePolicyName(policy));
    event::ManualClock clock;
    event::EventLoop loop(clock);
    testing::MemoryConnector connector;
    std::vector<observe::ServerCounters> counters(4);
    Table table(4);
    const AddressTable view = table.view();
    const config::Upstream config = namedUpstream(3, policy);
    Cluster cluster(loop, config, connector, counters.data(), nullptr, nullptr, &view);
    EXPECT_EQ(cluster.hostCount(), 4u);  // 1 fixed + 3 slots
    EXPECT_EQ(cluster.presentCount(), 1u);
    EXPECT_EQ(pickedAddresses(cluster, 20), std::set<std::string>{"127.0.0.1:9000"});

    writeSlots(view, 1, {ip("10.0.0.1:8080"), ip("10.0.0.2:8080"), std::nullopt},
               NameState::kResolved);
    EXPECT_EQ(pickedAddresses(cluster, 60),
              (std::set<std::string>{"127.0.0.1:9000", "10.0.0.1:8080", "10.0.0.2:8080"}));
    EXPECT_EQ(cluster.presentCount(), 3u);
    Host& second = cluster.host(2);
    EXPECT_EQ(second.origin_name, "app.test");
    EXPECT_EQ(second.counters, &counters[2]);  // the slot's counters

    // 10.0.0.1 leaves, 10.0.0.3 arrives in the free slot; 10.0.0.2 stays
    // the same Host (its pool and in-flight count carry on).
    second.in_flight = 1;
    writeSlots(view, 1, {std::nullopt, ip("10.0.0.2:8080"), ip("10.0.0.3:8080")},
               NameState::kResolved);
    EXPECT_EQ(cluster.pick({}) != nullptr, true);  // reads the change
    EXPECT_EQ(&cluster.host(2), &second);
    EXPECT_EQ(second.in_flight, 1);
    second.in_flight = 0;  // (least_conn and p2c_ewma would avoid it)
    EXPECT_EQ(pickedAddresses(cluster, 60),
              (std::set<std::string>{"127.0.0.1:9000", "10.0.0.2:8080", "10.0.0.3:8080"}));
    EXPECT_FALSE(cluster.host(1).present);
    EXPECT_TRUE(cluster.unavailableReason().empty());
  }
}

TEST(ClusterFollowsDns, NoAddressYetIs503WithAReason) {
  event::ManualClock clock;
  event::EventLoop loop(clock);
  testing::MemoryConnector connector;
  std::vector<observe::ServerCounters> counters(3);
  Table table(3);
  const AddressTable view = table.view();
  config::Upstream config = namedUpstream(2, config::BalancePolicy::kRoundRobin);
  config.servers.erase(config.servers.begin());
  config.servers[0].index = 0;
  Cluster cluster(loop, config, connector, counters.data(), nullptr, nullptr, &view);
  EXPECT_EQ(cluster.pick({}), nullptr);
  EXPECT_EQ(cluster.unavailableReason(), "app.test:8080 has not resolved yet");
  writeSlots(view, 0, {std::nullopt, std::nullopt}, NameState::kFailed);
  EXPECT_EQ(cluster.pick({}), nullptr);
  EXPECT_EQ(cluster.unavailableReason(), "app.test:8080 does not resolve");
  writeSlots(view, 0, {std::nullopt, ip("10.0.0.9:8080")}, NameState::kResolved);
  Host* host = cluster.pick({});
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->address_text, "10.0.0.9:8080");
  EXPECT_EQ(cluster.unavailableReason(), "");
}

TEST(ClusterAllDown, RefuseAnswersAtOnceTryAllPicksAnyway) {
  for (auto mode : {config::AllDown::kTryAll, config::AllDown::kRefuse}) {
    event::ManualClock clock;
    event::EventLoop loop(clock);
    testing::MemoryConnector connector;
    std::vector<observe::ServerCounters> counters(1);
    std::vector<ServerHealth> health(1);
    config::Upstream config;
    config.name = "app";
    config.all_down = mode;
    config.health_check.enabled = true;
    config::UpstreamServer server;
    server.address = ip("127.0.0.1:9000");
    config.servers.push_back(server);
    Cluster cluster(loop, config, connector, counters.data(), health.data());
    ASSERT_NE(cluster.pick({}), nullptr);
    health[0].active_down.store(1);  // failing its health check
    if (mode == config::AllDown::kRefuse) {
      EXPECT_EQ(cluster.pick({}), nullptr);
      EXPECT_EQ(cluster.unavailableReason(), "every server is out of service (all_down: refuse)");
    } else {
      EXPECT_NE(cluster.pick({}), nullptr);  // Envoy's panic mode
      EXPECT_EQ(cluster.unavailableReason(), "");
    }
    health[0].active_down.store(0);
    EXPECT_NE(cluster.pick({}), nullptr);
  }
}

}  // namespace
}  // namespace sluice::upstream
