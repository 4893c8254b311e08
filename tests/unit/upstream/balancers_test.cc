// Distribution tests for least_conn, random, p2c_ewma and hash (Maglev), on
// fixed seeds and a manual clock, so every figure is reproducible.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event/clock.h"
#include "upstream/least_conn.h"
#include "upstream/maglev.h"
#include "upstream/p2c_ewma.h"
#include "upstream/random.h"

namespace sluice::upstream {
namespace {

struct Hosts {
  explicit Hosts(const std::vector<uint32_t>& weights, int first_port = 8000) {
    for (uint32_t w : weights)
      add(w, first_port + static_cast<int>(owned.size()));
  }
  void add(uint32_t weight, int port) {
    auto host = std::make_unique<Host>();
    host->weight = weight;
    host->cluster_index = static_cast<uint32_t>(owned.size());
    host->address_text = "10.0.0.1:" + std::to_string(port);
    raw.push_back(host.get());
    owned.push_back(std::move(host));
  }
  std::vector<std::unique_ptr<Host>> owned;
  std::vector<Host*> raw;
};

std::vector<int> counts(LoadBalancer& lb, size_t hosts, int picks) {
  std::vector<int> out(hosts, 0);
  for (int i = 0; i < picks; ++i)
    ++out[lb.pick({})->cluster_index];
  return out;
}

TEST(RandomBalancer, HonoursWeights) {
  Hosts hosts({1, 2, 7});
  RandomBalancer lb(hosts.raw, 42);
  const std::vector<int> n = counts(lb, 3, 100000);
  EXPECT_NEAR(n[0], 10000, 600);
  EXPECT_NEAR(n[1], 20000, 800);
  EXPECT_NEAR(n[2], 70000, 1000);
}

TEST(RandomBalancer, SkipsTriedAndEjected) {
  Hosts hosts({1, 1, 1});
  RandomBalancer lb(hosts.raw, 7);
  hosts.owned[0]->health = HealthState::kEjected;
  TriedSet tried;
  tried.add(1);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(lb.pick({&tried, {}})->cluster_index, 2u);
  tried.add(2);
  // Only the ejected one is left: it is tried rather than none.
  EXPECT_EQ(lb.pick({&tried, {}})->cluster_index, 0u);
  tried.add(0);
  EXPECT_EQ(lb.pick({&tried, {}}), nullptr);
}

TEST(LeastConnBalancer, PicksFewestInFlightPerWeight) {
  Hosts hosts({1, 1, 2});
  LeastConnBalancer lb(hosts.raw, 1);
  hosts.owned[0]->in_flight = 3;
  hosts.owned[1]->in_flight = 1;
  hosts.owned[2]->in_flight = 4;  // 4/2 = 2 per weight: more loaded than b
  EXPECT_EQ(lb.pick({})->cluster_index, 1u);
  hosts.owned[1]->in_flight = 3;  // now 3, 3, 2: c
  EXPECT_EQ(lb.pick({})->cluster_index, 2u);
}

TEST(LeastConnBalancer, CountsEveryWorkersInFlight) {
  Hosts hosts({1, 1});
  observe::ServerCounters here[2], other_worker[2];
  for (int i = 0; i < 2; ++i)
    hosts.owned[i]->peers = {&here[i], &other_worker[i]};
  other_worker[0].in_flight = 5;  // busy in another worker
  here[1].in_flight = 1;
  LeastConnBalancer lb(hosts.raw, 1);
  // This worker alone would see a = 0 < b = 1; all workers: 5 > 1.
  EXPECT_EQ(lb.pick({})->cluster_index, 1u);
}

TEST(LeastConnBalancer, SpreadsTiesAtRandom) {
  Hosts hosts({1, 1, 1, 1});
  LeastConnBalancer lb(hosts.raw, 3);
  const std::vector<int> n = counts(lb, 4, 4000);  // in_flight stays 0: all tied
  for (int c : n)
    EXPECT_NEAR(c, 1000, 150);
}

TEST(P2cEwmaBalancer, AvoidsASlowServer) {
  Hosts hosts({1, 1, 1, 1});
  event::ManualClock clock;
  P2cEwmaBalancer lb(hosts.raw, 11, clock);
  std::vector<int> n(4, 0);
  for (int i = 0; i < 4000; ++i) {
    Host* host = lb.pick({});
    ++n[host->cluster_index];
    const auto latency =
        host->cluster_index == 0 ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5);
    lb.onAttemptDone(*host, AttemptOutcome::kSuccess, latency);
    clock.advance(std::chrono::milliseconds(1));
  }
  // Two choices: the slow one is only ever taken when drawn against itself,
  // never — and it decays back into use slowly (τ = 10 s, 4 s elapsed).
  EXPECT_LT(n[0], 100);
  for (int i = 1; i < 4; ++i)
    EXPECT_GT(n[i], 1100);
}

TEST(P2cEwmaBalancer, PeakThenDecay) {
  Hosts hosts({1, 1});
  event::ManualClock clock;
  P2cEwmaBalancer lb(hosts.raw, 5, clock);
  lb.onAttemptDone(*hosts.raw[0], AttemptOutcome::kSuccess, std::chrono::milliseconds(10));
  lb.onAttemptDone(*hosts.raw[0], AttemptOutcome::kSuccess, std::chrono::milliseconds(400));
  EXPECT_DOUBLE_EQ(lb.cost(*hosts.raw[0]), 400.0);  // a slower sample counts at once
  clock.advance(std::chrono::seconds(10));
  EXPECT_NEAR(lb.cost(*hosts.raw[0]), 400.0 / 2.718281828, 1.0);  // e^-1 after τ
  hosts.owned[0]->in_flight = 3;
  EXPECT_NEAR(lb.cost(*hosts.raw[0]), 4 * 400.0 / 2.718281828, 4.0);
}

TEST(P2cEwmaBalancer, FailuresCountAsSlow) {
  Hosts hosts({1, 1});
  event::ManualClock clock;
  P2cEwmaBalancer lb(hosts.raw, 5, clock);
  lb.onAttemptDone(*hosts.raw[1], AttemptOutcome::kConnectFailure, std::chrono::milliseconds(1));
  EXPECT_GE(lb.cost(*hosts.raw[1]), 1000.0);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(lb.pick({})->cluster_index, 0u);
}

std::vector<std::string> keys(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i)
    out.push_back("client-" + std::to_string(i));
  return out;
}

TEST(MaglevBalancer, SameKeySameHostAcrossInstances) {
  Hosts a({1, 1, 1, 1, 1});
  Hosts b({1, 1, 1, 1, 1});
  MaglevBalancer lb_a(a.raw);
  MaglevBalancer lb_b(b.raw);  // another worker: same addresses, same table
  for (const std::string& key : keys(2000)) {
    Host* first = lb_a.pick({nullptr, key});
    EXPECT_EQ(first, lb_a.pick({nullptr, key}));
    EXPECT_EQ(first->cluster_index, lb_b.pick({nullptr, key})->cluster_index);
  }
}

TEST(MaglevBalancer, HonoursWeights) {
  Hosts hosts({1, 2, 3, 4});
  MaglevBalancer lb(hosts.raw);
  std::vector<int> n(4, 0);
  for (const std::string& key : keys(100000))
    ++n[lb.owner(key)->cluster_index];
  EXPECT_NEAR(n[0], 10000, 700);
  EXPECT_NEAR(n[1], 20000, 1000);
  EXPECT_NEAR(n[2], 30000, 1200);
  EXPECT_NEAR(n[3], 40000, 1400);
}

// The property that makes it consistent hashing: adding or removing one of
// N servers moves about 1/N of the keys (plus Maglev's small disruption),
// where modulo hashing would move (N-1)/N.
TEST(MaglevBalancer, AddingOrRemovingOneOfNMovesAboutOneNth) {
  constexpr int kServers = 10;
  const std::vector<std::string> all_keys = keys(50000);
  Hosts before(std::vector<uint32_t>(kServers, 1));
  MaglevBalancer lb_before(before.raw);

  Hosts grown(std::vector<uint32_t>(kServers, 1));
  grown.add(1, 9999);
  MaglevBalancer lb_grown(grown.raw);

  Hosts shrunk(std::vector<uint32_t>(kServers, 1));
  shrunk.raw.erase(shrunk.raw.begin() + 4);  // server 8004 removed
  MaglevBalancer lb_shrunk(shrunk.raw);

  int moved_on_add = 0, moved_on_remove = 0;
  for (const std::string& key : all_keys) {
    const std::string& was = lb_before.owner(key)->address_text;
    if (lb_grown.owner(key)->address_text != was) ++moved_on_add;
    if (lb_shrunk.owner(key)->address_text != was) ++moved_on_remove;
  }
  const double n = static_cast<double>(all_keys.size());
  // Ideal: 1/11 ≈ 9.1 % move to the new server; 1/10 = 10 % lose theirs.
  EXPECT_GT(moved_on_add / n, 0.07);
  EXPECT_LT(moved_on_add / n, 0.12);
  EXPECT_GT(moved_on_remove / n, 0.08);
  EXPECT_LT(moved_on_remove / n, 0.13);
  // Keys whose server stayed are the ones that should not have moved at all:
  // only keys owned by the removed server must change, others mostly stay.
  int moved_needlessly = 0;
  for (const std::string& key : all_keys) {
    const std::string& was = lb_before.owner(key)->address_text;
    if (was != "10.0.0.1:8004" && lb_shrunk.owner(key)->address_text != was) ++moved_needlessly;
  }
  EXPECT_LT(moved_needlessly / n, 0.03);
}

TEST(MaglevBalancer, RetryAndEjectionWalkOnStably) {
  Hosts hosts({1, 1, 1});
  MaglevBalancer lb(hosts.raw);
  const std::string key = "user-17";
  Host* first = lb.pick({nullptr, key});
  TriedSet tried;
  tried.add(first->cluster_index);
  Host* second = lb.pick({&tried, key});
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  EXPECT_EQ(second, lb.pick({&tried, key}));  // the same fallback every time
  first->health = HealthState::kEjected;
  EXPECT_EQ(lb.pick({nullptr, key}), second);  // ejected: same as a retry
  tried.add(second->cluster_index);
  Host* third = lb.pick({&tried, key});
  ASSERT_NE(third, nullptr);
  tried.add(third->cluster_index);
  EXPECT_EQ(lb.pick({&tried, key}), nullptr);
}

TEST(MaglevBalancer, KeylessRequestsAreSpread) {
  Hosts hosts({1, 1, 1});
  MaglevBalancer lb(hosts.raw);
  const std::vector<int> n = counts(lb, 3, 3000);
  for (int c : n)
    EXPECT_GT(c, 600);
}

TEST(MaglevBalancer, HashIsStable) {
  // Fixed values: a change here would reshuffle every deployed table.
  // (Computed independently, from the algorithm's definition.)
  EXPECT_EQ(MaglevBalancer::hash(""), 0xefd01f60ba992926ULL);
  EXPECT_EQ(MaglevBalancer::hash("client-1"), 0xf93bd2c16ac6882dULL);
  EXPECT_EQ(MaglevBalancer::hash("10.0.0.1:8000", 1), 0x6cf301ef4ecc2de2ULL);
  EXPECT_NE(MaglevBalancer::hash("a", 1), MaglevBalancer::hash("a", 2));
}

}  // namespace
}  // namespace sluice::upstream
