// Builds the heads sluice sends on each hop from parsed messages — never from
// raw client or upstream bytes — so the next hop sees one unambiguous framing:
// hop-by-hop headers removed (RFC 9110 §7.6.1), X-Forwarded-* and
// X-Request-Id set, Content-Length / Transfer-Encoding regenerated.
// Stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"
#include "net/address.h"

namespace sluice::proxy {

// True for headers that describe one connection rather than the message.
// `connection_tokens` is the comma list of the message's Connection header(s),
// whose names are hop-by-hop too.
bool isHopByHop(std::string_view name, std::string_view connection_tokens);

// All Connection header values of a message joined with commas.
std::string connectionTokens(const std::vector<http::Header>& headers);

struct ForwardedFor {
  const net::Address* peer = nullptr;  // the client socket's address
  bool peer_trusted = false;           // peer is in trusted_proxies
  std::string_view request_id;         // a fresh id, used unless the client's id is kept
  std::string_view fallback_host;      // Host for HTTP/1.0 requests without one
  // The origin-form target to send (RequestPath::upstream_target); empty:
  // the target's path and query as received.
  std::string_view target;
  bool keep_underscores = false;           // headers.underscores: keep
  bool keep_untrusted_request_id = false;  // headers.request_id: keep
};

// Appends the request line and headers for the upstream: origin-form target
// (absolute-form is rewritten and its authority becomes Host), HTTP/1.1, the
// client's end-to-end headers, X-Forwarded-For/-Proto/-Host (extended when
// the peer is trusted, replaced otherwise), X-Request-Id, and framing for the
// body as parsed (Content-Length: N, or Transfer-Encoding: chunked).
// Expect is not forwarded: sluice answers 100-continue itself.
// From an untrusted peer, Forwarded and X-Real-IP are dropped and its
// X-Request-Id is replaced by `request_id` (unless keep_untrusted_request_id).
// Names with `_` are dropped from every peer unless keep_underscores; kept,
// one that equals a header above with `_` read as `-` (X_Forwarded_For) is
// treated as that header, since CGI-style backends cannot tell them apart.
void appendUpstreamRequestHead(const http::RequestHead& head, const ForwardedFor& forwarded,
                               std::string* out);

// How a response body travels to the client.
enum class ClientFraming {
  kNoBody,         // HEAD, 1xx, 204, 304
  kContentLength,  // same length as the upstream said
  kChunked,        // upstream chunked, or close-delimited to an HTTP/1.1 client
  kUntilClose,     // close-delimited to an HTTP/1.0 client
};

// Appends the status line and headers for the client. `keep_alive` is the
// client connection's intent; the returned framing may force a close
// (kUntilClose), which the caller must honour.
ClientFraming appendClientResponseHead(const http::ResponseHead& head, bool head_request,
                                       int client_version_minor, bool keep_alive, std::string* out);

// Appends one chunk of a chunked body ("<hex>\r\n<data>\r\n"); empty data
// appends nothing (an empty chunk would end the body).
void appendChunk(std::string_view data, std::string* out);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The server's `Keep-Alive: timeout=N` in milliseconds, or 0.
int64_t keepAliveTimeoutMs(const http::ResponseHead& head);

// A 128-bit random request id as 32 hex characters (per-worker generator).
std::string newRequestId();

}  // namespace sluice::proxy
