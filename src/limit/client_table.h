// ClientTable: per-client state that every worker of every generation shares
// — request-rate token buckets (`rate_limit`) and open connection counts
// (`limits.connections_per_client`) — in one fixed-size table placed in
// memory the master maps before the first fork. Bounded by construction:
// keys hash into a window of slots; a new key takes a free slot or evicts
// the least recently used idle one. Slots are locked one at a time with a
// spinlock (cross-process, held for a few instructions).
// Owned by the master (the mapping); workers hold a pointer. Thread/process
// safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::limit {

class alignas(64) ClientTable {
 public:
  static constexpr size_t kDefaultSlots = 1 << 16;

  // Maps a zeroed shared region for `slots` entries (a power of two).
  // Returns null if the kernel refuses.
  static ClientTable* create(size_t slots = kDefaultSlots);
  // The same table in ordinary memory (tests, a worker without a master).
  static ClientTable* createPrivate(size_t slots = kDefaultSlots);
  static void destroy(ClientTable* table);

  // A stable 64-bit key for `parts` (hashed with this table's seed, so keys
  // differ from one master to the next).
  uint64_t key(std::string_view kind, uint32_t scope, std::string_view value) const;

  struct RateDecision {
    bool allowed = true;
    int64_t retry_after_ms = 0;  // when refused: until the next token
  };
  // Takes one token from `key`'s bucket, refilled at `rate_per_second`
  // (fractions allowed) up to `burst` tokens; `now_ms` is a monotonic clock.
  RateDecision takeToken(uint64_t key, double rate_per_second, uint32_t burst, int64_t now_ms);

  // One more / one fewer open connection for `key`; acquire fails (and
  // counts nothing) at `limit`.
  bool acquireConnection(uint64_t key, uint32_t limit, int64_t now_ms);
  void releaseConnection(uint64_t key);

  size_t slotCount() const { return slots_; }
  // Entries in use (for tests and status), and how often a key found no
  // slot it could take (every candidate busy with open connections): then
  // the request or connection is allowed, not refused.
  size_t entriesInUse() const;
  uint64_t overflows() const { return overflows_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }

 private:
  struct alignas(64) Slot {
    std::atomic<uint32_t> lock{0};
    uint64_t key = 0;  // 0 = free
    int64_t last_used_ms = 0;
    double tokens = 0;
    int64_t refilled_ms = 0;
    int64_t connections = 0;
  };
  static constexpr size_t kWindow = 8;  // slots a key may live in

  ClientTable(size_t slots, uint64_t seed) : slots_(slots), seed_(seed) {}
  Slot* slotArray() { return reinterpret_cast<Slot*>(this + 1); }
  const Slot* slotArray() const { return reinterpret_cast<const Slot*>(this + 1); }
  // The slot holding `key`, locked; or a free/evicted one claimed for it;
  // or null when none can be taken. `create` = false only looks.
  Slot* lockSlot(uint64_t key, int64_t now_ms, bool create);
  static void unlock(Slot* slot) { slot->lock.store(0, std::memory_order_release); }

  size_t slots_;
  uint64_t seed_;
  bool shared_ = false;
  std::atomic<uint64_t> overflows_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace sluice::limit
