#include "process/shared_state.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace sluice::process {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "cross-process counters need lock-free atomics");

SharedState* SharedState::create() {
  void* memory = ::mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::perror("sluice: mmap of shared state");
    std::abort();
  }
  return new (memory) SharedState();
}

}  // namespace sluice::process
