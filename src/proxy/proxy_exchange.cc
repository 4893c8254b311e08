#include "proxy/proxy_exchange.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "net/socket.h"
#include "proxy/client_connection.h"

namespace sluice::proxy {
namespace {

constexpr size_t kUpstreamOutHighWatermark = 256 * 1024;
constexpr size_t kUpstreamOutLowWatermark = 64 * 1024;
constexpr size_t kUpstreamReadBudgetPerPass = 256 * 1024;
constexpr size_t kUpstreamMaxReadChunk = 128 * 1024;

// RFC 9110 §9.2.2: only these may be repeated without changing the outcome.
bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace

ProxyExchange::ProxyExchange(ClientConnection& client, upstream::Cluster& cluster,
                             const http::RequestHead& head, std::string request_head_bytes)
    : client_(client),
      loop_(client.loop()),
      cluster_(cluster),
      request_(head),
      request_head_bytes_(std::move(request_head_bytes)),
      tried_(cluster.serverCount(), false),
      connect_timer_(client.loop().timers(),
                     [this] { failUpstream(504, "connect timed out", Retry::kNextServer); }),
      response_timer_(client.loop().timers(),
                      [this] { failUpstream(504, "response timed out", Retry::kNone); }),
      send_timer_(client.loop().timers(),
                  [this] { failUpstream(504, "send to upstream timed out", Retry::kNone); }) {}

ProxyExchange::~ProxyExchange() {
  discardUpstream();
}

void ProxyExchange::start() {
  parser_.expectResponseTo(request_.method);
  if (request_.expect_continue && request_.framing != http::BodyFraming::kNone) {
    // sluice answers 100-continue itself (Expect is not forwarded), as nginx
    // does: the body is wanted as soon as we are ready to stream it.
    client_.output().append("HTTP/1.1 100 Continue\r\n\r\n");
    if (!client_.flushOutput()) return;
  }
  connectNext();
}

void ProxyExchange::connectNext() {
  const config::Upstream& config = cluster_.config();
  while (state_ != State::kDone) {
    int index = attempts_ <= config.retries ? cluster_.pickServer(tried_) : -1;
    if (index < 0) {
      state_ = State::kDone;
      client_.respondFromExchange(last_failure_status_);
      return;
    }
    tried_[static_cast<size_t>(index)] = true;
    ++attempts_;
    server_index_ = index;
    upstream::ConnPool& pool = cluster_.pool(static_cast<size_t>(index));
    Buffer pending = std::move(carry_);
    carry_ = Buffer();
    if (pending.empty()) pending.append(request_head_bytes_);

    upstream_ = pool.takeIdle();
    if (upstream_) {
      upstream_->setOwner(this);
      upstream_->out() = std::move(pending);
      state_ = State::kExchanging;
      writeUpstream();
      return;
    }
    int error = 0;
    upstream_ = upstream::UpstreamConnection::connect(client_.loop(), pool, &error);
    if (!upstream_) {
      SLUICE_LOG(kWarn, describe() + ": connect failed: " + std::strerror(error));
      last_failure_status_ = 502;
      carry_ = std::move(pending);
      continue;
    }
    upstream_->setOwner(this);
    upstream_->out() = std::move(pending);
    if (upstream_->connecting()) {
      state_ = State::kConnecting;
      connect_timer_.arm(config.timeouts.connect);
      return;
    }
    onConnected();
    return;
  }
}

void ProxyExchange::onConnected() {
  int error = net::takeSocketError(upstream_->fd());
  if (error != 0) {
    failUpstream(502, std::string("connect failed: ") + std::strerror(error), Retry::kNextServer);
    return;
  }
  connect_timer_.cancel();
  upstream_->setConnected();
  state_ = State::kExchanging;
  writeUpstream();
}

void ProxyExchange::onUpstreamReady(uint32_t ready_bits) {
  if (state_ == State::kConnecting) {
    if (ready_bits & (event::kWritable | event::kError | event::kPeerClosed)) onConnected();
    return;
  }
  if (state_ != State::kExchanging || !upstream_) return;
  if (ready_bits & (event::kReadable | event::kPeerClosed | event::kError)) readUpstream();
  if (state_ == State::kExchanging && upstream_ && (ready_bits & event::kWritable)) {
    writeUpstream();
  }
}

void ProxyExchange::onRequestBody(std::string_view piece) {
  request_body_started_ = true;
  if (state_ == State::kDone || !upstream_) return;
  if (request_.framing == http::BodyFraming::kChunked) {
    std::string framed;
    appendChunk(piece, &framed);
    upstream_->out().append(framed);
  } else {
    upstream_->out().append(piece);
  }
  if (state_ == State::kExchanging) writeUpstream();
}

void ProxyExchange::onRequestComplete() {
  request_complete_ = true;
  if (state_ == State::kDone || !upstream_) return;
  if (request_.framing == http::BodyFraming::kChunked) upstream_->out().append(kLastChunk);
  if (state_ == State::kExchanging) writeUpstream();
}

bool ProxyExchange::canTakeRequestBody() const {
  return state_ == State::kDone || !upstream_ ||
         upstream_->out().size() < kUpstreamOutHighWatermark;
}

void ProxyExchange::onClientOutputDrained() {
  if (!upstream_read_paused_ || !upstream_) return;
  upstream_read_paused_ = false;
  // Bytes may be buffered, and the kernel's edge was consumed: come back to
  // them on the next pass rather than re-entering the response path here.
  client_.loop().addPending(upstream_->fd(), event::kReadable);
}

void ProxyExchange::writeUpstream() {
  Buffer& out = upstream_->out();
  const bool was_above = out.size() >= kUpstreamOutLowWatermark;
  while (!out.empty()) {
    IoResult r = out.writeTo(upstream_->fd());
    if (r.isAgain()) {
      if (!send_timer_.armed()) send_timer_.arm(cluster_.config().timeouts.send);
      // Resume the client also when this write took the buffer below the low
      // watermark but then hit EAGAIN: the next call starts below it and
      // would never resume a client paused at the high watermark.
      if (was_above && out.size() < kUpstreamOutLowWatermark && !request_complete_) {
        client_.resumeInput();
      }
      return;
    }
    if (r.kind == IoResult::Kind::kError) {
      failUpstream(502, std::string("send failed: ") + std::strerror(r.error),
                   Retry::kFreshConnection);
      return;
    }
    if (send_timer_.armed()) send_timer_.arm(cluster_.config().timeouts.send);
  }
  send_timer_.cancel();
  if (request_complete_ && !response_timer_.armed() && !response_started_) armResponseTimer();
  if (was_above && !request_complete_) client_.resumeInput();
}

void ProxyExchange::readUpstream() {
  size_t budget = kUpstreamReadBudgetPerPass;
  // Bytes left from a pass that stopped for backpressure come first.
  if (!upstream_->in().empty()) {
    processResponse();
    if (state_ != State::kExchanging || !upstream_ || upstream_read_paused_) return;
  }
  // Start with one buffer chunk (most responses are small); when a read
  // fills it, a body is streaming: read bigger pieces, fewer syscalls.
  size_t chunk = Buffer::kReadChunk;
  while (state_ == State::kExchanging && upstream_ && !upstream_read_paused_) {
    IoResult r = upstream_->in().readFrom(upstream_->fd(), chunk);
    if (r.isAgain()) return;
    if (r.kind == IoResult::Kind::kEof || r.kind == IoResult::Kind::kError) {
      const char* what = r.kind == IoResult::Kind::kEof ? "upstream closed the connection"
                                                        : "upstream read failed";
      if (!response_byte_seen_) {
        failUpstream(502, std::string(what) + " before responding", Retry::kFreshConnection);
        return;
      }
      http::ResponseParser::Result end = parser_.finish();
      if (end.event == http::ResponseParser::Event::kMessageComplete) {
        // A close-delimited body ends here; the connection is done either way.
        onResponseComplete(/*upstream_reusable=*/false);
      } else {
        failUpstream(502, std::string(what) + " mid-response", Retry::kNone);
      }
      return;
    }
    response_byte_seen_ = true;
    armResponseTimer();
    processResponse();
    if (r.bytes == chunk) chunk = std::min(chunk * 4, kUpstreamMaxReadChunk);
    if (r.bytes >= budget) {
      if (upstream_) client_.loop().addPending(upstream_->fd(), event::kReadable);
      return;
    }
    budget -= r.bytes;
  }
}

void ProxyExchange::processResponse() {
  using Event = http::ResponseParser::Event;
  // After a head the parser may end a bodiless message without consuming
  // anything more, so it is fed once more even with no bytes left.
  bool feed_again = false;
  while (state_ == State::kExchanging && upstream_ && (!upstream_->in().empty() || feed_again)) {
    feed_again = false;
    Buffer& in = upstream_->in();
    http::ResponseParser::Result result = parser_.feed(in.data(), in.size());
    switch (result.event) {
      case Event::kNeedMore:
        in.consume(result.consumed);
        break;
      case Event::kHeadComplete:
        in.consume(result.consumed);
        onResponseHead();
        feed_again = true;
        continue;
      case Event::kBody: {
        std::string_view body = parser_.body();
        if (client_framing_ == ClientFraming::kChunked) {
          std::string framed;
          appendChunk(body, &framed);
          client_.output().append(framed);
        } else if (client_framing_ != ClientFraming::kNoBody) {
          client_.output().append(body);
        }
        client_.countResponseBody(body.size());
        in.consume(result.consumed);
        feed_again = true;
        if (client_.outputAboveHighWatermark()) {
          if (!client_.flushOutput()) return;
          if (client_.outputAboveHighWatermark()) {
            // The client reads slower than the upstream writes: stop reading
            // the upstream until the client drains (bounded memory).
            upstream_read_paused_ = true;
            return;
          }
        }
        continue;
      }
      case Event::kMessageComplete:
        in.consume(result.consumed);
        if (parser_.head().status < 200) continue;  // interim response: the final one follows
        onResponseComplete(/*upstream_reusable=*/true);
        return;
      case Event::kError:
        failUpstream(502, "invalid response: " + parser_.errorReason(), Retry::kNone);
        return;
    }
    break;
  }
  if (state_ == State::kExchanging) client_.flushOutput();
}

void ProxyExchange::onResponseHead() {
  const http::ResponseHead& head = parser_.head();
  // Interim responses are not relayed: 100 Continue belongs to the hop that
  // sent Expect (sluice itself), and 103 is optional (RFC 8297).
  if (head.status < 200) return;
  response_started_ = true;
  client_.noteUpstreamResponse(
      head.status, cluster_.pool(static_cast<size_t>(server_index_)).address().toString());
  std::string bytes;
  client_framing_ = appendClientResponseHead(head, request_.isHead(), request_.version_minor,
                                             client_.keepAlive(), &bytes);
  // The head says `Connection: close` in both cases: the connection must end.
  if (client_framing_ == ClientFraming::kUntilClose || !client_.keepAlive()) {
    client_.closeAfterResponse();
  }
  client_.output().append(bytes);
}

void ProxyExchange::onResponseComplete(bool upstream_reusable) {
  if (client_framing_ == ClientFraming::kChunked) client_.output().append(kLastChunk);
  const http::ResponseHead& head = parser_.head();
  // Reuse only a connection whose exchange ended cleanly on both sides, with
  // nothing extra after the response (never deliver such bytes as the next
  // response).
  bool reusable = upstream_reusable && head.keep_alive && request_complete_ && upstream_ &&
                  upstream_->in().empty() && upstream_->out().empty();
  finish(reusable);
}

bool ProxyExchange::mayRetryAfterSend() const {
  // The keep-alive race: a pooled connection the server closed just as we
  // reused it. Replaying is safe only for idempotent requests whose bytes we
  // still have in full (no body), and only once.
  return upstream_ && upstream_->requestsServed() > 0 && !response_byte_seen_ &&
         !reused_retry_done_ && isIdempotent(request_.method) &&
         request_.framing == http::BodyFraming::kNone;
}

void ProxyExchange::failUpstream(int status, const std::string& reason, Retry retry) {
  if (state_ == State::kDone) return;
  SLUICE_LOG(kWarn, describe() + ": " + reason);
  connect_timer_.cancel();
  response_timer_.cancel();
  send_timer_.cancel();
  last_failure_status_ = status;
  if (response_started_) {
    // Part of the response is already with the client: the only honest
    // signal left is to close its connection.
    discardUpstream();
    state_ = State::kDone;
    client_.abortFromExchange(reason);
    return;
  }
  if (retry == Retry::kNextServer && state_ == State::kConnecting) {
    // Nothing reached the server: everything queued moves to the next try.
    carry_ = std::move(upstream_->out());
    discardUpstream();
    state_ = State::kConnecting;
    connectNext();
    return;
  }
  if (retry == Retry::kFreshConnection && mayRetryAfterSend()) {
    SLUICE_LOG(kInfo, describe() + ": retrying once on a fresh connection");
    reused_retry_done_ = true;
    discardUpstream();
    // No response byte was seen, so the parser is still at a message start.
    int error = 0;
    upstream_ = upstream::UpstreamConnection::connect(
        client_.loop(), cluster_.pool(static_cast<size_t>(server_index_)), &error);
    if (upstream_) {
      upstream_->setOwner(this);
      upstream_->out().append(request_head_bytes_);
      if (upstream_->connecting()) {
        state_ = State::kConnecting;
        connect_timer_.arm(cluster_.config().timeouts.connect);
      } else {
        onConnected();
      }
      return;
    }
    SLUICE_LOG(kWarn, describe() + ": connect failed: " + std::strerror(error));
  }
  discardUpstream();
  state_ = State::kDone;
  client_.respondFromExchange(status);
}

void ProxyExchange::finish(bool reuse_upstream) {
  state_ = State::kDone;
  connect_timer_.cancel();
  response_timer_.cancel();
  send_timer_.cancel();
  if (upstream_ && reuse_upstream) {
    upstream_->countRequest();
    upstream::ConnPool& pool = upstream_->pool();
    pool.release(std::move(upstream_), event::Duration(keepAliveTimeoutMs(parser_.head())));
  } else {
    discardUpstream();
  }
  client_.onExchangeDone(request_complete_);
}

void ProxyExchange::cancel() {
  state_ = State::kDone;
  connect_timer_.cancel();
  response_timer_.cancel();
  send_timer_.cancel();
  discardUpstream();
}

void ProxyExchange::discardUpstream() {
  if (!upstream_) return;
  // We may be inside this connection's own callback: stop its events now and
  // destroy it at the end of the pass.
  loop_.removeFd(upstream_->fd());
  std::shared_ptr<upstream::UpstreamConnection> doomed(std::move(upstream_));
  loop_.defer([doomed] {});
}

void ProxyExchange::armResponseTimer() {
  response_timer_.arm(cluster_.config().timeouts.response);
}

std::string ProxyExchange::describe() const {
  std::string text = "upstream " + cluster_.name();
  if (server_index_ >= 0) {
    text += " server " + cluster_.pool(static_cast<size_t>(server_index_)).address().toString();
  }
  text +=
      " for " + client_.peer().toString() + " \"" + request_.method + " " + request_.target + "\"";
  return text;
}

}  // namespace sluice::proxy
