// ResolvedAddresses: what DNS names of upstream servers resolved to, in
// memory shared by the master (the one writer: it resolves every name once
// for the whole process) and the workers of a generation (readers: each
// worker's Cluster turns the addresses into hosts). One ResolvedSlot per
// server slot (config::UpstreamServer::index; a name has `slots` of them),
// guarded by one sequence counter for the whole table (a seqlock): the
// writer makes it odd, changes slots, makes it even; a reader that sees it
// change or odd keeps what it had and looks again on its next pick. Every
// word is an atomic, so a reader racing the writer sees old or new words,
// never torn ones — the sequence says which.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "net/address.h"

namespace sluice::upstream {

// Whether a name has been answered yet (kept in its entry's first slot).
enum class NameState : uint32_t {
  kPending = 0,   // no answer yet: the upstream answers 503 meanwhile
  kResolved = 1,  // the slots hold the last good answer
  kFailed = 2,    // never answered successfully (the last error is logged)
};

struct ResolvedSlot {
  std::atomic<uint64_t> head{0};  // 0 = no address; else kPresent | family << 16 | port
  std::atomic<uint64_t> ip[2]{};  // the address bytes (IPv4 in the first 4)
  std::atomic<uint32_t> name_state{0};
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);

// A view of one generation's table; the memory is the CounterRegion's (or a
// worker's own when it runs without a master).
struct AddressTable {
  std::atomic<uint64_t>* sequence = nullptr;
  ResolvedSlot* slots = nullptr;  // indexed by config::UpstreamServer::index
};

// The addresses of `count` slots from `first`, or nullopt when the writer
// was busy (try later). `*state` gets the entry's NameState.
std::optional<std::vector<std::optional<net::Address>>> readSlots(const AddressTable& table,
                                                                  uint32_t first, uint32_t count,
                                                                  NameState* state);

// Writer side (the master): replaces `count` slots from `first`.
void writeSlots(const AddressTable& table, uint32_t first,
                const std::vector<std::optional<net::Address>>& addresses, NameState state);

}  // namespace sluice::upstream
