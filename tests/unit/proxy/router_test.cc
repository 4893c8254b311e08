#include "proxy/router.h"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

config::Route route(std::string host, std::string prefix, std::string upstream) {
  config::Route r;
  r.match.host = std::move(host);
  r.match.path_prefix = std::move(prefix);
  r.upstream = std::move(upstream);
  return r;
}

TEST(NormalizeHost, LowercasesAndStripsPortAndBrackets) {
  EXPECT_EQ(normalizeHost("Example.COM:8080"), "example.com");
  EXPECT_EQ(normalizeHost("example.com"), "example.com");
  EXPECT_EQ(normalizeHost("example.com."), "example.com");
  EXPECT_EQ(normalizeHost("[::1]:80"), "::1");
  EXPECT_EQ(normalizeHost("[::1]"), "::1");
  EXPECT_EQ(normalizeHost(""), "");
}

TEST(TargetPath, OriginAndAbsoluteForms) {
  std::string_view authority;
  EXPECT_EQ(targetPath("/a/b?x=1", &authority), "/a/b");
  EXPECT_EQ(authority, "");
  EXPECT_EQ(targetPath("http://Host:81/p/q?z", &authority), "/p/q");
  EXPECT_EQ(authority, "Host:81");
  EXPECT_EQ(targetPath("http://host", &authority), "/");
  EXPECT_EQ(authority, "host");
  EXPECT_EQ(targetPath("http://host?q", &authority), "/");
  EXPECT_EQ(targetPath("*", &authority), "*");
}

TEST(Router, FirstMatchWins) {
  std::vector<config::Route> routes = {
      route("api.example.com", "/v1/", "api"),
      route("*.example.com", "", "app"),
      route("", "/healthz", "health"),
      route("", "", "default"),
  };
  Router router(routes);
  EXPECT_EQ(router.match("api.example.com", "/v1/users")->upstream, "api");
  EXPECT_EQ(router.match("api.example.com", "/v2/users")->upstream, "app");
  EXPECT_EQ(router.match("www.example.com", "/healthz")->upstream, "app");
  EXPECT_EQ(router.match("other.org", "/healthz")->upstream, "health");
  EXPECT_EQ(router.match("other.org", "/")->upstream, "default");
}

TEST(Router, NoMatchIsNull) {
  std::vector<config::Route> routes = {route("a.com", "", "a")};
  Router router(routes);
  EXPECT_EQ(router.match("b.com", "/"), nullptr);
}

TEST(Router, WildcardRules) {
  EXPECT_TRUE(Router::hostMatches("*.example.com", "a.example.com"));
  EXPECT_TRUE(Router::hostMatches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(Router::hostMatches("*.example.com", "example.com"));
  EXPECT_FALSE(Router::hostMatches("*.example.com", "badexample.com"));
  EXPECT_TRUE(Router::hostMatches("", "anything"));
  EXPECT_FALSE(Router::hostMatches("a.com", "a.com.evil"));
}

}  // namespace
}  // namespace sluice::proxy
