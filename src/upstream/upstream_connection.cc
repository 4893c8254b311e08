#include "upstream/upstream_connection.h"

#include "upstream/conn_pool.h"

namespace sluice::upstream {

std::unique_ptr<UpstreamConnection> UpstreamConnection::open(event::EventLoop& loop, Host& host,
                                                             Connector& connector, int* error,
                                                             Buffer preface) {
  std::unique_ptr<net::Transport> transport =
      connector.connect(host.address, host.origin_name, std::move(preface), error);
  if (!transport) return nullptr;
  std::unique_ptr<UpstreamConnection> connection(
      new UpstreamConnection(loop, host, std::move(transport)));
  const int err = connection->connection_.start(/*handshake=*/true);
  if (err != 0) {
    *error = err;
    return nullptr;
  }
  observe::add(host.counters->connections_opened);
  observe::add(host.counters->connections_active, 1);
  return connection;
}

UpstreamConnection::UpstreamConnection(event::EventLoop& loop, Host& host,
                                       std::unique_ptr<net::Transport> transport)
    : host_(host), connection_(loop, std::move(transport)) {
  connection_.setCallbacks(this);
}

UpstreamConnection::~UpstreamConnection() {
  // Active unless pooled (the pool moved it to idle).
  if (idle_in_ != nullptr) {
    observe::add(host_.counters->connections_idle, -1);
  } else {
    observe::add(host_.counters->connections_active, -1);
  }
}

void UpstreamConnection::attach(User* user) {
  user_ = user;
  codec_.setCallbacks(user);
}

void UpstreamConnection::setResponseFlow(bool flowing) {
  if (flowing) {
    codec_.resume();
    connection_.setReadEnabled(true);
    // Bytes, an EOF, or the end of a message the codec has yet to report
    // (it may end without another byte) were held back while paused: look
    // at them on this pass's pending list, not re-entrantly.
    connection_.redeliver();
  } else {
    codec_.pause();
    connection_.setReadEnabled(false);
  }
}

bool UpstreamConnection::reusable() const {
  return connection_.open() && !peer_closed_ && connection_.input().empty();
}

void UpstreamConnection::onConnected() {
  if (user_) user_->onUpstreamConnected();
}

void UpstreamConnection::onReadable() {
  if (idle_in_ != nullptr) {
    // A server must not send anything unasked; whatever it is, this
    // connection can no longer carry a request safely.
    if (!connection_.input().empty()) idle_in_->discard(this, "unexpected bytes while idle");
    return;
  }
  if (!user_) return;
  codec_.decode(connection_.input());
  if (user_ == nullptr) return;  // let go of inside a callback
  maybeFinish();
}

void UpstreamConnection::onPeerClosed() {
  peer_closed_ = true;
  if (idle_in_ != nullptr) {
    idle_in_->discard(this, "closed by the server while idle");
    return;
  }
  maybeFinish();
}

void UpstreamConnection::maybeFinish() {
  // The EOF is acted on once every byte before it has been decoded.
  if (!peer_closed_ || !user_ || codec_.paused() || !connection_.input().empty()) return;
  User* user = user_;
  if (!codec_.finish()) user->onUpstreamClosed(0);
}

void UpstreamConnection::onAboveHighWatermark() {
  if (user_) user_->onUpstreamWriteBlocked();
}

void UpstreamConnection::onBelowLowWatermark() {
  if (user_) user_->onUpstreamWriteUnblocked();
}

void UpstreamConnection::onOutputDrained() {
  if (user_) user_->onUpstreamRequestSent();
}

void UpstreamConnection::onTransportError(int error) {
  if (idle_in_ != nullptr) {
    idle_in_->discard(this, "error while idle");
    return;
  }
  if (user_) user_->onUpstreamClosed(error);
}

}  // namespace sluice::upstream
