#include "limit/client_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <new>
#include <random>

namespace sluice::limit {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t mix(uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

size_t bytesFor(size_t slots, size_t slot_size, size_t header) {
  return header + slots * slot_size;
}

}  // namespace

ClientTable* ClientTable::create(size_t slots) {
  slots = std::bit_ceil(std::max<size_t>(slots, kWindow));
  const size_t bytes = bytesFor(slots, sizeof(Slot), sizeof(ClientTable));
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  auto* table = new (memory) ClientTable(slots, std::random_device{}());
  table->shared_ = true;
  Slot* s = table->slotArray();
  for (size_t i = 0; i < slots; ++i)
    new (&s[i]) Slot();
  return table;
}

ClientTable* ClientTable::createPrivate(size_t slots) {
  slots = std::bit_ceil(std::max<size_t>(slots, kWindow));
  const size_t bytes = bytesFor(slots, sizeof(Slot), sizeof(ClientTable));
  void* memory = ::operator new (bytes, std::align_val_t{alignof(Slot)});
  auto* table = new (memory) ClientTable(slots, std::random_device{}());
  Slot* s = table->slotArray();
  for (size_t i = 0; i < slots; ++i)
    new (&s[i]) Slot();
  return table;
}

void ClientTable::destroy(ClientTable* table) {
  if (table == nullptr) return;
  const size_t bytes = bytesFor(table->slots_, sizeof(Slot), sizeof(ClientTable));
  if (table->shared_) {
    ::munmap(table, bytes);
  } else {
    ::operator delete (table, std::align_val_t{alignof(Slot)});
  }
}

uint64_t ClientTable::key(std::string_view kind, uint32_t scope, std::string_view value) const {
  uint64_t hash = mix(kFnvOffset ^ seed_, kind);
  const char scope_bytes[4] = {static_cast<char>(scope), static_cast<char>(scope >> 8),
                               static_cast<char>(scope >> 16), static_cast<char>(scope >> 24)};
  hash = mix(hash, std::string_view(scope_bytes, 4));
  hash = mix(hash, value);
  return hash == 0 ? 1 : hash;  // 0 marks a free slot
}

ClientTable::Slot* ClientTable::lockSlot(uint64_t key, int64_t now_ms, bool create) {
  Slot* table = slotArray();
  const size_t start = static_cast<size_t>(key) & (slots_ - 1);
  auto lock = [](Slot* slot) {
    while (slot->lock.exchange(1, std::memory_order_acquire) != 0) {
      // Held by another worker for a few instructions.
    }
  };
  size_t victim = slots_;
  int64_t victim_used = INT64_MAX;
  for (size_t i = 0; i < kWindow; ++i) {
    const size_t index = (start + i) & (slots_ - 1);
    Slot* slot = &table[index];
    lock(slot);
    if (slot->key == key) return slot;  // locked
    if (create) {
      // A free slot first; else the least recently used without open
      // connections (a rate bucket forgets what it is owed; a connection
      // count must not be lost).
      const int64_t used = slot->key == 0 ? INT64_MIN : slot->last_used_ms;
      if (slot->connections == 0 && used < victim_used) {
        victim = index;
        victim_used = used;
      }
    }
    unlock(slot);
  }
  if (!create) return nullptr;
  if (victim == slots_) {
    overflows_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  Slot* slot = &table[victim];
  lock(slot);
  if (slot->connections != 0 && slot->key != key) {  // taken meanwhile
    unlock(slot);
    overflows_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (slot->key != key) {
    if (slot->key != 0) evictions_.fetch_add(1, std::memory_order_relaxed);
    slot->key = key;
    slot->tokens = -1;  // a fresh bucket, filled on first use
    slot->refilled_ms = now_ms;
    slot->connections = 0;
  }
  slot->last_used_ms = now_ms;
  return slot;
}

ClientTable::RateDecision ClientTable::takeToken(uint64_t key, double rate_per_second,
                                                 uint32_t burst, int64_t now_ms) {
  RateDecision decision;
  Slot* slot = lockSlot(key, now_ms, /*create=*/true);
  if (slot == nullptr) return decision;  // fail open: see overflows()
  const double capacity = std::max<double>(burst, 1.0);
  if (slot->tokens < 0) {
    slot->tokens = capacity;  // a new client starts with a full bucket
  } else {
    const double elapsed_s = static_cast<double>(now_ms - slot->refilled_ms) / 1000.0;
    if (elapsed_s > 0)
      slot->tokens = std::min(capacity, slot->tokens + elapsed_s * rate_per_second);
  }
  slot->refilled_ms = now_ms;
  slot->last_used_ms = now_ms;
  if (slot->tokens >= 1.0) {
    slot->tokens -= 1.0;
  } else {
    decision.allowed = false;
    const double missing = 1.0 - slot->tokens;
    decision.retry_after_ms =
        rate_per_second > 0 ? static_cast<int64_t>(std::ceil(missing / rate_per_second * 1000.0))
                            : 1000;
  }
  unlock(slot);
  return decision;
}

bool ClientTable::acquireConnection(uint64_t key, uint32_t limit, int64_t now_ms) {
  Slot* slot = lockSlot(key, now_ms, /*create=*/true);
  if (slot == nullptr) return true;  // fail open: see overflows()
  bool ok = slot->connections < static_cast<int64_t>(limit);
  if (ok) ++slot->connections;
  slot->last_used_ms = now_ms;
  unlock(slot);
  return ok;
}

void ClientTable::releaseConnection(uint64_t key) {
  Slot* slot = lockSlot(key, 0, /*create=*/false);
  if (slot == nullptr) return;
  if (slot->connections > 0) --slot->connections;
  unlock(slot);
}

size_t ClientTable::entriesInUse() const {
  size_t used = 0;
  const Slot* table = slotArray();
  for (size_t i = 0; i < slots_; ++i)
    used += table[i].key != 0 ? 1 : 0;
  return used;
}

}  // namespace sluice::limit
