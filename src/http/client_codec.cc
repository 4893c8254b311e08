#include "http/client_codec.h"

namespace sluice::http {
namespace {

// 1xx responses other than 101, which ends the exchange (the parser accepts
// it only for a request that asked to upgrade).
bool isInterim(int status) {
  return status < 200 && status != 101;
}

}  // namespace

void ClientCodec::endRequestHead(std::string_view method, BodyFraming framing,
                                 uint64_t content_length, Buffer& out, bool upgrade) {
  request_framing_ = framing;
  request_ended_ = framing == BodyFraming::kNone;
  switch (framing) {
    case BodyFraming::kContentLength:
      out.append("Content-Length: ", 16);
      appendDecimal(content_length, out);
      out.append("\r\n", 2);
      break;
    case BodyFraming::kChunked:
      out.append("Transfer-Encoding: chunked\r\n", 28);
      break;
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:  // not a request framing
      break;
  }
  out.append("\r\n", 2);
  parser_.expectResponseTo(method, upgrade);
  paused_ = false;
  feed_again_ = false;
  response_started_ = false;
  response_complete_ = false;
}

void ClientCodec::continueRequest(std::string_view method, BodyFraming framing, bool ended,
                                  bool upgrade) {
  Buffer unused;
  endRequestHead(method, framing, 0, unused, upgrade);
  request_ended_ = ended || framing == BodyFraming::kNone;
}

void ClientCodec::encodeBody(std::string_view data, Buffer& out) {
  if (tunnel_ || request_framing_ != BodyFraming::kChunked) {
    out.append(data);
    return;
  }
  appendChunk(data, out);
}

void ClientCodec::encodeEnd(Buffer& out, const std::vector<Header>* trailers,
                            bool (*keep)(std::string_view name)) {
  if (request_framing_ == BodyFraming::kChunked && !request_ended_) {
    if (trailers != nullptr && !trailers->empty()) {
      appendLastChunk(*trailers, keep, out);
    } else {
      out.append(kLastChunk);
    }
  }
  request_ended_ = true;
}

void ClientCodec::decode(Buffer& input) {
  if (tunnel_) {
    if (!input.empty() && !paused_) {
      std::string_view bytes = input.view();
      callbacks_->onTunnelData(bytes);
      input.consume(bytes.size());
    }
    return;
  }
  // callbacks_ goes null when the user lets go of this connection from
  // inside a callback (a retry after a 5xx head): stop decoding then.
  while (callbacks_ != nullptr && !paused_ && !failed_ && !response_complete_ &&
         (!input.empty() || feed_again_)) {
    feed_again_ = false;
    if (!input.empty()) response_started_ = true;
    ResponseParser::Result result = parser_.feed(input.data(), input.size());
    switch (result.event) {
      case ResponseParser::Event::kNeedMore:
        input.consume(result.consumed);
        return;
      case ResponseParser::Event::kHeadComplete:
        input.consume(result.consumed);
        feed_again_ = true;
        if (isInterim(parser_.head().status)) {
          callbacks_->onInterimHead(parser_.head());
        } else {
          callbacks_->onResponseHead(parser_.head());
        }
        break;
      case ResponseParser::Event::kBody:
        callbacks_->onResponseBody(parser_.body());
        input.consume(result.consumed);
        feed_again_ = true;
        break;
      case ResponseParser::Event::kMessageComplete:
        input.consume(result.consumed);
        // An interim response's end: the final one follows.
        if (isInterim(parser_.head().status)) {
          feed_again_ = !input.empty();
          break;
        }
        response_complete_ = true;
        callbacks_->onResponseComplete();
        return;
      case ResponseParser::Event::kError:
        input.consume(result.consumed);
        failed_ = true;
        callbacks_->onResponseError(parser_.errorReason());
        return;
    }
  }
}

bool ClientCodec::finish() {
  if (failed_ || response_complete_ || tunnel_) return false;
  ResponseParser::Result result = parser_.finish();
  if (result.event == ResponseParser::Event::kMessageComplete) {
    response_complete_ = true;
    callbacks_->onResponseComplete();
    return true;
  }
  if (result.event == ResponseParser::Event::kError) {
    failed_ = true;
    callbacks_->onResponseError(parser_.errorReason());
    return true;
  }
  return false;
}

}  // namespace sluice::http
