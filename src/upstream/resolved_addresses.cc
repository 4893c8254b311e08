#include "upstream/resolved_addresses.h"

#include <netinet/in.h>

#include <cstring>

namespace sluice::upstream {
namespace {

constexpr uint64_t kPresent = uint64_t{1} << 63;
constexpr uint64_t kFamily6 = 6;
constexpr uint64_t kFamily4 = 4;

void encode(const net::Address& address, uint64_t* head, uint64_t ip[2]) {
  sockaddr_storage storage{};
  address.toSockaddr(&storage);
  ip[0] = ip[1] = 0;
  if (storage.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    std::memcpy(ip, &sin6->sin6_addr, 16);
    *head = kPresent | kFamily6 << 16 | address.port();
  } else {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    std::memcpy(ip, &sin->sin_addr, 4);
    *head = kPresent | kFamily4 << 16 | address.port();
  }
}

net::Address decode(uint64_t head, const uint64_t ip[2]) {
  const auto port = static_cast<uint16_t>(head & 0xffff);
  if (((head >> 16) & 0xff) == kFamily6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    std::memcpy(&sin6.sin6_addr, ip, 16);
    return net::Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  std::memcpy(&sin.sin_addr, ip, 4);
  return net::Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
}

}  // namespace

std::optional<std::vector<std::optional<net::Address>>> readSlots(const AddressTable& table,
                                                                  uint32_t first, uint32_t count,
                                                                  NameState* state) {
  const uint64_t before = table.sequence->load(std::memory_order_acquire);
  if (before & 1) return std::nullopt;
  struct Raw {
    uint64_t head;
    uint64_t ip[2];
  };
  std::vector<Raw> raw(count);
  for (uint32_t i = 0; i < count; ++i) {
    const ResolvedSlot& slot = table.slots[first + i];
    raw[i].head = slot.head.load(std::memory_order_relaxed);
    raw[i].ip[0] = slot.ip[0].load(std::memory_order_relaxed);
    raw[i].ip[1] = slot.ip[1].load(std::memory_order_relaxed);
  }
  const auto name_state = table.slots[first].name_state.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (table.sequence->load(std::memory_order_relaxed) != before) return std::nullopt;
  std::vector<std::optional<net::Address>> out(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (raw[i].head & kPresent) out[i] = decode(raw[i].head, raw[i].ip);
  }
  *state = static_cast<NameState>(name_state);
  return out;
}

void writeSlots(const AddressTable& table, uint32_t first,
                const std::vector<std::optional<net::Address>>& addresses, NameState state) {
  const uint64_t sequence = table.sequence->load(std::memory_order_relaxed);
  table.sequence->store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < addresses.size(); ++i) {
    ResolvedSlot& slot = table.slots[first + i];
    uint64_t head = 0;
    uint64_t ip[2] = {0, 0};
    if (addresses[i]) encode(*addresses[i], &head, ip);
    slot.head.store(head, std::memory_order_relaxed);
    slot.ip[0].store(ip[0], std::memory_order_relaxed);
    slot.ip[1].store(ip[1], std::memory_order_relaxed);
  }
  table.slots[first].name_state.store(static_cast<uint32_t>(state), std::memory_order_relaxed);
  table.sequence->store(sequence + 2, std::memory_order_release);
}

}  // namespace sluice::upstream
