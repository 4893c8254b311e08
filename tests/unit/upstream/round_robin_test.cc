#include "upstream/round_robin.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::upstream {
namespace {

struct Hosts {
  explicit Hosts(const std::vector<uint32_t>& weights) {
    for (uint32_t w : weights) {
      auto host = std::make_unique<Host>();
      host->weight = w;
      host->cluster_index = static_cast<uint32_t>(owned.size());
      raw.push_back(host.get());
      owned.push_back(std::move(host));
    }
  }
  std::vector<std::unique_ptr<Host>> owned;
  std::vector<Host*> raw;
};

std::string sequence(LoadBalancer& lb, const Hosts& hosts, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    Host* h = lb.pick({});
    out.push_back(static_cast<char>('a' + h->cluster_index));
    (void)hosts;
  }
  return out;
}

TEST(RoundRobin, SmoothWeightsInterleave) {
  Hosts hosts({5, 1, 1});
  RoundRobinBalancer lb(hosts.raw);
  // nginx's smooth weighted round robin: a a b a c a a, not a a a a a b c.
  EXPECT_EQ(sequence(lb, hosts, 7), "aabacaa");
  EXPECT_EQ(sequence(lb, hosts, 7), "aabacaa");
}

TEST(RoundRobin, EqualWeightsAlternate) {
  Hosts hosts({1, 1, 1});
  RoundRobinBalancer lb(hosts.raw);
  EXPECT_EQ(sequence(lb, hosts, 6), "abcabc");
}

TEST(RoundRobin, SkipsHostsAlreadyTriedAndEndsWithNull) {
  Hosts hosts({1, 1, 1});
  RoundRobinBalancer lb(hosts.raw);
  TriedSet tried;
  std::string order;
  for (int i = 0; i < 3; ++i) {
    Host* h = lb.pick({&tried, {}});
    ASSERT_NE(h, nullptr);
    EXPECT_FALSE(tried.contains(h->cluster_index));
    tried.add(h->cluster_index);
    order.push_back(static_cast<char>('a' + h->cluster_index));
  }
  EXPECT_EQ(tried.count(), 3u);
  EXPECT_EQ(lb.pick({&tried, {}}), nullptr);
}

TEST(RoundRobin, EjectedHostsAreSkippedWhileOthersRemain) {
  Hosts hosts({1, 1});
  RoundRobinBalancer lb(hosts.raw);
  hosts.owned[0]->health = HealthState::kEjected;
  EXPECT_EQ(sequence(lb, hosts, 4), "bbbb");
  hosts.owned[1]->health = HealthState::kEjected;
  // Every host out: one is tried anyway rather than none.
  EXPECT_NE(lb.pick({}), nullptr);
}

TEST(TriedSet, HoldsMoreThan64Hosts) {
  TriedSet tried;
  tried.add(3);
  tried.add(70);
  tried.add(200);
  EXPECT_TRUE(tried.contains(3));
  EXPECT_TRUE(tried.contains(70));
  EXPECT_TRUE(tried.contains(200));
  EXPECT_FALSE(tried.contains(71));
  EXPECT_FALSE(tried.contains(500));
  EXPECT_EQ(tried.count(), 3u);
}

}  // namespace
}  // namespace sluice::upstream
