// UpstreamConnection: one connection to an upstream server — a
// net::Connection with its ClientCodec and the Host it belongs to. While a
// request uses it, its events go to that request's User (the proxy
// handler); while it sits idle in its host's ConnPool, it stays registered
// with the loop so that the server closing it arrives as an event and
// removes it from the pool (no peek before reuse). Owned by a unique_ptr held
// by the user or the pool; destroyed through EventLoop::deferDelete.
#pragma once

#include <cstdint>
#include <memory>

#include "event/event_loop.h"
#include "event/timer.h"
#include "http/client_codec.h"
#include "net/connection.h"
#include "upstream/connector.h"
#include "upstream/host.h"

namespace sluice::upstream {

class ConnPool;

class UpstreamConnection final : public net::ConnectionCallbacks, public event::DeferredDeletable {
 public:
  class User : public http::ClientCodec::Callbacks {
   public:
    virtual void onUpstreamConnected() = 0;
    // The connection ended without the codec turning it into a response
    // event: `error` is 0 for an EOF, else the errno (ECONNRESET, ETIMEDOUT
    // for the send timeout, a failed connect).
    virtual void onUpstreamClosed(int error) = 0;
    // Request bytes queued for the server crossed the high watermark / fell
    // back below the low one: stop / resume sending body.
    virtual void onUpstreamWriteBlocked() {}
    virtual void onUpstreamWriteUnblocked() {}
    // Every request byte queued so far has been written (after
    // connection().notifyWhenDrained()).
    virtual void onUpstreamRequestSent() {}

   protected:
    ~User() = default;
  };

  // Starts connecting to `host`. Null with *error on immediate failure.
  // `preface`: see Connector::connect (a PROXY header; empty for none).
  static std::unique_ptr<UpstreamConnection> open(event::EventLoop& loop, Host& host,
                                                  Connector& connector, int* error,
                                                  Buffer preface = Buffer());
  ~UpstreamConnection() override;

  void attach(User* user);
  Host& host() const { return host_; }
  net::Connection& connection() { return connection_; }
  http::ClientCodec& codec() { return codec_; }
  bool connected() const { return connection_.connected(); }
  // Completed requests on this connection; > 0 means it came from the pool,
  // where the server may close it just as we reuse it.
  uint32_t requestsServed() const { return requests_served_; }
  void countRequest() { ++requests_served_; }
  // Stop / resume delivering response events (the client reads slowly).
  void setResponseFlow(bool flowing);
  // Could go back to the pool: open, nothing unread, the server did not close.
  bool reusable() const;

  // net::ConnectionCallbacks
  void onConnected() override;
  void onReadable() override;
  void onPeerClosed() override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onOutputDrained() override;
  void onTransportError(int error) override;

 private:
  friend class ConnPool;
  UpstreamConnection(event::EventLoop& loop, Host& host, std::unique_ptr<net::Transport> transport);
  void maybeFinish();

  Host& host_;
  net::Connection connection_;
  http::ClientCodec codec_;
  User* user_ = nullptr;
  ConnPool* idle_in_ = nullptr;               // set while pooled
  std::unique_ptr<event::Timer> idle_timer_;  // armed while pooled
  uint32_t requests_served_ = 0;
  bool peer_closed_ = false;
};

}  // namespace sluice::upstream
