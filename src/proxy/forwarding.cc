#include "proxy/forwarding.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <random>

namespace sluice::proxy {
namespace {

using http::equalsIgnoreCase;

// RFC 9110 §7.6.1 plus the de-facto hop-by-hop names every proxy strips.
constexpr std::string_view kHopByHop[] = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool listContains(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view token = trim(list.substr(0, comma));
    if (equalsIgnoreCase(token, name)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

void appendHeader(std::string_view name, std::string_view value, std::string* out) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

bool isHopByHop(std::string_view name, std::string_view connection_tokens) {
  for (std::string_view hop : kHopByHop) {
    if (equalsIgnoreCase(name, hop)) return true;
  }
  return listContains(connection_tokens, name);
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
  std::string_view target = head.target;
  std::string_view host = head.host;
  // Absolute-form: the authority replaces Host (RFC 9112 §3.2.2) and the
  // upstream gets origin-form.
  size_t scheme_end = target.find("://");
  if (!target.empty() && target.front() != '/' && target != "*" &&
      scheme_end != std::string_view::npos) {
    std::string_view rest = target.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    host = rest.substr(0, path_start);
    target = path_start == std::string_view::npos ? std::string_view("/") : rest.substr(path_start);
  }
  out->append(head.method).push_back(' ');
  if (!target.empty() && target.front() == '?') out->push_back('/');
  out->append(target).append(" HTTP/1.1\r\n");
  // HTTP/1.1 requires Host toward the upstream even when an HTTP/1.0 client
  // sent none.
  appendHeader("Host", host.empty() ? forwarded.fallback_host : host, out);

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
    if (equalsIgnoreCase(name, "x-forwarded-for")) {
      if (forwarded.peer_trusted) {
        if (!xff.empty()) xff.append(", ");
        xff.append(header.value);
      }
      continue;
    }
    if (equalsIgnoreCase(name, "x-forwarded-proto")) {
      if (forwarded.peer_trusted && xf_proto.empty()) xf_proto = header.value;
      continue;
    }
    if (equalsIgnoreCase(name, "x-forwarded-host")) {
      if (forwarded.peer_trusted && xf_host.empty()) xf_host = header.value;
      continue;
    }
    if (equalsIgnoreCase(name, "x-request-id")) has_request_id = true;
    appendHeader(name, header.value, out);
  }
  if (forwarded.peer != nullptr) {
    if (!xff.empty()) xff.append(", ");
    xff.append(forwarded.peer->ipText());
  }
  if (!xff.empty()) appendHeader("X-Forwarded-For", xff, out);
  appendHeader("X-Forwarded-Proto", xf_proto.empty() ? std::string_view("http") : xf_proto, out);
  if (!xf_host.empty()) {
    appendHeader("X-Forwarded-Host", xf_host, out);
  } else if (!host.empty()) {
    appendHeader("X-Forwarded-Host", host, out);
  }
  if (!has_request_id && !forwarded.request_id.empty()) {
    appendHeader("X-Request-Id", forwarded.request_id, out);
  }
}

void appendClientResponseHeaders(const http::ResponseHead& head, Buffer& out) {
  const std::string tokens = connectionTokens(head.headers);
  for (const http::Header& header : head.headers) {
    if (isHopByHop(header.name, tokens) || equalsIgnoreCase(header.name, "content-length")) {
      continue;
    }
    out.append(header.name);
    out.append(": ", 2);
    out.append(header.value);
    out.append("\r\n", 2);
  }
}

bool statedContentLength(const http::ResponseHead& head, uint64_t* length) {
  const http::Header* header = head.find("content-length");
  return header != nullptr && http::parseContentLength(header->value, length);
}

int64_t keepAliveTimeoutMs(const http::ResponseHead& head) {
  const http::Header* keep_alive = head.find("keep-alive");
  if (keep_alive == nullptr) return 0;
  std::string_view value = keep_alive->value;
  size_t pos = value.find("timeout=");
  if (pos == std::string_view::npos) return 0;
  int64_t seconds = 0;
  const char* begin = value.data() + pos + 8;
  auto [ptr, ec] = std::from_chars(begin, value.data() + value.size(), seconds);
  if (ec != std::errc() || ptr == begin || seconds <= 0) return 0;
  return seconds * 1000;
}

std::string newRequestId() {
  // Not for security: ids only need to be unique. Seeded once per process
  // from the OS, so forked workers do not repeat each other.
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = generator();
    for (int i = 0; i < 16; ++i) {
      id[static_cast<size_t>(half * 16 + i)] = kHex[bits & 0xf];
      bits >>= 4;
    }
  }
  return id;
}

}  // namespace sluice::proxy
