// Serializes response heads and sluice's own responses (errors, direct
// `respond` routes) into bytes. Stateless functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.h"

namespace sluice::http {

// Standard reason phrase for a status code ("Unknown" when unlisted).
std::string_view reasonPhrase(int status);

struct SimpleResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string_view body;
  bool head_only = false;  // request was HEAD: send Content-Length, omit the body
  bool keep_alive = true;  // false adds `Connection: close`
};

// Appends `HTTP/1.1 <status> <reason>\r\n`, `Server: sluice`, `Date`, the
// given headers, `Content-Length`, `Connection: close` when needed, a blank
// line and the body (unless head_only) to `out`. 1xx/204/304 get no
// Content-Length and no body. `headers` must not hold Content-Length or
// Connection; a header whose name or value contains CR, LF or NUL is skipped
// (it would split the response; config validation rejects such values first).
void appendSimpleResponse(const SimpleResponse& response, std::string* out);

// A complete error response with a short text/plain body, e.g.
// "400 Bad Request\n". Always `Connection: close` unless keep_alive is set.
void appendErrorResponse(int status, bool head_only, bool keep_alive, std::string* out);

// The current time as an IMF-fixdate (RFC 9110 §5.6.7), cached per second
// per thread. The view stays valid (its text may change) on this thread.
std::string_view httpDate();

}  // namespace sluice::http
