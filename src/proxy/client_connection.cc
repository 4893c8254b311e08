#include "proxy/client_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "http/response_writer.h"
#include "proxy/forwarding.h"

namespace sluice::proxy {
namespace {

using event::Duration;

// Bytes read from one client per loop pass before yielding to other
// connections (edge-triggered: we re-queue ourselves, the kernel won't).
constexpr size_t kReadBudgetPerPass = 256 * 1024;
constexpr size_t kMaxReadChunk = 128 * 1024;
// Stop reading (and parsing pipelined requests) while this much output waits
// for a slow client; resume below the low mark.
constexpr size_t kOutputHighWatermark = 256 * 1024;
constexpr size_t kOutputLowWatermark = 64 * 1024;
// Unparsed input kept at most while parsing is paused.
constexpr size_t kInputHighWatermark = 256 * 1024;
// After a final response we shut our write side and read what the client
// still sends, so that closing does not turn unread input into a RST that
// destroys the response in flight (nginx's lingering close).
constexpr Duration kLingerTimeout{2000};
// When a worker drains, an idle keep-alive connection may have a request
// already on its way; closing at once would turn it into a reset. Such a
// connection gets this long: a request that arrives is answered (with
// `Connection: close`), silence closes it.
constexpr Duration kDrainIdleGrace{1000};

http::ParserLimits parserLimits(const config::Limits& limits) {
  http::ParserLimits out;
  out.max_header_bytes = limits.max_header_bytes;
  out.max_headers = limits.max_headers;
  out.max_body_bytes = limits.max_body_bytes;
  return out;
}

}  // namespace

ClientConnection::ClientConnection(ServerContext& server, const ListenerContext& listener, int fd,
                                   net::Address peer)
    : server_(server),
      listener_(listener),
      fd_(fd),
      peer_(std::move(peer)),
      read_timer_(server.loop->timers(), [this] { onReadTimeout(); }) {}

ClientConnection::~ClientConnection() {
  if (fd_ >= 0) {
    server_.loop->removeFd(fd_);
    ::close(fd_);
  }
}

bool ClientConnection::start() {
  int err = server_.loop->addFd(fd_, this);
  if (err != 0) {
    SLUICE_LOG(kError, "cannot register client " + describePeer() + ": " + std::strerror(err));
    return false;
  }
  armReadTimer();
  return true;
}

ClientConnection::RequestState& ClientConnection::request() {
  if (!request_) {
    auto& parked = parkedRequestStates();
    if (!parked.empty()) {
      request_ = std::move(parked.back());
      parked.pop_back();
    } else {
      request_ = std::make_unique<RequestState>(parserLimits(server_.config->limits));
    }
  }
  return *request_;
}

std::vector<std::unique_ptr<ClientConnection::RequestState>>&
ClientConnection::parkedRequestStates() {
  // Per thread = per worker; every connection of a worker shares its limits.
  thread_local std::vector<std::unique_ptr<RequestState>> parked;
  return parked;
}

void ClientConnection::releaseRequestState() {
  // Only a parser between messages can be reused as it is (llhttp waits at a
  // message start, and the next message resets the head).
  constexpr size_t kMaxParked = 256;
  auto& parked = parkedRequestStates();
  if (request_ && !request_->parser.started() && parked.size() < kMaxParked) {
    parked.push_back(std::move(request_));
  }
  request_.reset();
}

bool ClientConnection::idle() const {
  return phase_ == Phase::kWaitingHead && !parserStarted() && in_.empty() && out_.empty();
}

void ClientConnection::beginDrain() {
  draining_ = true;
  if (idle()) read_timer_.arm(std::min(kDrainIdleGrace, server_.config->timeouts.idle));
}

void ClientConnection::onReady(uint32_t ready_bits) {
  if (ready_bits & (event::kReadable | event::kPeerClosed | event::kError)) handleReadable();
  if (!closed() && (ready_bits & event::kWritable) && !out_.empty()) handleWritable();
}

void ClientConnection::handleReadable() {
  size_t budget = kReadBudgetPerPass;
  size_t chunk = Buffer::kReadChunk;
  // Input held back (pipelined requests, paused body) is processed first.
  if (!in_.empty()) processInput();
  while (!closed()) {
    if (phase_ == Phase::kLingering) {
      IoResult r = in_.readFrom(fd_);
      in_.clear();
      if (r.isAgain()) return;
      if (!r.isOk()) {
        close("lingering close done");
        return;
      }
      continue;
    }
    if (in_.size() >= kInputHighWatermark || out_.size() >= kOutputHighWatermark ||
        (exchange_ && !exchange_->canTakeRequestBody())) {
      // Backpressure: the kernel will not tell us again that data is waiting,
      // so remember it and re-queue ourselves once output drains.
      read_paused_ = true;
      break;
    }
    IoResult r = in_.readFrom(fd_, chunk);
    if (r.isAgain()) break;
    if (r.kind == IoResult::Kind::kEof) {
      peer_closed_ = true;
      break;
    }
    if (r.kind == IoResult::Kind::kError) {
      close(r.error == ECONNRESET ? "connection reset by client" : "read error");
      return;
    }
    if (phase_ == Phase::kWaitingHead && !header_timer_armed_) armReadTimer();
    if (phase_ == Phase::kReadingBody) armReadTimer();
    processInput();
    // A read that filled its chunk means a body is streaming in: bigger
    // reads, fewer syscalls (a head fits the first chunk).
    if (r.bytes == chunk) chunk = std::min(chunk * 4, kMaxReadChunk);
    if (closed()) return;
    if (r.bytes >= budget) {
      server_.loop->addPending(fd_, event::kReadable);
      break;
    }
    budget -= r.bytes;
  }
  if (closed()) return;
  if (!out_.empty() && !write_blocked_ && !flush()) return;
  if (peer_closed_) {
    if (phase_ == Phase::kLingering) {
      close("lingering close done");
    } else if (parserStarted() || phase_ == Phase::kReadingBody) {
      // A request cut short: nothing sensible can be answered on it.
      SLUICE_LOG(kInfo, "client " + describePeer() + " closed mid-request");
      close("client closed mid-request");
    } else {
      keep_alive_ = false;  // nothing more will come
      if (phase_ == Phase::kAwaitingResponse) {
        // A half-closed client still gets its response, then the close.
      } else if (out_.empty()) {
        close("client closed");
      } else {
        phase_ = Phase::kFinishing;  // let the queued responses go out
      }
    }
  }
}

void ClientConnection::handleWritable() {
  flush();
}

void ClientConnection::processInput() {
  // After a head or body event the parser may end the message without
  // consuming more, so it is fed once more even with no bytes left.
  bool feed_again = false;
  while (!closed() && (!in_.empty() || feed_again)) {
    feed_again = false;
    if (phase_ == Phase::kFinishing || phase_ == Phase::kLingering) {
      in_.clear();  // nothing after the last response is read
      return;
    }
    // One request at a time: a pipelined request waits until the previous
    // response is complete, so responses go out in order.
    if (phase_ == Phase::kAwaitingResponse) return;
    if (out_.size() >= kOutputHighWatermark) return;  // answer in order once the client reads
    if (exchange_ && !exchange_->canTakeRequestBody()) {
      read_timer_.cancel();  // the upstream is slow, not the client
      return;
    }
    http::RequestParser::Result result = parser().feed(in_.data(), in_.size());
    switch (result.event) {
      case http::RequestParser::Event::kNeedMore:
        in_.consume(result.consumed);
        return;
      case http::RequestParser::Event::kHeadComplete:
        in_.consume(result.consumed);
        onRequestHead();
        feed_again = true;
        break;
      case http::RequestParser::Event::kBody:
        // Forwarded, or discarded when the route answered without it.
        if (exchange_) exchange_->onRequestBody(request_->parser.body());
        in_.consume(result.consumed);
        feed_again = true;
        break;
      case http::RequestParser::Event::kMessageComplete:
        in_.consume(result.consumed);
        onRequestComplete();
        feed_again = !in_.empty();
        break;
      case http::RequestParser::Event::kError:
        in_.consume(result.consumed);
        if (exchange_ && exchange_->responseStarted()) {
          // A request body broke mid-stream while its response was already
          // going out: closing is the only signal left.
          abortFromExchange("invalid request body: " + request_->parser.errorReason());
          return;
        }
        // The upstream got the head and part of the body (or nothing); its
        // connection is dropped, and since no response has started the
        // client gets the error status, as nginx does for a bad body.
        destroyExchangeLater();
        respondError(request_->parser.errorStatus(), request_->parser.errorReason());
        return;
    }
  }
}

void ClientConnection::onRequestHead() {
  const http::RequestHead& head = request_->parser.head();
  ++requests_;
  request_done_ = false;
  response_done_ = false;
  RequestState& state = request();
  state.response_status = 0;
  state.response_body_bytes = 0;
  state.upstream.clear();
  state.start = server_.loop->now();
  if (server_.access_log != nullptr) state.wall_start = std::chrono::system_clock::now();
  uint32_t max_requests = server_.config->limits.max_requests_per_connection;
  keep_alive_ = head.keep_alive && !draining_ && !server_.draining &&
                (max_requests == 0 || requests_ < max_requests);
  if (head.framing != http::BodyFraming::kNone) {
    phase_ = Phase::kReadingBody;
    armReadTimer();
  }

  std::string_view authority;
  std::string_view path = targetPath(head.target, &authority);
  if (listener_.admin) {
    answerAdmin(head, path);
    return;
  }
  std::string host = normalizeHost(authority.empty() ? std::string_view(head.host) : authority);
  // Routes match the normalized path (http/path.h), never a raw spelling of it.
  const RequestPath request_path = resolveRequestPath(head.target, server_.config->paths);
  if (!request_path.ok) {
    respondError(400, request_path.error);
    return;
  }
  const config::Route* route = listener_.router->match(host, request_path.match_path);
  if (route == nullptr) {
    queueError(404, head.isHead());
    response_done_ = true;
    logAccess();
    return;
  }
  if (route->respond) {
    queueResponse(*route->respond, head.isHead());
    response_done_ = true;
    logAccess();
    return;
  }
  startProxy(*route, request_path.upstream_target);
}

void ClientConnection::answerAdmin(const http::RequestHead& head, std::string_view path) {
  response_done_ = true;
  config::DirectResponse response;
  response.headers = {{"Content-Type", "text/plain"}, {"Cache-Control", "no-store"}};
  bool not_ready =
      server_.draining || draining_ || (server_.not_ready != nullptr && server_.not_ready->load());
  if (head.method != "GET" && head.method != "HEAD") {
    response.status = 405;
    response.body = "405 Method Not Allowed\n";
    response.headers.emplace_back("Allow", "GET, HEAD");
  } else if (path == "/healthz") {
    // Liveness: this process answers.
    response.status = 200;
    response.body = "ok\n";
  } else if (path == "/ready") {
    // Readiness: fails first when the process is asked to stop, so load
    // balancers take it out before connections are refused.
    response.status = not_ready ? 503 : 200;
    response.body = not_ready ? "draining\n" : "ready\n";
  } else {
    response.status = 404;
    response.body = "404 Not Found\n";
  }
  queueResponse(response, head.isHead());
  logAccess();
}

void ClientConnection::logAccess(bool with_request) {
  if (server_.access_log == nullptr || !server_.access_log->enabled()) return;
  observe::AccessRecord record;
  std::string ip = peer_.ipText();
  record.client_ip = ip;
  with_request = with_request && request_ != nullptr;
  static const http::RequestHead kNoHead;
  const http::RequestHead& head = with_request ? request_->parser.head() : kNoHead;
  if (with_request) {
    record.method = head.method;
    record.target = head.target;
    record.version_minor = head.version_minor;
  }
  RequestState& state = request();
  record.status = state.response_status;
  record.body_bytes = state.response_body_bytes;
  if (with_request) {
    if (const http::Header* referer = head.find("referer")) record.referer = referer->value;
    if (const http::Header* agent = head.find("user-agent")) record.user_agent = agent->value;
  }
  record.upstream = state.upstream;
  record.started = state.wall_start;
  record.duration =
      std::chrono::duration_cast<std::chrono::microseconds>(server_.loop->now() - state.start);
  server_.access_log->append(record);
}

void ClientConnection::startProxy(const config::Route& route, std::string_view upstream_target) {
  const http::RequestHead& head = request_->parser.head();
  auto cluster = server_.clusters.find(route.upstream);
  if (cluster == server_.clusters.end()) {  // validation makes this unreachable
    queueError(502, head.isHead());
    response_done_ = true;
    return;
  }
  bool trusted = false;
  for (const net::CidrRange& range : server_.config->trusted_proxies) {
    if (range.contains(peer_)) {
      trusted = true;
      break;
    }
  }
  std::string request_id = newRequestId();
  ForwardedFor forwarded;
  forwarded.peer = &peer_;
  forwarded.peer_trusted = trusted;
  forwarded.request_id = request_id;
  forwarded.fallback_host = cluster->second->name();
  forwarded.keep_underscores = server_.config->headers.keep_underscores;
  forwarded.keep_untrusted_request_id = server_.config->headers.keep_untrusted_request_id;
  forwarded.target = upstream_target;
  std::string head_bytes;
  appendUpstreamRequestHead(head, forwarded, &head_bytes);
  exchange_ = std::make_unique<ProxyExchange>(*this, *cluster->second, head, std::move(head_bytes));
  exchange_->start();
}

void ClientConnection::queueError(int status, bool head_only) {
  std::string bytes;
  http::appendErrorResponse(status, head_only, keep_alive_, &bytes);
  out_.append(bytes);
  request().response_status = status;
  // The error body is "<status> <reason>\n".
  request().response_body_bytes = head_only ? 0 : 5 + http::reasonPhrase(status).size();
}

void ClientConnection::onRequestComplete() {
  request_done_ = true;
  if (exchange_) exchange_->onRequestComplete();
  if (closed()) return;
  if (response_done_) {
    finishRequest();
  } else if (phase_ != Phase::kFinishing && phase_ != Phase::kLingering) {
    phase_ = Phase::kAwaitingResponse;
    read_timer_.cancel();  // upstream timeouts govern until the response ends
  }
}

void ClientConnection::finishRequest() {
  if (!keep_alive_) {
    phase_ = Phase::kFinishing;
    in_.clear();
    return;
  }
  phase_ = Phase::kWaitingHead;
  header_timer_armed_ = false;
  armReadTimer();
  // A pipelined request may already be buffered; the read edge for it was
  // consumed, so look at it on the next pass.
  if (!in_.empty()) server_.loop->addPending(fd_, event::kReadable);
}

bool ClientConnection::outputAboveHighWatermark() const {
  return out_.size() >= kOutputHighWatermark;
}

bool ClientConnection::flushOutput() {
  if (closed()) return false;
  if (write_blocked_) return true;  // the writable edge will flush
  return flush();
}

void ClientConnection::resumeInput() {
  if (closed()) return;
  if (phase_ == Phase::kReadingBody) armReadTimer();
  server_.loop->addPending(fd_, event::kReadable);
}

void ClientConnection::onExchangeDone(bool request_complete) {
  destroyExchangeLater();
  response_done_ = true;
  logAccess();
  if (!request_complete) {
    // The upstream answered before the request body ended; the rest of the
    // body cannot be skipped safely, so this is the last response.
    keep_alive_ = false;
    phase_ = Phase::kFinishing;
    in_.clear();
  } else if (request_done_) {
    finishRequest();
  }
  flushOutput();
}

void ClientConnection::respondFromExchange(int status) {
  destroyExchangeLater();
  response_done_ = true;
  if (!request_done_) keep_alive_ = false;
  queueError(status, request_->parser.head().isHead());
  logAccess();
  if (!request_done_) {
    phase_ = Phase::kFinishing;
    in_.clear();
  } else {
    finishRequest();
  }
  flushOutput();
}

void ClientConnection::abortFromExchange(const std::string& reason) {
  SLUICE_LOG(kWarn, "client " + describePeer() + ": closing mid-response: " + reason);
  logAccess();
  close("upstream response broke");
}

void ClientConnection::destroyExchangeLater() {
  if (!exchange_) return;
  // Stopped now, destroyed later: events for its upstream later in this pass
  // must not reach this connection any more.
  exchange_->cancel();
  // The exchange may be on the stack (it is often the caller).
  std::shared_ptr<ProxyExchange> doomed(std::move(exchange_));
  server_.loop->defer([doomed] {});
}

void ClientConnection::queueResponse(const config::DirectResponse& response, bool head_only) {
  http::SimpleResponse simple;
  simple.status = response.status;
  simple.headers = response.headers;
  simple.body = response.body;
  simple.head_only = head_only;
  simple.keep_alive = keep_alive_;
  std::string bytes;
  http::appendSimpleResponse(simple, &bytes);
  out_.append(bytes);
  request().response_status = response.status;
  request().response_body_bytes = head_only ? 0 : response.body.size();
}

void ClientConnection::respondError(int status, const std::string& reason) {
  SLUICE_LOG(kInfo, "client " + describePeer() + ": " + std::to_string(status) + " " +
                        std::string(http::reasonPhrase(status)) + ": " + reason);
  std::string bytes;
  http::appendErrorResponse(status, false, false, &bytes);
  out_.append(bytes);
  const bool head_parsed = request_ && request_->parser.inMessage();
  request().response_status = status;
  request().response_body_bytes = 5 + http::reasonPhrase(status).size();
  if (!head_parsed) {
    request().start = server_.loop->now();
    request().wall_start = std::chrono::system_clock::now();
  }
  // Before the head parsed, nothing of the request line is trustworthy.
  logAccess(head_parsed);
  phase_ = Phase::kFinishing;
  in_.clear();
  read_timer_.cancel();
  flush();
}

bool ClientConnection::flush() {
  while (!out_.empty()) {
    IoResult r = out_.writeTo(fd_);
    if (r.isAgain()) {
      write_blocked_ = true;
      if (!send_timer_) {
        send_timer_ =
            std::make_unique<event::Timer>(server_.loop->timers(), [this] { onSendTimeout(); });
      }
      if (!send_timer_->armed()) send_timer_->arm(server_.config->timeouts.send);
      return true;
    }
    if (r.kind == IoResult::Kind::kError) {
      close(r.error == EPIPE || r.error == ECONNRESET ? "client went away" : "write error");
      return false;
    }
    // Progress: the send timeout measures the gap between writes.
    if (send_timer_ && send_timer_->armed()) send_timer_->arm(server_.config->timeouts.send);
  }
  write_blocked_ = false;
  if (send_timer_) send_timer_->cancel();
  afterFlush();
  return !closed();
}

void ClientConnection::afterFlush() {
  if (closed() || !out_.empty()) return;
  if (phase_ == Phase::kFinishing) {
    startLingering();
    return;
  }
  if (exchange_) exchange_->onClientOutputDrained();
  if (!in_.empty() && phase_ == Phase::kWaitingHead) {
    // Pipelined requests held back by backpressure: next pass, not re-entrantly.
    server_.loop->addPending(fd_, event::kReadable);
  }
  if (read_paused_ && out_.size() < kOutputLowWatermark) {
    read_paused_ = false;
    server_.loop->addPending(fd_, event::kReadable);
  }
  if (idle()) {
    if (draining_ || server_.draining) {
      read_timer_.arm(std::min(kDrainIdleGrace, server_.config->timeouts.idle));
      return;
    }
    // Idle keep-alive connections hold no I/O buffers and no parser: an idle
    // connection costs a few hundred bytes, a request a fresh parser.
    in_.releaseIfEmpty();
    out_.releaseIfEmpty();
    releaseRequestState();
  }
}

void ClientConnection::startLingering() {
  if (peer_closed_) {
    close("response sent");
    return;
  }
  ::shutdown(fd_, SHUT_WR);
  phase_ = Phase::kLingering;
  read_timer_.arm(kLingerTimeout);
  // Input may already be waiting; the edge for it has been consumed.
  server_.loop->addPending(fd_, event::kReadable);
}

void ClientConnection::armReadTimer() {
  const config::ClientTimeouts& timeouts = server_.config->timeouts;
  switch (phase_) {
    case Phase::kWaitingHead:
      if (parserStarted() || !in_.empty() || requests_ == 0) {
        // The whole head must arrive within `header` from its first byte (or
        // from accept, for the first request).
        read_timer_.arm(timeouts.header);
        header_timer_armed_ = parserStarted() || !in_.empty();
      } else {
        read_timer_.arm(timeouts.idle);
      }
      break;
    case Phase::kReadingBody:
      read_timer_.arm(timeouts.body);
      break;
    case Phase::kAwaitingResponse:
    case Phase::kFinishing:
    case Phase::kLingering:
      break;
  }
}

void ClientConnection::onReadTimeout() {
  switch (phase_) {
    case Phase::kWaitingHead:
      if (parserStarted() || !in_.empty()) {
        respondError(408, "request head not received within timeouts.header");
      } else {
        // Nothing of a request arrived: close quietly, as nginx and HAProxy
        // do for idle keep-alive and silent connections.
        close(requests_ == 0 ? "no request within timeouts.header" : "keep-alive idle timeout");
      }
      break;
    case Phase::kReadingBody:
      if (exchange_ && exchange_->responseStarted()) {
        abortFromExchange("request body stalled beyond timeouts.body");
      } else {
        // As for an invalid body: no response has started, so the client
        // gets its 408 (nginx's client_body_timeout) and the upstream
        // connection, which has part of the body, is dropped.
        destroyExchangeLater();
        respondError(408, "request body stalled beyond timeouts.body");
      }
      break;
    case Phase::kAwaitingResponse:
    case Phase::kFinishing:
    case Phase::kLingering:
      close("lingering close timed out");
      break;
  }
}

void ClientConnection::onSendTimeout() {
  SLUICE_LOG(kInfo, "client " + describePeer() + ": send timed out, closing");
  close("send timeout");
}

void ClientConnection::close(const char* why) {
  if (closed()) return;
  read_timer_.cancel();
  if (send_timer_) send_timer_->cancel();
  destroyExchangeLater();  // a client that leaves mid-request cancels the upstream side
  server_.loop->removeFd(fd_);
  ::close(fd_);
  fd_ = -1;
  SLUICE_LOG(kDebug, "client " + peer_.toString() + " closed: " + why);
  server_.on_closed(this);
}

std::string ClientConnection::describePeer() const {
  return peer_.toString();
}

}  // namespace sluice::proxy
