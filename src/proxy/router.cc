#include "proxy/router.h"

#include <algorithm>
#include <cctype>

#include "http/path.h"

namespace sluice::proxy {

std::string normalizeHost(std::string_view host) {
  std::string out;
  normalizeHost(host, &out);
  return out;
}

void normalizeHost(std::string_view host, std::string* out) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    size_t close = name.find(']');
    name = close == std::string_view::npos ? name.substr(1) : name.substr(1, close - 1);
  } else {
    size_t colon = name.rfind(':');
    if (colon != std::string_view::npos) name = name.substr(0, colon);
  }
  // A trailing dot names the same host (RFC 1034 §3.1): `example.com.`.
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  out->assign(name);
  for (char& c : *out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string_view targetPath(std::string_view target, std::string_view* authority) {
  std::string_view path = http::originFormPart(target, authority);
  path = path.substr(0, path.find('?'));
  return path.empty() ? std::string_view("/") : path;
}

RequestPath resolveRequestPath(std::string_view target, const config::PathSettings& paths) {
  RequestPath out;
  resolveRequestPath(target, paths, &out);
  return out;
}

void resolveRequestPath(std::string_view target, const config::PathSettings& paths,
                        RequestPath* out) {
  out->ok = false;
  out->error = "";
  out->match_path.clear();
  out->upstream_target.clear();
  const std::string_view origin_form = http::originFormPart(target);
  http::NormalizedPath& normalized = out->normalized;
  http::normalizePath(
      origin_form,
      paths.keep_escaped_slashes ? http::EscapedSlashes::kKeep : http::EscapedSlashes::kReject,
      &normalized);
  if (!normalized.ok) {
    out->error = normalized.error;
    return;
  }
  out->ok = true;
  out->match_path.assign(normalized.path());
  if (!paths.forward_original) {
    out->upstream_target.assign(normalized.path_and_query);
  } else if (origin_form.empty() || origin_form.front() == '?') {
    // `http://h` and `http://h?q`: origin-form needs the "/" (RFC 9112 §3.2.1).
    out->upstream_target.push_back('/');
    out->upstream_target.append(origin_form);
  } else {
    out->upstream_target.assign(origin_form);
  }
}

bool Router::hostMatches(std::string_view pattern, std::string_view host) {
  if (pattern.empty()) return true;
  // `*.example.com` matches any name ending in `.example.com` (any depth) but
  // not `example.com` itself — as nginx server_name wildcards do.
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);
    return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
  }
  return pattern == host;
}

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string formDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
               hexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool fieldsMatch(const config::RouteMatch& match, const http::RequestHead& head) {
  if (!match.methods.empty() &&
      std::find(match.methods.begin(), match.methods.end(), head.method) == match.methods.end()) {
    return false;
  }
  for (const config::FieldMatch& want : match.headers) {
    const http::Header* header = head.find(want.name);
    if (header == nullptr) return false;
    if (want.value && header->value != *want.value) return false;
  }
  for (const config::FieldMatch& want : match.query) {
    std::string value;
    if (!queryParameter(head.target, want.name, &value)) return false;
    if (want.value && value != *want.value) return false;
  }
  return true;
}

}  // namespace

bool queryParameter(std::string_view target, std::string_view name, std::string* value) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) return false;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (formDecode(pair.substr(0, eq)) == name) {
      *value = eq == std::string_view::npos ? std::string() : formDecode(pair.substr(eq + 1));
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

std::string rewriteTarget(const config::Route& route, std::string_view target) {
  const size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question);
  std::string out;
  if (!route.strip_prefix.empty() && path.starts_with(route.strip_prefix)) {
    path.remove_prefix(route.strip_prefix.size());
    if (path.empty() || path.front() != '/') out.push_back('/');
    out.append(path);
  } else if (route.rewrite_prefix && path.starts_with(route.match.path_prefix)) {
    out = *route.rewrite_prefix;
    path.remove_prefix(route.match.path_prefix.size());
    // `/api/` → `/` on `/api/x` gives `/x`, not `//x`.
    if (!out.empty() && out.back() == '/' && !path.empty() && path.front() == '/') {
      path.remove_prefix(1);
    }
    out.append(path);
    if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  } else {
    out.assign(path);
  }
  out.append(query);
  return out;
}

const config::Route* Router::match(std::string_view host, std::string_view path,
                                   const http::RequestHead* head) const {
  for (const config::Route& route : routes_) {
    if (!hostMatches(route.match.host, host)) continue;
    if (!route.match.path_prefix.empty() && !path.starts_with(route.match.path_prefix)) continue;
    const bool conditional =
        !route.match.methods.empty() || !route.match.headers.empty() || !route.match.query.empty();
    if (conditional && (head == nullptr || !fieldsMatch(route.match, *head))) continue;
    return &route;
  }
  return nullptr;
}

}  // namespace sluice::proxy
