// Router: picks the first route of a listener whose match block fits a
// request's host and path. Built once per listener per config generation;
// immutable and owned by the worker's listener state.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/message.h"
#include "http/path.h"

namespace sluice::proxy {

// The host part of a Host header or authority: lower-cased, port and IPv6
// brackets removed (`Example.COM:8080` → `example.com`, `[::1]:80` → `::1`).
std::string normalizeHost(std::string_view host_header);
// The same into `out`, reusing its storage.
void normalizeHost(std::string_view host_header, std::string* out);

// The path of a request target without its query (`/a/b?x` → `/a/b`); for
// absolute-form (`http://h/p?q`) the path after the authority (`/p`), and
// `/` when it is empty. `authority` receives the authority of an
// absolute-form target (which overrides Host, RFC 9112 §3.2.2), else empty.
std::string_view targetPath(std::string_view target, std::string_view* authority);

// What a request is routed by and forwarded with, from its target and the
// `paths` settings.
struct RequestPath {
  bool ok = false;
  const char* error = "";  // why the target was refused (answer 400), when !ok
  // The normalized path without its query (http::normalizePath): what
  // path_prefix is matched against.
  std::string match_path;
  // The origin-form target for the upstream: the normalized path and the
  // query as received, or (forward: original) the target's path and query
  // as received.
  std::string upstream_target;
  http::NormalizedPath normalized;  // scratch, kept for its storage
};
RequestPath resolveRequestPath(std::string_view target, const config::PathSettings& paths);
// The same into `out`, reusing its strings' storage: with a RequestPath kept
// between requests, a target already in normal form allocates nothing.
void resolveRequestPath(std::string_view target, const config::PathSettings& paths,
                        RequestPath* out);

// The value of query parameter `name` in `target` (after `?`), decoded as
// application/x-www-form-urlencoded (`+` is a space, %XX a byte); false
// when absent. The first occurrence counts.
bool queryParameter(std::string_view target, std::string_view name, std::string* value);

// The forwarded target after a route's strip_prefix / rewrite_prefix
// (applied to the path; the query is kept).
std::string rewriteTarget(const config::Route& route, std::string_view target);

class Router {
 public:
  explicit Router(const std::vector<config::Route>& routes) : routes_(routes) {}

  // `host` already normalized; `path` normalized (RequestPath::match_path).
  // `head` supplies the method, headers and query for routes that match on
  // them (without it such routes never match). Null when no route fits.
  const config::Route* match(std::string_view host, std::string_view path,
                             const http::RequestHead* head = nullptr) const;

  static bool hostMatches(std::string_view pattern, std::string_view host);

 private:
  const std::vector<config::Route>& routes_;
};

}  // namespace sluice::proxy
