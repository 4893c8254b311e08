// ConnPool: idle keep-alive connections to one upstream server, for one
// worker. Reuses the most recently used connection first (warm, least likely
// to have hit the server's idle timeout), keeps at most max_idle, closes each
// after idle_timeout (or the server's shorter Keep-Alive timeout), and drops
// any the server closes while idle. Owned by the worker's Cluster.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "event/clock.h"
#include "event/event_loop.h"
#include "net/address.h"
#include "upstream/upstream_connection.h"

namespace sluice::upstream {

class ConnPool {
 public:
  ConnPool(event::EventLoop& loop, net::Address address, uint32_t max_idle,
           event::Duration idle_timeout);
  ~ConnPool();
  ConnPool(const ConnPool&) = delete;
  ConnPool& operator=(const ConnPool&) = delete;

  // An idle connection, or null.
  std::unique_ptr<UpstreamConnection> takeIdle();
  // Gives back a connection whose last response was complete with nothing
  // after it. `keep_alive_hint` is the server's Keep-Alive timeout if it sent
  // one (zero = none). Closes it instead when the pool is full.
  void release(std::unique_ptr<UpstreamConnection> connection, event::Duration keep_alive_hint);

  const net::Address& address() const { return address_; }
  event::EventLoop& loop() const { return loop_; }
  size_t idleCount() const { return idle_.size(); }

 private:
  friend class UpstreamConnection;
  // The server closed (or wrote to) an idle connection, or its timer fired.
  void discardIdle(UpstreamConnection* connection, const char* why);

  event::EventLoop& loop_;
  net::Address address_;
  uint32_t max_idle_;
  event::Duration idle_timeout_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // back = most recent
};

}  // namespace sluice::upstream
