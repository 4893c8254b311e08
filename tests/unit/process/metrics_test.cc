#include "process/metrics.h"

#include <sys/mman.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <string>

namespace sluice::process {
namespace {

using observe::RouteCounters;
using observe::WorkerCounters;

constexpr size_t kWords = LabelSet::kCarriedWords;
constexpr size_t kRequestsWord = offsetof(WorkerCounters, requests) / sizeof(observe::Counter);
constexpr size_t k2xxWord = offsetof(RouteCounters, requests) / sizeof(observe::Counter) + 1;

struct MappedState {
  SharedState* state = SharedState::create();
  ~MappedState() { ::munmap(state, sizeof(SharedState)); }
};

void publish(SharedState& shared, size_t entry, uint32_t id, const CounterRegion* region) {
  shared.beginWrite();
  shared.live[entry].region.store(region);
  shared.live[entry].id.store(id);
  shared.endWrite();
}

void retire(SharedState& shared, size_t entry, const CounterRegion& region) {
  shared.beginWrite();
  region.addWorkerTotalsTo(&shared.carried);
  region.addKeyedTotalsTo(shared.label_sets);
  shared.live[entry].id.store(0);
  shared.live[entry].region.store(nullptr);
  shared.endWrite();
}

TEST(SharedState, LabelSetsAreKeyedByValue) {
  MappedState mapped;
  SharedState& shared = *mapped.state;
  const uint32_t a = shared.labelSetFor(LabelSet::Kind::kRoute, "web", "0", "app");
  const uint32_t b = shared.labelSetFor(LabelSet::Kind::kRoute, "web", "1", "app");
  EXPECT_NE(a, b);
  EXPECT_EQ(shared.labelSetFor(LabelSet::Kind::kRoute, "web", "0", "app"), a);
  EXPECT_NE(shared.labelSetFor(LabelSet::Kind::kServer, "web", "0", "app"), a);
  EXPECT_EQ(shared.labelSetFor(LabelSet::Kind::kRoute, std::string(64, 'x'), "0", ""),
            SharedState::kNoLabelSet);
  EXPECT_EQ(shared.figures.label_sets_dropped.load(), 1u);
  EXPECT_EQ(shared.label_sets[b].label(1), "1");
}

// Two generations live, then the older one retires: the sums are the same
// before and after, and per-route counts follow the route's names even when
// the new config numbers it differently.
TEST(MetricsCollector, SumsLiveGenerationsAndCarried) {
  MappedState mapped;
  SharedState& shared = *mapped.state;
  const uint32_t api = shared.labelSetFor(LabelSet::Kind::kRoute, "web", "0", "api");
  const uint32_t app = shared.labelSetFor(LabelSet::Kind::kRoute, "web", "1", "app");
  auto g1 = CounterRegion::create(2, 2, 0);
  g1->setLabelSets({api, app}, {});
  publish(shared, 0, 1, g1.get());
  auto g2 = CounterRegion::create(2, 1, 0);
  g2->setLabelSets({app}, {});  // "app" is route 0 of generation 2
  publish(shared, 3, 2, g2.get());

  observe::add(g1->worker(0).requests, 3);
  observe::add(g1->worker(1).requests, 4);
  observe::add(g1->routeCounters(0)[0].requests[1], 3);
  observe::add(g1->routeCounters(1)[1].requests[1], 4);
  observe::add(g2->worker(1).requests, 5);
  observe::add(g2->routeCounters(1)[0].requests[1], 5);
  observe::add(g1->worker(0).connections_active, 2);  // a gauge: live only

  MetricsCollector collector(shared, 2);
  ASSERT_EQ(collector.snapshot(), MetricsCollector::Result::kOk);
  EXPECT_EQ(collector.workerWords()[kRequestsWord], 12u);
  EXPECT_EQ(collector.labelSetWords()[api * kWords + k2xxWord], 3u);
  EXPECT_EQ(collector.labelSetWords()[app * kWords + k2xxWord], 9u);

  retire(shared, 0, *g1);
  g1.reset();
  ASSERT_EQ(collector.snapshot(), MetricsCollector::Result::kOk);
  EXPECT_EQ(collector.workerWords()[kRequestsWord], 12u);
  EXPECT_EQ(collector.workerWords()[offsetof(WorkerCounters, connections_active) / 8], 0u);
  EXPECT_EQ(collector.labelSetWords()[api * kWords + k2xxWord], 3u);
  EXPECT_EQ(collector.labelSetWords()[app * kWords + k2xxWord], 9u);

  std::string text;
  ASSERT_EQ(collector.render(observe::MetricsFormat::kOpenMetrics, &text),
            MetricsCollector::Result::kOk);
  EXPECT_NE(text.find("sluice_http_requests_total{listener=\"web\",route=\"0\",upstream=\"api\","
                      "code=\"2xx\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_http_requests_total{listener=\"web\",route=\"1\",upstream=\"app\","
                      "code=\"2xx\"} 9\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_client_requests_total 12\n"), std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
}

// An older generation's worker cannot read a newer region: it says so
// rather than answer figures that would go backwards.
TEST(MetricsCollector, OlderGenerationDefersToNewer) {
  MappedState mapped;
  SharedState& shared = *mapped.state;
  auto g1 = CounterRegion::create(1, 0, 0);
  auto g2 = CounterRegion::create(1, 0, 0);
  publish(shared, 0, 1, g1.get());
  publish(shared, 1, 2, g2.get());
  MetricsCollector older(shared, 1);
  std::string text;
  EXPECT_EQ(older.render(observe::MetricsFormat::kPrometheus, &text),
            MetricsCollector::Result::kNotNewest);
  EXPECT_TRUE(text.empty());
  MetricsCollector newer(shared, 2);
  EXPECT_EQ(newer.render(observe::MetricsFormat::kPrometheus, &text),
            MetricsCollector::Result::kOk);
}

// A reader never takes a snapshot while the master is between beginWrite
// and endWrite (here: never ends).
TEST(MetricsCollector, NoSnapshotDuringAWrite) {
  MappedState mapped;
  SharedState& shared = *mapped.state;
  shared.beginWrite();
  MetricsCollector collector(shared, 1);
  EXPECT_EQ(collector.snapshot(), MetricsCollector::Result::kBusy);
  shared.endWrite();
  EXPECT_EQ(collector.snapshot(), MetricsCollector::Result::kOk);
}

}  // namespace
}  // namespace sluice::process
