#include "http/client_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::http {
namespace {

class Events final : public ClientCodec::Callbacks {
 public:
  void onInterimHead(const ResponseHead& h) override {
    log.push_back("interim " + std::to_string(h.status));
  }
  void onResponseHead(const ResponseHead& h) override {
    log.push_back("head " + std::to_string(h.status));
  }
  void onResponseBody(std::string_view piece) override {
    if (!log.empty() && log.back().starts_with("body ")) {
      log.back().append(piece);
    } else {
      log.push_back("body " + std::string(piece));
    }
  }
  void onResponseComplete() override { log.push_back("complete"); }
  void onResponseError(std::string_view) override { log.push_back("error"); }
  std::vector<std::string> log;
};

// Decodes the responses to `methods` (one request each) from `bytes` cut at
// `cut` (0 = whole), then an EOF.
std::vector<std::string> decode(const std::vector<std::string>& methods, const std::string& bytes,
                                size_t cut) {
  ClientCodec codec;
  Events events;
  codec.setCallbacks(&events);
  Buffer input;
  size_t next_request = 0;
  auto start = [&] {
    Buffer unused;
    codec.endRequestHead(methods[next_request++], BodyFraming::kNone, 0, unused);
  };
  start();
  auto feed = [&](std::string_view piece) {
    input.append(piece);
    for (;;) {
      codec.decode(input);
      if (!codec.responseComplete() || next_request >= methods.size()) break;
      start();
    }
  };
  if (cut == 0) {
    feed(bytes);
  } else {
    feed(std::string_view(bytes).substr(0, cut));
    feed(std::string_view(bytes).substr(cut));
  }
  codec.finish();
  return events.log;
}

const std::string kResponses =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"  // to HEAD: no body
    "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 200 OK\r\n\r\nuntil the close";

TEST(ClientCodec, EventsDoNotDependOnHowBytesAreSplit) {
  const std::vector<std::string> methods = {"POST", "GET", "HEAD", "GET", "GET"};
  const std::vector<std::string> expected = {"interim 100",
                                             "head 200",
                                             "body abc",
                                             "complete",
                                             "head 200",
                                             "body def",
                                             "complete",
                                             "head 200",
                                             "complete",
                                             "head 204",
                                             "complete",
                                             "head 200",
                                             "body until the close",
                                             "complete"};
  EXPECT_EQ(decode(methods, kResponses, 0), expected);
  for (size_t cut = 1; cut < kResponses.size(); ++cut)
    EXPECT_EQ(decode(methods, kResponses, cut), expected) << "split at " << cut;
}

TEST(ClientCodec, TruncatedResponseAtEofIsAnError) {
  EXPECT_EQ(decode({"GET"}, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0),
            (std::vector<std::string>{"head 200", "body ab", "error"}));
  EXPECT_EQ(decode({"GET"}, "HTTP/1.1 200 O", 0), (std::vector<std::string>{"error"}));
}

TEST(ClientCodec, BytesAfterAResponseAreNotTakenForTheNext) {
  ClientCodec codec;
  Events events;
  codec.setCallbacks(&events);
  Buffer unused;
  codec.endRequestHead("GET", BodyFraming::kNone, 0, unused);
  Buffer input;
  input.append("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA");
  codec.decode(input);
  EXPECT_EQ(events.log.back(), "complete");
  EXPECT_EQ(input.view(), "EXTRA");  // left for the caller to judge
}

TEST(ClientCodec, RequestFramingIsSluicesOwn) {
  ClientCodec codec;
  Buffer out;
  out.append("POST /x HTTP/1.1\r\nHost: h\r\n");
  codec.endRequestHead("POST", BodyFraming::kChunked, 0, out);
  codec.encodeBody("abc", out);
  codec.encodeBody("", out);  // an empty piece must not end the body
  codec.encodeEnd(out);
  EXPECT_EQ(out.view(),
            "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(codec.requestEnded());

  Buffer fixed;
  codec.endRequestHead("PUT", BodyFraming::kContentLength, 4, fixed);
  codec.encodeBody("data", fixed);
  codec.encodeEnd(fixed);
  EXPECT_EQ(fixed.view(), "Content-Length: 4\r\n\r\ndata");
}

TEST(ClientCodec, ContinuedRequestFramesTheRestLikeTheFirstCodec) {
  ClientCodec codec;
  codec.continueRequest("POST", BodyFraming::kChunked, /*ended=*/false);
  EXPECT_FALSE(codec.requestEnded());
  Buffer out;
  codec.encodeBody("xy", out);
  codec.encodeEnd(out);
  EXPECT_EQ(out.view(), "2\r\nxy\r\n0\r\n\r\n");
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

class TunnelEvents final : public ClientCodec::Callbacks {
 public:
  void onResponseHead(const ResponseHead& h) override {
    log.push_back("head " + std::to_string(h.status));
  }
  void onResponseBody(std::string_view) override { log.push_back("body"); }
  void onResponseComplete() override { log.push_back("complete"); }
  void onResponseError(std::string_view reason) override {
    log.push_back("error " + std::string(reason));
  }
  void onTunnelData(std::string_view bytes) override {
    log.push_back("tunnel " + std::string(bytes));
  }
  std::vector<std::string> log;
};

TEST(ClientCodecUpgrade, A101ToAnUpgradeRequestEndsTheResponseAndTheRestIsTunnel) {
  ClientCodec codec;
  TunnelEvents events;
  codec.setCallbacks(&events);
  Buffer unused;
  codec.endRequestHead("GET", BodyFraming::kNone, 0, unused, /*upgrade=*/true);
  Buffer input;
  input.append(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "\x81\x02hi");
  codec.decode(input);
  EXPECT_EQ(events.log, (std::vector<std::string>{"head 101", "complete"}));
  EXPECT_EQ(input.view(), "\x81\x02hi");  // the new protocol's bytes, untouched
  codec.enterTunnel();
  codec.decode(input);
  EXPECT_EQ(events.log.back(), "tunnel \x81\x02hi");
}

TEST(ClientCodecUpgrade, A101NobodyAskedForIsAnError) {
  ClientCodec codec;
  TunnelEvents events;
  codec.setCallbacks(&events);
  Buffer unused;
  codec.endRequestHead("GET", BodyFraming::kNone, 0, unused);
  Buffer input;
  input.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  codec.decode(input);
  ASSERT_EQ(events.log.size(), 1u);
  EXPECT_TRUE(events.log[0].starts_with("error 101 Switching Protocols")) << events.log[0];
}

TEST(ClientCodecUpgrade, AnOrdinaryAnswerToAnUpgradeRequestIsAnOrdinaryResponse) {
  ClientCodec codec;
  TunnelEvents events;
  codec.setCallbacks(&events);
  Buffer unused;
  codec.endRequestHead("GET", BodyFraming::kNone, 0, unused, /*upgrade=*/true);
  Buffer input;
  input.append("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
  codec.decode(input);
  EXPECT_EQ(events.log, (std::vector<std::string>{"head 403", "body", "complete"}));
}

}  // namespace
}  // namespace sluice::http
