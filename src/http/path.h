// Request-target path normalization, so that a route matches the path a
// backend will serve and not a spelling of it: percent-decoding of
// unreserved characters, dot-segment removal and slash merging (RFC 3986
// §6.2.2, §5.2.4; what nginx does before location matching and Envoy's
// normalize_path + merge_slashes). Pure functions, no state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::http {

// What `%2F` and `%5C` (and a raw `\`) in a path mean.
enum class EscapedSlashes {
  // Refuse the request: a backend that decodes them would split segments the
  // route never saw (`/admin%2F..%2Fx`). Envoy's REJECT_REQUEST.
  kReject,
  // Keep them (hex upper-cased), as ordinary characters, not separators.
  kKeep,
};

struct NormalizedPath {
  bool ok = false;
  // The normalized path, then the query exactly as received (from `?` on).
  std::string path_and_query;
  size_t path_size = 0;    // path_and_query.substr(0, path_size) is the path
  const char* error = "";  // why the path was refused (for the log), when !ok

  std::string_view path() const { return std::string_view(path_and_query).substr(0, path_size); }
};

// Normalizes an origin-form `path[?query]` (an empty path, as in
// `http://host?q`, is `/`; asterisk-form `*` is returned as it is):
//   1. percent-encoded unreserved characters (ALPHA DIGIT - . _ ~, RFC 3986
//      §2.3) are decoded, the hex of every other percent-encoding is
//      upper-cased (§6.2.2.1);
//   2. runs of `/` count as one (nginx merge_slashes);
//   3. `.` and `..` segments are removed (§5.2.4), including ones spelled
//      with `%2e`; a trailing one leaves a trailing `/`.
// Refused: `..` above the root (RFC 3986 would drop it; a backend might not),
// `%00`, a `%` not followed by two hex digits, and — with kReject — `%2F`,
// `%5C` and a raw `\`. The query is never touched.
NormalizedPath normalizePath(std::string_view path_and_query, EscapedSlashes escaped_slashes);
// The same into `out`, reusing its string's storage: a path that is already
// in normal form (most are) costs no allocation once `out` has held one as
// long.
void normalizePath(std::string_view path_and_query, EscapedSlashes escaped_slashes,
                   NormalizedPath* out);

// The origin-form part of a request target: the target itself for
// origin-form and asterisk-form, the part after the authority for
// absolute-form (`http://h/p?q` → `/p?q`, `http://h?q` → `?q`, `http://h`
// → empty). `authority` receives the absolute-form authority, else empty.
std::string_view originFormPart(std::string_view target, std::string_view* authority = nullptr);

}  // namespace sluice::http
