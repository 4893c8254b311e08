#include "http/message.h"

#include <utility>

namespace sluice::http {

namespace {

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool isHexDigit(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 §5.6.2.
bool isTchar(char c) {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// RFC 3986 §2.3 unreserved and §2.2 sub-delims: the reg-name alphabet.
bool isRegNameChar(char c) {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':  // sub-delims
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

const Header* findHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, name)) return &h;
  }
  return nullptr;
}

// Calls fn(element) for each non-empty, OWS-trimmed element of a
// comma-separated list; stops early when fn returns false.
template <typename Fn>
void forEachListElement(std::string_view list, Fn fn) {
  while (true) {
    size_t comma = list.find(',');
    std::string_view element = trimOws(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

bool isValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  uint32_t value = 0;
  for (char c : port) {
    if (!isDigit(c)) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535;
}

}  // namespace

const Header* RequestHead::find(std::string_view name) const {
  return findHeader(headers, name);
}

const Header* ResponseHead::find(std::string_view name) const {
  return findHeader(headers, name);
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool hasControlChar(std::string_view value) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!isTchar(c)) return false;
  }
  return true;
}

bool listContainsToken(std::string_view list, std::string_view token) {
  bool found = false;
  forEachListElement(list, [&](std::string_view element) {
    found = equalsIgnoreCase(element, token);
    return !found;
  });
  return found;
}

bool findParameter(std::string_view value, std::string_view name, std::string* out) {
  size_t i = 0;
  const size_t n = value.size();
  auto skipOws = [&] {
    while (i < n && (value[i] == ' ' || value[i] == '\t'))
      ++i;
  };
  while (true) {
    // Separators with OWS around them; empty elements are allowed (§5.6.1).
    while (true) {
      skipOws();
      if (i < n && (value[i] == ',' || value[i] == ';')) {
        ++i;
        continue;
      }
      break;
    }
    if (i == n) return false;
    const size_t name_start = i;
    while (i < n && isTchar(value[i]))
      ++i;
    const std::string_view parameter = value.substr(name_start, i - name_start);
    // §5.6.6: no whitespace around "=", and a parameter always has a value.
    if (parameter.empty() || i == n || value[i] != '=') return false;
    ++i;
    std::string parsed;
    if (i < n && value[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        char c = value[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == n) return false;
          c = value[i++];
        }
        parsed.push_back(c);
      }
      if (!closed) return false;
    } else {
      const size_t value_start = i;
      while (i < n && isTchar(value[i]))
        ++i;
      if (i == value_start) return false;
      parsed.assign(value.substr(value_start, i - value_start));
    }
    if (equalsIgnoreCase(parameter, name)) {
      *out = std::move(parsed);
      return true;
    }
    skipOws();
    if (i < n && value[i] != ',' && value[i] != ';') return false;
  }
}

bool parseContentLength(std::string_view value, uint64_t* out) {
  if (value.empty()) return false;
  uint64_t n = 0;
  for (char c : value) {
    if (!isDigit(c)) return false;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - digit) / 10) return false;  // overflow
    n = n * 10 + digit;
  }
  *out = n;
  return true;
}

bool isValidAuthority(std::string_view authority) {
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    // IP-literal: only IPv6 addresses (hex, ':' and a dotted IPv4 tail);
    // IPvFuture is not accepted.
    size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    std::string_view literal = authority.substr(1, close - 1);
    if (literal.find(':') == std::string_view::npos) return false;
    for (char c : literal) {
      if (!isHexDigit(c) && c != ':' && c != '.') return false;
    }
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return false;
    for (size_t i = 0; i < host.size(); ++i) {
      char c = host[i];
      if (c == '%') {
        if (i + 2 >= host.size() || !isHexDigit(host[i + 1]) || !isHexDigit(host[i + 2])) {
          return false;
        }
        i += 2;
      } else if (!isRegNameChar(c)) {
        return false;
      }
    }
  }
  return !has_port || isValidPort(port);
}

TransferCoding classifyTransferEncoding(std::string_view value) {
  size_t codings = 0;
  size_t chunked = 0;
  bool last_is_chunked = false;
  bool malformed = false;
  forEachListElement(value, [&](std::string_view element) {
    size_t semicolon = element.find(';');
    std::string_view name = trimOws(element.substr(0, semicolon));
    if (!isToken(name)) {
      malformed = true;
      return false;
    }
    ++codings;
    last_is_chunked = equalsIgnoreCase(name, "chunked");
    if (last_is_chunked) {
      // chunked takes no parameters (RFC 9112 §7.1).
      if (semicolon != std::string_view::npos) {
        malformed = true;
        return false;
      }
      ++chunked;
    }
    return true;
  });
  // RFC 9112 §6.3: a request whose final coding is not chunked cannot be
  // delimited and MUST get a 400; §6.1: chunked MUST NOT be applied twice.
  if (malformed || codings == 0 || chunked != 1 || !last_is_chunked) {
    return TransferCoding::kMalformed;
  }
  return codings == 1 ? TransferCoding::kChunked : TransferCoding::kUnsupported;
}

}  // namespace sluice::http
