// ServerCodec: the server side of one HTTP/1.x connection. Decodes requests
// (RequestParser underneath: strict llhttp plus sluice's checks) into events
// for the request's handler, one request at a time, and encodes responses
// with the framing that request allows: Content-Length, chunked, or
// close-delimited for HTTP/1.0; `Connection: close` / `keep-alive` as the
// connection's fate requires; no body for HEAD, 1xx, 204 and 304; the tunnel
// state an Upgrade switches into. All response framing is written here.
// Owned by a proxy::ServerConnection while a request is in progress (taken
// from a per-worker free list); single-threaded.
#pragma once

#include <cstdint>
#include <string_view>

#include "buffer/buffer.h"
#include "http/framing.h"
#include "http/message.h"
#include "http/request_parser.h"

namespace sluice::http {

class ServerCodec {
 public:
  class Callbacks {
   public:
    // head() is complete (its framing known: head().framing).
    virtual void onRequestHead() = 0;
    // A piece of de-framed body; valid during the call.
    virtual void onRequestBody(std::string_view piece) = 0;
    virtual void onRequestComplete() = 0;
    // The request is malformed or over a limit: answer `status`, then close.
    virtual void onRequestError(int status, std::string_view reason) = 0;
    // In tunnel mode: raw bytes from the client.
    virtual void onTunnelData(std::string_view bytes) { (void)bytes; }

   protected:
    ~Callbacks() = default;
  };

  explicit ServerCodec(const ParserLimits& limits);
  ServerCodec(const ServerCodec&) = delete;
  ServerCodec& operator=(const ServerCodec&) = delete;

  void setCallbacks(Callbacks* callbacks) { callbacks_ = callbacks; }

  // Parses from `input`, consuming what it used, until it needs more bytes,
  // is paused, or fails. Events are delivered from inside. After each
  // onRequestComplete() the codec pauses itself: the next (pipelined)
  // request is not read until resume(), so responses go out in order.
  void decode(Buffer& input);
  // Stops event delivery after the current event (backpressure on the body).
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }
  // The client closed its side. Mid-request that is a truncated request
  // (onRequestError 400); between requests it is nothing.
  void finish();

  // The request being answered; valid from onRequestHead() until the next
  // request starts (which cannot happen before resume()).
  const RequestHead& head() const { return parser_.head(); }
  // The request's trailer fields, once it is complete.
  const std::vector<Header>& trailers() const { return parser_.trailers(); }
  // Any byte of a request not yet completed has been seen.
  bool requestStarted() const { return parser_.started(); }
  bool requestComplete() const { return request_complete_; }
  bool failed() const { return failed_; }
  // Between requests with nothing parsed: safe to give back to a free list.
  bool reusable() const { return !parser_.started() && !failed_ && !tunnel_; }
  // Ready for the next request on the same connection.
  void reset();
  // Ready for the first request of another connection (the parser forgets
  // what the last one said, e.g. `Connection: close`).
  void resetForNewConnection();

  // --- responses to head() ---
  // Writes the status line; the caller then appends its end-to-end header
  // lines ("Name: value\r\n", never framing or Connection) and calls
  // endHead(), which adds the framing headers and the blank line.
  void beginHead(int status, std::string_view reason, Buffer& out) const;
  // `keep_alive`: the connection may persist after this response. Returns
  // the framing used; keepAlive() says whether the connection persists
  // (false also when the framing forces a close).
  WireFraming endHead(int status, BodySize body, bool keep_alive, Buffer& out);
  bool keepAlive() const { return keep_alive_; }
  void encodeBody(std::string_view data, Buffer& out);
  // Ends the body; with `trailers`, a chunked body carries them (fields
  // `keep` refuses are left out); other framings cannot and drop them.
  void encodeEnd(Buffer& out, const std::vector<Header>* trailers = nullptr,
                 bool (*keep)(std::string_view name) = nullptr);
  void encodeContinue(Buffer& out) const;
  // A complete response of sluice's own (errors, respond routes, admin).
  // Returns whether the connection persists after it.
  bool encodeLocalResponse(int status, std::string_view body,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           bool keep_alive, Buffer& out);

  // After a 101: bytes pass through both ways unchanged.
  void enterTunnel() {
    tunnel_ = true;
    paused_ = false;
  }
  // Ends a 101 head whose caller wrote its Upgrade and Connection lines (no
  // framing: no body follows; the connection is the new protocol's), and
  // enters the tunnel.
  void endSwitchingHead(Buffer& out) {
    out.append("\r\n", 2);
    enterTunnel();
  }
  bool tunnel() const { return tunnel_; }

 private:
  RequestParser parser_;
  Callbacks* callbacks_ = nullptr;
  WireFraming framing_ = WireFraming::kNoBody;
  bool paused_ = false;
  bool feed_again_ = false;  // the parser may complete a message without new bytes
  bool request_complete_ = false;
  bool failed_ = false;
  bool keep_alive_ = true;
  bool tunnel_ = false;
};

}  // namespace sluice::http
