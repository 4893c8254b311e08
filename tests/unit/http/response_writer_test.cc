#include "http/response_writer.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace sluice::http {
namespace {

// Replaces the Date value (always 29 characters) so bytes can be compared.
std::string maskDate(std::string s) {
  size_t pos = s.find("\r\nDate: ");
  if (pos != std::string::npos) s.replace(pos + 8, 29, "<date>");
  return s;
}

TEST(ResponseWriter, HttpDateIsImfFixdate) {
  std::string date(httpDate());
  EXPECT_TRUE(std::regex_match(
      date, std::regex("(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
                       "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                       "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT")))
      << date;
}

TEST(ResponseWriter, SimpleOk) {
  SimpleResponse response;
  response.status = 200;
  response.headers = {{"Content-Type", "text/plain"}};
  response.body = "hello\n";
  std::string out = "previous";  // appended, not replaced
  appendSimpleResponse(response, &out);
  EXPECT_EQ(maskDate(out),
            "previousHTTP/1.1 200 OK\r\n"
            "Server: sluice\r\n"
            "Date: <date>\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 6\r\n"
            "\r\n"
            "hello\n");
}

TEST(ResponseWriter, HeadOnlyKeepsLengthDropsBody) {
  SimpleResponse response;
  response.body = "hello\n";
  response.head_only = true;
  response.keep_alive = false;
  std::string out;
  appendSimpleResponse(response, &out);
  EXPECT_EQ(maskDate(out),
            "HTTP/1.1 200 OK\r\n"
            "Server: sluice\r\n"
            "Date: <date>\r\n"
            "Content-Length: 6\r\n"
            "Connection: close\r\n"
            "\r\n");
}

TEST(ResponseWriter, NoContentHasNoLengthNorBody) {
  for (int status : {100, 204, 304}) {
    SimpleResponse response;
    response.status = status;
    response.body = "ignored";
    std::string out;
    appendSimpleResponse(response, &out);
    EXPECT_EQ(maskDate(out), "HTTP/1.1 " + std::to_string(status) + " " +
                                 std::string(reasonPhrase(status)) +
                                 "\r\n"
                                 "Server: sluice\r\n"
                                 "Date: <date>\r\n"
                                 "\r\n");
  }
}

TEST(ResponseWriter, ErrorResponse) {
  std::string out;
  appendErrorResponse(400, false, false, &out);
  EXPECT_EQ(maskDate(out),
            "HTTP/1.1 400 Bad Request\r\n"
            "Server: sluice\r\n"
            "Date: <date>\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 16\r\n"
            "Connection: close\r\n"
            "\r\n"
            "400 Bad Request\n");
}

TEST(ResponseWriter, ErrorResponseHeadKeepAlive) {
  std::string out;
  appendErrorResponse(503, true, true, &out);
  EXPECT_EQ(maskDate(out),
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Server: sluice\r\n"
            "Date: <date>\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 24\r\n"
            "\r\n");
}

TEST(ResponseWriter, HeadersThatWouldSplitTheResponseAreSkipped) {
  SimpleResponse response;
  response.headers = {{"X-Ok", "1"}, {"X-Bad", "a\r\nSet-Cookie: x"}, {"X\nBad", "2"}};
  std::string out;
  appendSimpleResponse(response, &out);
  EXPECT_NE(out.find("X-Ok: 1\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Bad"), std::string::npos);
  EXPECT_EQ(out.find("Set-Cookie"), std::string::npos);
}

TEST(ResponseWriter, ReasonPhrases) {
  const int listed[] = {100, 101, 103, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303,
                        304, 305, 306, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
                        409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 425, 426,
                        428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 511};
  for (int status : listed)
    EXPECT_NE(reasonPhrase(status), "Unknown") << status;
  EXPECT_EQ(reasonPhrase(200), "OK");
  EXPECT_EQ(reasonPhrase(413), "Content Too Large");
  EXPECT_EQ(reasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reasonPhrase(599), "Unknown");
  EXPECT_EQ(reasonPhrase(0), "Unknown");
}

}  // namespace
}  // namespace sluice::http
