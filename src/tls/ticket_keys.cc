#include "tls/ticket_keys.h"

#include <openssl/rand.h>

#include <cstdlib>
#include <cstring>

namespace sluice::tls {
namespace {

TicketKeyRing* g_ring = nullptr;

}  // namespace

void TicketKeyRing::rotate() {
  TicketKey fresh;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&fresh), sizeof fresh) != 1) {
    std::abort();  // no randomness: nothing safe to do
  }
  sequence.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
  std::atomic_thread_fence(std::memory_order_release);
  if (sequence.load(std::memory_order_relaxed) > 1) {
    previous = current;
    has_previous = true;
  }
  current = fresh;
  std::atomic_thread_fence(std::memory_order_release);
  sequence.fetch_add(1, std::memory_order_acq_rel);  // even: done
}

void TicketKeyRing::read(TicketKey* out_current, TicketKey* out_previous,
                         bool* out_has_previous) const {
  for (;;) {
    const uint64_t before = sequence.load(std::memory_order_acquire);
    if (before & 1) continue;  // a rotation is being written (microseconds)
    std::memcpy(out_current, &current, sizeof current);
    std::memcpy(out_previous, &previous, sizeof previous);
    *out_has_previous = has_previous;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sequence.load(std::memory_order_relaxed) == before) return;
  }
}

void useTicketKeyRing(TicketKeyRing* ring) {
  g_ring = ring;
}

TicketKeyRing* ticketKeyRing() {
  return g_ring;
}

}  // namespace sluice::tls
