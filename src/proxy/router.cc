#include "proxy/router.h"

#include <cctype>

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
  if (authority) *authority = {};
  std::string_view path = target;
  // Absolute-form: scheme "://" authority path. Schemes are case-insensitive.
  size_t scheme_end = target.find("://");
  if (!target.empty() && target.front() != '/' && scheme_end != std::string_view::npos) {
    std::string_view rest = target.substr(scheme_end + 3);
    size_t slash = rest.find_first_of("/?");
    if (authority) *authority = rest.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!path.empty() && path.front() == '?') return "/";
  }
  size_t query = path.find('?');
  if (query != std::string_view::npos) path = path.substr(0, query);
  return path;
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
