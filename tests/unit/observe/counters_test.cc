#include "observe/counters.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sluice::observe {
namespace {

// Every atomic of a struct is described exactly once, so that folding a
// finished generation (and /metrics) misses no counter.
template <typename T>
void expectFieldsCoverStruct() {
  std::set<size_t> offsets;
  std::set<std::string> names;
  for (const CounterField& field : T::fields()) {
    EXPECT_TRUE(offsets.insert(field.offset).second) << field.name;
    EXPECT_TRUE(names.insert(field.name).second) << field.name;
    EXPECT_EQ(field.offset % sizeof(Counter), 0u) << field.name;
    EXPECT_LT(field.offset, sizeof(T)) << field.name;
  }
  // Counters and gauges are both 8 bytes: the struct holds nothing else
  // besides the padding that aligns it to a cache line.
  EXPECT_EQ(((offsets.size() * sizeof(Counter) + kCacheLine - 1) / kCacheLine) * kCacheLine,
            sizeof(T));
}

TEST(Counters, FieldDescriptorsCoverEveryAtomic) {
  expectFieldsCoverStruct<WorkerCounters>();
  expectFieldsCoverStruct<RouteCounters>();
  expectFieldsCoverStruct<ServerCounters>();
}

TEST(Counters, StructsAreCacheLineAligned) {
  EXPECT_EQ(alignof(WorkerCounters), kCacheLine);
  EXPECT_EQ(alignof(RouteCounters), kCacheLine);
  EXPECT_EQ(alignof(ServerCounters), kCacheLine);
}

TEST(Counters, StatusClasses) {
  EXPECT_EQ(statusClassOf(100), StatusClass::k1xx);
  EXPECT_EQ(statusClassOf(204), StatusClass::k2xx);
  EXPECT_EQ(statusClassOf(308), StatusClass::k3xx);
  EXPECT_EQ(statusClassOf(499), StatusClass::k4xx);
  EXPECT_EQ(statusClassOf(503), StatusClass::k5xx);
  EXPECT_EQ(statusClassOf(0), StatusClass::kNone);
  EXPECT_EQ(statusClassOf(600), StatusClass::kNone);
}

}  // namespace
}  // namespace sluice::observe
