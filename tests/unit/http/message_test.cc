#include "http/message.h"

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

TEST(Message, EqualsIgnoreCase) {
  EXPECT_TRUE(equalsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(equalsIgnoreCase("", ""));
  EXPECT_FALSE(equalsIgnoreCase("Host", "Hos"));
  EXPECT_FALSE(equalsIgnoreCase("a", "b"));
  // Only ASCII letters fold: no locale tricks.
  EXPECT_FALSE(equalsIgnoreCase("\xc3\xa9", "\xc3\x89"));
}

TEST(Message, Find) {
  RequestHead head;
  head.headers = {{"Host", "a"}, {"X-Dup", "1"}, {"x-dup", "2"}};
  ASSERT_NE(head.find("x-DUP"), nullptr);
  EXPECT_EQ(head.find("x-DUP")->value, "1");
  EXPECT_EQ(head.find("Missing"), nullptr);
  ResponseHead response;
  response.headers = {{"ETag", "\"x\""}};
  ASSERT_NE(response.find("etag"), nullptr);
}

TEST(Message, TrimOws) {
  EXPECT_EQ(trimOws(" \t a b \t "), "a b");
  EXPECT_EQ(trimOws("   "), "");
  EXPECT_EQ(trimOws(""), "");
  EXPECT_EQ(trimOws("\r a"), "\r a");  // only SP and HTAB are OWS
}

TEST(Message, IsToken) {
  EXPECT_TRUE(isToken("chunked"));
  EXPECT_TRUE(isToken("X-Custom_Header.1~!#$%&'*+^`|"));
  EXPECT_FALSE(isToken(""));
  EXPECT_FALSE(isToken("a b"));
  EXPECT_FALSE(isToken("a:b"));
  EXPECT_FALSE(isToken("a\"b"));
  EXPECT_FALSE(isToken("caf\xc3\xa9"));
}

TEST(Message, ListContainsToken) {
  EXPECT_TRUE(listContainsToken("close", "close"));
  EXPECT_TRUE(listContainsToken("keep-alive, Close", "close"));
  EXPECT_TRUE(listContainsToken(" ,, close ,", "close"));
  EXPECT_FALSE(listContainsToken("closed", "close"));
  EXPECT_FALSE(listContainsToken("", "close"));
  EXPECT_FALSE(listContainsToken("clo se", "close"));
}

TEST(Message, FindParameter) {
  std::string v;
  EXPECT_TRUE(findParameter("timeout=5, max=100", "timeout", &v));
  EXPECT_EQ(v, "5");
  EXPECT_TRUE(findParameter("timeout=5, max=100", "MAX", &v));
  EXPECT_EQ(v, "100");
  EXPECT_TRUE(findParameter("charset=utf-8; q=1", "q", &v));  // `;` separates too
  EXPECT_EQ(v, "1");
  EXPECT_TRUE(findParameter(" ,, A=b ,", "a", &v));  // empty elements, OWS
  EXPECT_EQ(v, "b");
  // quoted-string values are unescaped; separators inside them do not count.
  EXPECT_TRUE(findParameter("a=\"x, y=1\", y=2", "y", &v));
  EXPECT_EQ(v, "2");
  EXPECT_TRUE(findParameter("a=\"q\\\"q\\\\\"", "a", &v));
  EXPECT_EQ(v, "q\"q\\");
  EXPECT_TRUE(findParameter("a=\"\"", "a", &v));
  EXPECT_EQ(v, "");
  // Whole names only.
  EXPECT_FALSE(findParameter("xtimeout=5", "timeout", &v));
  EXPECT_FALSE(findParameter("timeout2=5", "timeout", &v));
  // Malformed before the name: not found.
  EXPECT_FALSE(findParameter("timeout =5", "timeout", &v));
  EXPECT_FALSE(findParameter("timeout= 5", "timeout", &v));
  EXPECT_FALSE(findParameter("a, timeout=5", "timeout", &v));
  EXPECT_FALSE(findParameter("a=\"open, timeout=5", "timeout", &v));
  EXPECT_FALSE(findParameter("a=b c, timeout=5", "timeout", &v));
  EXPECT_FALSE(findParameter("", "timeout", &v));
}

TEST(Message, ParseContentLength) {
  uint64_t n = 99;
  EXPECT_TRUE(parseContentLength("0", &n));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(parseContentLength("0012", &n));
  EXPECT_EQ(n, 12u);
  EXPECT_TRUE(parseContentLength("18446744073709551615", &n));
  EXPECT_EQ(n, UINT64_MAX);
  for (const char* bad : {"", "+1", "-1", "1 2", " 1", "1,1", "0x1", "18446744073709551616",
                          "99999999999999999999999", "1a"}) {
    EXPECT_FALSE(parseContentLength(bad, &n)) << bad;
  }
}

TEST(Message, IsValidAuthority) {
  for (const char* good :
       {"a", "example.com", "example.com:80", "127.0.0.1:65535", "[::1]", "[2001:db8::1]:8443",
        "[::ffff:1.2.3.4]", "a-b_c~d.e", "%41bc", "sub!$&'()*+,;=delims"}) {
    EXPECT_TRUE(isValidAuthority(good)) << good;
  }
  for (const char* bad :
       {"",      ":80",       "a:",   "a:65536", "a:123456", "a:8x",       "a b",
        "a/b",   "u@a",       "a\tb", "a\x01",   "[::1",     "[]",         "[::1]x",
        "[::g]", "[1.2.3.4]", "%4",   "%zz",     "a:80:90",  "caf\xc3\xa9"}) {
    EXPECT_FALSE(isValidAuthority(bad)) << bad;
  }
}

TEST(Message, ClassifyTransferEncoding) {
  EXPECT_EQ(classifyTransferEncoding("chunked"), TransferCoding::kChunked);
  EXPECT_EQ(classifyTransferEncoding("CHUNKED"), TransferCoding::kChunked);
  EXPECT_EQ(classifyTransferEncoding(" chunked \t"), TransferCoding::kChunked);
  // RFC 9110 §5.6.1: empty list elements are ignored.
  EXPECT_EQ(classifyTransferEncoding(", chunked"), TransferCoding::kChunked);
  EXPECT_EQ(classifyTransferEncoding("chunked,"), TransferCoding::kChunked);
  EXPECT_EQ(classifyTransferEncoding("gzip, chunked"), TransferCoding::kUnsupported);
  EXPECT_EQ(classifyTransferEncoding("gzip;q=1, chunked"), TransferCoding::kUnsupported);
  for (const char* bad :
       {"", " ", ",", "chunked, gzip", "chunked, chunked", "identity", "gzip", "xchunked",
        "chunked;q=1", "chunked x", "\"chunked\"", "chunked, g zip"}) {
    EXPECT_EQ(classifyTransferEncoding(bad), TransferCoding::kMalformed) << bad;
  }
}

}  // namespace
}  // namespace sluice::http
