// ServerConnection: one accepted client connection. Reads requests through
// a ServerCodec (keep-alive, pipelining answered in order), hands each to the
// RequestHandler its route chooses, and serves as that handler's Downstream:
// it owns the response framing decisions, the client-side timeouts (header,
// body, idle, send, lingering close), drain, and the single "request
// finished" record given to the observers. Owned by the worker's connection
// table (unique_ptr); lives on the worker's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "event/event_loop.h"
#include "event/timer.h"
#include "http/server_codec.h"
#include "net/address.h"
#include "net/connection.h"
#include "proxy/handler.h"
#include "proxy/server_context.h"

namespace sluice::proxy {

class ServerConnection final : public net::ConnectionCallbacks,
                               public http::ServerCodec::Callbacks,
                               public Downstream {
 public:
  // `listener`: one of server.listeners (the connection keeps its index).
  ServerConnection(ServerContext& server, const ListenerContext& listener,
                   std::unique_ptr<net::Transport> transport, net::Address peer);
  // A plain socket, its transport kept inside the connection.
  ServerConnection(ServerContext& server, const ListenerContext& listener, int plain_fd,
                   net::Address peer);
  ~ServerConnection();
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  // Registers with the loop and arms the first header timeout.
  // `handshake`: the transport must establish first (PROXY header, TLS).
  bool start(bool handshake = false);

  // Worker drain: close now if idle between requests (after a short grace
  // for a request already on its way), else after the response in progress,
  // which then carries `Connection: close`.
  void beginDrain();
  bool closed() const { return gone_ || !connection_.open(); }
  bool idle() const { return phase_ == Phase::kIdle; }
  uint32_t requestsServed() const { return requests_; }
  // Where the owner keeps it (the worker's connection table).
  uint32_t ownerSlot() const { return owner_slot_; }
  void setOwnerSlot(uint32_t slot) { owner_slot_ = slot; }

  // net::ConnectionCallbacks
  void onConnected() override;
  // A TLS listener's handshake that did not finish (counted once per connection).
  void countTlsFailure(observe::TlsFailure why);
  void onReadable() override;
  void onPeerClosed() override;
  void onAboveHighWatermark() override;
  void onBelowLowWatermark() override;
  void onOutputDrained() override;
  void onTransportError(int error) override;

  // http::ServerCodec::Callbacks
  void onRequestHead() override;
  void onRequestBody(std::string_view piece) override;
  void onRequestComplete() override;
  void onRequestError(int status, std::string_view reason) override;
  void onTunnelData(std::string_view bytes) override;

  // Downstream
  const http::RequestHead& request() const override { return codec_->head(); }
  const net::Address& peer() const override { return peer_; }
  const net::Address& localAddress() override;
  // What TLS or a PROXY header taught us; the plain default otherwise.
  const net::TransportInfo& transportInfo() const override;
  event::EventLoop& loop() const override { return *server_.loop; }
  bool requestComplete() const override { return request_done_; }
  Buffer& beginResponse(int status, std::string_view reason) override;
  void endResponseHead(http::BodySize body) override;
  void sendBody(std::string_view data) override;
  void endResponse(const std::vector<http::Header>* trailers) override;
  const std::vector<http::Header>& requestTrailers() const override { return codec_->trailers(); }
  void sendLocalResponse(int status, std::string_view body,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         observe::RequestOutcome outcome) override;
  void sendError(int status, observe::RequestOutcome outcome, std::string_view reason) override;
  void abortResponse(observe::RequestOutcome outcome, std::string_view reason) override;
  void sendContinue() override;
  void switchProtocols() override;
  void sendTunnelData(std::string_view bytes) override;
  void closeTunnelWrite() override;
  void endTunnel(observe::RequestOutcome outcome, std::string_view reason) override;
  bool blocked() const override { return connection_.aboveHighWatermark(); }
  void pauseRequestBody() override;
  void resumeRequestBody() override;
  observe::RequestRecord& record() override;
  void setRequestId(std::string_view id) override;
  std::string_view requestHost() const override {
    return request_ ? std::string_view(request_->host) : std::string_view();
  }

 private:
  // Why the connection is (not) reading: inspectable state, not flags.
  enum class Phase : uint8_t {
    kIdle,       // between requests: nothing of the next one seen
    kHead,       // bytes of a request head have arrived
    kRequest,    // a request is being handled (body and/or response in progress)
    kClosing,    // the last response is queued; input is discarded
    kLingering,  // the last response is sent and our side shut; reading until EOF
    kTunnel,     // switched protocols (101): bytes pass to and from the handler
  };

  http::ServerCodec& codec();
  void releaseCodec();
  // The request in progress (taken from the worker's spares when absent).
  RequestState& requestState();
  void releaseRequestState();
  const config::Route* currentRoute() const { return request_ ? request_->route : nullptr; }
  void processInput();
  void chooseHandler();
  void startRequestRecord();
  // The response (and, if it is to be kept, the request) are done.
  void finishRequest();
  void afterRequest();
  // The connection ends after the response: FIN, then (when `linger`) the
  // lingering close; without it, closed once the response is written.
  void startClosing(bool linger = true);
  bool clientIsDone() const;
  void startLingering();
  void armHeaderTimer();
  void armIdleTimer();
  void armBodyTimer();
  void onReadTimeout();
  void cancelHandler(observe::RequestOutcome why);
  void closeNow(const char* why);
  void countClientConnection();
  bool rateLimited(const config::Route& route);
  void notifyObservers();
  // The current request's id, or empty between requests.
  std::string_view requestIdForLog() const;
  const ListenerContext& listener() const { return server_.listeners[listener_index_]; }
  static uint16_t indexOf(const ServerContext& server, const ListenerContext& listener);

  ServerContext& server_;
  net::Connection connection_;
  net::Address peer_;
  // What few connections need, in one block allocated when first needed,
  // so that an idle plain connection carries one pointer for all of it.
  struct Extras {
    // Looked up when first needed (few requests do: Forwarded, PROXY out).
    std::optional<net::Address> local;
    // A copy of the transport's info once it connected, kept only when
    // there is something in it (TLS, PROXY): it must outlive the transport
    // (closed first on errors) because records point into it.
    std::optional<net::TransportInfo> info;
    event::TimePoint linger_deadline{};  // lingering close: when it ends
    uint64_t client_key = 0;  // its slot in the client table (connections_per_client), while held
  };
  Extras& extras();
  std::unique_ptr<Extras> extras_;
  std::unique_ptr<http::ServerCodec> codec_;  // while a request is in progress
  std::unique_ptr<RequestHandler> handler_;   // the current request's
  event::Timer read_timer_;                   // header, idle, body or linger
  std::unique_ptr<RequestState> request_;     // while a request is in progress
  uint32_t requests_ = 0;
  uint32_t owner_slot_ = 0;
  // Its ListenerContext in server_.listeners: two bytes beside the flags
  // instead of a reference.
  uint16_t listener_index_;
  Phase phase_ = Phase::kIdle;
  // One bit each, after the 32-bit fields: every open connection has them.
  bool keep_alive_ : 1 = true;         // the connection may persist after this response
  bool request_done_ : 1 = false;      // the current request was read in full
  bool response_started_ : 1 = false;  // its response head is queued
  bool response_done_ : 1 = false;     // its response is queued in full
  bool body_paused_ : 1 = false;       // the handler cannot take body now
  bool first_request_ : 1 = true;      // the header timeout runs from accept
  bool draining_ : 1 = false;
  bool recorded_ : 1 = false;           // the observers heard of this request
  bool gone_ : 1 = false;               // closed and handed back to the owner
  bool started_ : 1 = false;            // counted in the connection gauges
  bool over_client_limit_ : 1 = false;  // connections_per_client was reached: 429s
  bool linger_on_close_ : 1 = true;     // startClosing(): linger once written
};

}  // namespace sluice::proxy
