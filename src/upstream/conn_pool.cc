#include "upstream/conn_pool.h"

#include <algorithm>

#include "core/log.h"

namespace sluice::upstream {

ConnPool::ConnPool(event::EventLoop& loop, Host& host, uint32_t max_idle,
                   event::Duration idle_timeout)
    : loop_(loop), host_(host), max_idle_(max_idle), idle_timeout_(idle_timeout) {}

ConnPool::~ConnPool() = default;

std::unique_ptr<UpstreamConnection> ConnPool::takeIdle() {
  if (idle_.empty()) return nullptr;
  std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
  idle_.pop_back();
  if (connection->idle_timer_) connection->idle_timer_->cancel();
  connection->idle_in_ = nullptr;
  observe::add(host_.counters->connections_idle, -1);
  observe::add(host_.counters->connections_active, 1);
  return connection;
}

void ConnPool::retire(std::unique_ptr<UpstreamConnection> connection) {
  connection->attach(nullptr);
  connection->connection().close();
  loop_.deferDelete(std::move(connection));
}

void ConnPool::release(std::unique_ptr<UpstreamConnection> connection,
                       event::Duration keep_alive_hint) {
  if (max_idle_ == 0) {
    // Pooling disabled. Not destroyed here: the caller is usually inside
    // this connection's own callback.
    retire(std::move(connection));
    return;
  }
  if (idle_.size() >= max_idle_) {
    // Full: close the oldest, keep the warm one.
    std::unique_ptr<UpstreamConnection> oldest = std::move(idle_.front());
    idle_.erase(idle_.begin());
    retire(std::move(oldest));
  }
  connection->attach(nullptr);
  connection->idle_in_ = this;
  connection->connection().setReadEnabled(true);
  connection->connection().releaseIdleMemory();
  observe::add(host_.counters->connections_active, -1);
  observe::add(host_.counters->connections_idle, 1);
  event::Duration timeout = idle_timeout_;
  // Close a little before the server's own Keep-Alive timeout so we never
  // reuse a connection it is about to close.
  if (keep_alive_hint.count() > 0) {
    const event::Duration margin = std::min(keep_alive_hint / 4, event::Duration(1000));
    timeout = std::min(timeout, keep_alive_hint - margin);
  }
  UpstreamConnection* raw = connection.get();
  if (!raw->idle_timer_) {
    raw->idle_timer_ = std::make_unique<event::Timer>(
        loop_.timers(), [this, raw] { discard(raw, "idle timeout"); });
  }
  raw->idle_timer_->arm(timeout);
  idle_.push_back(std::move(connection));
}

void ConnPool::closeIdle() {
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConnection> doomed = std::move(idle_.back());
    idle_.pop_back();
    retire(std::move(doomed));
  }
}

void ConnPool::discard(UpstreamConnection* connection, const char* why) {
  auto it = std::find_if(idle_.begin(), idle_.end(),
                         [connection](const auto& c) { return c.get() == connection; });
  if (it == idle_.end()) return;
  std::unique_ptr<UpstreamConnection> doomed = std::move(*it);
  idle_.erase(it);
  SLUICE_LOG(kDebug, "upstream " + host_.address_text + ": pooled connection closed: " + why);
  // Still counted idle until its destructor runs.
  retire(std::move(doomed));
}

}  // namespace sluice::upstream
