#include "config/validate.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace sluice::config {
namespace {

constexpr size_t kMaxHostLength = 253;  // RFC 1035 2.3.4, without the trailing dot
constexpr size_t kMaxLabelLength = 63;

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool isControlOrSpace(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// Letters, digits, '-' and '_' (underscores are not legal in DNS host
// names but are common in internal ones, and Host headers carry them).
bool validHostName(std::string_view host, std::string* why) {
  if (host.size() > kMaxHostLength) {
    *why = "is longer than " + std::to_string(kMaxHostLength) + " characters";
    return false;
  }
  size_t start = 0;
  while (true) {
    const size_t dot = host.find('.', start);
    const std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) {
      *why = dot == std::string_view::npos && start > 0 ? "ends with a dot (remove it)"
                                                        : "has an empty label";
      return false;
    }
    if (label.size() > kMaxLabelLength) {
      *why = "has a label longer than " + std::to_string(kMaxLabelLength) + " characters";
      return false;
    }
    for (char c : label) {
      if (!isAlnum(c) && c != '-' && c != '_') {
        if (c == '*') {
          *why = "may use * only as a leading \"*.\" (e.g. *.example.com)";
        } else if (c == ':') {
          *why = "must not include a port (the port of the Host header is ignored)";
        } else {
          *why = "contains " + quote(std::string_view(&c, 1)) +
                 " (allowed: letters, digits, '-', '_' and dots)";
        }
        return false;
      }
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

std::string toLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string toUpper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool normalizeHostPattern(std::string_view text, std::string* out, std::string* error) {
  if (text.empty())
    return fail(error, "expected a host name, got an empty value (omit host to match any)");
  if (text == "*") return fail(error, "\"*\" is not needed: omit host to match any host");
  const std::string lower = toLower(text);
  in6_addr addr;
  if (lower.front() == '[') {
    // An IPv6 literal as written in a Host header. The router compares
    // hosts with their brackets removed, so the pattern drops them too.
    const size_t close = lower.find(']');
    const std::string inner = lower.substr(1, close == std::string::npos ? 0 : close - 1);
    if (close == std::string::npos || inet_pton(AF_INET6, inner.c_str(), &addr) != 1) {
      return fail(error, quote(text) + " is not a valid bracketed IPv6 address");
    }
    if (close + 1 != lower.size()) {
      return fail(
          error, quote(text) + " must not include a port (the port of the Host header is ignored)");
    }
    *out = inner;
    return true;
  }
  if (lower.find(':') != std::string::npos && inet_pton(AF_INET6, lower.c_str(), &addr) == 1) {
    *out = lower;
    return true;
  }
  std::string why;
  std::string_view name = lower;
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  if (!validHostName(name, &why)) {
    return fail(error, quote(text) + " is not a valid host pattern: it " + why);
  }
  *out = lower;
  return true;
}

bool validPathPrefix(std::string_view text, std::string* error) {
  if (text.empty() || text.front() != '/') {
    return fail(error, quote(text) + " must start with / (omit path_prefix to match any path)");
  }
  if (std::any_of(text.begin(), text.end(), isControlOrSpace)) {
    return fail(error,
                quote(text) + " contains a space or control character (encode it, e.g. %20)");
  }
  return true;
}

bool validHeaderName(std::string_view name, std::string* error) {
  static constexpr std::string_view kTokenSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return fail(error, "header name is empty");
  for (char c : name) {
    if (!isAlnum(c) && kTokenSymbols.find(c) == std::string_view::npos) {
      return fail(error, quote(name) +
                             " is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ "
                             "only; no spaces or colons)");
    }
  }
  return true;
}

bool validHeaderValue(std::string_view value, std::string* error) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return fail(error, "header value must not contain CR, LF or NUL");
    }
  }
  return true;
}

bool validUpstreamName(std::string_view name, std::string* error) {
  if (name.empty()) return fail(error, "upstream name is empty");
  for (char c : name) {
    if (!isAlnum(c) && c != '_' && c != '-' && c != '.') {
      return fail(error, quote(name) +
                             " is not a valid upstream name (letters, digits, '_', '-' and '.' "
                             "only)");
    }
  }
  return true;
}

bool validListenerName(std::string_view name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), isControlOrSpace);
}

}  // namespace sluice::config
