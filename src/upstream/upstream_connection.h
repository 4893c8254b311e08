// UpstreamConnection: one TCP (or unix) connection to an upstream server with
// its two buffers. While a request uses it, readiness goes to its Owner (the
// proxy exchange); while it sits idle in a ConnPool, the pool watches it for
// the server closing it. Owned by a unique_ptr held by the exchange or pool;
// lives on one worker loop.
#pragma once

#include <cstdint>
#include <memory>

#include "buffer/buffer.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "net/address.h"

namespace sluice::upstream {

class ConnPool;

class UpstreamConnection final : public event::IoHandler {
 public:
  class Owner {
   public:
    virtual void onUpstreamReady(uint32_t ready_bits) = 0;

   protected:
    ~Owner() = default;
  };

  // Starts a non-blocking connect; returns null and sets *error (errno) on
  // immediate failure (e.g. ECONNREFUSED on loopback).
  static std::unique_ptr<UpstreamConnection> connect(event::EventLoop& loop, ConnPool& pool,
                                                     int* error);
  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  void onReady(uint32_t ready_bits) override;

  void setOwner(Owner* owner) { owner_ = owner; }
  int fd() const { return fd_; }
  ConnPool& pool() const { return pool_; }
  Buffer& in() { return in_; }
  Buffer& out() { return out_; }

  // True until the first writability after connect() (then check SO_ERROR).
  bool connecting() const { return connecting_; }
  void setConnected() { connecting_ = false; }
  // Requests completed on this connection; > 0 means it came from the pool,
  // where the server may close it just as we reuse it.
  uint32_t requestsServed() const { return requests_served_; }
  void countRequest() { ++requests_served_; }

 private:
  friend class ConnPool;
  UpstreamConnection(event::EventLoop& loop, ConnPool& pool, int fd, bool connecting);

  event::EventLoop& loop_;
  ConnPool& pool_;
  int fd_;
  Owner* owner_ = nullptr;  // null while idle in the pool
  Buffer in_;
  Buffer out_;
  bool connecting_;
  uint32_t requests_served_ = 0;
  std::unique_ptr<event::Timer> idle_timer_;  // armed while pooled
};

}  // namespace sluice::upstream
