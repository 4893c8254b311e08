#include "http/response_writer.h"

#include <ctime>

namespace sluice::http {

namespace {

bool hasNoBody(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

// A CR, LF or NUL in a name or value would split the response (CWE-113).
bool isSafeFieldText(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void appendDecimal(uint64_t n, std::string* out) {
  char buf[20];
  size_t i = sizeof(buf);
  do {
    buf[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out->append(buf + i, sizeof(buf) - i);
}

void appendTwoDigits(int n, char* out) {
  out[0] = static_cast<char>('0' + n / 10);
  out[1] = static_cast<char>('0' + n % 10);
}

}  // namespace

std::string_view reasonPhrase(int status) {
  // RFC 9110 §15 names (413 and 422 as renamed there).
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 102:
      return "Processing";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 305:
      return "Use Proxy";
    case 306:
      return "Unused";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 418:
      return "I'm a teapot";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 451:
      return "Unavailable For Legal Reasons";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 511:
      return "Network Authentication Required";
    default:
      return "Unknown";
  }
}

void appendSimpleResponse(const SimpleResponse& response, std::string* out) {
  const bool no_body = hasNoBody(response.status);
  out->append("HTTP/1.1 ");
  appendDecimal(static_cast<uint64_t>(response.status < 0 ? 0 : response.status), out);
  out->push_back(' ');
  out->append(reasonPhrase(response.status));
  out->append("\r\nServer: sluice\r\nDate: ");
  out->append(httpDate());
  out->append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (!isSafeFieldText(name) || !isSafeFieldText(value)) continue;
    out->append(name);
    out->append(": ");
    out->append(value);
    out->append("\r\n");
  }
  if (!no_body) {
    // For HEAD the length of the body a GET would get (RFC 9110 §8.6).
    out->append("Content-Length: ");
    appendDecimal(response.body.size(), out);
    out->append("\r\n");
  }
  if (!response.keep_alive) out->append("Connection: close\r\n");
  out->append("\r\n");
  if (!no_body && !response.head_only) out->append(response.body);
}

void appendErrorResponse(int status, bool head_only, bool keep_alive, std::string* out) {
  std::string body;
  body.reserve(48);
  appendDecimal(static_cast<uint64_t>(status < 0 ? 0 : status), &body);
  body.push_back(' ');
  body.append(reasonPhrase(status));
  body.push_back('\n');
  SimpleResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "text/plain");
  response.body = body;
  response.head_only = head_only;
  response.keep_alive = keep_alive;
  appendSimpleResponse(response, out);
}

std::string_view httpDate() {
  // IMF-fixdate is fixed-width: "Sun, 06 Nov 1994 08:49:37 GMT" (29 chars).
  // Formatted by hand so no locale can change the day or month names.
  struct Cache {
    time_t second = -1;
    char text[29];
  };
  thread_local Cache cache;
  time_t now = time(nullptr);
  if (now != cache.second) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm {};
    gmtime_r(&now, &tm);
    char* p = cache.text;
    const char* day = kDays[tm.tm_wday];
    p[0] = day[0];
    p[1] = day[1];
    p[2] = day[2];
    p[3] = ',';
    p[4] = ' ';
    appendTwoDigits(tm.tm_mday, p + 5);
    p[7] = ' ';
    const char* month = kMonths[tm.tm_mon];
    p[8] = month[0];
    p[9] = month[1];
    p[10] = month[2];
    p[11] = ' ';
    int year = tm.tm_year + 1900;
    p[12] = static_cast<char>('0' + (year / 1000) % 10);
    p[13] = static_cast<char>('0' + (year / 100) % 10);
    p[14] = static_cast<char>('0' + (year / 10) % 10);
    p[15] = static_cast<char>('0' + year % 10);
    p[16] = ' ';
    appendTwoDigits(tm.tm_hour, p + 17);
    p[19] = ':';
    appendTwoDigits(tm.tm_min, p + 20);
    p[22] = ':';
    appendTwoDigits(tm.tm_sec, p + 23);
    p[25] = ' ';
    p[26] = 'G';
    p[27] = 'M';
    p[28] = 'T';
    cache.second = now;
  }
  return std::string_view(cache.text, sizeof(cache.text));
}

}  // namespace sluice::http
