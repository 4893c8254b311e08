#include "proxy/proxy_handler.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "http/path.h"
#include "net/proxy_protocol.h"
#include "proxy/forwarding.h"
#include "proxy/router.h"
#include "upstream/conn_pool.h"

namespace sluice::proxy {
namespace {

// What `balance: hash` hashes for this request (config::HashKey); empty when
// the header or cookie is absent (the balancer then spreads such requests).
std::string balanceHashKey(const config::HashKey& key, const http::RequestHead& request,
                           std::string_view client_ip) {
  switch (key.kind) {
    case config::HashKey::Kind::kClientIp:
      return std::string(client_ip);
    case config::HashKey::Kind::kUri:
      return std::string(http::originFormPart(request.target, nullptr));
    case config::HashKey::Kind::kHeader: {
      const http::Header* header = request.find(key.name);
      return header != nullptr ? header->value : std::string();
    }
    case config::HashKey::Kind::kCookie:
      // RFC 6265 §5.4: "name=value" pairs separated by "; ", in every Cookie
      // header line; the first match wins.
      for (const http::Header& header : request.headers) {
        if (!http::equalsIgnoreCase(header.name, "cookie")) continue;
        std::string_view rest = header.value;
        while (!rest.empty()) {
          const size_t end = rest.find(';');
          std::string_view pair = http::trimOws(rest.substr(0, end));
          rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
          const size_t eq = pair.find('=');
          if (eq != std::string_view::npos && pair.substr(0, eq) == key.name) {
            return std::string(pair.substr(eq + 1));
          }
        }
      }
      return {};
  }
  return {};
}

using observe::RequestOutcome;
using upstream::AttemptOutcome;

// RFC 9110 §9.2.2: only these may be repeated without changing the outcome.
bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

template <typename D>
std::chrono::microseconds micros(D d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

}  // namespace

ProxyHandler::ProxyHandler(Downstream& downstream, ServerContext& server,
                           upstream::Cluster& cluster, const config::Route& route,
                           std::string_view upstream_target)
    : downstream_(downstream),
      server_(server),
      cluster_(cluster),
      route_(route),
      upstream_target_(upstream_target),
      loop_(downstream.loop()),
      connect_timer_(loop_.timers(),
                     [this] {
                       failAttempt(AttemptOutcome::kConnectFailure, 504,
                                   RequestOutcome::kUpstreamTimeout, "connect timed out",
                                   Retry::kNextHost);
                     }),
      response_timer_(loop_.timers(),
                      [this] {
                        failAttempt(AttemptOutcome::kTimeout, 504, RequestOutcome::kUpstreamTimeout,
                                    "response timed out", Retry::kNone);
                      }),
      tunnel_timer_(loop_.timers(),
                    [this] {
                      endTunnel(RequestOutcome::kOk,
                                "no bytes either way within timeouts.tunnel_idle");
                    }),
      try_timer_(loop_.timers(), [this] {
        failAttempt(AttemptOutcome::kTimeout, 504, RequestOutcome::kUpstreamTimeout,
                    "no response head within per_try_timeout", Retry::kNone);
      }) {
  if (!server_.spare_strings.empty()) {
    head_lines_ = std::move(server_.spare_strings.back());
    server_.spare_strings.pop_back();
  }
}

ProxyHandler::~ProxyHandler() {
  if (state_ != State::kDone) cancel(RequestOutcome::kClientAbort);
  // Its storage serves the next request's head (bounded: a huge head's
  // storage is freed, and so are strings beyond what a worker has in flight).
  constexpr size_t kMaxKept = 256;
  constexpr size_t kMaxKeptCapacity = 16 * 1024;
  if (head_lines_.capacity() <= kMaxKeptCapacity && server_.spare_strings.size() < kMaxKept) {
    if (server_.spare_strings.capacity() < kMaxKept) server_.spare_strings.reserve(kMaxKept);
    head_lines_.clear();
    server_.spare_strings.push_back(std::move(head_lines_));
  }
}

void ProxyHandler::start() {
  const http::RequestHead& request = downstream_.request();
  const bool trusted = isTrustedPeer(*server_.config, downstream_.peer());
  const config::HeaderSettings& headers = server_.config->headers;
  // The id the upstream will see: the one the request got when it started,
  // or the client's when forwarding keeps it (a trusted peer's, or any
  // peer's with request_id: keep), for the request record and the logs.
  const http::Header* client_id = request.find("x-request-id");
  const bool keep_client_id =
      client_id != nullptr && (trusted || headers.keep_untrusted_request_id);
  if (keep_client_id) downstream_.setRequestId(client_id->value);
  ForwardedFor forwarded;
  forwarded.peer = &downstream_.peer();
  forwarded.peer_trusted = trusted;
  forwarded.request_id = downstream_.record().request_id;
  forwarded.fallback_host = cluster_.name();
  if (!route_.strip_prefix.empty() || route_.rewrite_prefix) {
    rewritten_target_ = rewriteTarget(route_, upstream_target_.empty()
                                                  ? http::originFormPart(request.target, nullptr)
                                                  : upstream_target_);
    upstream_target_ = rewritten_target_;
  }
  forwarded.target = upstream_target_;
  client_ip_ = downstream_.peer().ipText();
  if (cluster_.config().balance == config::BalancePolicy::kHash) {
    hash_key_ = balanceHashKey(cluster_.config().hash, request, client_ip_);
  }
  rule_context_.client_ip = client_ip_;
  rule_context_.client_port = downstream_.peer().port();
  rule_context_.scheme = downstream_.transportInfo().secure ? "https" : "http";
  rule_context_.host = downstream_.requestHost();
  rule_context_.request_id = downstream_.record().request_id;
  forwarded.scheme = rule_context_.scheme;
  forwarded.rfc7239 = headers.rfc7239_forwarded;
  if (!route_.request_headers.empty()) forwarded.rules = &route_.request_headers;
  forwarded.rule_context = rule_context_;
  forwarded.keep_underscores = headers.keep_underscores;
  forwarded.keep_untrusted_request_id = headers.keep_untrusted_request_id;
  forwarded.client_cert_header = route_.client_cert_header;
  forwarded.client_cert = downstream_.transportInfo().peer_certificate;
  if (const http::Header* upgrade = request.find("upgrade");
      upgrade != nullptr && !route_.upgrade.empty() &&
      http::listContainsToken(connectionTokens(request.headers), "upgrade")) {
    // RFC 9110 §7.8: the first protocol listed is the one wanted most; the
    // route allows it or the request is an ordinary one (Upgrade stripped).
    std::string_view first = upgrade->value;
    first = http::trimOws(first.substr(0, first.find(',')));
    first = first.substr(0, first.find('/'));  // "websocket", not its version
    for (const std::string& allowed : route_.upgrade) {
      if (http::equalsIgnoreCase(first, allowed)) {
        upgrade_ = upgrade->value;
        break;
      }
    }
  }
  forwarded.upgrade = upgrade_;
  appendUpstreamRequestHead(request, forwarded, &head_lines_);
  request_complete_ = request.framing == http::BodyFraming::kNone;
  if (request.expect_continue && request.framing != http::BodyFraming::kNone) {
    // sluice answers 100-continue itself (Expect is not forwarded), as nginx
    // does: the body is wanted as soon as we are ready to stream it.
    downstream_.sendContinue();
  }
  cluster_.requestStarted();
  connectNext();
}

void ProxyHandler::connectNext() {
  const config::Upstream& config = cluster_.config();
  while (state_ != State::kDone) {
    host_ = attempts_ <= config.retries ? cluster_.pick({&tried_, hash_key_}) : nullptr;
    if (host_ == nullptr) {
      state_ = State::kDone;
      if (attempts_ == 0) {
        // No address resolved yet, or every server out with all_down: refuse.
        const std::string reason = cluster_.unavailableReason();
        if (!reason.empty()) {
          downstream_.sendError(503, observe::RequestOutcome::kUpstreamUnavailable,
                                "upstream " + config.name + ": " + reason);
          return;
        }
      }
      downstream_.sendError(last_failure_status_, last_failure_, "no upstream server left to try");
      return;
    }
    tried_.add(host_->cluster_index);
    cluster_.attemptStarted(*host_, /*retry=*/attempts_ > 0);
    attempt_open_ = true;
    ++attempts_;
    attempt_start_ = loop_.now();
    if (config.per_try_timeout) try_timer_.arm(*config.per_try_timeout);
    observe::RequestRecord& record = downstream_.record();
    record.attempts = attempts_;
    record.server_index = static_cast<int32_t>(host_->index);
    record.server = host_->address_text;
    std::unique_ptr<upstream::UpstreamConnection> connection = host_->pool->takeIdle();
    if (connection) {
      attach(std::move(connection));
      state_ = State::kExchanging;
      queueRequestStart();
      return;
    }
    int error = 0;
    connection = upstream::UpstreamConnection::open(loop_, *host_, cluster_.connector(), &error,
                                                    proxyHeader());
    if (!connection) {
      SLUICE_LOG_REQUEST(kWarn, downstream_.record().request_id,
                         describe() + ": connect failed: " + std::strerror(error));
      try_timer_.cancel();
      endAttempt(AttemptOutcome::kConnectFailure);
      last_failure_status_ = 502;
      last_failure_ = RequestOutcome::kUpstreamUnavailable;
      if (!retryApproved(config.retry_on.connect_failure)) {
        state_ = State::kDone;
        downstream_.sendError(last_failure_status_, last_failure_, "connect failed");
        return;
      }
      continue;
    }
    attach(std::move(connection));
    state_ = State::kConnecting;
    connect_timer_.arm(config.timeouts.connect);
    queueRequestStart();
    return;
  }
}

void ProxyHandler::attach(std::unique_ptr<upstream::UpstreamConnection> connection) {
  upstream_ = std::move(connection);
  upstream_->attach(this);
  upstream_->connection().setSendTimeout(cluster_.config().timeouts.send);
}

Buffer ProxyHandler::proxyHeader() {
  Buffer header;
  const config::SendProxyProtocol send = cluster_.config().send_proxy_protocol;
  if (send == config::SendProxyProtocol::kOff) return header;
  // Who the client is, first on this new connection (under TLS, before the
  // ClientHello: the transport writes it). It describes one client, so the
  // connection is never pooled for another (onResponseComplete); HAProxy
  // makes such connections private too.
  net::appendProxyHeader(
      send == config::SendProxyProtocol::kV1 ? net::ProxyVersion::kV1 : net::ProxyVersion::kV2,
      downstream_.peer(), downstream_.localAddress(), header);
  return header;
}

void ProxyHandler::queueRequestStart() {
  net::Connection& connection = upstream_->connection();
  const http::RequestHead& request = downstream_.request();
  if (!carry_.empty()) {
    // A previous attempt failed before the server saw anything: what was
    // queued for it (head and body so far, framed) goes to this one as it is.
    connection.output() = std::move(carry_);
    carry_ = Buffer();
    upstream_->codec().continueRequest(request.method, request.framing, request_complete_,
                                       !upgrade_.empty());
  } else {
    connection.output().append(head_lines_);
    upstream_->codec().endRequestHead(request.method, request.framing, request.content_length,
                                      connection.output(), !upgrade_.empty());
    if (request_complete_ && attempts_ > 1 && request.framing != http::BodyFraming::kNone) {
      // A replay (retry_non_idempotent): the kept body, then its end.
      upstream_->codec().encodeBody(replay_body_, connection.output());
      upstream_->codec().encodeEnd(connection.output(), &downstream_.requestTrailers(),
                                   &forwardableTrailer);
    } else if (request_complete_) {
      upstream_->codec().encodeEnd(connection.output());
    }
  }
  connection.wrote();
  if (request_complete_) connection.notifyWhenDrained();
  // The previous connection held the body back; this one may take more.
  if (body_paused_ && !connection.aboveHighWatermark()) {
    body_paused_ = false;
    downstream_.resumeRequestBody();
  }
}

void ProxyHandler::onUpstreamConnected() {
  if (state_ != State::kConnecting) return;
  connect_timer_.cancel();
  if (const net::TransportInfo& tls = upstream_->connection().transport().info(); tls.secure) {
    SLUICE_LOG_REQUEST(kDebug, downstream_.record().request_id,
                       describe() + ": upstream " + tls.protocol + " handshake (" +
                           (tls.resumed ? "session resumed" : "full") + ")");
    observe::add(tls.resumed ? host_->counters->tls_resumed : host_->counters->tls_handshakes);
  }
  state_ = State::kExchanging;
  downstream_.record().upstream_connect = micros(loop_.now() - attempt_start_);
}

void ProxyHandler::onRequestBody(std::string_view piece) {
  if (route_.retry_non_idempotent && replay_body_kept_) {
    if (replay_body_.size() + piece.size() <= kMaxReplayBody) {
      replay_body_.append(piece);
    } else {
      replay_body_kept_ = false;  // too large to keep: this request is sent once
      std::string().swap(replay_body_);
    }
  }
  if (state_ == State::kDone || !upstream_) return;
  net::Connection& connection = upstream_->connection();
  upstream_->codec().encodeBody(piece, connection.output());
  connection.wrote();
}

void ProxyHandler::onRequestComplete() {
  if (request_complete_) return;  // bodiless: complete since start()
  request_complete_ = true;
  if (state_ == State::kDone || !upstream_) return;
  net::Connection& connection = upstream_->connection();
  // A chunked request's trailers go on to the upstream (every HTTP/1.1
  // recipient of chunked must accept a trailer section, RFC 9112 §7.1.2).
  upstream_->codec().encodeEnd(connection.output(), &downstream_.requestTrailers(),
                               &forwardableTrailer);
  connection.wrote();
  connection.notifyWhenDrained();
}

void ProxyHandler::onUpstreamWriteBlocked() {
  if (body_paused_ || (request_complete_ && state_ != State::kTunnel)) return;
  body_paused_ = true;
  downstream_.pauseRequestBody();
}

void ProxyHandler::onUpstreamWriteUnblocked() {
  if (!body_paused_) return;
  body_paused_ = false;
  downstream_.resumeRequestBody();
}

void ProxyHandler::onUpstreamRequestSent() {
  if (state_ == State::kDone || !request_complete_) return;
  request_sent_all_ = true;
  request_sent_ = loop_.now();
  // From here the response timeout measures the upstream's silence.
  if (!response_paused_) armResponseTimer();
}

void ProxyHandler::onDownstreamBlocked() {
  if (state_ == State::kDone || !upstream_ || response_paused_) return;
  // The client reads slower than the upstream writes: stop reading the
  // upstream until it drains (bounded memory). The response timeout stops
  // too: the wait is on the client now, which timeouts.send governs (nginx
  // deletes proxy_read_timeout while blocked on the client as well).
  response_paused_ = true;
  response_timer_.cancel();
  upstream_->setResponseFlow(false);
}

void ProxyHandler::onDownstreamUnblocked() {
  if (!response_paused_) return;
  response_paused_ = false;
  if (state_ == State::kDone || !upstream_) return;
  upstream_->setResponseFlow(true);
  if (state_ != State::kTunnel) armResponseTimer();
}

void ProxyHandler::onResponseHead(const http::ResponseHead& head) {
  if (state_ == State::kDone) return;
  try_timer_.cancel();
  const std::vector<int>& retry_statuses = cluster_.config().retry_on.statuses;
  if (std::find(retry_statuses.begin(), retry_statuses.end(), head.status) !=
          retry_statuses.end() &&
      replayable() && retryApproved(true)) {
    // Nothing of this answer has reached the client: ask another server.
    last_failure_status_ = head.status;
    retryElsewhere(AttemptOutcome::kHttp5xx);
    return;
  }
  response_started_ = true;
  armResponseTimer();
  observe::RequestRecord& record = downstream_.record();
  record.upstream_status = head.status;
  if (request_sent_all_) record.upstream_first_byte = micros(loop_.now() - request_sent_);
  http::BodySize body;
  switch (head.framing) {
    case http::BodyFraming::kContentLength:
      body = http::BodySize::known(head.content_length);
      break;
    case http::BodyFraming::kChunked:
    case http::BodyFraming::kUntilClose:
      body = http::BodySize::unknown();
      break;
    case http::BodyFraming::kNone: {
      uint64_t length = 0;
      if (statedContentLength(head, &length)) body = http::BodySize::noneButLength(length);
      break;
    }
  }
  Buffer& out = downstream_.beginResponse(head.status, head.reason);
  appendClientResponseHeaders(head, out,
                              route_.response_headers.empty() ? nullptr : &route_.response_headers,
                              &rule_context_);
  if (head.framing == http::BodyFraming::kChunked && acceptsTrailers(downstream_.request())) {
    // The trailers will be passed on: so is the header announcing them
    // (otherwise dropped with the hop-by-hop ones).
    for (const http::Header& header : head.headers) {
      if (!http::equalsIgnoreCase(header.name, "trailer")) continue;
      out.append("Trailer: ");
      out.append(header.value);
      out.append("\r\n");
    }
  }
  if (head.status == 101) {
    // The parser lets a 101 through only for a request that asked to
    // upgrade through a route allowing it. Upgrade and Connection are
    // hop-by-hop: regenerated for the client.
    const http::Header* upgrade = head.find("upgrade");
    out.append("Upgrade: ");
    out.append(upgrade != nullptr ? std::string_view(upgrade->value) : std::string_view(upgrade_));
    out.append("\r\nConnection: upgrade\r\n");
    switching_ = true;
    return;  // the head ends in startTunnel(), when the response completes
  }
  downstream_.endResponseHead(body);
}

void ProxyHandler::onResponseBody(std::string_view piece) {
  if (state_ == State::kDone) return;
  armResponseTimer();
  downstream_.sendBody(piece);  // may call onDownstreamBlocked()
}

void ProxyHandler::onResponseComplete() {
  if (state_ == State::kDone) return;
  if (switching_) {
    startTunnel();
    return;
  }
  stopTimers();
  state_ = State::kDone;
  const http::ResponseHead& head = upstream_->codec().head();
  const int status = head.status;
  // Reuse only a connection whose exchange ended cleanly on both sides, with
  // nothing after the response (never deliver such bytes as the next one).
  const bool reusable = head.keep_alive && upstream_->codec().requestEnded() &&
                        upstream_->connection().output().empty() && upstream_->reusable() &&
                        cluster_.config().send_proxy_protocol == config::SendProxyProtocol::kOff;
  const event::Duration keep_alive_hint(keepAliveTimeoutMs(head));
  endAttempt(status >= 500 ? AttemptOutcome::kHttp5xx : AttemptOutcome::kSuccess);
  // Copied: the connection may go to another request before the client's
  // output is written (it does not here, but the pool owns it now).
  trailers_ = upstream_->codec().trailers();
  if (reusable) {
    upstream_->countRequest();
    upstream::ConnPool& pool = *upstream_->host().pool;
    pool.release(std::move(upstream_), keep_alive_hint);
  } else {
    discardUpstream();
  }
  downstream_.endResponse(&trailers_);  // may destroy this handler (deferred): last
}

void ProxyHandler::onResponseError(std::string_view reason) {
  failAttempt(AttemptOutcome::kInvalid, 502, RequestOutcome::kUpstreamInvalid,
              "invalid response: " + std::string(reason), Retry::kNone);
}

void ProxyHandler::onUpstreamClosed(int error) {
  if (state_ == State::kDone) return;
  if (state_ == State::kTunnel) {
    if (error != 0) {
      endTunnel(RequestOutcome::kUpstreamReset, std::string("upstream: ") + std::strerror(error));
      return;
    }
    // The upstream finished sending: pass its FIN on once its bytes are out.
    upstream_eof_ = true;
    downstream_.closeTunnelWrite();
    if (client_eof_) endTunnel(RequestOutcome::kOk, "both sides closed");
    return;
  }
  if (state_ == State::kConnecting) {
    const bool timed_out = error == ETIMEDOUT;
    failAttempt(AttemptOutcome::kConnectFailure, timed_out ? 504 : 502,
                timed_out ? RequestOutcome::kUpstreamTimeout : RequestOutcome::kUpstreamUnavailable,
                std::string("connect failed: ") +
                    (upstream_->connection().failureReason().empty()
                         ? std::string(std::strerror(error != 0 ? error : ECONNRESET))
                         : upstream_->connection().failureReason()),
                Retry::kNextHost);
    return;
  }
  if (error == ETIMEDOUT) {
    failAttempt(AttemptOutcome::kTimeout, 504, RequestOutcome::kUpstreamTimeout,
                "send to upstream timed out", Retry::kNone);
    return;
  }
  const bool any_response_byte = upstream_->codec().responseStarted();
  std::string what = error == 0 ? "upstream closed the connection" : std::strerror(error);
  what += any_response_byte ? " mid-response" : " before responding";
  failAttempt(AttemptOutcome::kReset, 502, RequestOutcome::kUpstreamReset, what,
              any_response_byte ? Retry::kNone : Retry::kFreshConnection);
}

bool ProxyHandler::mayReplayOnFreshConnection() const {
  // The keep-alive race: a pooled connection the server closed just as we
  // reused it. Replaying is safe only for idempotent requests whose bytes we
  // still have in full (no body), and only once.
  const http::RequestHead& request = downstream_.request();
  return upstream_ && upstream_->requestsServed() > 0 && !upstream_->codec().responseStarted() &&
         !replayed_ && isIdempotent(request.method) && request.framing == http::BodyFraming::kNone;
}

void ProxyHandler::failAttempt(AttemptOutcome outcome, int status, RequestOutcome why,
                               const std::string& reason, Retry retry) {
  if (state_ == State::kDone) return;
  SLUICE_LOG_REQUEST(kWarn, downstream_.record().request_id, describe() + ": " + reason);
  stopTimers();
  last_failure_status_ = status;
  last_failure_ = why;
  if (response_started_) {
    // Part of the response is already with the client: the only honest
    // signal left is to close its connection.
    endAttempt(outcome);
    discardUpstream();
    state_ = State::kDone;
    downstream_.abortResponse(why, reason);
    return;
  }
  if (retry == Retry::kNextHost && state_ == State::kConnecting &&
      retryApproved(cluster_.config().retry_on.connect_failure)) {
    // Nothing reached the server: everything queued moves to the next try.
    carry_ = std::move(upstream_->connection().output());
    upstream_->connection().output() = Buffer();
    endAttempt(outcome);
    discardUpstream();
    connectNext();
    return;
  }
  if (retry == Retry::kFreshConnection && mayReplayOnFreshConnection()) {
    SLUICE_LOG_REQUEST(kInfo, downstream_.record().request_id,
                       describe() + ": retrying once on a fresh connection");
    replayed_ = true;
    // The stale connection says nothing about the server's health.
    endAttempt(AttemptOutcome::kCancelled);
    discardUpstream();
    cluster_.attemptStarted(*host_, /*retry=*/true);
    attempt_open_ = true;
    attempt_start_ = loop_.now();
    int error = 0;
    std::unique_ptr<upstream::UpstreamConnection> connection = upstream::UpstreamConnection::open(
        loop_, *host_, cluster_.connector(), &error, proxyHeader());
    if (connection) {
      attach(std::move(connection));
      state_ = State::kConnecting;
      connect_timer_.arm(cluster_.config().timeouts.connect);
      queueRequestStart();
      return;
    }
    SLUICE_LOG_REQUEST(kWarn, downstream_.record().request_id,
                       describe() + ": connect failed: " + std::strerror(error));
    outcome = AttemptOutcome::kConnectFailure;
  }
  const config::RetryOn& retry_on = cluster_.config().retry_on;
  const bool wanted = (outcome == AttemptOutcome::kReset && retry_on.reset) ||
                      (outcome == AttemptOutcome::kTimeout && retry_on.timeout);
  if (wanted && replayable() && retryApproved(true)) {
    retryElsewhere(outcome);
    return;
  }
  endAttempt(outcome);
  discardUpstream();
  state_ = State::kDone;
  downstream_.sendError(status, why, reason);
}

bool ProxyHandler::replayable() const {
  const http::RequestHead& request = downstream_.request();
  if (response_started_ || !request_complete_ || !upgrade_.empty()) return false;
  if (route_.retry_non_idempotent) {
    return request.framing == http::BodyFraming::kNone || replay_body_kept_;
  }
  return request.framing == http::BodyFraming::kNone && isIdempotent(request.method);
}

bool ProxyHandler::retryApproved(bool reason_enabled) {
  if (!reason_enabled || attempts_ > cluster_.config().retries) return false;
  if (tried_.count() >= cluster_.presentCount()) return false;  // never the same server again
  return cluster_.mayRetry(server_.worker_counters->retry_budget_exhausted);
}

void ProxyHandler::retryElsewhere(AttemptOutcome outcome) {
  SLUICE_LOG_REQUEST(kInfo, downstream_.record().request_id,
                     describe() + ": retrying on another server");
  stopTimers();
  endAttempt(outcome);
  discardUpstream();
  carry_ = Buffer();  // the head is written again from head_lines_
  request_sent_all_ = false;
  state_ = State::kConnecting;
  connectNext();
}

void ProxyHandler::endAttempt(AttemptOutcome outcome) {
  if (!attempt_open_ || host_ == nullptr) return;
  attempt_open_ = false;
  cluster_.attemptDone(*host_, outcome,
                       std::chrono::duration_cast<event::Duration>(loop_.now() - attempt_start_));
}

void ProxyHandler::startTunnel() {
  stopTimers();
  endAttempt(AttemptOutcome::kSuccess);  // the switch worked; the tunnel is no attempt
  state_ = State::kTunnel;
  downstream_.switchProtocols();
  upstream_->codec().enterTunnel();
  // Bytes the upstream sent right after its 101 are already buffered.
  upstream_->connection().redeliver();
  touchTunnel();
}

void ProxyHandler::touchTunnel() {
  tunnel_timer_.arm(server_.config->timeouts.tunnel_idle);
}

void ProxyHandler::onTunnelData(std::string_view bytes) {
  if (state_ != State::kTunnel) return;
  touchTunnel();
  downstream_.sendTunnelData(bytes);  // may call onDownstreamBlocked()
}

void ProxyHandler::onDownstreamData(std::string_view bytes) {
  if (state_ != State::kTunnel || !upstream_) return;
  touchTunnel();
  upstream_->connection().write(bytes);  // may call onUpstreamWriteBlocked()
}

void ProxyHandler::onDownstreamEof() {
  if (state_ != State::kTunnel || !upstream_) return;
  client_eof_ = true;
  upstream_->connection().shutdownWriteWhenFlushed();
  if (upstream_eof_) endTunnel(RequestOutcome::kOk, "both sides closed");
}

void ProxyHandler::endTunnel(RequestOutcome outcome, const std::string& reason) {
  if (state_ != State::kTunnel) return;
  state_ = State::kDone;
  tunnel_timer_.cancel();
  discardUpstream();
  downstream_.endTunnel(outcome, reason);
}

void ProxyHandler::cancel(RequestOutcome why) {
  (void)why;
  if (state_ == State::kDone) return;
  state_ = State::kDone;
  stopTimers();
  endAttempt(AttemptOutcome::kCancelled);
  discardUpstream();
}

void ProxyHandler::discardUpstream() {
  if (!upstream_) return;
  // We may be inside this connection's own callback: stop its events now
  // and destroy it at the end of the pass.
  upstream_->attach(nullptr);
  upstream_->connection().close();
  loop_.deferDelete(std::move(upstream_));
}

void ProxyHandler::armResponseTimer() {
  response_timer_.arm(route_.timeouts.response.value_or(cluster_.config().timeouts.response));
}

void ProxyHandler::stopTimers() {
  connect_timer_.cancel();
  response_timer_.cancel();
  tunnel_timer_.cancel();
  try_timer_.cancel();
}

std::string ProxyHandler::describe() const {
  std::string text = "upstream " + cluster_.name();
  if (host_ != nullptr) text += " server " + host_->address_text;
  const http::RequestHead& request = downstream_.request();
  text += " for " + downstream_.peer().toString() + " \"" + request.method + " " + request.target +
          "\"";
  return text;
}

}  // namespace sluice::proxy
