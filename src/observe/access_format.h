// AccessFormat: how one access log line is written — `combined` (nginx's
// and Apache's), `json` (every field of the request-finished record), or a
// template of literal text and named fields (`$remote_addr $status
// $request_time`, nginx's log_format variables where nginx has one).
// Parsed once when the config is loaded (an unknown field is a config
// error); rendering a line is a walk over the parsed pieces that appends to
// a string the caller reuses. Value type; no state besides the pieces and a
// cache of the last second's formatted times.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "observe/request_record.h"

namespace sluice::observe {

enum class AccessField : uint8_t {
  kRemoteAddr,
  kRemotePort,
  kRequestId,
  kTimeLocal,
  kTimeIso8601,
  kMsec,
  kRequest,
  kRequestMethod,
  kRequestUri,
  kServerProtocol,
  kHost,
  kStatus,
  kBodyBytesSent,
  kBytesSent,
  kRequestLength,
  kRequestTime,
  kHttpReferer,
  kHttpUserAgent,
  kListener,
  kRoute,
  kUpstream,
  kUpstreamAddr,
  kUpstreamStatus,
  kUpstreamConnectTime,
  kUpstreamHeaderTime,
  kUpstreamAttempts,
  kOutcome,
  kSslProtocol,
  kSslCipher,
  kSslServerName,
  kSslClientSubject,
};

class AccessFormat {
 public:
  enum class Kind : uint8_t { kCombined, kJson, kTemplate };

  // `text` is "combined", "json" or a template with at least one $field.
  // On failure `error` says which field is unknown (and lists the known
  // ones) or what was expected.
  static bool parse(std::string_view text, AccessFormat* out, std::string* error);
  // Every field name a template may use, space-separated with their `$`.
  static std::string fieldNames();

  Kind kind() const { return kind_; }
  // Appends one line (with its '\n') for `record` to `out`.
  void append(const RequestRecord& record, std::string* out);

 private:
  struct Piece {
    std::string literal;  // written before the field
    bool has_field = false;
    AccessField field = AccessField::kRemoteAddr;
  };
  void appendTemplate(const RequestRecord& record, std::string* out);
  void appendJson(const RequestRecord& record, std::string* out);
  void appendField(AccessField field, const RequestRecord& record, std::string* out);
  // Formatted times, recomputed when the second changes (a line per
  // request must not cost a localtime_r and a strftime each).
  std::string_view timeLocal(const RequestRecord& record);
  std::string_view timeIso8601(const RequestRecord& record);
  std::string_view timeUtc(const RequestRecord& record);

  Kind kind_ = Kind::kCombined;
  std::vector<Piece> pieces_;
  struct CachedTime {
    std::time_t second = -1;
    char text[40] = {};
    size_t size = 0;
  };
  CachedTime local_, iso_, utc_;
};

}  // namespace sluice::observe
