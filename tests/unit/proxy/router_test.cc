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

TEST(ResolveRequestPath, MatchesNormalizedForwardsNormalizedByDefault) {
  config::PathSettings paths;
  RequestPath p = resolveRequestPath("/x/..//admin/./a?q=/../", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.match_path, "/admin/a");
  EXPECT_EQ(p.upstream_target, "/admin/a?q=/../");
  p = resolveRequestPath("http://Host:81//%61dmin?z", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.match_path, "/admin");
  EXPECT_EQ(p.upstream_target, "/admin?z");
  p = resolveRequestPath("http://host", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.match_path, "/");
  EXPECT_EQ(p.upstream_target, "/");
  p = resolveRequestPath("*", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.match_path, "*");
  EXPECT_EQ(p.upstream_target, "*");
}

TEST(ResolveRequestPath, Refusals) {
  config::PathSettings paths;
  for (const char* target :
       {"/../a", "/a%2Fb", "/a%5cb", "/a\\b", "/a%00", "/a%2", "http://h/.."}) {
    RequestPath p = resolveRequestPath(target, paths);
    EXPECT_FALSE(p.ok) << target;
    EXPECT_NE(std::string(p.error), "") << target;
  }
  paths.keep_escaped_slashes = true;
  RequestPath kept = resolveRequestPath("/a%2fb/../c", paths);
  ASSERT_TRUE(kept.ok);
  EXPECT_EQ(kept.match_path, "/c");
  kept = resolveRequestPath("/a%2fb", paths);
  ASSERT_TRUE(kept.ok);
  EXPECT_EQ(kept.match_path, "/a%2Fb");
  EXPECT_FALSE(resolveRequestPath("/../a", paths).ok);
}

TEST(ResolveRequestPath, ForwardOriginal) {
  config::PathSettings paths;
  paths.forward_original = true;
  RequestPath p = resolveRequestPath("/x/..//%61dmin?q", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.match_path, "/admin");  // routing still normalizes
  EXPECT_EQ(p.upstream_target, "/x/..//%61dmin?q");
  p = resolveRequestPath("http://h?q", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.upstream_target, "/?q");
  p = resolveRequestPath("https://h", paths);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.upstream_target, "/");
  EXPECT_FALSE(resolveRequestPath("/a%2F", paths).ok);  // refusals do not depend on it
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

namespace sluice::proxy {
namespace {

http::RequestHead requestHead(std::string method, std::string target,
                              std::vector<http::Header> headers = {}) {
  http::RequestHead head;
  head.method = std::move(method);
  head.target = std::move(target);
  head.headers = std::move(headers);
  return head;
}

TEST(RouterConditions, MethodHeaderAndQuery) {
  std::vector<config::Route> routes(5);
  routes[0].match.methods = {"POST", "PUT"};
  routes[0].upstream = "writes";
  routes[1].match.headers = {{"x-canary", "1"}};
  routes[1].upstream = "canary";
  routes[2].match.headers = {{"authorization", std::nullopt}};
  routes[2].upstream = "authed";
  routes[3].match.query = {{"v", "2"}, {"debug", std::nullopt}};
  routes[3].upstream = "v2debug";
  routes[4].upstream = "default";
  Router router(routes);
  auto pick = [&](const http::RequestHead& head) {
    return router.match("h", "/", &head)->upstream;
  };
  EXPECT_EQ(pick(requestHead("POST", "/")), "writes");
  EXPECT_EQ(pick(requestHead("post", "/")), "default");  // methods are case-sensitive
  EXPECT_EQ(pick(requestHead("GET", "/", {{"X-Canary", "1"}})), "canary");
  EXPECT_EQ(pick(requestHead("GET", "/", {{"X-Canary", "2"}})), "default");
  EXPECT_EQ(pick(requestHead("GET", "/", {{"Authorization", ""}})), "authed");  // present
  EXPECT_EQ(pick(requestHead("GET", "/x?v=2&debug")), "v2debug");
  EXPECT_EQ(pick(requestHead("GET", "/x?debug=&v=%32")), "v2debug");  // decoded
  EXPECT_EQ(pick(requestHead("GET", "/x?v=2")), "default");
  // Without a head, conditional routes never match.
  EXPECT_EQ(router.match("h", "/")->upstream, "default");
}

TEST(QueryParameter, FormDecodingAndFirstOccurrence) {
  std::string value;
  EXPECT_TRUE(queryParameter("/p?a=1&b=x+y%21&a=2", "a", &value));
  EXPECT_EQ(value, "1");
  EXPECT_TRUE(queryParameter("/p?a=1&b=x+y%21", "b", &value));
  EXPECT_EQ(value, "x y!");
  EXPECT_TRUE(queryParameter("/p?flag", "flag", &value));
  EXPECT_EQ(value, "");
  EXPECT_FALSE(queryParameter("/p?a=1", "b", &value));
  EXPECT_FALSE(queryParameter("/p", "a", &value));
  EXPECT_TRUE(queryParameter("/p?%61=bad%zz", "a", &value));
  EXPECT_EQ(value, "bad%zz");  // a broken escape stays as written
}

TEST(RewriteTarget, StripAndRewritePrefixKeepTheQuery) {
  config::Route strip;
  strip.strip_prefix = "/api";
  EXPECT_EQ(rewriteTarget(strip, "/api/users?id=1"), "/users?id=1");
  EXPECT_EQ(rewriteTarget(strip, "/api"), "/");
  EXPECT_EQ(rewriteTarget(strip, "/apix"), "/x");  // a string prefix, as configured
  EXPECT_EQ(rewriteTarget(strip, "/other"), "/other");
  config::Route rewrite;
  rewrite.match.path_prefix = "/v1/";
  rewrite.rewrite_prefix = "/internal/v1/";
  EXPECT_EQ(rewriteTarget(rewrite, "/v1/users?x"), "/internal/v1/users?x");
  rewrite.rewrite_prefix = "/";
  EXPECT_EQ(rewriteTarget(rewrite, "/v1/users"), "/users");
}

}  // namespace
}  // namespace sluice::proxy
