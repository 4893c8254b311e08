// Builds the heads sluice sends on each hop from parsed messages — never from
// raw client or upstream bytes — so the next hop sees one unambiguous framing:
// hop-by-hop headers removed (RFC 9110 §7.6.1), X-Forwarded-* and
// X-Request-Id set, Content-Length / Transfer-Encoding regenerated.
// Stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "buffer/buffer.h"
#include "http/message.h"
#include "net/address.h"
#include "proxy/header_rules.h"

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
  // The client's Upgrade value when its route allows the switch: sent with
  // `Connection: upgrade` (otherwise both are stripped as hop-by-hop).
  std::string_view upgrade;
  // http or https: the scheme the client used (X-Forwarded-Proto, Forwarded).
  std::string_view scheme = "http";
  // Also send RFC 7239 Forwarded (headers.forwarded: add).
  bool rfc7239 = false;
  // The route's request_headers, and what their ${variables} mean here.
  const config::HeaderRules* rules = nullptr;
  RuleContext rule_context;
  // The origin-form target to send (RequestPath::upstream_target); empty:
  // the target's path and query as received.
  std::string_view target;
  bool keep_underscores = false;           // headers.underscores: keep
  bool keep_untrusted_request_id = false;  // headers.request_id: keep
  // The route's client_cert_header: always dropped from the client's
  // headers (so it cannot be forged), and set to `client_cert` (the
  // verified certificate, URL-encoded PEM) when there is one.
  std::string_view client_cert_header;
  std::string_view client_cert;
};

// Appends the request line and headers for the upstream: origin-form target
// (absolute-form is rewritten and its authority becomes Host), HTTP/1.1, the
// client's end-to-end headers, X-Forwarded-For/-Proto/-Host (extended when
// the peer is trusted, replaced otherwise), X-Request-Id. Framing headers
// and the blank line are not written: http::ClientCodec::endRequestHead()
// adds them for the body as parsed. Expect is not forwarded: sluice answers
// 100-continue itself.
// From an untrusted peer, Forwarded and X-Real-IP are dropped and its
// X-Request-Id is replaced by `request_id` (unless keep_untrusted_request_id).
// Names with `_` are dropped from every peer unless keep_underscores; kept,
// one that equals a header above with `_` read as `-` (X_Forwarded_For) is
// treated as that header, since CGI-style backends cannot tell them apart.
void appendUpstreamRequestHead(const http::RequestHead& head, const ForwardedFor& forwarded,
                               std::string* out);

// Appends the upstream response's end-to-end header lines for the client:
// hop-by-hop headers and framing (Content-Length, Transfer-Encoding) are
// left out — http::ServerCodec::endHead() writes the framing the client's
// request allows.
// `rules`: the route's response_headers, applied as the headers pass.
void appendClientResponseHeaders(const http::ResponseHead& head, Buffer& out,
                                 const config::HeaderRules* rules = nullptr,
                                 const RuleContext* context = nullptr);

// A trailer field sluice passes on (when the next hop accepts trailers):
// not one that frames, routes or controls the message (RFC 9110 §6.5.1),
// nor a hop-by-hop one.
bool forwardableTrailer(std::string_view name);

// The message's TE header lists `trailers` (RFC 9110 §10.1.4): its sender
// accepts a trailer section.
bool acceptsTrailers(const http::RequestHead& head);

// One RFC 7239 forwarded-element for a client: `for=…;proto=…;host=…`,
// quoting what is not a token (IPv6 literals, host:port).
std::string forwardedElement(const net::Address& client, std::string_view proto,
                             std::string_view host);

// The length a bodiless response (to HEAD, or a 304) states for the body it
// describes, from its Content-Length, if it has a valid one.
bool statedContentLength(const http::ResponseHead& head, uint64_t* length);

// The server's `Keep-Alive: timeout=N` in milliseconds, or 0.
int64_t keepAliveTimeoutMs(const http::ResponseHead& head);

// A 128-bit random request id as 32 hex characters (per-worker generator).
std::string newRequestId();
// The same into `id`, reusing its storage (no allocation once it held one).
void fillRequestId(std::string* id);

}  // namespace sluice::proxy
