// Checks for the text forms inside sluice.yaml that are not units or
// addresses: host patterns, path prefixes, header fields, names.
// Private to the config module (its loader and tests); stateless.
#pragma once

#include "core/text.h"

#include <string>
#include <string_view>

namespace sluice::config {

// `"text"`, for messages.
using sluice::quote;  // core/text.h

std::string toLower(std::string_view text);
std::string toUpper(std::string_view text);

// Accepts a host name (`api.example.com`), a leading wildcard
// (`*.example.com`) or an IPv6 literal with or without brackets (`[::1]`,
// `::1`); writes the lower-cased pattern to *out, IPv6 without brackets as
// proxy::normalizeHost() leaves a Host header. Ports are refused: routing
// ignores the port of the Host header.
bool normalizeHostPattern(std::string_view text, std::string* out, std::string* error);

// Must start with `/` and hold no spaces or control characters (they cannot
// appear in a request target, so such a prefix would never match).
bool validPathPrefix(std::string_view text, std::string* error);

// RFC 9110 5.1: a field name is a token.
bool validHeaderName(std::string_view name, std::string* error);
// RFC 9110 5.5: CR, LF and NUL are never allowed in a field value; they
// would let a config line inject headers.
bool validHeaderValue(std::string_view value, std::string* error);

// Letters, digits, `_`, `-`, `.`: upstream names show up in logs and metrics.
bool validUpstreamName(std::string_view name, std::string* error);
// Any printable text without spaces (names default to an address text such
// as `[::1]:8080` or `unix:/run/sluice.sock`).
bool validListenerName(std::string_view name);

}  // namespace sluice::config
