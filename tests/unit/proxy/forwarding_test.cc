#include "proxy/forwarding.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::proxy {
namespace {

http::Header header(std::string name, std::string value) {
  return http::Header{std::move(name), std::move(value)};
}

// The header lines of a serialized head (without the first line and the
// blank line), e.g. "Host: a".
std::vector<std::string> headerLines(const std::string& head) {
  std::vector<std::string> lines;
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = head.find("\r\n", pos + 2);
    if (next == std::string::npos || next == pos + 2) break;
    lines.push_back(head.substr(pos + 2, next - pos - 2));
    pos = next;
  }
  return lines;
}

// Values of every header line named `name` (case-insensitive).
std::vector<std::string> valuesOf(const std::string& head, std::string_view name) {
  std::vector<std::string> values;
  for (const std::string& line : headerLines(head)) {
    size_t colon = line.find(':');
    if (colon != std::string::npos && http::equalsIgnoreCase(line.substr(0, colon), name)) {
      values.push_back(line.substr(colon + 2));
    }
  }
  return values;
}

TEST(IsHopByHop, FixedNamesAndConnectionTokens) {
  EXPECT_TRUE(isHopByHop("Keep-Alive", ""));
  EXPECT_TRUE(isHopByHop("TRANSFER-ENCODING", ""));
  EXPECT_FALSE(isHopByHop("X-A", ""));
  // Connection lists names with OWS (SP or HTAB) around the commas.
  EXPECT_TRUE(isHopByHop("x-a", "close,\tX-A"));
  EXPECT_TRUE(isHopByHop("X-B", " x-b \t, close"));
  EXPECT_FALSE(isHopByHop("X-A", "close, X-AB"));
  EXPECT_FALSE(isHopByHop("X-A", ",,"));
}

TEST(ConnectionTokens, JoinsEveryConnectionHeader) {
  std::vector<http::Header> headers = {header("Connection", "close"), header("X", "y"),
                                       header("connection", "X-A")};
  EXPECT_EQ(connectionTokens(headers), "close,X-A");
}

http::RequestHead getRequest(std::string target, std::vector<http::Header> headers) {
  http::RequestHead head;
  head.method = "GET";
  head.target = std::move(target);
  head.headers = std::move(headers);
  if (const http::Header* host = head.find("host")) head.host = host->value;
  return head;
}

TEST(AppendUpstreamRequestHead, HopByHopHeadersAreNotForwarded) {
  http::RequestHead head = getRequest(
      "/p", {header("Host", "a"), header("Connection", "X-Secret"), header("X-Secret", "1"),
             header("Keep-Alive", "timeout=5"), header("X-Kept", "2")});
  std::string out;
  appendUpstreamRequestHead(head, ForwardedFor{}, &out);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /p HTTP/1.1");
  EXPECT_TRUE(valuesOf(out, "X-Secret").empty()) << out;
  EXPECT_TRUE(valuesOf(out, "Keep-Alive").empty()) << out;
  EXPECT_TRUE(valuesOf(out, "Connection").empty()) << out;
  EXPECT_EQ(valuesOf(out, "X-Kept"), std::vector<std::string>{"2"});
  EXPECT_EQ(valuesOf(out, "Host"), std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace sluice::proxy
