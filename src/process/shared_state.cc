#include "process/shared_state.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace sluice::process {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "cross-process counters need lock-free atomics");
static_assert(std::atomic<const CounterRegion*>::is_always_lock_free);
static_assert(sizeof(observe::RouteCounters) <= LabelSet::kCarriedWords * sizeof(uint64_t));
static_assert(sizeof(observe::ServerCounters) <= LabelSet::kCarriedWords * sizeof(uint64_t));

SharedState* SharedState::create() {
  void* memory = ::mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::perror("sluice: mmap of shared state");
    std::abort();
  }
  return new (memory) SharedState();
}

uint32_t SharedState::labelSetFor(LabelSet::Kind kind, std::string_view a, std::string_view b,
                                  std::string_view c) {
  const std::string_view values[3] = {a, b, c};
  const uint32_t count = label_set_count.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < count; ++i) {
    const LabelSet& set = label_sets[i];
    if (set.kind == kind && set.label(0) == a && set.label(1) == b && set.label(2) == c) return i;
  }
  for (const std::string_view value : values) {
    if (value.size() >= LabelSet::kMaxLabelBytes || value.find('\0') != std::string_view::npos) {
      observe::add(figures.label_sets_dropped);
      return kNoLabelSet;
    }
  }
  if (count >= kMaxLabelSets) {
    observe::add(figures.label_sets_dropped);
    return kNoLabelSet;
  }
  LabelSet& set = label_sets[count];
  set.kind = kind;
  for (size_t i = 0; i < 3; ++i) {
    std::memcpy(set.labels[i], values[i].data(), values[i].size());
    set.labels[i][values[i].size()] = '\0';
  }
  // Published: a reader that sees the count sees the labels.
  label_set_count.store(count + 1, std::memory_order_release);
  return count;
}

upstream::NamedFigures* SharedState::figuresFor(upstream::NamedFigures* table,
                                                std::atomic<uint32_t>& count,
                                                const std::string& name) {
  const uint32_t n = count.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < n; ++i) {
    if (table[i].nameView() == name) return &table[i];
  }
  if (n >= kMaxNamedFigures || name.size() >= upstream::NamedFigures::kMaxName) return nullptr;
  std::memcpy(table[n].name, name.data(), name.size());
  table[n].name[name.size()] = '\0';
  count.store(n + 1, std::memory_order_release);  // readers see the name first
  return &table[n];
}

}  // namespace sluice::process
