#include "proxy/redirect_handler.h"

#include <gtest/gtest.h>

namespace sluice::proxy {
namespace {

TEST(RedirectLocation, KeepsPathAndQueryAndDropsThePlainPort) {
  config::Redirect to_https;
  to_https.scheme = "https";
  EXPECT_EQ(redirectLocation(to_https, "http", "example.com:8080", "/a/b?x=1"),
            "https://example.com/a/b?x=1");
  EXPECT_EQ(redirectLocation(to_https, "http", "[::1]:8080", "/"), "https://[::1]/");
  EXPECT_EQ(redirectLocation(to_https, "http", "example.com", ""), "https://example.com/");
  config::Redirect elsewhere;
  elsewhere.host = "www.example.com";
  elsewhere.port = 8443;
  EXPECT_EQ(redirectLocation(elsewhere, "https", "example.com", "/p"),
            "https://www.example.com:8443/p");
}

}  // namespace
}  // namespace sluice::proxy
