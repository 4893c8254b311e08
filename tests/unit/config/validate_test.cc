#include "config/validate.h"

#include <string>

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

std::string hostOk(const std::string& text) {
  std::string out;
  std::string error;
  EXPECT_TRUE(normalizeHostPattern(text, &out, &error)) << text << ": " << error;
  return out;
}

std::string hostError(const std::string& text) {
  std::string out;
  std::string error;
  EXPECT_FALSE(normalizeHostPattern(text, &out, &error)) << text << " accepted as " << out;
  return error;
}

TEST(HostPatternTest, LowerCasesNamesAndWildcards) {
  EXPECT_EQ(hostOk("API.Example.COM"), "api.example.com");
  EXPECT_EQ(hostOk("*.Example.com"), "*.example.com");
  EXPECT_EQ(hostOk("localhost"), "localhost");
  EXPECT_EQ(hostOk("my_service-1.internal"), "my_service-1.internal");
  EXPECT_EQ(hostOk("127.0.0.1"), "127.0.0.1");
  // IPv6 literals lose their brackets, as Host headers do in the router.
  EXPECT_EQ(hostOk("[::1]"), "::1");
  EXPECT_EQ(hostOk("::1"), "::1");
  EXPECT_EQ(hostOk("[2001:DB8::1]"), "2001:db8::1");
}

TEST(HostPatternTest, RejectsOtherWildcardsPortsAndJunk) {
  EXPECT_EQ(hostError("*"), "\"*\" is not needed: omit host to match any host");
  EXPECT_EQ(hostError("a.*.com"),
            "\"a.*.com\" is not a valid host pattern: it may use * only as a leading \"*.\" (e.g. "
            "*.example.com)");
  hostError("*example.com");
  hostError("*.");
  hostError("**.example.com");
  EXPECT_EQ(hostError("example.com:8080"),
            "\"example.com:8080\" is not a valid host pattern: it must not include a port (the "
            "port of the Host header is ignored)");
  EXPECT_EQ(hostError("example.com."),
            "\"example.com.\" is not a valid host pattern: it ends with a dot (remove it)");
  hostError("a..b");
  hostError(".example.com");
  hostError("exa mple.com");
  hostError("[::1]:80");
  hostError("[nope]");
  hostError("");
  hostError(std::string(64, 'a') + ".com");
  hostOk(std::string(63, 'a') + ".com");
  std::string long_name;
  while (long_name.size() < 254)
    long_name += "abcdefghi.";
  long_name.resize(254);
  hostError(long_name);
}

TEST(PathPrefixTest, MustStartWithSlash) {
  std::string error;
  EXPECT_TRUE(validPathPrefix("/", &error));
  EXPECT_TRUE(validPathPrefix("/v1/", &error));
  EXPECT_TRUE(validPathPrefix("/a%20b", &error));
  EXPECT_FALSE(validPathPrefix("v1/", &error));
  EXPECT_EQ(error, "\"v1/\" must start with / (omit path_prefix to match any path)");
  EXPECT_FALSE(validPathPrefix("", &error));
  EXPECT_FALSE(validPathPrefix("/a b", &error));
  EXPECT_FALSE(validPathPrefix("/a\tb", &error));
}

TEST(HeaderTest, NamesAreTokens) {
  std::string error;
  EXPECT_TRUE(validHeaderName("Content-Type", &error));
  EXPECT_TRUE(validHeaderName("x-a!#$%&'*+.^_`|~1", &error));
  EXPECT_FALSE(validHeaderName("", &error));
  EXPECT_FALSE(validHeaderName("x y", &error));
  EXPECT_FALSE(validHeaderName("x:y", &error));
  EXPECT_FALSE(validHeaderName("x(y)", &error));
  EXPECT_FALSE(validHeaderName("caf\xc3\xa9", &error));
}

TEST(HeaderTest, ValuesHaveNoCrLfNul) {
  std::string error;
  EXPECT_TRUE(validHeaderValue("text/plain; charset=utf-8", &error));
  EXPECT_TRUE(validHeaderValue("", &error));
  EXPECT_FALSE(validHeaderValue("a\r\nx-evil: 1", &error));
  EXPECT_EQ(error, "header value must not contain CR, LF or NUL");
  EXPECT_FALSE(validHeaderValue("a\nb", &error));
  EXPECT_FALSE(validHeaderValue(std::string("a\0b", 3), &error));
}

TEST(NameTest, UpstreamAndListenerNames) {
  std::string error;
  EXPECT_TRUE(validUpstreamName("app-v2.blue_1", &error));
  EXPECT_FALSE(validUpstreamName("my app", &error));
  EXPECT_FALSE(validUpstreamName("", &error));
  EXPECT_FALSE(validUpstreamName("a/b", &error));
  EXPECT_TRUE(validListenerName("web"));
  EXPECT_TRUE(validListenerName("[::1]:8080"));
  EXPECT_TRUE(validListenerName("unix:/run/sluice.sock"));
  EXPECT_FALSE(validListenerName("my web"));
  EXPECT_FALSE(validListenerName(""));
}

}  // namespace
}  // namespace sluice::config
