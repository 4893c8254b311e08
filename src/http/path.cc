#include "http/path.h"

#include <vector>

namespace sluice::http {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3.
bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void appendPercentEncoded(unsigned char byte, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back('%');
  out->push_back(kHex[byte >> 4]);
  out->push_back(kHex[byte & 0xf]);
}

NormalizedPath refuse(const char* why) {
  NormalizedPath result;
  result.error = why;
  return result;
}

// Nothing for normalization to change: no escapes or backslashes to look
// at, no empty segment (`//`) and no segment starting with a dot (`.`,
// `..`, and — to keep the test simple — any other, which the full pass then
// keeps as it is).
bool alreadyNormal(std::string_view path) {
  return path.find_first_of("%\\") == std::string_view::npos &&
         path.find("//") == std::string_view::npos && path.find("/.") == std::string_view::npos;
}

NormalizedPath normalizeFully(std::string_view path_and_query, EscapedSlashes escaped_slashes);

}  // namespace

void normalizePath(std::string_view path_and_query, EscapedSlashes escaped_slashes,
                   NormalizedPath* out) {
  const size_t query_start = path_and_query.find('?');
  const std::string_view path = path_and_query.substr(0, query_start);
  if (!path.empty() && path.front() == '/' && alreadyNormal(path)) {
    out->ok = true;
    out->error = "";
    out->path_and_query.assign(path_and_query);
    out->path_size = path.size();
    return;
  }
  *out = normalizeFully(path_and_query, escaped_slashes);
}

NormalizedPath normalizePath(std::string_view path_and_query, EscapedSlashes escaped_slashes) {
  NormalizedPath result;
  normalizePath(path_and_query, escaped_slashes, &result);
  return result;
}

namespace {

NormalizedPath normalizeFully(std::string_view path_and_query, EscapedSlashes escaped_slashes) {
  if (path_and_query == "*") {
    NormalizedPath result;
    result.ok = true;
    result.path_and_query = "*";
    result.path_size = 1;
    return result;
  }
  const size_t query_start = path_and_query.find('?');
  std::string_view path = path_and_query.substr(0, query_start);
  const std::string_view query = query_start == std::string_view::npos
                                     ? std::string_view()
                                     : path_and_query.substr(query_start);
  if (path.empty()) path = "/";  // RFC 9110 §4.2.3: an empty path is "/"
  if (path.front() != '/') return refuse("path does not start with /");

  // Pass 1: split into decoded segments. A segment is kept in its normalized
  // spelling (unreserved decoded, other escapes upper-cased), so `.`/`..`
  // spelled `%2e` are recognised below and nothing else changes meaning.
  std::vector<std::string> segments(1);
  for (size_t i = 1; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '/') {
      segments.emplace_back();
      continue;
    }
    std::string& segment = segments.back();
    if (c == '\\') {
      // Not a URI character at all (RFC 3986 §2), and a separator to IIS and
      // to WHATWG URL parsers: the same risk as %5C.
      if (escaped_slashes == EscapedSlashes::kReject) return refuse("backslash in path");
      segment.push_back(c);
      continue;
    }
    if (c != '%') {
      segment.push_back(c);
      continue;
    }
    const int high = i + 2 < path.size() ? hexValue(path[i + 1]) : -1;
    const int low = i + 2 < path.size() ? hexValue(path[i + 2]) : -1;
    if (high < 0 || low < 0) return refuse("invalid percent-encoding in path");
    i += 2;
    const auto byte = static_cast<unsigned char>(high * 16 + low);
    if (byte == 0) return refuse("encoded NUL (%00) in path");
    if (byte == '/' || byte == '\\') {
      if (escaped_slashes == EscapedSlashes::kReject) {
        return refuse("encoded slash or backslash (%2F, %5C) in path");
      }
      appendPercentEncoded(byte, &segment);
    } else if (isUnreserved(byte)) {
      segment.push_back(static_cast<char>(byte));
    } else {
      appendPercentEncoded(byte, &segment);
    }
  }

  // Pass 2: merge slashes (empty segments) and remove dot-segments.
  std::vector<const std::string*> kept;
  bool trailing_slash = false;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = segments[i];
    const bool last = i + 1 == segments.size();
    if (segment.empty() || segment == ".") {
      if (last) trailing_slash = true;
      continue;
    }
    if (segment == "..") {
      if (kept.empty()) return refuse("path goes above the root (..)");
      kept.pop_back();
      if (last) trailing_slash = true;
      continue;
    }
    kept.push_back(&segment);
    trailing_slash = false;
  }

  NormalizedPath result;
  result.ok = true;
  std::string& out = result.path_and_query;
  out.reserve(path_and_query.size() + 1);
  for (const std::string* segment : kept) {
    out.push_back('/');
    out.append(*segment);
  }
  if (kept.empty() || trailing_slash) out.push_back('/');
  result.path_size = out.size();
  out.append(query);
  return result;
}

}  // namespace

std::string_view originFormPart(std::string_view target, std::string_view* authority) {
  if (authority != nullptr) *authority = {};
  if (target.empty() || target.front() == '/' || target == "*") return target;
  // Absolute-form: scheme "://" authority [path-abempty] ["?" query]. The
  // parser has checked the scheme (http or https) and the authority.
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return target;
  const std::string_view rest = target.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?");
  if (authority != nullptr) *authority = rest.substr(0, authority_end);
  return authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
}

}  // namespace sluice::http
