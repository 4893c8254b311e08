// Access log lines: nginx's combined format byte for byte, the JSON line
// with every field of the request record, and templates of named fields.
#include "observe/access_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace sluice::observe {
namespace {

// 2026-12-04T03:40:05Z, plus 123 ms.
std::chrono::system_clock::time_point fixedTime() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1796355605)) +
         std::chrono::milliseconds(123);
}

RequestRecord proxiedRecord() {
  RequestRecord r;
  r.listener = "web";
  r.client_ip = "192.0.2.7";
  r.client_port = 51234;
  r.request_id = "4f3c2a";
  r.method = "POST";
  r.target = "/api/items?x=1";
  r.host = "shop.test";
  r.referer = "https://shop.test/";
  r.user_agent = "curl/7.88.1";
  r.route_index = 2;
  r.upstream = "api";
  r.server = "10.0.0.5:8080";
  r.attempts = 2;
  r.status = 201;
  r.upstream_status = 201;
  r.bytes_received = 310;
  r.bytes_sent = 250;
  r.body_bytes_sent = 42;
  r.outcome = RequestOutcome::kOk;
  r.started = fixedTime();
  r.duration = std::chrono::microseconds(12345);
  r.upstream_connect = std::chrono::microseconds(800);
  r.upstream_first_byte = std::chrono::microseconds(9001);
  return r;
}

std::string render(const std::string& format, const RequestRecord& record) {
  AccessFormat parsed;
  std::string error;
  EXPECT_TRUE(AccessFormat::parse(format, &parsed, &error)) << error;
  std::string line;
  parsed.append(record, &line);
  return line;
}

class AccessFormatTest : public ::testing::Test {
 protected:
  // Local times depend on TZ: pin it to UTC for exact lines.
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    saved_tz_ = tz != nullptr ? std::optional<std::string>(tz) : std::nullopt;
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  void TearDown() override {
    if (saved_tz_) {
      ::setenv("TZ", saved_tz_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  std::optional<std::string> saved_tz_;
};

TEST_F(AccessFormatTest, CombinedIsNginxsCombinedFormat) {
  EXPECT_EQ(render("combined", proxiedRecord()),
            "192.0.2.7 - - [04/Dec/2026:03:40:05 +0000] \"POST /api/items?x=1 HTTP/1.1\" 201 42 "
            "\"https://shop.test/\" \"curl/7.88.1\"\n");
}

TEST_F(AccessFormatTest, CombinedWritesDashesForWhatIsMissingAndEscapesQuotes) {
  RequestRecord r;
  r.client_ip = "127.0.0.1";
  r.status = 400;
  r.body_bytes_sent = 16;
  r.started = fixedTime();
  EXPECT_EQ(render("combined", r),
            "127.0.0.1 - - [04/Dec/2026:03:40:05 +0000] \"-\" 400 16 \"-\" \"-\"\n");
  r.method = "GET";
  r.target = "/a\"b";
  r.user_agent = "x\x01\xff";
  EXPECT_EQ(render("combined", r),
            "127.0.0.1 - - [04/Dec/2026:03:40:05 +0000] \"GET /a\\x22b HTTP/1.1\" 400 16 \"-\" "
            "\"x\\x01\\xFF\"\n");
}

TEST_F(AccessFormatTest, JsonCarriesEveryFieldOfTheRecord) {
  EXPECT_EQ(render("json", proxiedRecord()),
            "{\"time\":\"2026-12-04T03:40:05Z\",\"request_id\":\"4f3c2a\",\"client\":\"192.0.2.7\","
            "\"client_port\":51234,\"listener\":\"web\",\"method\":\"POST\",\"target\":\"/api/"
            "items?x=1\",\"protocol\":\"HTTP/1.1\",\"host\":\"shop.test\",\"status\":201,"
            "\"body_bytes\":42,\"bytes_received\":310,\"bytes_sent\":250,\"duration_ms\":12.345,"
            "\"referer\":\"https://shop.test/\",\"user_agent\":\"curl/7.88.1\",\"route\":2,"
            "\"upstream\":\"api\",\"server\":\"10.0.0.5:8080\",\"upstream_status\":201,"
            "\"upstream_connect_ms\":0.800,\"upstream_first_byte_ms\":9.001,\"attempts\":2,"
            "\"outcome\":\"ok\"}\n");
}

TEST_F(AccessFormatTest, JsonWritesNullForWhatDidNotHappenAndTlsOnlyOnTls) {
  RequestRecord r;
  r.client_ip = "::1";
  r.target = "\"\\\n";
  r.status = 404;
  r.started = fixedTime();
  const std::string line = render("json", r);
  EXPECT_NE(line.find("\"target\":\"\\\"\\\\\\u000a\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"route\":null"), std::string::npos) << line;
  EXPECT_NE(line.find("\"upstream_status\":null,\"upstream_connect_ms\":null,"
                      "\"upstream_first_byte_ms\":null"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("tls_"), std::string::npos) << line;
  r.tls_protocol = "TLSv1.3";
  r.tls_cipher = "TLS_AES_128_GCM_SHA256";
  r.tls_server_name = "a.test";
  EXPECT_NE(render("json", r).find(
                "\"tls_protocol\":\"TLSv1.3\",\"tls_cipher\":\"TLS_AES_128_GCM_SHA256\","
                "\"tls_server_name\":\"a.test\",\"tls_client_subject\":\"\"}"),
            std::string::npos);
}

TEST_F(AccessFormatTest, ATemplateWritesEachNamedField) {
  RequestRecord r = proxiedRecord();
  r.tls_protocol = "TLSv1.2";
  r.tls_cipher = "ECDHE-RSA-AES128-GCM-SHA256";
  r.tls_server_name = "shop.test";
  r.tls_client_subject = "/CN=client";
  EXPECT_EQ(render("$request_id $remote_addr:$remote_port $listener route=$route $upstream "
                   "$upstream_addr $status/$upstream_status in=$request_length out=$bytes_sent "
                   "body=$body_bytes_sent t=$request_time c=$upstream_connect_time "
                   "h=$upstream_header_time n=$upstream_attempts $outcome $host \"$request\" "
                   "$request_method $request_uri $server_protocol $ssl_protocol $ssl_cipher "
                   "$ssl_server_name \"$ssl_client_s_dn\" [$time_local] $time_iso8601 $msec "
                   "\"$http_referer\" \"$http_user_agent\"",
                   r),
            "4f3c2a 192.0.2.7:51234 web route=2 api 10.0.0.5:8080 201/201 in=310 out=250 body=42 "
            "t=0.012 c=0.000 h=0.009 n=2 ok shop.test \"POST /api/items?x=1 HTTP/1.1\" POST "
            "/api/items?x=1 HTTP/1.1 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 shop.test \"/CN=client\" "
            "[04/Dec/2026:03:40:05 +0000] 2026-12-04T03:40:05+00:00 1796355605.123 "
            "\"https://shop.test/\" \"curl/7.88.1\"\n");
}

TEST_F(AccessFormatTest, ATemplateWritesDashesForWhatDidNotHappen) {
  RequestRecord r;
  r.status = 503;
  r.started = fixedTime();
  EXPECT_EQ(render("$upstream_addr $upstream_status $upstream_connect_time "
                   "$upstream_header_time $route $remote_port $ssl_protocol $outcome",
                   r),
            "- - - - - - - ok\n");
}

TEST_F(AccessFormatTest, BracesSeparateAFieldFromTextAfterIt) {
  EXPECT_EQ(render("${upstream}_x ${status}ms", proxiedRecord()), "api_x 201ms\n");
}

TEST_F(AccessFormatTest, UnknownFieldsAndBadTemplatesAreRefusedWithTheKnownNames) {
  AccessFormat format;
  std::string error;
  EXPECT_FALSE(AccessFormat::parse("$remote_addr $upstream_x", &format, &error));
  EXPECT_NE(error.find("unknown field $upstream_x"), std::string::npos) << error;
  EXPECT_NE(error.find("$upstream_connect_time"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(AccessFormat::parse("cost: 5$", &format, &error));
  EXPECT_NE(error.find("expected a field name after $"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(AccessFormat::parse("${status", &format, &error));
  EXPECT_NE(error.find("expected a field name after $"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(AccessFormat::parse("common", &format, &error));
  EXPECT_NE(error.find("expected combined, json or a format with $fields"), std::string::npos)
      << error;
}

TEST_F(AccessFormatTest, TimesFollowTheRequestsSecond) {
  AccessFormat format;
  std::string error;
  ASSERT_TRUE(AccessFormat::parse("[$time_local]", &format, &error)) << error;
  RequestRecord r;
  r.started = fixedTime();
  std::string lines;
  format.append(r, &lines);
  r.started += std::chrono::seconds(61);
  format.append(r, &lines);
  EXPECT_EQ(lines, "[04/Dec/2026:03:40:05 +0000]\n[04/Dec/2026:03:41:06 +0000]\n");
}

}  // namespace
}  // namespace sluice::observe
