#include "core/recycled.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace sluice::core {
namespace {

struct Block : Recycled<Block> {
  char payload[96] = {};
};

// A larger derived class must not be handed a Block-sized block.
struct BiggerBlock : Block {
  char more[64] = {};
};

TEST(Recycled, FreedBlockIsReusedByTheNextObject) {
  auto* first = new Block;
  void* address = first;
  delete first;
  auto* second = new Block;
#if SLUICE_RECYCLE_BLOCKS
  EXPECT_EQ(static_cast<void*>(second), address);
#else
  (void)address;  // sanitizer build: plain new/delete, nothing to compare
#endif
  second->payload[0] = 'x';
  EXPECT_EQ(second->payload[0], 'x');
  delete second;
}

TEST(Recycled, ObjectsOfAnotherSizeUseTheGlobalHeap) {
  auto* small = new Block;
  delete small;  // now on the free list
  auto* big = new BiggerBlock;
  EXPECT_NE(static_cast<void*>(big), static_cast<void*>(small));
  big->more[63] = 'y';  // a Block-sized block would overflow here (ASan)
  EXPECT_EQ(big->more[63], 'y');
  delete big;
  auto* again = new Block;
#if SLUICE_RECYCLE_BLOCKS
  EXPECT_EQ(static_cast<void*>(again), static_cast<void*>(small));
#endif
  delete again;
}

TEST(Recycled, ManyLiveObjectsAreDistinct) {
  std::vector<std::unique_ptr<Block>> live;
  for (int i = 0; i < 2000; ++i)
    live.push_back(std::make_unique<Block>());
  live.clear();  // more than the free list keeps: the rest go to the heap
  std::vector<std::unique_ptr<Block>> again;
  for (int i = 0; i < 2000; ++i)
    again.push_back(std::make_unique<Block>());
  for (size_t i = 1; i < again.size(); ++i)
    ASSERT_NE(again[i - 1].get(), again[i].get());
}

}  // namespace
}  // namespace sluice::core
