#include "proxy/forwarding.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>

#include "config/units.h"
#include "http/path.h"

namespace sluice::proxy {
namespace {

using http::equalsIgnoreCase;

// RFC 9110 §7.6.1 plus the de-facto hop-by-hop names every proxy strips.
constexpr std::string_view kHopByHop[] = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
};

enum class ForwardingHeader {
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kPeerIdentity,  // Forwarded, X-Real-IP
  kXRequestId,
  kOther,
};

// Compares a header name to a lower-case one, ASCII case-insensitively and
// with `_` equal to `-`, as CGI variables see them.
bool sameCgiName(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c == '_') c = '-';
    if (c != lower[i]) return false;
  }
  return true;
}

ForwardingHeader classifyForwardingHeader(std::string_view name) {
  if (sameCgiName(name, "x-forwarded-for")) return ForwardingHeader::kXForwardedFor;
  if (sameCgiName(name, "x-forwarded-proto")) return ForwardingHeader::kXForwardedProto;
  if (sameCgiName(name, "x-forwarded-host")) return ForwardingHeader::kXForwardedHost;
  if (sameCgiName(name, "forwarded") || sameCgiName(name, "x-real-ip")) {
    return ForwardingHeader::kPeerIdentity;
  }
  if (sameCgiName(name, "x-request-id")) return ForwardingHeader::kXRequestId;
  return ForwardingHeader::kOther;
}

void appendHeader(std::string_view name, std::string_view value, std::string* out) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

bool isHopByHop(std::string_view name, std::string_view connection_tokens) {
  for (std::string_view hop : kHopByHop) {
    if (equalsIgnoreCase(name, hop)) return true;
  }
  return http::listContainsToken(connection_tokens, name);
}

std::string connectionTokens(const std::vector<http::Header>& headers) {
  std::string tokens;
  for (const http::Header& header : headers) {
    if (!equalsIgnoreCase(header.name, "connection")) continue;
    if (!tokens.empty()) tokens.push_back(',');
    tokens.append(header.value);
  }
  return tokens;
}

void appendUpstreamRequestHead(const http::RequestHead& head, const ForwardedFor& forwarded,
                               std::string* out) {
  // Absolute-form: the authority replaces Host (RFC 9112 §3.2.2) and the
  // upstream gets origin-form. Routing (normalizeHost) takes the same
  // authority, so what is routed and what is forwarded cannot disagree.
  std::string_view authority;
  std::string_view target = http::originFormPart(head.target, &authority);
  const std::string_view host = authority.empty() ? std::string_view(head.host) : authority;
  if (!forwarded.target.empty()) target = forwarded.target;
  out->append(head.method).push_back(' ');
  if (target.empty() || target.front() == '?') out->push_back('/');
  out->append(target).append(" HTTP/1.1\r\n");
  // HTTP/1.1 requires Host toward the upstream even when an HTTP/1.0 client
  // sent none. A route may set another (request_headers: set: {Host: …}).
  const config::HeaderRules* rules = forwarded.rules;
  std::string host_override;
  if (rules != nullptr && setValue(*rules, "host", forwarded.rule_context, &host_override)) {
    appendHeader("Host", host_override, out);
  } else {
    appendHeader("Host", host.empty() ? forwarded.fallback_host : host, out);
  }
  // What the route replaces or removes, of the client's headers and of the
  // ones sluice generates alike.
  auto kept = [rules](std::string_view name) {
    return rules == nullptr || !replacedOrRemoved(*rules, name);
  };
  std::string forwarded_list;  // RFC 7239, a trusted peer's elements

  const std::string tokens = connectionTokens(head.headers);
  std::string xff;
  std::string_view xf_proto;
  std::string_view xf_host;
  bool has_request_id = false;
  for (const http::Header& header : head.headers) {
    const std::string& name = header.name;
    if (isHopByHop(name, tokens) || equalsIgnoreCase(name, "host") ||
        equalsIgnoreCase(name, "content-length") || equalsIgnoreCase(name, "expect")) {
      continue;
    }
    // CGI and the WSGI/Rack servers built on its variables map `-` and `_`
    // to the same name (HTTP_X_FORWARDED_FOR), so `X_Forwarded_For` would
    // stand in for the header sluice sets. nginx drops such names by default
    // (underscores_in_headers off), from every client.
    const bool has_underscore = name.find('_') != std::string::npos;
    if (has_underscore && !forwarded.keep_underscores) continue;
    if (!kept(name)) continue;
    if (!forwarded.client_cert_header.empty() &&
        equalsIgnoreCase(name, forwarded.client_cert_header)) {
      continue;  // only sluice says what certificate the client showed
    }
    switch (classifyForwardingHeader(name)) {
      case ForwardingHeader::kXForwardedFor:
        if (forwarded.peer_trusted) {
          if (!xff.empty()) xff.append(", ");
          xff.append(header.value);
        }
        continue;
      case ForwardingHeader::kXForwardedProto:
        if (forwarded.peer_trusted && xf_proto.empty()) xf_proto = header.value;
        continue;
      case ForwardingHeader::kXForwardedHost:
        if (forwarded.peer_trusted && xf_host.empty()) xf_host = header.value;
        continue;
      case ForwardingHeader::kPeerIdentity:
        // Forwarded (RFC 7239) and X-Real-IP say who the client is as much as
        // X-Forwarded-For does: only a trusted peer's pass (and, when sluice
        // writes Forwarded itself, a trusted peer's list is extended).
        if (!forwarded.peer_trusted) continue;
        if (forwarded.rfc7239 && equalsIgnoreCase(name, "forwarded")) {
          if (!forwarded_list.empty()) forwarded_list.append(", ");
          forwarded_list.append(header.value);
          continue;
        }
        break;
      case ForwardingHeader::kXRequestId:
        // As Envoy: an id from outside the trusted edge is replaced by a
        // fresh one (unless preserve_external_request_id, here request_id: keep).
        if (!forwarded.peer_trusted && !forwarded.keep_untrusted_request_id) continue;
        has_request_id = true;  // an alias too: a CGI backend reads it as the id
        break;
      case ForwardingHeader::kOther:
        break;
    }
    appendHeader(name, header.value, out);
  }
  if (forwarded.peer != nullptr) {
    if (!xff.empty()) xff.append(", ");
    xff.append(forwarded.peer->ipText());
  }
  if (!xff.empty() && kept("x-forwarded-for")) appendHeader("X-Forwarded-For", xff, out);
  if (kept("x-forwarded-proto")) {
    appendHeader("X-Forwarded-Proto", xf_proto.empty() ? forwarded.scheme : xf_proto, out);
  }
  if (kept("x-forwarded-host")) {
    if (!xf_host.empty()) {
      appendHeader("X-Forwarded-Host", xf_host, out);
    } else if (!host.empty()) {
      appendHeader("X-Forwarded-Host", host, out);
    }
  }
  if (forwarded.rfc7239 && forwarded.peer != nullptr && kept("forwarded")) {
    if (!forwarded_list.empty()) forwarded_list.append(", ");
    forwarded_list.append(forwardedElement(*forwarded.peer, forwarded.scheme, host));
    appendHeader("Forwarded", forwarded_list, out);
  }
  if (!has_request_id && !forwarded.request_id.empty() && kept("x-request-id")) {
    appendHeader("X-Request-Id", forwarded.request_id, out);
  }
  if (rules != nullptr) appendRuleHeaders(*rules, forwarded.rule_context, out);
  if (!forwarded.client_cert_header.empty() && !forwarded.client_cert.empty()) {
    appendHeader(forwarded.client_cert_header, forwarded.client_cert, out);
  }
  if (acceptsTrailers(head)) {
    // TE is hop-by-hop; the client's willingness to take trailers is passed
    // on so that the upstream sends them (gRPC needs it).
    appendHeader("TE", "trailers", out);
  }
  if (!forwarded.upgrade.empty()) {
    // Hop-by-hop, so regenerated for this hop rather than passed on.
    appendHeader("Connection", "upgrade", out);
    appendHeader("Upgrade", forwarded.upgrade, out);
  }
}

void appendClientResponseHeaders(const http::ResponseHead& head, Buffer& out,
                                 const config::HeaderRules* rules, const RuleContext* context) {
  const std::string tokens = connectionTokens(head.headers);
  for (const http::Header& header : head.headers) {
    if (isHopByHop(header.name, tokens) || equalsIgnoreCase(header.name, "content-length")) {
      continue;
    }
    if (rules != nullptr && replacedOrRemoved(*rules, header.name)) continue;
    out.append(header.name);
    out.append(": ", 2);
    out.append(header.value);
    out.append("\r\n", 2);
  }
  if (rules != nullptr && context != nullptr) appendRuleHeaders(*rules, *context, out);
}

bool forwardableTrailer(std::string_view name) {
  static constexpr std::string_view kRefused[] = {
      "content-length",
      "transfer-encoding",
      "host",
      "connection",
      "keep-alive",
      "te",
      "trailer",
      "upgrade",
      "proxy-connection",
      "content-type",
      "content-encoding",
      "content-range",
      "authorization",
      "set-cookie",
      "cache-control",
      "expires",
      "date",
      "location",
      "vary",
      "age",
      "retry-after",
      "max-forwards",
      "expect",
      "range",
  };
  for (std::string_view refused : kRefused) {
    if (equalsIgnoreCase(name, refused)) return false;
  }
  return true;
}

bool acceptsTrailers(const http::RequestHead& head) {
  for (const http::Header& header : head.headers) {
    if (equalsIgnoreCase(header.name, "te") && http::listContainsToken(header.value, "trailers")) {
      return true;
    }
  }
  return false;
}

namespace {

// RFC 7239 §4: a value that is not a token goes in a quoted-string.
void appendForwardedValue(std::string_view value, std::string* out) {
  if (http::isToken(value)) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace

std::string forwardedElement(const net::Address& client, std::string_view proto,
                             std::string_view host) {
  std::string element = "for=";
  if (client.family() == net::Address::Family::kIpv6) {
    appendForwardedValue("[" + client.host() + "]", &element);  // RFC 7239 §6
  } else if (client.family() == net::Address::Family::kUnix) {
    element.append("unknown");
  } else {
    element.append(client.host());
  }
  element.append(";proto=");
  appendForwardedValue(proto, &element);
  if (!host.empty()) {
    element.append(";host=");
    appendForwardedValue(host, &element);
  }
  return element;
}

bool statedContentLength(const http::ResponseHead& head, uint64_t* length) {
  const http::Header* header = head.find("content-length");
  return header != nullptr && http::parseContentLength(header->value, length);
}

int64_t keepAliveTimeoutMs(const http::ResponseHead& head) {
  const http::Header* keep_alive = head.find("keep-alive");
  if (keep_alive == nullptr) return 0;
  std::string text;
  if (!http::findParameter(keep_alive->value, "timeout", &text) || text.empty()) return 0;
  // The hint only ever shortens a pool timeout, and no configured duration
  // exceeds config::kMaxDuration: saturate there while reading the digits, so
  // that neither the digits nor the multiplication below can overflow (a
  // signed overflow is undefined behaviour; `timeout=2305843009213693953`
  // killed the sanitizer build's worker).
  constexpr int64_t kMaxSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(config::kMaxDuration).count();
  int64_t seconds = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    seconds = std::min(seconds * 10 + (c - '0'), kMaxSeconds);
  }
  return seconds * 1000;
}

std::string newRequestId() {
  std::string id;
  fillRequestId(&id);
  return id;
}

void fillRequestId(std::string* id) {
  // Not for security: ids only need to be unique. Seeded once per process
  // from the OS, so forked workers do not repeat each other.
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  id->resize(32);
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = generator();
    for (int i = 0; i < 16; ++i) {
      (*id)[static_cast<size_t>(half * 16 + i)] = kHex[bits & 0xf];
      bits >>= 4;
    }
  }
}

}  // namespace sluice::proxy
