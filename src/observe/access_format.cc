#include "observe/access_format.h"

#include <charconv>
#include <cstdio>

namespace sluice::observe {
namespace {

struct FieldName {
  std::string_view name;
  AccessField field;
};

// nginx's variable names where nginx has the same thing, so that a
// log_format line carries over; sluice's own for what nginx lacks.
constexpr FieldName kFieldNames[] = {
    {"remote_addr", AccessField::kRemoteAddr},
    {"remote_port", AccessField::kRemotePort},
    {"request_id", AccessField::kRequestId},
    {"time_local", AccessField::kTimeLocal},
    {"time_iso8601", AccessField::kTimeIso8601},
    {"msec", AccessField::kMsec},
    {"request", AccessField::kRequest},
    {"request_method", AccessField::kRequestMethod},
    {"request_uri", AccessField::kRequestUri},
    {"server_protocol", AccessField::kServerProtocol},
    {"host", AccessField::kHost},
    {"status", AccessField::kStatus},
    {"body_bytes_sent", AccessField::kBodyBytesSent},
    {"bytes_sent", AccessField::kBytesSent},
    {"request_length", AccessField::kRequestLength},
    {"request_time", AccessField::kRequestTime},
    {"http_referer", AccessField::kHttpReferer},
    {"http_user_agent", AccessField::kHttpUserAgent},
    {"listener", AccessField::kListener},
    {"route", AccessField::kRoute},
    {"upstream", AccessField::kUpstream},
    {"upstream_addr", AccessField::kUpstreamAddr},
    {"upstream_status", AccessField::kUpstreamStatus},
    {"upstream_connect_time", AccessField::kUpstreamConnectTime},
    {"upstream_header_time", AccessField::kUpstreamHeaderTime},
    {"upstream_attempts", AccessField::kUpstreamAttempts},
    {"outcome", AccessField::kOutcome},
    {"ssl_protocol", AccessField::kSslProtocol},
    {"ssl_cipher", AccessField::kSslCipher},
    {"ssl_server_name", AccessField::kSslServerName},
    {"ssl_client_s_dn", AccessField::kSslClientSubject},
};

// nginx's combined format, as a template.
constexpr std::string_view kCombined =
    "$remote_addr - - [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" "
    "\"$http_user_agent\"";

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Template values: what would break a quoted field or the line is written
// as \xHH (nginx's default escaping); an empty value is "-".
void appendEscaped(std::string_view value, std::string* out) {
  if (value.empty()) {
    out->push_back('-');
    return;
  }
  for (unsigned char c : value) {
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const char escaped[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out->append(escaped, sizeof escaped);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

void appendJsonString(std::string_view value, std::string* out) {
  out->push_back('"');
  for (unsigned char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      // Bytes, not code points: a request's bytes need not be UTF-8, and
      // every byte stays visible.
      char escaped[7];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out->append(escaped);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void appendNumber(uint64_t value, std::string* out) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out->append(digits, static_cast<size_t>(end - digits));
}

// Microseconds as decimal seconds with millisecond resolution (nginx's
// $request_time), or as milliseconds with microsecond resolution (JSON).
void appendScaled(int64_t micros, int64_t unit, int decimals, std::string* out) {
  if (micros < 0) micros = 0;
  appendNumber(static_cast<uint64_t>(micros / unit), out);
  out->push_back('.');
  int64_t fraction = micros % unit;
  int64_t scale = unit;
  for (int i = 0; i < decimals; ++i) {
    scale /= 10;
    out->push_back(static_cast<char>('0' + (fraction / scale) % 10));
  }
}

std::string_view protocolOf(const RequestRecord& r) {
  return r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

// `,"name":` before a value.
void appendKey(std::string_view name, std::string* out) {
  out->append(",\"").append(name).append("\":");
}

}  // namespace

bool AccessFormat::parse(std::string_view text, AccessFormat* out, std::string* error) {
  *out = AccessFormat();
  if (text == "json") {
    out->kind_ = Kind::kJson;
    return true;
  }
  const bool combined = text == "combined";
  if (!combined && text.find('$') == std::string_view::npos) {
    *error = "expected combined, json or a format with $fields (e.g. \"$remote_addr $status\")";
    return false;
  }
  out->kind_ = combined ? Kind::kCombined : Kind::kTemplate;
  const std::string_view source = combined ? kCombined : text;
  Piece piece;
  for (size_t i = 0; i < source.size();) {
    if (source[i] != '$') {
      piece.literal.push_back(source[i++]);
      continue;
    }
    // $name, or ${name} when letters follow the field directly.
    const bool braced = i + 1 < source.size() && source[i + 1] == '{';
    size_t start = i + (braced ? 2 : 1);
    size_t end = start;
    while (end < source.size() && isNameChar(source[end]))
      ++end;
    const std::string_view name = source.substr(start, end - start);
    if (name.empty() || (braced && (end >= source.size() || source[end] != '}'))) {
      *error = "expected a field name after $ at offset " + std::to_string(i) +
               " (a literal $ is not supported); fields: " + fieldNames();
      return false;
    }
    const FieldName* found = nullptr;
    for (const FieldName& candidate : kFieldNames) {
      if (candidate.name == name) found = &candidate;
    }
    if (found == nullptr) {
      *error = "unknown field $" + std::string(name) + "; fields: " + fieldNames();
      return false;
    }
    piece.has_field = true;
    piece.field = found->field;
    out->pieces_.push_back(std::move(piece));
    piece = Piece();
    i = end + (braced ? 1 : 0);
  }
  if (!piece.literal.empty()) out->pieces_.push_back(std::move(piece));
  return true;
}

std::string AccessFormat::fieldNames() {
  std::string names;
  for (const FieldName& f : kFieldNames) {
    if (!names.empty()) names.push_back(' ');
    names.append("$").append(f.name);
  }
  return names;
}

void AccessFormat::append(const RequestRecord& record, std::string* out) {
  if (kind_ == Kind::kJson) {
    appendJson(record, out);
  } else {
    appendTemplate(record, out);
  }
  out->push_back('\n');
}

void AccessFormat::appendTemplate(const RequestRecord& record, std::string* out) {
  for (const Piece& piece : pieces_) {
    out->append(piece.literal);
    if (piece.has_field) appendField(piece.field, record, out);
  }
}

void AccessFormat::appendField(AccessField field, const RequestRecord& r, std::string* out) {
  switch (field) {
    case AccessField::kRemoteAddr:
      return appendEscaped(r.client_ip, out);
    case AccessField::kRemotePort:
      if (r.client_port == 0) return out->push_back('-');
      return appendNumber(r.client_port, out);
    case AccessField::kRequestId:
      return appendEscaped(r.request_id, out);
    case AccessField::kTimeLocal:
      out->append(timeLocal(r));
      return;
    case AccessField::kTimeIso8601:
      out->append(timeIso8601(r));
      return;
    case AccessField::kMsec: {
      const auto micros =
          std::chrono::duration_cast<std::chrono::microseconds>(r.started.time_since_epoch())
              .count();
      return appendScaled(micros, 1000000, 3, out);
    }
    case AccessField::kRequest:
      if (r.method.empty()) return out->push_back('-');
      appendEscaped(r.method, out);
      out->push_back(' ');
      appendEscaped(r.target, out);
      out->push_back(' ');
      out->append(protocolOf(r));
      return;
    case AccessField::kRequestMethod:
      return appendEscaped(r.method, out);
    case AccessField::kRequestUri:
      return appendEscaped(r.target, out);
    case AccessField::kServerProtocol:
      out->append(protocolOf(r));
      return;
    case AccessField::kHost:
      return appendEscaped(r.host, out);
    case AccessField::kStatus:
      return appendNumber(static_cast<uint64_t>(r.status), out);
    case AccessField::kBodyBytesSent:
      return appendNumber(r.body_bytes_sent, out);
    case AccessField::kBytesSent:
      return appendNumber(r.bytes_sent, out);
    case AccessField::kRequestLength:
      return appendNumber(r.bytes_received, out);
    case AccessField::kRequestTime:
      return appendScaled(r.duration.count(), 1000000, 3, out);
    case AccessField::kHttpReferer:
      return appendEscaped(r.referer, out);
    case AccessField::kHttpUserAgent:
      return appendEscaped(r.user_agent, out);
    case AccessField::kListener:
      return appendEscaped(r.listener, out);
    case AccessField::kRoute:
      if (r.route_index < 0) return out->push_back('-');
      return appendNumber(static_cast<uint64_t>(r.route_index), out);
    case AccessField::kUpstream:
      return appendEscaped(r.upstream, out);
    case AccessField::kUpstreamAddr:
      return appendEscaped(r.server, out);
    case AccessField::kUpstreamStatus:
      if (r.upstream_status == 0) return out->push_back('-');
      return appendNumber(static_cast<uint64_t>(r.upstream_status), out);
    case AccessField::kUpstreamConnectTime:
      if (r.upstream_connect.count() < 0) return out->push_back('-');
      return appendScaled(r.upstream_connect.count(), 1000000, 3, out);
    case AccessField::kUpstreamHeaderTime:
      if (r.upstream_first_byte.count() < 0) return out->push_back('-');
      return appendScaled(r.upstream_first_byte.count(), 1000000, 3, out);
    case AccessField::kUpstreamAttempts:
      return appendNumber(r.attempts, out);
    case AccessField::kOutcome:
      out->append(outcomeName(r.outcome));
      return;
    case AccessField::kSslProtocol:
      return appendEscaped(r.tls_protocol, out);
    case AccessField::kSslCipher:
      return appendEscaped(r.tls_cipher, out);
    case AccessField::kSslServerName:
      return appendEscaped(r.tls_server_name, out);
    case AccessField::kSslClientSubject:
      return appendEscaped(r.tls_client_subject, out);
  }
}

void AccessFormat::appendJson(const RequestRecord& r, std::string* out) {
  out->append("{\"time\":\"").append(timeUtc(r)).push_back('"');
  appendKey("request_id", out);
  appendJsonString(r.request_id, out);
  appendKey("client", out);
  appendJsonString(r.client_ip, out);
  appendKey("client_port", out);
  appendNumber(r.client_port, out);
  appendKey("listener", out);
  appendJsonString(r.listener, out);
  appendKey("method", out);
  appendJsonString(r.method, out);
  appendKey("target", out);
  appendJsonString(r.target, out);
  appendKey("protocol", out);
  appendJsonString(protocolOf(r), out);
  appendKey("host", out);
  appendJsonString(r.host, out);
  appendKey("status", out);
  appendNumber(static_cast<uint64_t>(r.status), out);
  appendKey("body_bytes", out);
  appendNumber(r.body_bytes_sent, out);
  appendKey("bytes_received", out);
  appendNumber(r.bytes_received, out);
  appendKey("bytes_sent", out);
  appendNumber(r.bytes_sent, out);
  appendKey("duration_ms", out);
  appendScaled(r.duration.count(), 1000, 3, out);
  appendKey("referer", out);
  appendJsonString(r.referer, out);
  appendKey("user_agent", out);
  appendJsonString(r.user_agent, out);
  appendKey("route", out);
  if (r.route_index < 0) {
    out->append("null");
  } else {
    appendNumber(static_cast<uint64_t>(r.route_index), out);
  }
  appendKey("upstream", out);
  appendJsonString(r.upstream, out);
  appendKey("server", out);
  appendJsonString(r.server, out);
  appendKey("upstream_status", out);
  if (r.upstream_status == 0) {
    out->append("null");
  } else {
    appendNumber(static_cast<uint64_t>(r.upstream_status), out);
  }
  appendKey("upstream_connect_ms", out);
  if (r.upstream_connect.count() < 0) {
    out->append("null");
  } else {
    appendScaled(r.upstream_connect.count(), 1000, 3, out);
  }
  appendKey("upstream_first_byte_ms", out);
  if (r.upstream_first_byte.count() < 0) {
    out->append("null");
  } else {
    appendScaled(r.upstream_first_byte.count(), 1000, 3, out);
  }
  appendKey("attempts", out);
  appendNumber(r.attempts, out);
  appendKey("outcome", out);
  appendJsonString(outcomeName(r.outcome), out);
  if (!r.tls_protocol.empty()) {
    // Only on TLS listeners: protocol, cipher, the SNI the client sent, and
    // the verified client certificate's subject (mTLS), as nginx's
    // $ssl_protocol, $ssl_cipher, $ssl_server_name, $ssl_client_s_dn.
    appendKey("tls_protocol", out);
    appendJsonString(r.tls_protocol, out);
    appendKey("tls_cipher", out);
    appendJsonString(r.tls_cipher, out);
    appendKey("tls_server_name", out);
    appendJsonString(r.tls_server_name, out);
    appendKey("tls_client_subject", out);
    appendJsonString(r.tls_client_subject, out);
  }
  out->push_back('}');
}

namespace {

template <typename Format>
std::string_view cachedTime(std::time_t second, char* text, size_t capacity, size_t* size,
                            std::time_t* cached_second, Format format) {
  if (*cached_second != second) {
    *size = format(second, text, capacity);
    *cached_second = second;
  }
  return std::string_view(text, *size);
}

std::time_t secondOf(const RequestRecord& r) {
  return std::chrono::system_clock::to_time_t(r.started);
}

}  // namespace

std::string_view AccessFormat::timeLocal(const RequestRecord& r) {
  return cachedTime(secondOf(r), local_.text, sizeof local_.text, &local_.size, &local_.second,
                    [](std::time_t s, char* text, size_t capacity) {
                      std::tm local;
                      ::localtime_r(&s, &local);
                      return std::strftime(text, capacity, "%d/%b/%Y:%H:%M:%S %z", &local);
                    });
}

std::string_view AccessFormat::timeIso8601(const RequestRecord& r) {
  return cachedTime(secondOf(r), iso_.text, sizeof iso_.text, &iso_.size, &iso_.second,
                    [](std::time_t s, char* text, size_t capacity) {
                      std::tm local;
                      ::localtime_r(&s, &local);
                      size_t n = std::strftime(text, capacity, "%Y-%m-%dT%H:%M:%S%z", &local);
                      // nginx writes the offset as +00:00 (ISO 8601), strftime as +0000.
                      if (n >= 5 && n + 1 < capacity) {
                        text[n + 1] = '\0';
                        text[n] = text[n - 1];
                        text[n - 1] = text[n - 2];
                        text[n - 2] = ':';
                        ++n;
                      }
                      return n;
                    });
}

std::string_view AccessFormat::timeUtc(const RequestRecord& r) {
  return cachedTime(secondOf(r), utc_.text, sizeof utc_.text, &utc_.size, &utc_.second,
                    [](std::time_t s, char* text, size_t capacity) {
                      std::tm utc;
                      ::gmtime_r(&s, &utc);
                      return std::strftime(text, capacity, "%Y-%m-%dT%H:%M:%SZ", &utc);
                    });
}

}  // namespace sluice::observe
