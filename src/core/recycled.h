// Recycled<T>: a base that gives T its own operator new/delete backed by a
// small per-thread free list of T-sized blocks. For objects created and
// destroyed once per request (the proxy handler): the steady state of a
// keep-alive connection then costs no malloc and free for them. Workers are
// single-threaded processes, so a thread's list is a worker's list.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

// Under AddressSanitizer a reused block would hide a use after free of the
// previous request's handler, so sanitizer builds keep plain new/delete.
#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_RECYCLE_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_RECYCLE_BLOCKS 0
#endif
#endif
#ifndef SLUICE_RECYCLE_BLOCKS
#define SLUICE_RECYCLE_BLOCKS 1
#endif

namespace sluice::core {

template <typename T>
class Recycled {
 public:
  static void* operator new(size_t size) {
    std::vector<void*>& blocks = freeBlocks().blocks;
    if (SLUICE_RECYCLE_BLOCKS && size == sizeof(T) && !blocks.empty()) {
      void* block = blocks.back();
      blocks.pop_back();
      return block;
    }
    return ::operator new(size);
  }

  static void operator delete(void* block, size_t size) {
    std::vector<void*>& blocks = freeBlocks().blocks;
    if (SLUICE_RECYCLE_BLOCKS && size == sizeof(T) && blocks.size() < kMaxFree) {
      // reserve() once, so that push_back never allocates on the way out.
      if (blocks.capacity() < kMaxFree) blocks.reserve(kMaxFree);
      blocks.push_back(block);
      return;
    }
    ::operator delete(block);
  }

 protected:
  Recycled() = default;
  ~Recycled() = default;

 private:
  // Enough for the requests one worker has in flight at once under a heavy
  // keep-alive load; more are freed.
  static constexpr size_t kMaxFree = 1024;

  struct FreeList {
    std::vector<void*> blocks;
    ~FreeList() {
      for (void* block : blocks)
        ::operator delete(block);
    }
  };
  static FreeList& freeBlocks() {
    thread_local FreeList list;
    return list;
  }
};

}  // namespace sluice::core
