// ProxyExchange: one request proxied to an upstream cluster — picks a server,
// connects (or reuses a pooled connection), sends the re-serialized head and
// streams the body, parses the response and streams it back to the client,
// with timeouts, retries that never replay a non-idempotent request, and
// backpressure in both directions. Owned by its ClientConnection (one at a
// time); lives on the worker loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/buffer.h"
#include "event/event_loop.h"
#include "event/timer.h"
#include "http/message.h"
#include "http/response_parser.h"
#include "proxy/forwarding.h"
#include "upstream/cluster.h"
#include "upstream/upstream_connection.h"

namespace sluice::proxy {

class ClientConnection;

class ProxyExchange final : public upstream::UpstreamConnection::Owner {
 public:
  ProxyExchange(ClientConnection& client, upstream::Cluster& cluster, const http::RequestHead& head,
                std::string request_head_bytes);
  ~ProxyExchange();
  ProxyExchange(const ProxyExchange&) = delete;
  ProxyExchange& operator=(const ProxyExchange&) = delete;

  void start();

  // Request body from the client, already de-framed by the request parser.
  void onRequestBody(std::string_view piece);
  void onRequestComplete();
  // False while the upstream send buffer is above its high watermark: the
  // client connection then stops parsing body bytes until resumeClientInput().
  bool canTakeRequestBody() const;
  // The client's output dropped below its low watermark: read upstream again.
  void onClientOutputDrained();

  void onUpstreamReady(uint32_t ready_bits) override;

  bool finished() const { return state_ == State::kDone; }
  // A response head (not an interim 1xx) has been queued for the client.
  bool responseStarted() const { return response_started_; }
  // The client side gives up on this exchange: stop now (close the upstream
  // connection, cancel timers) so that no event later in this loop pass can
  // reach the client through it before it is destroyed.
  void cancel();

 private:
  enum class State {
    kConnecting,  // waiting for connect() to finish
    kExchanging,  // sending the request and/or receiving the response
    kDone,
  };

  void connectNext();
  bool tryReuse(size_t server_index);
  void onConnected();
  void writeUpstream();
  void readUpstream();
  void processResponse();
  void onResponseHead();
  void onResponseComplete(bool upstream_reusable);
  // Upstream failed: retry on another connection if allowed, else answer the
  // client (or abort it if the response has already started).
  enum class Retry {
    kNone,
    kNextServer,       // nothing was sent: try the next server (counts against retries)
    kFreshConnection,  // a reused connection failed before any response byte
  };
  void failUpstream(int status, const std::string& reason, Retry retry);
  bool mayRetryAfterSend() const;
  void finish(bool reuse_upstream);
  void discardUpstream();
  void armResponseTimer();
  std::string describe() const;

  ClientConnection& client_;
  // The worker's loop, kept apart from client_: the destructor (which
  // discards the upstream connection) may run after the ClientConnection has
  // been destroyed, since both are destroyed from deferred tasks of one pass.
  event::EventLoop& loop_;
  upstream::Cluster& cluster_;
  const http::RequestHead request_;  // a copy: the client parser moves on
  std::string request_head_bytes_;   // kept for a replay on a fresh connection
  std::unique_ptr<upstream::UpstreamConnection> upstream_;
  Buffer carry_;  // request bytes not yet sent, moved to the next attempt
  int last_failure_status_ = 502;
  int server_index_ = -1;
  std::vector<bool> tried_;
  uint32_t attempts_ = 0;
  bool reused_retry_done_ = false;
  http::ResponseParser parser_;
  State state_ = State::kConnecting;
  ClientFraming client_framing_ = ClientFraming::kNoBody;
  bool request_complete_ = false;      // the client sent the whole request
  bool request_body_started_ = false;  // body bytes were consumed from the client
  bool response_started_ = false;      // response head went to the client
  bool response_byte_seen_ = false;    // any upstream byte for this request
  bool upstream_read_paused_ = false;
  event::Timer connect_timer_;
  event::Timer response_timer_;
  event::Timer send_timer_;
};

}  // namespace sluice::proxy
