#include "http/server_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::http {
namespace {

// Events as text; adjacent body pieces are merged, since how a body is cut
// into pieces depends on how the bytes arrived and is not an event.
class Events final : public ServerCodec::Callbacks {
 public:
  explicit Events(ServerCodec& codec) : codec_(codec) {}
  void onRequestHead() override {
    const RequestHead& h = codec_.head();
    push("head " + h.method + " " + h.target + " keep-alive=" + (h.keep_alive ? "1" : "0"));
  }
  void onRequestBody(std::string_view piece) override {
    if (!log.empty() && log.back().starts_with("body ")) {
      log.back().append(piece);
    } else {
      push("body " + std::string(piece));
    }
  }
  void onRequestComplete() override { push("complete"); }
  void onRequestError(int status, std::string_view) override {
    push("error " + std::to_string(status));
  }
  void onTunnelData(std::string_view bytes) override { push("tunnel " + std::string(bytes)); }
  std::vector<std::string> log;

 private:
  void push(std::string s) { log.push_back(std::move(s)); }
  ServerCodec& codec_;
};

// Feeds `bytes` in pieces cut at `cuts`, resuming after each request as the
// connection does once its response is done.
std::vector<std::string> decodeWithCuts(const std::string& bytes, const std::vector<size_t>& cuts) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(bytes.size());
  for (size_t end : ends) {
    input.append(bytes.data() + from, end - from);
    from = end;
    for (;;) {
      codec.decode(input);
      if (codec.failed() || !codec.paused() || !codec.requestComplete()) break;
      codec.reset();  // the response went out: next request
    }
  }
  return events.log;
}

const std::string kPipeline =
    "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    "POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
    "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";

TEST(ServerCodec, EventsDoNotDependOnHowBytesAreSplit) {
  const std::vector<std::string> whole = decodeWithCuts(kPipeline, {});
  const std::vector<std::string> expected = {
      "head POST /up keep-alive=1",      "body hello", "complete",
      "head POST /chunked keep-alive=1", "body abcde", "complete",
      "head GET /last keep-alive=0",     "complete"};
  EXPECT_EQ(whole, expected);
  for (size_t cut = 1; cut < kPipeline.size(); ++cut) {
    EXPECT_EQ(decodeWithCuts(kPipeline, {cut}), expected) << "split at " << cut;
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < kPipeline.size(); ++i)
    every_byte.push_back(i);
  EXPECT_EQ(decodeWithCuts(kPipeline, every_byte), expected);
}

TEST(ServerCodec, PausesAfterEachRequestSoResponsesStayInOrder) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  input.append("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  codec.decode(input);
  EXPECT_EQ(events.log, (std::vector<std::string>{"head GET /1 keep-alive=1", "complete"}));
  EXPECT_TRUE(codec.paused());
  EXPECT_FALSE(input.empty());  // the second request waits, unparsed
  codec.reset();
  codec.decode(input);
  EXPECT_EQ(events.log.size(), 4u);
}

TEST(ServerCodec, ErrorIsReportedWithItsStatus) {
  EXPECT_EQ(decodeWithCuts("GET / HTTP/1.1\r\n\r\n", {}), (std::vector<std::string>{"error 400"}));
  EXPECT_EQ(
      decodeWithCuts("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", {}),
      (std::vector<std::string>{"error 501"}));
}

TEST(ServerCodec, TruncatedRequestAtEofIsAnError) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  input.append("GET / HTTP/1.1\r\nHo");
  codec.decode(input);
  codec.finish();
  EXPECT_EQ(events.log, (std::vector<std::string>{"error 400"}));
}

// Response encoding for the request in `request`.
std::string respond(const std::string& request, int status, BodySize body, bool keep_alive,
                    const std::string& body_bytes = "", bool* kept = nullptr) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  input.append(request);
  codec.decode(input);
  Buffer out;
  codec.beginHead(status, "R", out);
  out.append("X: y\r\n");
  codec.endHead(status, body, keep_alive, out);
  codec.encodeBody(body_bytes, out);
  codec.encodeEnd(out);
  if (kept) *kept = codec.keepAlive();
  return std::string(out.view());
}

const std::string kGet11 = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kGet10KeepAlive = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

TEST(ServerCodec, FramingFollowsTheRequestAndTheBody) {
  EXPECT_EQ(respond(kGet11, 200, BodySize::known(2), true, "ok"),
            "HTTP/1.1 200 R\r\nX: y\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(respond(kGet11, 200, BodySize::unknown(), true, "abc"),
            "HTTP/1.1 200 R\r\nX: y\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(respond(kGet11, 200, BodySize::known(2), false, "ok"),
            "HTTP/1.1 200 R\r\nX: y\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

TEST(ServerCodec, Http10KeepAliveIsAnsweredWithKeepAlive) {
  // Without it an HTTP/1.0 client (ApacheBench -k) waits for the close.
  bool kept = false;
  EXPECT_EQ(respond(kGet10KeepAlive, 200, BodySize::known(2), true, "ok", &kept),
            "HTTP/1.1 200 R\r\nX: y\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
  EXPECT_TRUE(kept);
  // A body of unknown length cannot be chunked to HTTP/1.0: the close ends it.
  EXPECT_EQ(respond(kGet10KeepAlive, 200, BodySize::unknown(), true, "abc", &kept),
            "HTTP/1.1 200 R\r\nX: y\r\nConnection: close\r\n\r\nabc");
  EXPECT_FALSE(kept);
}

TEST(ServerCodec, BodilessResponsesStateALengthOnlyWhereAllowed) {
  const std::string head = "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n";
  // HEAD: the length a GET would get, and no body.
  EXPECT_EQ(respond(head, 200, BodySize::known(5), true, "hello"),
            "HTTP/1.1 200 R\r\nX: y\r\nContent-Length: 5\r\n\r\n");
  // 304: the entity's length may be stated.
  EXPECT_EQ(respond(kGet11, 304, BodySize::noneButLength(7), true),
            "HTTP/1.1 304 R\r\nX: y\r\nContent-Length: 7\r\n\r\n");
  // 204 and 1xx: RFC 9110 §8.6 forbids Content-Length.
  EXPECT_EQ(respond(kGet11, 204, BodySize::noneButLength(7), true),
            "HTTP/1.1 204 R\r\nX: y\r\n\r\n");
  EXPECT_EQ(respond(kGet11, 204, BodySize::known(7), true, "ignored"),
            "HTTP/1.1 204 R\r\nX: y\r\n\r\n");
}

TEST(ServerCodec, LocalResponseBeforeAHeadParsedIsHttp11AndCloses) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  input.append("BAD REQUEST\r\n\r\n");
  codec.decode(input);
  ASSERT_TRUE(codec.failed());
  Buffer out;
  EXPECT_FALSE(codec.encodeLocalResponse(400, "400 Bad Request\n", {}, false, out));
  const std::string text(out.view());
  EXPECT_TRUE(text.starts_with("HTTP/1.1 400 Bad Request\r\nServer: sluice\r\n")) << text;
  EXPECT_NE(text.find("Content-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n"),
            std::string::npos)
      << text;
}

TEST(ServerCodec, TunnelPassesBytesUnchanged) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  codec.enterTunnel();
  Buffer input;
  input.append("\x81\x05hello GET / HTTP/1.1\r\n");
  codec.decode(input);
  EXPECT_EQ(events.log, (std::vector<std::string>{"tunnel \x81\x05hello GET / HTTP/1.1\r\n"}));
  EXPECT_TRUE(input.empty());
}

TEST(ServerCodec, ReusedForAnotherConnectionForgetsTheLastOne) {
  ServerCodec codec(ParserLimits{});
  Events events(codec);
  codec.setCallbacks(&events);
  Buffer input;
  input.append("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  codec.decode(input);
  ASSERT_TRUE(codec.reusable());
  // After `Connection: close` llhttp refuses more bytes on that connection;
  // a new connection must start clean.
  codec.resetForNewConnection();
  input.append("GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
  codec.decode(input);
  EXPECT_EQ(events.log.back(), "complete");
  EXPECT_FALSE(codec.failed());
}

}  // namespace
}  // namespace sluice::http
