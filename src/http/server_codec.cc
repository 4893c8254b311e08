#include "http/server_codec.h"

#include "http/response_writer.h"

namespace sluice::http {
namespace {

bool statusHasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

}  // namespace

ServerCodec::ServerCodec(const ParserLimits& limits) : parser_(limits) {}

void ServerCodec::reset() {
  // Only a codec between messages is reused (see reusable()); the parser
  // resets its head when the next message begins.
  paused_ = false;
  feed_again_ = false;
  request_complete_ = false;
  keep_alive_ = true;
  framing_ = WireFraming::kNoBody;
}

void ServerCodec::resetForNewConnection() {
  reset();
  parser_.reset();
}

void ServerCodec::decode(Buffer& input) {
  if (tunnel_) {
    if (!input.empty() && !paused_) {
      // Consumed before the call: the callback may write into buffers of its
      // own, never into this one.
      std::string_view bytes = input.view();
      callbacks_->onTunnelData(bytes);
      input.consume(bytes.size());
    }
    return;
  }
  while (!paused_ && !failed_ && (!input.empty() || feed_again_)) {
    feed_again_ = false;
    RequestParser::Result result = parser_.feed(input.data(), input.size());
    switch (result.event) {
      case RequestParser::Event::kNeedMore:
        input.consume(result.consumed);
        return;
      case RequestParser::Event::kHeadComplete:
        input.consume(result.consumed);
        request_complete_ = false;
        feed_again_ = true;
        callbacks_->onRequestHead();
        break;
      case RequestParser::Event::kBody:
        // body() points into `input`: deliver before consuming.
        callbacks_->onRequestBody(parser_.body());
        input.consume(result.consumed);
        feed_again_ = true;
        break;
      case RequestParser::Event::kMessageComplete:
        input.consume(result.consumed);
        request_complete_ = true;
        // One request at a time: the next one waits for resume().
        paused_ = true;
        callbacks_->onRequestComplete();
        break;
      case RequestParser::Event::kError:
        input.consume(result.consumed);
        failed_ = true;
        callbacks_->onRequestError(parser_.errorStatus(), parser_.errorReason());
        return;
    }
  }
}

void ServerCodec::finish() {
  if (tunnel_ || failed_) return;
  RequestParser::Result result = parser_.finish();
  if (result.event == RequestParser::Event::kError) {
    failed_ = true;
    callbacks_->onRequestError(parser_.errorStatus(), parser_.errorReason());
  }
}

void ServerCodec::beginHead(int status, std::string_view reason, Buffer& out) const {
  out.append("HTTP/1.1 ", 9);
  const char digits[3] = {static_cast<char>('0' + status / 100 % 10),
                          static_cast<char>('0' + status / 10 % 10),
                          static_cast<char>('0' + status % 10)};
  out.append(digits, 3);
  out.append(" ", 1);
  out.append(reason);
  out.append("\r\n", 2);
}

WireFraming ServerCodec::endHead(int status, BodySize body, bool keep_alive, Buffer& out) {
  // Before a head was parsed (a 400 for garbage) nothing of the request can
  // be trusted: answer as to HTTP/1.1 GET.
  const bool have_head = parser_.inMessage() || request_complete_;
  const bool head_request = have_head && parser_.head().isHead();
  const int version_minor = have_head ? parser_.head().version_minor : 1;

  if (head_request || statusHasNoBody(status)) {
    framing_ = WireFraming::kNoBody;
    // RFC 9110 §8.6: a Content-Length on a response to HEAD or on a 304
    // states the length the body would have; on 1xx and 204 it is forbidden.
    uint64_t length = 0;
    bool state_length = false;
    if (head_request || status == 304) {
      if (body.kind == BodySize::Kind::kKnown) {
        length = body.length;
        state_length = true;
      } else if (body.has_entity_length) {
        length = body.length;
        state_length = true;
      }
    }
    if (state_length) {
      out.append("Content-Length: ", 16);
      appendDecimal(length, out);
      out.append("\r\n", 2);
    }
  } else if (body.kind == BodySize::Kind::kKnown) {
    framing_ = WireFraming::kContentLength;
    out.append("Content-Length: ", 16);
    appendDecimal(body.length, out);
    out.append("\r\n", 2);
  } else if (body.kind == BodySize::Kind::kNone) {
    framing_ = WireFraming::kContentLength;
    out.append("Content-Length: 0\r\n", 19);
  } else if (version_minor >= 1) {
    framing_ = WireFraming::kChunked;
    out.append("Transfer-Encoding: chunked\r\n", 28);
  } else {
    // HTTP/1.0 knows no chunked encoding: the close ends the body.
    framing_ = WireFraming::kUntilClose;
    keep_alive = false;
  }
  keep_alive_ = keep_alive;
  if (!keep_alive) {
    out.append("Connection: close\r\n", 19);
  } else if (version_minor == 0) {
    // RFC 9112 §9.3 / RFC 2068 §19.7.1: an HTTP/1.0 connection persists
    // only when both sides say keep-alive; without it the client waits for
    // the close (ApacheBench -k hangs).
    out.append("Connection: keep-alive\r\n", 24);
  }
  out.append("\r\n", 2);
  return framing_;
}

void ServerCodec::encodeBody(std::string_view data, Buffer& out) {
  switch (framing_) {
    case WireFraming::kNoBody:
      return;
    case WireFraming::kChunked:
      appendChunk(data, out);
      return;
    case WireFraming::kContentLength:
    case WireFraming::kUntilClose:
      out.append(data);
      return;
  }
}

void ServerCodec::encodeEnd(Buffer& out, const std::vector<Header>* trailers,
                            bool (*keep)(std::string_view name)) {
  if (framing_ == WireFraming::kChunked) {
    if (trailers != nullptr && !trailers->empty()) {
      appendLastChunk(*trailers, keep, out);
    } else {
      out.append(kLastChunk);
    }
  }
  framing_ = WireFraming::kNoBody;
}

void ServerCodec::encodeContinue(Buffer& out) const {
  out.append("HTTP/1.1 100 Continue\r\n\r\n");
}

bool ServerCodec::encodeLocalResponse(
    int status, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers, bool keep_alive, Buffer& out) {
  beginHead(status, reasonPhrase(status), out);
  out.append("Server: sluice\r\nDate: ");
  out.append(httpDate());
  out.append("\r\n", 2);
  for (const auto& [name, value] : headers) {
    // Config validation refuses CR/LF/NUL already; a split head is never
    // written even so (CWE-113).
    if (hasControlChar(name) || hasControlChar(value)) continue;
    out.append(name);
    out.append(": ", 2);
    out.append(value);
    out.append("\r\n", 2);
  }
  endHead(status, statusHasNoBody(status) ? BodySize::none() : BodySize::known(body.size()),
          keep_alive, out);
  encodeBody(body, out);
  encodeEnd(out);
  return keep_alive_;
}

}  // namespace sluice::http
