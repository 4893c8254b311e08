#include "proxy/server_connection.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "http/response_writer.h"
#include "net/socket.h"
#include "proxy/admin_handler.h"
#include "proxy/direct_response_handler.h"
#include "proxy/forwarding.h"
#include "proxy/proxy_handler.h"
#include "proxy/redirect_handler.h"

namespace sluice::proxy {
namespace {

using event::Duration;
using observe::RequestOutcome;

// Unparsed input kept at most while parsing waits (a pipelined request
// behind a slow response, a body the upstream is slow to take); beyond it
// the connection stops reading.
constexpr size_t kInputHighWatermark = 256 * 1024;
// When a worker drains, an idle keep-alive connection may have a request
// already on its way; closing at once would turn it into a reset. Such a
// connection gets this long: a request that arrives is answered (with
// `Connection: close`), silence closes it.
constexpr Duration kDrainIdleGrace{1000};
// The largest unread request body sluice reads and throws away to keep a
// connection after answering without it (an error, a `respond` route).
constexpr uint64_t kMaxDiscardedBody = 1 << 20;
// Spare codecs kept per worker (each holds a parser and a head's storage).
constexpr size_t kMaxSpareCodecs = 256;

const std::vector<std::pair<std::string, std::string>>& errorHeaders() {
  static const std::vector<std::pair<std::string, std::string>> kHeaders = {
      {"Content-Type", "text/plain"}};
  return kHeaders;
}

}  // namespace

ServerConnection::ServerConnection(ServerContext& server, const ListenerContext& listener,
                                   std::unique_ptr<net::Transport> transport, net::Address peer)
    : server_(server),
      connection_(*server.loop, std::move(transport)),
      peer_(std::move(peer)),
      read_timer_(server.loop->timers(), [this] { onReadTimeout(); }),
      listener_index_(indexOf(server, listener)) {
  connection_.setCallbacks(this);
}

ServerConnection::ServerConnection(ServerContext& server, const ListenerContext& listener,
                                   int plain_fd, net::Address peer)
    : server_(server),
      connection_(*server.loop, plain_fd, /*connecting=*/false),
      peer_(std::move(peer)),
      read_timer_(server.loop->timers(), [this] { onReadTimeout(); }),
      listener_index_(indexOf(server, listener)) {
  connection_.setCallbacks(this);
}

uint16_t ServerConnection::indexOf(const ServerContext& server, const ListenerContext& listener) {
  const std::ptrdiff_t index = &listener - server.listeners.data();
  if (index < 0 || static_cast<size_t>(index) >= server.listeners.size() ||
      server.listeners.size() > UINT16_MAX) {
    SLUICE_LOG(kError, "server connection: listener " + listener.name +
                           " is not in the worker's listener table");
    std::abort();
  }
  return static_cast<uint16_t>(index);
}

ServerConnection::~ServerConnection() {
  if (extras_ && extras_->client_key != 0)
    server_.client_table->releaseConnection(extras_->client_key);
  if (!gone_ && started_) {
    // Destroyed open (the worker stopping): the gauges still count it.
    if (phase_ == Phase::kIdle) observe::add(server_.worker_counters->connections_idle, -1);
    observe::add(server_.worker_counters->connections_active, -1);
  }
  if (handler_) {
    handler_->cancel(RequestOutcome::kClientAbort);
    server_.loop->deferDelete(std::move(handler_));
  }
  releaseCodec();
  releaseRequestState();
}

bool ServerConnection::start(bool handshake) {
  connection_.setSendTimeout(server_.config->timeouts.send);
  const int error = connection_.start(handshake);
  if (error != 0) {
    SLUICE_LOG(kError, "cannot register client " + peer_.toString() + ": " + std::strerror(error));
    return false;
  }
  started_ = true;
  observe::add(server_.worker_counters->connections_active, 1);
  observe::add(server_.worker_counters->connections_idle, 1);
  // The first request's head must arrive within `header` from accept (from
  // the end of the TLS handshake on a TLS listener, which has its own
  // handshake_timeout); the deadline does not move when its first byte
  // arrives.
  if (listener().tls) {
    read_timer_.arm(listener().tls->settings().handshake_timeout);
  } else {
    armHeaderTimer();
  }
  // Behind a PROXY header the client is known only once it is read.
  if (!handshake) countClientConnection();
  return true;
}

void ServerConnection::countClientConnection() {
  const uint32_t limit = server_.config->limits.connections_per_client;
  if (limit == 0 || peer_.family() == net::Address::Family::kUnix) return;
  const uint64_t key = server_.client_table->key("connections", 0, peer_.ipText());
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(server_.loop->now().time_since_epoch())
          .count();
  if (server_.client_table->acquireConnection(key, limit, now_ms)) {
    extras().client_key = key;
  } else {
    // Its requests get 429 (a reason a client can act on) rather than a
    // silent close.
    over_client_limit_ = true;
  }
}

bool ServerConnection::rateLimited(const config::Route& route) {
  const config::RateLimit& limit = *route.rate_limit;
  std::string_view value = requestState().client_ip;
  if (!limit.header.empty()) {
    // A request without the header is counted under its client address.
    if (const http::Header* header = codec_->head().find(limit.header)) value = header->value;
  }
  const uint64_t key = server_.client_table->key("rate", route.index, value);
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(server_.loop->now().time_since_epoch())
          .count();
  const limit::ClientTable::RateDecision decision =
      server_.client_table->takeToken(key, limit.ratePerSecond(), limit.burst, now_ms);
  if (decision.allowed) return false;
  observe::add(server_.worker_counters->requests_limited);
  // Retry-After in whole seconds (RFC 9110 §10.2.3), rounded up.
  const int64_t seconds = std::max<int64_t>(1, (decision.retry_after_ms + 999) / 1000);
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "text/plain"}, {"Retry-After", std::to_string(seconds)}};
  sendLocalResponse(429, "429 Too Many Requests\n", headers, RequestOutcome::kLimited);
  return true;
}

http::ServerCodec& ServerConnection::codec() {
  if (!codec_) {
    if (!server_.spare_codecs.empty()) {
      codec_ = std::move(server_.spare_codecs.back());
      server_.spare_codecs.pop_back();
    } else {
      codec_ = std::make_unique<http::ServerCodec>(server_.parser_limits);
    }
    codec_->setCallbacks(this);
  }
  return *codec_;
}

RequestState& ServerConnection::requestState() {
  // Taken when a request starts, from the worker's spares: idle connections
  // hold none, and steady keep-alive traffic allocates none.
  if (!request_) {
    if (!server_.spare_requests.empty()) {
      request_ = std::move(server_.spare_requests.back());
      server_.spare_requests.pop_back();
    } else {
      request_ = std::make_unique<RequestState>();
    }
    // Every request has an id from its start (nginx's $request_id), for the
    // error log lines about it and its access log line; a proxied request
    // may replace it with the client's (ProxyHandler).
    fillRequestId(&request_->id);
    request_->record.request_id = request_->id;
    request_->client_ip = peer_.ipText();
    request_->record.client_ip = request_->client_ip;
  }
  return *request_;
}

observe::RequestRecord& ServerConnection::record() {
  return requestState().record;
}

void ServerConnection::releaseRequestState() {
  if (!request_) return;
  if (server_.spare_requests.size() < kMaxSpareCodecs) {
    request_->reset();
    server_.spare_requests.push_back(std::move(request_));
  }
  request_.reset();
}

void ServerConnection::releaseCodec() {
  if (!codec_) return;
  // Only a codec between messages can be reused as it is.
  if (codec_->reusable() && server_.spare_codecs.size() < kMaxSpareCodecs) {
    codec_->resetForNewConnection();
    codec_->setCallbacks(nullptr);
    server_.spare_codecs.push_back(std::move(codec_));
  }
  codec_.reset();
}

void ServerConnection::beginDrain() {
  draining_ = true;
  if (phase_ == Phase::kIdle)
    read_timer_.arm(std::min(kDrainIdleGrace, server_.config->timeouts.idle));
}

// --- reading -------------------------------------------------------------

void ServerConnection::onConnected() {
  const net::TransportInfo& live = connection_.transport().info();
  if (live.secure || live.proxied_source || live.proxied_destination) {
    extras().info = live;
  }
  const net::TransportInfo& info = transportInfo();
  if (info.proxied_source) {
    // The client behind the load balancer, for everything from here on:
    // logs, X-Forwarded-For, limits.
    peer_ = *info.proxied_source;
  }
  if (info.proxied_destination) extras().local = *info.proxied_destination;
  if (listener().tls) {
    armHeaderTimer();  // the handshake is done: now the request head
    observe::add(server_.worker_counters
                     ->tls_handshakes[observe::tlsHandshakeKind(info.protocol, info.resumed)]);
  }
  countClientConnection();
}

const net::TransportInfo& ServerConnection::transportInfo() const {
  static const net::TransportInfo kPlain;
  return extras_ && extras_->info ? *extras_->info : kPlain;
}

ServerConnection::Extras& ServerConnection::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

const net::Address& ServerConnection::localAddress() {
  Extras& more = extras();
  if (!more.local) more.local = net::localAddress(connection_.transport().fd());
  return *more.local;
}

void ServerConnection::onReadable() {
  switch (phase_) {
    case Phase::kClosing:
      // Nothing after the last response is read; discard while it drains
      // (a client blocked on sending must not block our sending).
      connection_.input().clear();
      return;
    case Phase::kLingering: {
      connection_.input().clear();
      const event::TimePoint now = server_.loop->now();
      if (now >= extras().linger_deadline) {
        closeNow("lingering close: linger_total reached");
        return;
      }
      // Per read: the client must keep sending to keep the linger going.
      const auto left = std::chrono::duration_cast<Duration>(extras().linger_deadline - now);
      read_timer_.arm(std::min(server_.config->timeouts.linger, left));
      return;
    }
    case Phase::kIdle:
    case Phase::kHead:
    case Phase::kRequest:
    case Phase::kTunnel:
      processInput();
      return;
  }
}

void ServerConnection::processInput() {
  Buffer& input = connection_.input();
  if (phase_ == Phase::kTunnel) {
    codec_->decode(input);  // to the handler, unchanged
    if (!closed() && input.size() >= kInputHighWatermark) connection_.setReadEnabled(false);
    return;
  }
  for (;;) {
    if (closed()) return;
    if (phase_ == Phase::kClosing || phase_ == Phase::kLingering) {
      input.clear();
      return;
    }
    if (phase_ == Phase::kRequest && codec_->requestComplete() && handler_ == nullptr &&
        response_done_) {
      afterRequest();
      continue;
    }
    if (phase_ == Phase::kIdle) {
      if (input.empty()) return;
      observe::add(server_.worker_counters->connections_idle, -1);
      phase_ = Phase::kHead;
      RequestState& request = requestState();
      request.start = server_.loop->now();
      request.bytes_read_at_start = connection_.bytesRead() - input.size();
      request.bytes_written_at_start = connection_.bytesWritten() + connection_.output().size();
      if (!first_request_) armHeaderTimer();  // from this request's first byte
    }
    codec().decode(input);
    if (closed()) return;
    // A request that finished inside decode (a direct response, an error)
    // moves on to the next one here, outside the codec's own loop.
    if (phase_ == Phase::kRequest && codec_ && codec_->requestComplete() && response_done_ &&
        handler_ == nullptr && keep_alive_) {
      continue;
    }
    break;
  }
  // Parsing waits (pipelined request, slow upstream): stop reading beyond
  // a bound; afterRequest() and resumeRequestBody() read again.
  if (input.size() >= kInputHighWatermark) connection_.setReadEnabled(false);
}

void ServerConnection::countTlsFailure(observe::TlsFailure why) {
  if (!listener().tls || connection_.connected()) return;
  observe::add(server_.worker_counters->tls_handshake_failures[static_cast<size_t>(why)]);
}

void ServerConnection::onPeerClosed() {
  switch (phase_) {
    case Phase::kIdle:
      countTlsFailure(observe::TlsFailure::kEof);
      closeNow("client closed");
      return;
    case Phase::kHead:
      // A request cut short: nothing sensible can be answered on it.
      SLUICE_LOG_REQUEST(kInfo, requestIdForLog(),
                         "client " + peer_.toString() + " closed mid-request");
      closeNow("client closed mid-request");
      return;
    case Phase::kRequest:
      if (!codec_->requestComplete() && !response_done_) {
        SLUICE_LOG_REQUEST(kInfo, requestIdForLog(),
                           "client " + peer_.toString() + " closed mid-request");
        record().outcome = RequestOutcome::kClientAbort;
        cancelHandler(RequestOutcome::kClientAbort);
        notifyObservers();
        closeNow("client closed mid-request");
        return;
      }
      keep_alive_ = false;
      if (const config::Route* route = currentRoute();
          !response_started_ && handler_ != nullptr && route != nullptr &&
          !route->upstream.empty() && !route->ignore_client_abort) {
        // TCP shows a closed socket and a half-closed one alike (a FIN).
        // An interim 100 Continue tells them apart without harm: every
        // HTTP/1.1 client must accept unexpected 1xx (RFC 9110 §15.2), a
        // half-closed one still reads it, and a closed one answers with a
        // reset, which cancels the upstream request (onTransportError). An
        // HTTP/1.0 client may not be sent a 1xx: its FIN is taken as the
        // close, as nginx does.
        if (codec_->head().version_minor >= 1) {
          codec_->encodeContinue(connection_.output());
          connection_.wrote();
        } else {
          SLUICE_LOG_REQUEST(kInfo, requestIdForLog(),
                             "client " + peer_.toString() + " closed before its response");
          record().outcome = RequestOutcome::kClientAbort;
          record().status = 499;
          cancelHandler(RequestOutcome::kClientAbort);
          notifyObservers();
          closeNow("client closed before its response");
        }
      }
      // Otherwise a half-closed client still gets its response, then the close.
      return;
    case Phase::kClosing:
      return;  // closed once the last response is out
    case Phase::kLingering:
      closeNow("lingering close done");
      return;
    case Phase::kTunnel:
      if (handler_) handler_->onDownstreamEof();
      return;
  }
}

// --- the request ---------------------------------------------------------

void ServerConnection::startRequestRecord() {
  const http::RequestHead& head = codec_->head();
  record().method = head.method;
  record().target = head.target;
  record().version_minor = head.version_minor;
  record().host = head.host;
  if (const http::Header* referer = head.find("referer")) record().referer = referer->value;
  if (const http::Header* agent = head.find("user-agent")) record().user_agent = agent->value;
}

void ServerConnection::onRequestHead() {
  const http::RequestHead& head = codec_->head();
  ++requests_;
  first_request_ = false;
  phase_ = Phase::kRequest;
  read_timer_.cancel();
  // A request without a body is complete with its head.
  request_done_ = head.framing == http::BodyFraming::kNone;
  response_started_ = false;
  response_done_ = false;
  body_paused_ = false;
  startRequestRecord();
  const uint32_t max_requests = server_.config->limits.max_requests_per_connection;
  keep_alive_ = head.keep_alive && !draining_ && !server_.draining &&
                (max_requests == 0 || requests_ < max_requests);
  if (!request_done_) armBodyTimer();
  chooseHandler();
}

void ServerConnection::chooseHandler() {
  const http::RequestHead& head = codec_->head();
  if (listener().admin) {
    handler_ = std::make_unique<AdminHandler>(*this, server_, bool{draining_});
    handler_->start();
    return;
  }
  std::string_view authority;
  targetPath(head.target, &authority);
  // Into the request state's strings, which keep their storage between
  // requests: routing allocates nothing in the steady state.
  RequestState& state = requestState();
  normalizeHost(authority.empty() ? std::string_view(head.host) : authority, &state.host);
  const std::string& host = state.host;
  // Routes match the normalized path (http/path.h), never a raw spelling of
  // it; what cannot be normalized safely is refused.
  RequestPath& request_path = state.path;
  resolveRequestPath(head.target, server_.config->paths, &request_path);
  if (!request_path.ok) {
    keep_alive_ = false;
    sendError(400, RequestOutcome::kBadRequest, request_path.error);
    return;
  }
  const config::Route* route = listener().router->match(host, request_path.match_path, &head);
  if (route == nullptr) {
    sendError(404, RequestOutcome::kOk, "no route matches");
    return;
  }
  record().route_index = static_cast<int32_t>(route->index);
  requestState().route = route;
  if (over_client_limit_) {
    observe::add(server_.worker_counters->requests_limited);
    keep_alive_ = false;
    const std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", "text/plain"}, {"Retry-After", "1"}};
    sendLocalResponse(429, "429 Too Many Requests\n", headers, RequestOutcome::kLimited);
    return;
  }
  if (route->rate_limit && rateLimited(*route)) return;
  state.body_limit = route->max_body_bytes.value_or(server_.config->limits.max_body_bytes);
  state.body_seen = 0;
  if (state.body_limit != 0 && head.framing == http::BodyFraming::kContentLength &&
      head.content_length > state.body_limit) {
    // Answerable before reading the body (the route's own limit).
    keep_alive_ = false;
    sendError(413, RequestOutcome::kBadRequest, "request body larger than the route's limit");
    return;
  }
  if (route->respond) {
    handler_ = std::make_unique<DirectResponseHandler>(*this, *route->respond);
    handler_->start();
    return;
  }
  if (route->redirect) {
    handler_ = std::make_unique<RedirectHandler>(*this, *route->redirect);
    handler_->start();
    return;
  }
  auto cluster = server_.clusters.find(route->upstream);
  if (cluster == server_.clusters.end()) {  // validation makes this unreachable
    sendError(502, RequestOutcome::kUpstreamUnavailable, "route names an unknown upstream");
    return;
  }
  record().upstream = cluster->second->name();
  handler_ = std::make_unique<ProxyHandler>(*this, server_, *cluster->second, *route,
                                            request_path.upstream_target);
  handler_->start();
}

void ServerConnection::onRequestBody(std::string_view piece) {
  RequestState& state = requestState();
  state.body_seen += piece.size();
  if (state.body_limit != 0 && state.body_seen > state.body_limit && state.route != nullptr) {
    // A chunked body past the route's limit (the parser's own limit is the
    // largest any route allows).
    onRequestError(413, "request body larger than the route's limit");
    return;
  }
  // Forwarded, or discarded when the route answered without it.
  if (handler_) handler_->onRequestBody(piece);
  if (!closed() && !codec_->paused() && !body_paused_) armBodyTimer();
}

void ServerConnection::onRequestComplete() {
  request_done_ = true;
  read_timer_.cancel();  // upstream timeouts govern until the response ends
  if (handler_) handler_->onRequestComplete();
  if (closed()) return;
  if (response_done_ && phase_ == Phase::kRequest) finishRequest();
}

void ServerConnection::onTunnelData(std::string_view bytes) {
  if (handler_) handler_->onDownstreamData(bytes);
}

void ServerConnection::onRequestError(int status, std::string_view reason) {
  if (response_started_) {
    // A request body broke mid-stream while its response was already going
    // out: closing is the only signal left.
    abortResponse(RequestOutcome::kBadRequest,
                  std::string("invalid request body: ") + std::string(reason));
    return;
  }
  // The upstream got the head and part of the body (or nothing); its
  // connection is dropped, and since no response has started the client
  // gets the error status, as nginx does for a bad body.
  cancelHandler(RequestOutcome::kBadRequest);
  if (phase_ != Phase::kRequest) {
    // Before the head parsed, nothing of the request line is trustworthy.
    phase_ = Phase::kRequest;
    record().method = {};
    record().target = {};
  }
  keep_alive_ = false;
  sendError(status, RequestOutcome::kBadRequest, reason);
}

// --- the response (Downstream) ---------------------------------------------

Buffer& ServerConnection::beginResponse(int status, std::string_view reason) {
  response_started_ = true;
  record().status = status;
  Buffer& out = connection_.output();
  codec_->beginHead(status, reason, out);
  return out;
}

void ServerConnection::endResponseHead(http::BodySize body) {
  // RFC 9110 §9.6: a server that will close says so. Sluice closes when
  // the request is still incomplete as its response starts (the rest of its
  // body cannot be skipped safely), when draining, and when either side
  // asked for it.
  if (!request_done_ || draining_ || server_.draining) keep_alive_ = false;
  codec_->endHead(record().status, body, keep_alive_, connection_.output());
  keep_alive_ = codec_->keepAlive();
  connection_.wrote();
}

void ServerConnection::sendBody(std::string_view data) {
  codec_->encodeBody(data, connection_.output());
  record().body_bytes_sent += data.size();
  connection_.wrote();
}

void ServerConnection::endResponse(const std::vector<http::Header>* trailers) {
  // RFC 9110 §6.5: trailers only to a client that said it accepts them
  // (TE: trailers); others may not expect or understand them.
  const bool pass = trailers != nullptr && acceptsTrailers(codec_->head());
  codec_->encodeEnd(connection_.output(), pass ? trailers : nullptr, &forwardableTrailer);
  connection_.wrote();
  response_done_ = true;
  if (handler_) server_.loop->deferDelete(std::move(handler_));
  if (codec_->requestComplete()) {
    finishRequest();
  } else {
    // Early response: the rest of the body is discarded, and the response
    // said `Connection: close` (endResponseHead).
    notifyObservers();
    startClosing();
  }
}

void ServerConnection::sendLocalResponse(
    int status, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers, RequestOutcome outcome) {
  response_started_ = true;
  response_done_ = true;
  record().status = status;
  record().outcome = outcome;
  if (draining_ || server_.draining) keep_alive_ = false;
  // The request body, if any, is still read and discarded (keep-alive
  // survives it), as nginx does for its own responses.
  keep_alive_ =
      codec_->encodeLocalResponse(status, body, headers, keep_alive_, connection_.output());
  if (!codec_->head().isHead()) record().body_bytes_sent = body.size();
  connection_.wrote();
  if (handler_) server_.loop->deferDelete(std::move(handler_));
  if (codec_->requestComplete()) {
    finishRequest();
  } else if (!keep_alive_) {
    notifyObservers();
    startClosing(/*linger=*/!clientIsDone());
  }
  // Otherwise the request ends on a later step of the codec (a bodiless
  // one at once, a body being discarded when it ends): onRequestComplete().
}

void ServerConnection::sendError(int status, RequestOutcome outcome, std::string_view reason) {
  if (outcome != RequestOutcome::kOk) {
    SLUICE_LOG_REQUEST(kInfo, record().request_id,
                       "client " + peer_.toString() + ": " + std::to_string(status) + " " +
                           std::string(http::reasonPhrase(status)) + ": " + std::string(reason));
  }
  // A body still coming is read and discarded when it is small (nginx
  // discards too), so that the client keeps its connection; a large or
  // unbounded one ends the connection instead of being read for nothing.
  if (!request_done_) {
    const http::RequestHead& head = codec_->head();
    const bool small = head.framing == http::BodyFraming::kContentLength &&
                       head.content_length <= kMaxDiscardedBody;
    if (!small) keep_alive_ = false;
  }
  std::string body = std::to_string(status);
  body.push_back(' ');
  body.append(http::reasonPhrase(status));
  body.push_back('\n');
  sendLocalResponse(status, body, errorHeaders(), outcome);
}

void ServerConnection::abortResponse(RequestOutcome outcome, std::string_view reason) {
  SLUICE_LOG_REQUEST(
      kWarn, requestIdForLog(),
      "client " + peer_.toString() + ": closing mid-response: " + std::string(reason));
  record().outcome = outcome;
  if (handler_) server_.loop->deferDelete(std::move(handler_));
  notifyObservers();
  // What is queued (earlier pipelined responses, the part of this one that
  // exists) still goes out if the socket takes it now.
  connection_.flush();
  closeNow("response broke");
}

void ServerConnection::sendContinue() {
  codec_->encodeContinue(connection_.output());
  connection_.wrote();
}

void ServerConnection::pauseRequestBody() {
  body_paused_ = true;
  if (codec_ && (phase_ == Phase::kTunnel || !codec_->requestComplete())) {
    codec_->pause();
    read_timer_.cancel();  // the upstream is slow, not the client
  }
}

void ServerConnection::resumeRequestBody() {
  body_paused_ = false;
  if (!codec_ || closed() || (phase_ != Phase::kTunnel && codec_->requestComplete())) return;
  codec_->resume();
  if (phase_ != Phase::kTunnel) armBodyTimer();
  connection_.setReadEnabled(true);
  connection_.redeliver();
}

void ServerConnection::switchProtocols() {
  codec_->endSwitchingHead(connection_.output());
  connection_.wrote();
  response_started_ = true;
  keep_alive_ = false;
  phase_ = Phase::kTunnel;
  read_timer_.cancel();  // the handler's tunnel_idle governs now
  connection_.setReadEnabled(true);
  // Bytes the client sent after its request (early frames) are waiting.
  connection_.redeliver();
}

void ServerConnection::sendTunnelData(std::string_view bytes) {
  connection_.write(bytes);
}

void ServerConnection::closeTunnelWrite() {
  connection_.shutdownWriteWhenFlushed();
}

void ServerConnection::endTunnel(RequestOutcome outcome, std::string_view reason) {
  if (outcome != RequestOutcome::kOk) {
    SLUICE_LOG_REQUEST(kInfo, requestIdForLog(),
                       "client " + peer_.toString() + ": tunnel closed: " + std::string(reason));
  }
  record().outcome = outcome;
  if (handler_) server_.loop->deferDelete(std::move(handler_));
  notifyObservers();
  connection_.flush();
  closeNow("tunnel closed");
}

std::string_view ServerConnection::requestIdForLog() const {
  return request_ ? std::string_view(request_->id) : std::string_view();
}

void ServerConnection::setRequestId(std::string_view id) {
  RequestState& state = requestState();
  state.id.assign(id);
  state.record.request_id = state.id;
}

// --- after a request ---------------------------------------------------------

void ServerConnection::finishRequest() {
  notifyObservers();
  if (handler_) server_.loop->deferDelete(std::move(handler_));
  if (draining_ || server_.draining) keep_alive_ = false;
  if (!keep_alive_) {
    startClosing(/*linger=*/!clientIsDone());
    return;
  }
  // The next request is taken up from the pending list, not from inside
  // the callback that finished this one (which may be the codec's).
  connection_.redeliver();
}

void ServerConnection::afterRequest() {
  codec_->reset();  // resumes parsing
  phase_ = Phase::kIdle;
  observe::add(server_.worker_counters->connections_idle, 1);
  releaseRequestState();  // a fresh one when the next request starts
  recorded_ = false;
  response_started_ = false;
  response_done_ = false;
  request_done_ = false;
  connection_.setReadEnabled(true);
  if (!connection_.input().empty()) return;  // a pipelined request: processInput goes on
  if (draining_ || server_.draining) {
    read_timer_.arm(std::min(kDrainIdleGrace, server_.config->timeouts.idle));
    return;
  }
  armIdleTimer();
  // Idle keep-alive connections hold no I/O buffers and no parser: an idle
  // connection costs a few hundred bytes. The output goes once written.
  releaseCodec();
  releaseRequestState();
  connection_.releaseIdleMemory();
  if (!connection_.output().empty()) connection_.notifyWhenDrained();
}

bool ServerConnection::clientIsDone() const {
  // The client said this request was its last (`Connection: close`, or
  // HTTP/1.0 without keep-alive), sent it whole, and nothing follows it in
  // our buffer or the socket: no input can come that a close would turn
  // into a reset, so the linger can be skipped (nginx lingers only on such
  // evidence, too). When sluice is the one closing (max_requests_per_
  // connection, a drain, an error), the client may already be sending its
  // next request: that lingers.
  return codec_ && !codec_->head().keep_alive && (request_done_ || codec_->requestComplete()) &&
         connection_.input().empty() && !connection_.readPending();
}

void ServerConnection::startClosing(bool linger) {
  phase_ = Phase::kClosing;
  linger_on_close_ = linger;
  read_timer_.cancel();
  connection_.input().clear();
  // After the last byte: our FIN, then read what the client still sends,
  // so that closing does not turn unread input into a RST that destroys
  // the response in flight (nginx's lingering close). Without the linger a
  // plain socket's close() sends the FIN itself; TLS still sends its
  // close_notify first.
  if (linger || transportInfo().secure) connection_.shutdownWriteWhenFlushed();
  connection_.notifyWhenDrained();
}

void ServerConnection::onOutputDrained() {
  if (phase_ == Phase::kClosing) {
    if (!linger_on_close_) {
      closeNow("response sent");
      return;
    }
    startLingering();
  } else if (phase_ == Phase::kIdle) {
    connection_.releaseIdleMemory();
  }
}

void ServerConnection::startLingering() {
  if (connection_.peerClosed()) {
    closeNow("response sent");
    return;
  }
  phase_ = Phase::kLingering;
  const config::ClientTimeouts& timeouts = server_.config->timeouts;
  extras().linger_deadline = server_.loop->now() + timeouts.linger_total;
  read_timer_.arm(std::min(timeouts.linger, timeouts.linger_total));
  connection_.setReadEnabled(true);
}

// --- timers ------------------------------------------------------------------

void ServerConnection::armHeaderTimer() {
  read_timer_.arm(server_.config->timeouts.header);
}

void ServerConnection::armIdleTimer() {
  read_timer_.arm(server_.config->timeouts.idle);
}

void ServerConnection::armBodyTimer() {
  const config::Route* route = currentRoute();
  const bool route_timeout = route != nullptr && route->timeouts.body.has_value();
  read_timer_.arm(route_timeout ? *route->timeouts.body : server_.config->timeouts.body);
}

void ServerConnection::onReadTimeout() {
  switch (phase_) {
    case Phase::kIdle:
      countTlsFailure(observe::TlsFailure::kTimeout);
      // Nothing of a request arrived: close quietly, as nginx and HAProxy do
      // for idle keep-alive and silent connections.
      closeNow(first_request_ ? "no request within timeouts.header" : "keep-alive idle timeout");
      return;
    case Phase::kHead:
      record().outcome = RequestOutcome::kClientTimeout;
      phase_ = Phase::kRequest;
      keep_alive_ = false;
      sendError(408, RequestOutcome::kClientTimeout,
                "request head not received within timeouts.header");
      return;
    case Phase::kRequest:
      if (response_done_) {
        // sluice answered without the body and was discarding it: that
        // response is complete; the stalled rest gets a 408 and the close.
        notifyObservers();
        keep_alive_ = false;
        codec_->encodeLocalResponse(408, "408 Request Timeout\n", errorHeaders(), false,
                                    connection_.output());
        connection_.wrote();
        startClosing();
        return;
      }
      if (response_started_) {
        abortResponse(RequestOutcome::kClientTimeout, "request body stalled beyond timeouts.body");
        return;
      }
      // As for an invalid body: no response has started, so the client gets
      // its 408 (nginx's client_body_timeout) and the upstream connection,
      // which has part of the body, is dropped.
      cancelHandler(RequestOutcome::kClientTimeout);
      keep_alive_ = false;
      sendError(408, RequestOutcome::kClientTimeout, "request body stalled beyond timeouts.body");
      return;
    case Phase::kClosing:
    case Phase::kLingering:
      closeNow("lingering close timed out");
      return;
    case Phase::kTunnel:
      return;  // not armed in a tunnel
  }
}

// --- output watermarks and errors ----------------------------------------------

void ServerConnection::onAboveHighWatermark() {
  if (handler_) handler_->onDownstreamBlocked();
}

void ServerConnection::onBelowLowWatermark() {
  if (handler_) handler_->onDownstreamUnblocked();
}

void ServerConnection::onTransportError(int error) {
  const bool in_request = phase_ == Phase::kRequest || phase_ == Phase::kHead;
  if ((phase_ == Phase::kRequest || phase_ == Phase::kTunnel) && !recorded_) {
    record().outcome =
        error == ETIMEDOUT ? RequestOutcome::kClientTimeout : RequestOutcome::kClientAbort;
    // nginx's 499: the client went away before it got a response.
    if (record().status == 0) record().status = 499;
    cancelHandler(record().outcome);
    notifyObservers();
  }
  if (!connection_.connected()) {
    // The PROXY header or the TLS handshake failed.
    countTlsFailure(error == EPROTO ? observe::TlsFailure::kProtocol : observe::TlsFailure::kEof);
    const std::string& reason = connection_.failureReason();
    // A client that connects and leaves without a word (a port probe, a
    // health check of the TCP port) is not worth a warning.
    const bool just_left = reason.empty() && (error == ECONNABORTED || error == ECONNRESET);
    const std::string message = "client " + peer_.toString() +
                                ": connection refused before HTTP: " +
                                (reason.empty() ? std::string(std::strerror(error)) : reason);
    if (just_left) {
      SLUICE_LOG(kDebug, message);
    } else {
      SLUICE_LOG(kWarn, message);
    }
  } else if (error == ETIMEDOUT) {
    SLUICE_LOG_REQUEST(kInfo, requestIdForLog(),
                       "client " + peer_.toString() + ": send timed out, closing");
  } else if (in_request) {
    SLUICE_LOG_REQUEST(kDebug, requestIdForLog(),
                       "client " + peer_.toString() + ": " + std::strerror(error));
  }
  closeNow(error == ETIMEDOUT ? "send timeout" : "client went away");
}

void ServerConnection::cancelHandler(RequestOutcome why) {
  if (!handler_) return;
  handler_->cancel(why);
  server_.loop->deferDelete(std::move(handler_));
}

void ServerConnection::notifyObservers() {
  if (recorded_ || (phase_ != Phase::kRequest && phase_ != Phase::kTunnel)) return;
  recorded_ = true;
  record().listener = listener().name;
  if (const net::TransportInfo& tls = transportInfo(); tls.secure) {
    record().tls_protocol = tls.protocol;
    record().tls_cipher = tls.cipher;
    record().tls_server_name = tls.server_name;
    record().tls_client_subject = tls.peer_subject;
  }
  RequestState& state = requestState();
  state.record.client_port = peer_.port();
  state.record.duration =
      std::chrono::duration_cast<std::chrono::microseconds>(server_.loop->now() - state.start);
  record().started =
      server_.loop->wallNow() -
      std::chrono::duration_cast<std::chrono::system_clock::duration>(record().duration);
  record().bytes_received = connection_.bytesRead() - state.bytes_read_at_start;
  record().bytes_sent =
      connection_.bytesWritten() + connection_.output().size() - state.bytes_written_at_start;
  for (observe::RequestObserver* observer : server_.observers)
    observer->onRequestFinished(record());
}

void ServerConnection::closeNow(const char* why) {
  if (gone_) return;
  gone_ = true;
  read_timer_.cancel();
  cancelHandler(RequestOutcome::kClientAbort);
  if (extras_ && extras_->client_key != 0) {
    server_.client_table->releaseConnection(extras_->client_key);
    extras_->client_key = 0;
  }
  if (started_) {
    if (phase_ == Phase::kIdle) observe::add(server_.worker_counters->connections_idle, -1);
    observe::add(server_.worker_counters->connections_active, -1);
  }
  connection_.close();
  SLUICE_LOG(kDebug, "client " + peer_.toString() + " closed: " + why);
  server_.on_closed(this);
}

}  // namespace sluice::proxy
