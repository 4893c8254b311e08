// ConnPool: the idle keep-alive connections to one upstream host, for one
// worker. Reuses the most recently used connection first (warm, least likely
// to have hit the server's idle timeout), keeps at most max_idle, closes each
// after idle_timeout (or a little before the server's own Keep-Alive
// timeout), and drops any the server closes while idle — the connection
// stays registered, so that arrives as an event. Owned by its Host.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "event/clock.h"
#include "event/event_loop.h"
#include "upstream/upstream_connection.h"

namespace sluice::upstream {

class ConnPool {
 public:
  ConnPool(event::EventLoop& loop, Host& host, uint32_t max_idle, event::Duration idle_timeout);
  ~ConnPool();
  ConnPool(const ConnPool&) = delete;
  ConnPool& operator=(const ConnPool&) = delete;

  // An idle connection, or null.
  std::unique_ptr<UpstreamConnection> takeIdle();
  // Gives back a connection whose last response was complete with nothing
  // after it. `keep_alive_hint` is the server's Keep-Alive timeout if it sent
  // one (zero = none). When pooling is off or the pool is full, the
  // connection (or the oldest idle one) is closed — destroyed at the end of
  // the pass, since release() is usually called from its own callback.
  void release(std::unique_ptr<UpstreamConnection> connection, event::Duration keep_alive_hint);
  size_t idleCount() const { return idle_.size(); }
  // Closes every idle connection (the host left DNS).
  void closeIdle();

 private:
  friend class UpstreamConnection;
  // The server closed (or wrote to) an idle connection, or its timer fired.
  void discard(UpstreamConnection* connection, const char* why);
  void retire(std::unique_ptr<UpstreamConnection> connection);

  event::EventLoop& loop_;
  Host& host_;
  uint32_t max_idle_;
  event::Duration idle_timeout_;
  std::vector<std::unique_ptr<UpstreamConnection>> idle_;  // back = most recent
};

}  // namespace sluice::upstream
