// TicketKeyRing: the session-ticket keys of every worker of every
// generation, in memory the master shares (never on disk): a current key
// that seals new tickets and the previous one that still opens tickets
// issued before the last rotation. The master rotates it (hourly); workers
// read it under a sequence lock, so a ticket sealed by one worker is opened
// by any other and survives reloads. One writer (the master).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::tls {

struct TicketKey {
  unsigned char name[16];
  unsigned char aes_key[32];   // AES-256-CBC
  unsigned char hmac_key[32];  // HMAC-SHA256
};

struct TicketKeyRing {
  std::atomic<uint64_t> sequence{0};  // odd while the master writes
  TicketKey current;
  TicketKey previous;
  bool has_previous = false;

  // Fresh random keys; the current one becomes the previous (master only).
  void rotate();
  // A consistent copy of both keys (any process).
  void read(TicketKey* current, TicketKey* previous, bool* has_previous) const;
};

// The ring the TLS contexts of this process use (set before any context is
// built; null = OpenSSL's own per-process keys).
void useTicketKeyRing(TicketKeyRing* ring);
TicketKeyRing* ticketKeyRing();

}  // namespace sluice::tls
