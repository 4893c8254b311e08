// ClientCodec: the client side of one HTTP/1.x connection to an upstream.
// Encodes requests with sluice's own framing (Content-Length or chunked as
// the request was parsed; never the client's raw framing bytes) and decodes
// responses (ResponseParser underneath) into events: 1xx interim heads, the
// final head, body pieces, the end — including the end of a close-delimited
// body at EOF — and the tunnel state an Upgrade switches into. Owned by an
// upstream::UpstreamConnection for its whole life (pooled with it, so its
// parser stays warm); single-threaded.
#pragma once

#include <cstdint>
#include <string_view>

#include "buffer/buffer.h"
#include "http/framing.h"
#include "http/message.h"
#include "http/response_parser.h"

namespace sluice::http {

class ClientCodec {
 public:
  class Callbacks {
   public:
    // A 1xx other than 101 (100 Continue, 103 Early Hints); the final
    // response to the same request follows.
    virtual void onInterimHead(const ResponseHead& head) { (void)head; }
    // The final head (status >= 200, or 101 to a request that asked to
    // upgrade: then onResponseComplete follows at once and the codec is to
    // be switched to its tunnel state).
    virtual void onResponseHead(const ResponseHead& head) = 0;
    virtual void onResponseBody(std::string_view piece) = 0;
    virtual void onResponseComplete() = 0;
    // Malformed, oversized or truncated: the connection must close.
    virtual void onResponseError(std::string_view reason) = 0;
    virtual void onTunnelData(std::string_view bytes) { (void)bytes; }

   protected:
    ~Callbacks() = default;
  };

  ClientCodec() = default;
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;

  void setCallbacks(Callbacks* callbacks) { callbacks_ = callbacks; }

  // --- the request ---
  // The caller has appended the request line and its end-to-end header
  // lines to `out`; this adds the framing header for `framing` and the blank
  // line, and prepares the parser for the response to `method`.
  // `upgrade`: the request asks to switch protocols, so a 101 may answer it.
  void endRequestHead(std::string_view method, BodyFraming framing, uint64_t content_length,
                      Buffer& out, bool upgrade = false);
  // The head (and the body so far) were encoded by another connection's
  // codec and are being carried over unchanged (a retry after a failed
  // connect): frame the rest of the body as that codec would have.
  void continueRequest(std::string_view method, BodyFraming framing, bool ended,
                       bool upgrade = false);
  void encodeBody(std::string_view data, Buffer& out);
  // Ends the body; with `trailers`, a chunked body carries them (fields
  // `keep` refuses are left out); other framings cannot and drop them.
  void encodeEnd(Buffer& out, const std::vector<Header>* trailers = nullptr,
                 bool (*keep)(std::string_view name) = nullptr);
  bool requestEnded() const { return request_ended_; }

  // --- the response ---
  // Parses from `input`, consuming what it used, until it needs more bytes,
  // is paused, or fails. Stops after onResponseComplete(): bytes after a
  // response are never taken for the next one.
  void decode(Buffer& input);
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }
  // The upstream closed its side: ends a close-delimited body
  // (onResponseComplete) or reports a truncated response (onResponseError).
  // Returns true if it delivered an event.
  bool finish();
  // Some byte of the current response has been seen.
  bool responseStarted() const { return response_started_; }
  bool responseComplete() const { return response_complete_; }
  const ResponseHead& head() const { return parser_.head(); }
  // The response's trailer fields, once it is complete.
  const std::vector<Header>& trailers() const { return parser_.trailers(); }

  void enterTunnel() { tunnel_ = true; }
  bool tunnel() const { return tunnel_; }

 private:
  ResponseParser parser_;
  Callbacks* callbacks_ = nullptr;
  BodyFraming request_framing_ = BodyFraming::kNone;
  bool request_ended_ = false;
  bool paused_ = false;
  bool feed_again_ = false;
  bool failed_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool tunnel_ = false;
};

}  // namespace sluice::http
