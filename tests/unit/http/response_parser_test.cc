#include "http/response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {
namespace {

using Event = ResponseParser::Event;

std::string describe(const ResponseHead& h) {
  std::string s = "HEAD " + std::to_string(h.status) + " " + h.reason + " " +
                  std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
                  " framing=" + std::to_string(static_cast<int>(h.framing)) +
                  " cl=" + std::to_string(h.content_length) + " ka=" + (h.keep_alive ? "1" : "0");
  for (const Header& header : h.headers)
    s += " [" + header.name + ": " + header.value + "]";
  return s;
}

// Like the request driver: feeds pieces ending at `cuts`, re-feeding what was
// not consumed, merging body pieces. `methods` are the requests the responses
// answer, handed to expectResponseTo() before each final response.
// Stops at the first kMessageComplete of a final response when `stop_after_first`.
struct Driven {
  std::vector<std::string> events;
  size_t consumed = 0;
  std::string error;
};

Driven drive(ResponseParser& parser, std::string_view input, const std::vector<size_t>& cuts,
             std::vector<std::string> methods = {}, bool finish = false) {
  Driven d;
  size_t next_method = 0;
  auto expectNext = [&] {
    if (next_method < methods.size()) parser.expectResponseTo(methods[next_method++]);
  };
  expectNext();
  std::string pending;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  size_t prev = 0;
  for (size_t end : ends) {
    pending.append(input.substr(prev, end - prev));
    prev = end;
    for (int guard = 0; guard < 100000; ++guard) {
      ResponseParser::Result r = parser.feed(pending.data(), pending.size());
      EXPECT_LE(r.consumed, pending.size());
      d.consumed += r.consumed;
      if (r.event == Event::kNeedMore) {
        EXPECT_EQ(r.consumed, pending.size());
        pending.clear();
        break;
      }
      switch (r.event) {
        case Event::kHeadComplete:
          d.events.push_back(describe(parser.head()));
          break;
        case Event::kBody: {
          std::string_view body = parser.body();
          EXPECT_FALSE(body.empty());
          EXPECT_GE(body.data(), pending.data());
          EXPECT_LE(body.data() + body.size(), pending.data() + r.consumed);
          if (!d.events.empty() && d.events.back().rfind("BODY ", 0) == 0) {
            d.events.back().append(body);
          } else {
            d.events.push_back("BODY " + std::string(body));
          }
          break;
        }
        case Event::kMessageComplete:
          d.events.push_back("DONE");
          if (parser.head().status >= 200) expectNext();
          break;
        case Event::kError:
          d.events.push_back("ERROR");
          d.error = parser.errorReason();
          return d;
        case Event::kNeedMore:
          break;
      }
      pending.erase(0, r.consumed);
    }
  }
  if (finish) {
    ResponseParser::Result r = parser.finish();
    if (r.event == Event::kMessageComplete) d.events.push_back("DONE");
    if (r.event == Event::kError) {
      d.events.push_back("ERROR");
      d.error = parser.errorReason();
    }
  }
  return d;
}

Driven driveWhole(std::string_view input, std::vector<std::string> methods = {},
                  bool finish = false) {
  ResponseParser parser;
  return drive(parser, input, {}, std::move(methods), finish);
}

TEST(ResponseParser, ContentLengthBody) {
  ResponseParser parser;
  std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";
  ResponseParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  EXPECT_EQ(r.consumed, input.size() - 5);
  const ResponseHead& h = parser.head();
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.framing, BodyFraming::kContentLength);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_NE(h.find("server"), nullptr);
  EXPECT_TRUE(parser.inMessage());
  r = parser.feed(input.data() + r.consumed, 5);
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(parser.body(), "hello");
  r = parser.feed(nullptr, 0);
  EXPECT_EQ(r.event, Event::kMessageComplete);
  EXPECT_FALSE(parser.inMessage());
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
}

// As for requests (request_parser_test.cc): an empty, storage-less input in
// the middle of a body must not move the start of the next piece.
TEST(ResponseParser, AnEmptyNullInputMidBodyKeepsThePiecesExact) {
  ResponseParser parser;
  const std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234";
  ResponseParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  r = parser.feed(input.data() + r.consumed, 5);
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(parser.body(), "01234");
  EXPECT_EQ(parser.feed(nullptr, 0).event, Event::kNeedMore);
  const std::string rest = "56789";
  r = parser.feed(rest.data(), rest.size());
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(parser.body().size(), 5u);
  EXPECT_EQ(parser.body().data(), rest.data());
}

TEST(ResponseParser, Chunked) {
  Driven d = driveWhole(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;e=1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n");
  ASSERT_EQ(d.events.size(), 3u) << d.error;
  EXPECT_NE(d.events[0].find("framing=2"), std::string::npos);
  EXPECT_EQ(d.events[0].find("X-Trailer"), std::string::npos);
  EXPECT_EQ(d.events[1], "BODY hello!");
  EXPECT_EQ(d.events[2], "DONE");
}

TEST(ResponseParser, ChunkedWithTrailingHtab) {
  // llhttp alone would read this body until close (its chunked detection
  // skips only SP), while the head says chunked: both must agree.
  const std::string input =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked \t\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n";
  Driven d = driveWhole(input);
  ASSERT_EQ(d.events.size(), 5u) << d.error;
  EXPECT_NE(d.events[0].find("framing=2"), std::string::npos);
  EXPECT_EQ(d.events[1], "BODY hello");
  EXPECT_EQ(d.events[2], "DONE");
  EXPECT_EQ(d.events[3].rfind("HEAD 204", 0), 0u);
  EXPECT_EQ(d.consumed, input.size());
}

TEST(ResponseParser, UntilCloseCompletedByFinish) {
  ResponseParser parser;
  Driven d = drive(parser, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body", {});
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_NE(d.events[0].find("framing=3"), std::string::npos);
  EXPECT_NE(d.events[0].find("ka=0"), std::string::npos);  // the close ends it
  EXPECT_EQ(d.events[1], "BODY some body");
  EXPECT_TRUE(parser.inMessage());
  EXPECT_EQ(parser.finish().event, Event::kMessageComplete);
  EXPECT_FALSE(parser.inMessage());
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
}

TEST(ResponseParser, Http10WithoutLengthIsUntilClose) {
  Driven d = driveWhole("HTTP/1.0 200 OK\r\n\r\nabc", {}, true);
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_NE(d.events[0].find("1.0 framing=3"), std::string::npos);
  EXPECT_EQ(d.events[2], "DONE");
}

TEST(ResponseParser, KeepAlive) {
  struct Case {
    const char* response;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\n\r\n", false},  // until close
  };
  for (const Case& c : cases) {
    ResponseParser parser;
    ResponseParser::Result r = parser.feed(c.response, std::string_view(c.response).size());
    ASSERT_EQ(r.event, Event::kHeadComplete) << c.response;
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << c.response;
  }
}

TEST(ResponseParser, HeadResponseHasNoBody) {
  ResponseParser parser;
  parser.expectResponseTo("HEAD");
  std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  size_t first = input.find("HTTP/1.1", 1);
  ResponseParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  EXPECT_EQ(r.consumed, first);
  EXPECT_EQ(parser.head().framing, BodyFraming::kNone);
  ASSERT_NE(parser.head().find("Content-Length"), nullptr);  // forwarded as is
  EXPECT_TRUE(parser.inMessage());
  r = parser.feed(input.data() + first, input.size() - first);
  EXPECT_EQ(r.event, Event::kMessageComplete);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_FALSE(parser.inMessage());
  // The next response (to a GET) has its body again.
  Driven d = drive(parser, std::string_view(input).substr(first), {});
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_EQ(d.events[1], "BODY ok");
}

TEST(ResponseParser, HeadResponseWithChunkedHeaderHasNoBody) {
  Driven d = driveWhole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", {"HEAD"}, true);
  ASSERT_EQ(d.events.size(), 2u) << d.error;
  EXPECT_EQ(d.events[1], "DONE");
}

TEST(ResponseParser, NoContentAndNotModified) {
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    std::string input =
        std::string("HTTP/1.1 ") + status +
        "\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    Driven d = driveWhole(input);
    ASSERT_EQ(d.events.size(), 5u) << status << d.error;
    EXPECT_NE(d.events[0].find("framing=0"), std::string::npos);
    EXPECT_EQ(d.events[1], "DONE");
    EXPECT_EQ(d.events[3], "BODY x");
    EXPECT_EQ(d.consumed, input.size());
  }
}

TEST(ResponseParser, ContinueThenFinal) {
  Driven d = driveWhole(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", {"POST"});
  ASSERT_EQ(d.events.size(), 5u) << d.error;
  EXPECT_EQ(d.events[0].rfind("HEAD 100 Continue", 0), 0u);
  EXPECT_EQ(d.events[1], "DONE");
  EXPECT_EQ(d.events[2].rfind("HEAD 200 OK", 0), 0u);
  EXPECT_EQ(d.events[3], "BODY hi");
  EXPECT_EQ(d.events[4], "DONE");
}

TEST(ResponseParser, EarlyHintsThenFinalToHead) {
  // The HEAD expectation survives the interim response.
  Driven d = driveWhole(
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
      {"HEAD"});
  ASSERT_EQ(d.events.size(), 4u) << d.error;
  EXPECT_NE(d.events[0].find("[Link: </s.css>; rel=preload]"), std::string::npos);
  EXPECT_EQ(d.events[2].rfind("HEAD 200 OK", 0), 0u);
  EXPECT_EQ(d.events[3], "DONE");
}

TEST(ResponseParser, SwitchingProtocolsIsAnError) {
  Driven d =
      driveWhole("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n");
  EXPECT_EQ(d.events, std::vector<std::string>{"ERROR"});
  EXPECT_NE(d.error.find("101"), std::string::npos);
}

TEST(ResponseParser, BytesAfterResponseAreNotConsumed) {
  ResponseParser parser;
  std::string input = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE";
  const char* p = input.data();
  size_t left = input.size();
  std::vector<Event> events;
  while (true) {
    ResponseParser::Result r = parser.feed(p, left);
    events.push_back(r.event);
    p += r.consumed;
    left -= r.consumed;
    if (r.event == Event::kMessageComplete || r.event == Event::kError) break;
  }
  EXPECT_EQ(events,
            (std::vector<Event>{Event::kHeadComplete, Event::kBody, Event::kMessageComplete}));
  EXPECT_EQ(std::string_view(p, left), "GARBAGE");
}

TEST(ResponseParser, TruncatedBodyThenFinishIsAnError) {
  for (const char* input : {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
                            "HTTP/1.1 200 OK\r\nContent-Le"}) {
    Driven d = driveWhole(input, {}, true);
    ASSERT_FALSE(d.events.empty());
    EXPECT_EQ(d.events.back(), "ERROR") << input;
    EXPECT_EQ(d.error, "upstream closed mid-message") << input;
  }
}

TEST(ResponseParser, FinishWithNothingPendingIsClean) {
  ResponseParser parser;
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
  // Nothing may be fed after the close.
  EXPECT_EQ(parser.feed("HTTP/1.1", 8).event, Event::kError);
}

struct BadResponse {
  const char* name;
  std::string input;
};

class BadResponseTest : public ::testing::TestWithParam<BadResponse> {};

TEST_P(BadResponseTest, IsAnError) {
  const BadResponse& c = GetParam();
  Driven whole = driveWhole(c.input);
  ASSERT_FALSE(whole.events.empty());
  EXPECT_EQ(whole.events.back(), "ERROR");
  EXPECT_FALSE(whole.error.empty());
  std::vector<size_t> cuts;
  for (size_t i = 1; i < c.input.size(); ++i)
    cuts.push_back(i);
  ResponseParser parser;
  Driven bytewise = drive(parser, c.input, cuts);
  EXPECT_EQ(bytewise.events, whole.events);
  EXPECT_EQ(bytewise.error, whole.error);
}

const std::string kChunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Malformed, BadResponseTest,
    ::testing::Values(
        BadResponse{"StatusFourDigits", "HTTP/1.1 2000 OK\r\n\r\n"},
        BadResponse{"StatusTwoDigits", "HTTP/1.1 20 OK\r\n\r\n"},
        BadResponse{"StatusBelow100", "HTTP/1.1 099 Odd\r\n\r\n"},
        BadResponse{"StatusAbove599", "HTTP/1.1 600 Odd\r\n\r\n"},
        BadResponse{"StatusMissing", "HTTP/1.1 OK\r\n\r\n"},
        BadResponse{"DoubleSpace", "HTTP/1.1  200 OK\r\n\r\n"},
        BadResponse{"NotHttp", "ICY 200 OK\r\n\r\n"}, BadResponse{"Http2", "HTTP/2 200 OK\r\n\r\n"},
        BadResponse{"Http20", "HTTP/2.0 200 OK\r\n\r\n"},
        BadResponse{"Http09", "HTTP/0.9 200 OK\r\n\r\n"},
        BadResponse{"CtlInReason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
        BadResponse{"BareLfStatusLine", "HTTP/1.1 200 OK\nX: y\r\n\r\n"},
        BadResponse{"ObsFold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"},
        BadResponse{"ClAndTe",
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"},
        BadResponse{"TeAndCl",
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"},
        BadResponse{"DifferingCl",
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
        BadResponse{"EqualClRepeated",
                    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
        BadResponse{"ClList", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"},
        BadResponse{"ClNegative", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"},
        BadResponse{"TeGzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"},
        BadResponse{"TeGzipChunked",
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
        BadResponse{"TeOnHttp10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        BadResponse{"ChunkSizeInvalid", kChunkedHead + "zz\r\n"},
        BadResponse{"ChunkSizeOverflow", kChunkedHead + "fffffffffffffffff\r\n"},
        BadResponse{"ChunkMissingCrlf", kChunkedHead + "1\r\nab\r\n0\r\n\r\n"},
        BadResponse{"ChunkBareLf", kChunkedHead + "1\nx\r\n0\r\n\r\n"},
        BadResponse{"NulInValue", std::string("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27)}),
    [](const ::testing::TestParamInfo<BadResponse>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(ResponseParserLimits, HeadTooLarge) {
  ResponseParser parser(64, 10);
  std::string input = "HTTP/1.1 200 OK\r\nX-A: " + std::string(100, 'a') + "\r\n\r\n";
  ResponseParser::Result r = parser.feed(input.data(), input.size());
  EXPECT_EQ(r.event, Event::kError);
  EXPECT_EQ(r.consumed, 64u);
  EXPECT_EQ(parser.errorReason(), "response head too large");
}

TEST(ResponseParserLimits, TooManyHeaders) {
  ResponseParser parser(1024, 2);
  std::string input = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  EXPECT_EQ(parser.feed(input.data(), input.size()).event, Event::kError);
  EXPECT_EQ(parser.errorReason(), "too many response header fields");
}

// Chunk lines are bounded per line, as for requests (CVE-2024-22019).
void expectChunkLineError(const std::string& input) {
  ResponseParser parser(64 * 1024, 200, /*max_chunk_line_bytes=*/32);
  Driven whole = drive(parser, input, {});
  ASSERT_FALSE(whole.events.empty());
  EXPECT_EQ(whole.events.back(), "ERROR");
  EXPECT_NE(whole.error.find("chunk"), std::string::npos) << whole.error;
  for (size_t i = 1; i < input.size(); ++i) {
    ResponseParser split(64 * 1024, 200, 32);
    Driven d = drive(split, input, {i});
    ASSERT_EQ(d.events, whole.events) << "split at " << i;
    ASSERT_EQ(d.error, whole.error) << "split at " << i;
  }
}

TEST(ResponseParserChunkLines, LongExtensionIsAnError) {
  expectChunkLineError(kChunkedHead + "1;" + std::string(40, 'a') + "\r\nx\r\n0\r\n\r\n");
}

TEST(ResponseParserChunkLines, LongQuotedExtensionIsAnError) {
  expectChunkLineError(kChunkedHead + "1;a=\"" + std::string(40, 'a') + "\"\r\nx\r\n0\r\n\r\n");
}

TEST(ResponseParserChunkLines, LeadingZerosCount) {
  expectChunkLineError(kChunkedHead + std::string(40, '0') + "1\r\nx\r\n0\r\n\r\n");
}

TEST(ResponseParserChunkLines, LineOfExactlyTheLimitIsAccepted) {
  const std::string input = kChunkedHead + "1;" + std::string(28, 'a') + "\r\nx\r\n0\r\n\r\n";
  ResponseParser parser(64 * 1024, 200, 32);
  Driven d = drive(parser, input, {});
  ASSERT_EQ(d.events.size(), 3u) << d.error;
  EXPECT_EQ(d.events[1], "BODY x");
  EXPECT_EQ(d.events[2], "DONE");
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i)
    cuts.push_back(i);
  ResponseParser bytewise(64 * 1024, 200, 32);
  EXPECT_EQ(drive(bytewise, input, cuts).events, d.events);
}

TEST(ResponseParserChunkLines, DetectedBeforeTheLineEnds) {
  ResponseParser parser;
  ResponseParser::Result r = parser.feed(kChunkedHead.data(), kChunkedHead.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  const std::string extension = "1;" + std::string(8 << 20, 'a');
  r = parser.feed(extension.data(), extension.size());
  EXPECT_EQ(r.event, Event::kError);
  EXPECT_EQ(r.consumed, 16u * 1024);  // the default bound
}

TEST(ResponseParserLimits, TrailerWhitespaceCountsTowardTheTrailerLimit) {
  Driven d = driveWhole(kChunkedHead + "0\r\nX-T:" + std::string(128 * 1024, ' ') + "v\r\n\r\n");
  ASSERT_FALSE(d.events.empty());
  EXPECT_EQ(d.events.back(), "ERROR");
  EXPECT_EQ(d.error, "response trailer section too large");
}

// Split invariance for a keep-alive connection carrying varied responses.
const std::string kResponses =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A:  spaced  \r\n\r\nhello world"
    "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"  // answers a HEAD
    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\n"
    "HTTP/1.1 204 No Content\r\n\r\n"
    "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.1 200 OK\r\n\r\nuntil the end";
const std::vector<std::string> kMethods = {"POST", "HEAD", "GET", "GET", "GET", "GET", "GET"};

TEST(ResponseParserSplit, WholeTrace) {
  Driven d = driveWhole(kResponses, kMethods, true);
  ASSERT_EQ(d.events.size(), 21u) << d.error;
  EXPECT_EQ(d.events[3], "BODY hello world");
  EXPECT_NE(d.events[2].find("[X-A: spaced]"), std::string::npos);
  EXPECT_EQ(d.events[6], "DONE");  // HEAD: no body
  EXPECT_EQ(d.events[10], "BODY wikipedia");
  EXPECT_EQ(d.events[19], "BODY until the end");
  EXPECT_EQ(d.events[20], "DONE");
  EXPECT_EQ(d.consumed, kResponses.size());
}

TEST(ResponseParserSplit, EverySplitPointAndByteByByte) {
  Driven whole = driveWhole(kResponses, kMethods, true);
  for (size_t i = 1; i < kResponses.size(); ++i) {
    ResponseParser parser;
    Driven split = drive(parser, kResponses, {i}, kMethods, true);
    ASSERT_EQ(split.events, whole.events) << "split at " << i;
    ASSERT_EQ(split.consumed, kResponses.size());
  }
  std::vector<size_t> cuts;
  for (size_t i = 1; i < kResponses.size(); ++i)
    cuts.push_back(i);
  ResponseParser parser;
  EXPECT_EQ(drive(parser, kResponses, cuts, kMethods, true).events, whole.events);
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

// See the request parser's mutation test.
std::string mutate(std::string s, uint32_t* state) {
  auto next = [state] {
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
  };
  static const char kAlphabet[] = "\r\n \t:;,0aAzZ/#\x01\x7f\xff-Hh1";
  int edits = 1 + static_cast<int>(next() % 3);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t pos = next() % s.size();
    char c = kAlphabet[next() % (sizeof(kAlphabet) - 1)];
    switch (next() % 4) {
      case 0:
        s[pos] = c;
        break;
      case 1:
        s.insert(pos, 1, c);
        break;
      case 2:
        s.erase(pos, 1);
        break;
      default:
        s.insert(pos, 1, s[pos]);
        break;
    }
  }
  return s;
}

TEST(ResponseParserSplit, MutatedInputIsSplitInvariant) {
  uint32_t state = 777;
  int errors = 0;
  for (int round = 0; round < 400; ++round) {
    std::string input = mutate(kResponses, &state);
    Driven whole = driveWhole(input, kMethods, true);
    if (whole.events.back() == "ERROR") ++errors;
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i)
      cuts.push_back(i);
    ResponseParser bytewise;
    ASSERT_EQ(drive(bytewise, input, cuts, kMethods, true).events, whole.events)
        << "round " << round;
    size_t cut = state % input.size();
    ResponseParser split;
    ASSERT_EQ(drive(split, input, {cut}, kMethods, true).events, whole.events)
        << "round " << round << " cut " << cut;
  }
  EXPECT_GT(errors, 100);
  EXPECT_LT(errors, 400);
}

}  // namespace
}  // namespace sluice::http
