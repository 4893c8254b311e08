#include "upstream/conn_pool.h"

#include <algorithm>

#include "core/log.h"

namespace sluice::upstream {

ConnPool::ConnPool(event::EventLoop& loop, net::Address address, uint32_t max_idle,
                   event::Duration idle_timeout)
    : loop_(loop), address_(std::move(address)), max_idle_(max_idle), idle_timeout_(idle_timeout) {}

ConnPool::~ConnPool() = default;

std::unique_ptr<UpstreamConnection> ConnPool::takeIdle() {
  if (idle_.empty()) return nullptr;
  std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
  idle_.pop_back();
  connection->idle_timer_.reset();
  return connection;
}

void ConnPool::release(std::unique_ptr<UpstreamConnection> connection,
                       event::Duration keep_alive_hint) {
  if (max_idle_ == 0) return;  // destroyed: pooling disabled
  if (idle_.size() >= max_idle_) {
    // Full: close the oldest, keep the warm one.
    idle_.erase(idle_.begin());
  }
  connection->setOwner(nullptr);
  connection->in().releaseIfEmpty();
  connection->out().releaseIfEmpty();
  event::Duration timeout = idle_timeout_;
  // Close a little before the server's own Keep-Alive timeout so we never
  // reuse a connection it is about to close.
  if (keep_alive_hint.count() > 0) {
    event::Duration margin = std::min(keep_alive_hint / 4, event::Duration(1000));
    timeout = std::min(timeout, keep_alive_hint - margin);
  }
  UpstreamConnection* raw = connection.get();
  connection->idle_timer_ = std::make_unique<event::Timer>(
      loop_.timers(), [this, raw] { discardIdle(raw, "idle timeout"); });
  connection->idle_timer_->arm(timeout);
  idle_.push_back(std::move(connection));
  // The server may have closed it between its response and now; the edge for
  // that may already have been delivered to the exchange.
  loop_.addPending(raw->fd(), event::kReadable);
}

void ConnPool::discardIdle(UpstreamConnection* connection, const char* why) {
  auto it = std::find_if(idle_.begin(), idle_.end(),
                         [connection](const auto& c) { return c.get() == connection; });
  if (it == idle_.end()) return;
  // The connection (and the timer whose callback may be running) must not be
  // destroyed on its own stack: move it out and destroy it after the pass.
  std::shared_ptr<UpstreamConnection> doomed(std::move(*it));
  idle_.erase(it);
  loop_.removeFd(doomed->fd());
  SLUICE_LOG(kDebug, "upstream " + address_.toString() + ": pooled connection closed: " + why);
  loop_.defer([doomed] {});
}

}  // namespace sluice::upstream
