// ProxyHandler: one request proxied to an upstream cluster — picks a host
// through the cluster's balancer, takes a pooled connection or opens one,
// sends the re-serialized head and streams the body (ClientCodec framing),
// streams the response back through the Downstream, with connect/response/
// send timeouts, retries that never replay a request that must not be
// replayed, backpressure both ways, and every attempt's outcome reported to
// the cluster. One per request; owned by its ServerConnection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "buffer/buffer.h"
#include "core/recycled.h"
#include "event/timer.h"
#include "proxy/handler.h"
#include "proxy/header_rules.h"
#include "proxy/server_context.h"
#include "upstream/cluster.h"
#include "upstream/load_balancer.h"
#include "upstream/upstream_connection.h"

namespace sluice::proxy {

class ProxyHandler final : public RequestHandler,
                           public upstream::UpstreamConnection::User,
                           public core::Recycled<ProxyHandler> {
 public:
  // `upstream_target`: the origin-form target to send (RequestPath).
  ProxyHandler(Downstream& downstream, ServerContext& server, upstream::Cluster& cluster,
               const config::Route& route, std::string_view upstream_target);
  ~ProxyHandler() override;

  // RequestHandler
  void start() override;
  void onRequestBody(std::string_view piece) override;
  void onRequestComplete() override;
  void onDownstreamBlocked() override;
  void onDownstreamUnblocked() override;
  void onDownstreamData(std::string_view bytes) override;  // from the client, tunnelled
  void onDownstreamEof() override;
  void cancel(observe::RequestOutcome why) override;

  // UpstreamConnection::User
  void onUpstreamConnected() override;
  void onUpstreamClosed(int error) override;
  void onUpstreamWriteBlocked() override;
  void onUpstreamWriteUnblocked() override;
  void onUpstreamRequestSent() override;
  void onResponseHead(const http::ResponseHead& head) override;
  void onResponseBody(std::string_view piece) override;
  void onResponseComplete() override;
  void onResponseError(std::string_view reason) override;
  void onTunnelData(std::string_view bytes) override;  // from the upstream, tunnelled

 private:
  enum class State : uint8_t {
    kConnecting,  // waiting for the transport to connect
    kExchanging,  // sending the request and/or receiving the response
    kTunnel,      // switched protocols: bytes both ways until both sides end
    kDone,
  };

  // How a failed attempt may go on.
  enum class Retry : uint8_t {
    kNone,
    kNextHost,         // nothing reached the server: another host (counts against retries)
    kFreshConnection,  // a reused connection failed before any response byte
  };

  void connectNext();
  void attach(std::unique_ptr<upstream::UpstreamConnection> connection);
  void queueRequestStart();
  // The PROXY header for a new connection (send_proxy_protocol), or empty.
  Buffer proxyHeader();
  void failAttempt(upstream::AttemptOutcome outcome, int status, observe::RequestOutcome why,
                   const std::string& reason, Retry retry);
  bool mayReplayOnFreshConnection() const;
  // The request can be sent again as it is: complete, idempotent, no body,
  // no upgrade, and nothing of its response reached the client.
  bool replayable() const;
  static constexpr size_t kMaxReplayBody = 64 * 1024;
  // Another attempt on another host is allowed: `reason_enabled` (its
  // retry_on), retries left, an untried host, and the retry budget.
  bool retryApproved(bool reason_enabled);
  void retryElsewhere(upstream::AttemptOutcome outcome);
  void endAttempt(upstream::AttemptOutcome outcome);
  void discardUpstream();
  void armResponseTimer();
  void stopTimers();
  void startTunnel();
  void endTunnel(observe::RequestOutcome outcome, const std::string& reason);
  void touchTunnel();
  std::string describe() const;

  Downstream& downstream_;
  ServerContext& server_;
  upstream::Cluster& cluster_;
  const config::Route& route_;
  // Points into the request's state (RequestPath), which outlives us;
  // read by start() only.
  std::string_view upstream_target_;
  std::string rewritten_target_;  // after strip_prefix / rewrite_prefix
  std::string client_ip_;
  RuleContext rule_context_;  // ${variables} of the route's header rules
  std::string upgrade_;       // the client's Upgrade value, when its route allows it
  event::EventLoop& loop_;
  std::unique_ptr<upstream::UpstreamConnection> upstream_;
  upstream::Host* host_ = nullptr;
  upstream::TriedSet tried_;
  std::string hash_key_;    // for balance: hash, computed once per request
  std::string head_lines_;  // request line + headers, kept for a replay
  // The request body as received, kept for a replay when the route has
  // retry_non_idempotent and it fits kMaxReplayBody.
  std::string replay_body_;
  bool replay_body_kept_ = true;
  std::vector<http::Header> trailers_;  // the response's, for the client
  Buffer carry_;                        // request bytes no server has seen, for the next attempt
  event::Timer connect_timer_;
  event::Timer response_timer_;
  event::Timer tunnel_timer_;  // timeouts.tunnel_idle
  event::Timer try_timer_;     // per_try_timeout: attempt start to response head
  event::TimePoint attempt_start_{};
  event::TimePoint request_sent_{};
  State state_ = State::kConnecting;
  int last_failure_status_ = 502;
  observe::RequestOutcome last_failure_ = observe::RequestOutcome::kUpstreamUnavailable;
  uint32_t attempts_ = 0;
  bool attempt_open_ = false;      // attemptStarted() without attemptDone() yet
  bool request_complete_ = false;  // the client sent the whole request
  bool request_sent_all_ = false;  // ... and all of it reached the upstream
  bool response_started_ = false;  // a final response head went to the client
  bool body_paused_ = false;       // we asked the downstream to hold the body
  bool response_paused_ = false;   // the client is slow: upstream reads stopped
  bool replayed_ = false;          // the keep-alive race retry was used
  bool switching_ = false;         // a 101 head went to the client
  bool client_eof_ = false;        // in the tunnel: the client finished sending
  bool upstream_eof_ = false;      // in the tunnel: the upstream finished sending
};

}  // namespace sluice::proxy
