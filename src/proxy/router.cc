#include "proxy/router.h"

#include <cctype>

#include "http/path.h"

namespace sluice::proxy {

std::string normalizeHost(std::string_view host) {
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
  std::string out(name);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view targetPath(std::string_view target, std::string_view* authority) {
  std::string_view path = http::originFormPart(target, authority);
  path = path.substr(0, path.find('?'));
  return path.empty() ? std::string_view("/") : path;
}

RequestPath resolveRequestPath(std::string_view target, const config::PathSettings& paths) {
  RequestPath out;
  const std::string_view origin_form = http::originFormPart(target);
  http::NormalizedPath normalized =
      http::normalizePath(origin_form, paths.keep_escaped_slashes ? http::EscapedSlashes::kKeep
                                                                  : http::EscapedSlashes::kReject);
  if (!normalized.ok) {
    out.error = normalized.error;
    return out;
  }
  out.ok = true;
  out.match_path.assign(normalized.path());
  if (!paths.forward_original) {
    out.upstream_target = std::move(normalized.path_and_query);
  } else if (origin_form.empty() || origin_form.front() == '?') {
    // `http://h` and `http://h?q`: origin-form needs the "/" (RFC 9112 §3.2.1).
    out.upstream_target.reserve(origin_form.size() + 1);
    out.upstream_target.push_back('/');
    out.upstream_target.append(origin_form);
  } else {
    out.upstream_target.assign(origin_form);
  }
  return out;
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

const config::Route* Router::match(std::string_view host, std::string_view path) const {
  for (const config::Route& route : routes_) {
    if (!hostMatches(route.match.host, host)) continue;
    if (!route.match.path_prefix.empty() && !path.starts_with(route.match.path_prefix)) continue;
    return &route;
  }
  return nullptr;
}

}  // namespace sluice::proxy
