// Parsed HTTP/1.x message heads, as sluice's own structures (never raw
// bytes): what the proxy re-serializes for the next hop. Value types.
// Also the small field-syntax helpers (RFC 9110 §5.6) the parsers and the
// proxy share, so both judge a header the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {

struct Header {
  std::string name;   // as received (case preserved)
  std::string value;  // leading/trailing whitespace trimmed
};

enum class BodyFraming {
  kNone,           // no body (no Content-Length and no Transfer-Encoding on a request)
  kContentLength,  // exactly content_length bytes
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // responses only: delimited by connection close
};

struct RequestHead {
  std::string method;  // e.g. "GET"
  std::string target;  // request-target as received
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;
  // The value of the Host header (empty if absent on HTTP/1.0). For an
  // absolute-form target it is the target's authority instead, because
  // RFC 9112 §3.2.2 makes the target win over the Host header.
  std::string host;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;   // when framing == kContentLength
  bool keep_alive = true;        // per version and Connection header
  bool expect_continue = false;  // Expect: 100-continue

  bool isHead() const { return method == "HEAD"; }
  // First header with this name (case-insensitive), or nullptr.
  const Header* find(std::string_view name) const;
};

struct ResponseHead {
  int status = 200;
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;  // when framing == kContentLength
  bool keep_alive = true;

  const Header* find(std::string_view name) const;
};

// ASCII case-insensitive comparison for header names and tokens.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
std::string_view trimOws(std::string_view s);

// True if `s` is a non-empty RFC 9110 §5.6.2 token (method, field name, coding).
bool isToken(std::string_view s);

// True if a field value holds a byte RFC 9110 §5.5 forbids (controls other
// than HTAB, and DEL). llhttp already refuses them; the parsers check again
// because a CR, LF or NUL that slipped through would split a re-serialized head.
bool hasControlChar(std::string_view value);

// True if `list` (a comma-separated field value such as Connection) has an
// element equal to `token`, case-insensitively. Empty elements are ignored
// (RFC 9110 §5.6.1).
bool listContainsToken(std::string_view list, std::string_view token);

// Finds the parameter `name` in `value`, a list of `name=value` parameters
// (RFC 9110 §5.6.6: the name a token, compared case-insensitively; the value
// a token or a quoted-string, whose quoted-pairs are unescaped into *out)
// separated by `,` or `;` with optional whitespace around the separators
// (Keep-Alive, RFC 2068 §19.7.1.1, separates its parameters with commas).
// False when absent, or when the list is malformed before `name` is found.
bool findParameter(std::string_view value, std::string_view name, std::string* out);

// Parses a Content-Length value: 1*DIGIT that fits in 64 bits. Rejects
// signs, spaces inside, comma lists and empty values (RFC 9110 §8.6).
bool parseContentLength(std::string_view value, uint64_t* out);

// True if `authority` is `host[:port]` with host a reg-name, IPv4 address or
// bracketed IP literal (RFC 3986 §3.2.2) and port 1-5 digits <= 65535.
// Rejects empty hosts, userinfo (`@`), whitespace, `/` and control characters.
bool isValidAuthority(std::string_view authority);

// How a Transfer-Encoding value frames a body.
enum class TransferCoding {
  kChunked,      // exactly one coding, `chunked` (case-insensitive)
  kUnsupported,  // well-formed, `chunked` last, but other codings before it
  kMalformed,    // empty, not a token list, `chunked` not last or repeated
};
TransferCoding classifyTransferEncoding(std::string_view value);

}  // namespace sluice::http
