#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {
namespace {

using Event = RequestParser::Event;

std::string describe(const RequestHead& h) {
  std::string s = "HEAD " + h.method + " " + h.target + " " + std::to_string(h.version_major) +
                  "." + std::to_string(h.version_minor) + " host=" + h.host +
                  " framing=" + std::to_string(static_cast<int>(h.framing)) +
                  " cl=" + std::to_string(h.content_length) + " ka=" + (h.keep_alive ? "1" : "0") +
                  " ec=" + (h.expect_continue ? "1" : "0");
  for (const Header& header : h.headers)
    s += " [" + header.name + ": " + header.value + "]";
  return s;
}

// Feeds `input` in pieces ending at `cuts` (then the rest), the way a
// connection does: unconsumed bytes stay buffered and are fed again with the
// next piece. Records each event; consecutive body pieces are merged so that
// traces do not depend on how the input was split.
std::vector<std::string> drive(RequestParser& parser, std::string_view input,
                               const std::vector<size_t>& cuts = {}, bool finish = false) {
  std::vector<std::string> out;
  std::string pending;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  size_t prev = 0;
  for (size_t end : ends) {
    pending.append(input.substr(prev, end - prev));
    prev = end;
    for (int guard = 0; guard < 100000; ++guard) {
      RequestParser::Result r = parser.feed(pending.data(), pending.size());
      EXPECT_LE(r.consumed, pending.size());
      if (r.event == Event::kNeedMore) {
        EXPECT_EQ(r.consumed, pending.size()) << "kNeedMore must consume everything";
        pending.clear();
        break;
      }
      switch (r.event) {
        case Event::kHeadComplete:
          out.push_back(describe(parser.head()));
          break;
        case Event::kBody: {
          std::string_view body = parser.body();
          EXPECT_FALSE(body.empty());
          // The piece points into the fed buffer, inside what was consumed.
          EXPECT_GE(body.data(), pending.data());
          EXPECT_LE(body.data() + body.size(), pending.data() + r.consumed);
          if (!out.empty() && out.back().rfind("BODY ", 0) == 0) {
            out.back().append(body);
          } else {
            out.push_back("BODY " + std::string(body));
          }
          break;
        }
        case Event::kMessageComplete:
          out.push_back("DONE");
          break;
        case Event::kError:
          out.push_back("ERROR " + std::to_string(parser.errorStatus()));
          return out;
        case Event::kNeedMore:
          break;
      }
      pending.erase(0, r.consumed);
    }
  }
  if (finish) {
    RequestParser::Result r = parser.finish();
    if (r.event == Event::kError) out.push_back("ERROR " + std::to_string(parser.errorStatus()));
  }
  return out;
}

std::vector<std::string> driveWhole(std::string_view input, ParserLimits limits = {}) {
  RequestParser parser(limits);
  return drive(parser, input);
}

std::vector<std::string> driveByteByByte(std::string_view input, ParserLimits limits = {}) {
  RequestParser parser(limits);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i)
    cuts.push_back(i);
  return drive(parser, input, cuts);
}

bool hasHead(const std::vector<std::string>& trace) {
  for (const std::string& e : trace) {
    if (e.rfind("HEAD ", 0) == 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Malformed and smuggling-shaped requests: each must fail with this status,
// before any kHeadComplete when the fault is in the head, however split.

struct BadCase {
  const char* name;
  std::string input;
  int status;
  bool in_head = true;  // the fault is in the head: no kHeadComplete may precede the error
};

std::string req(std::string_view headers, std::string_view line = "GET / HTTP/1.1") {
  return std::string(line) + "\r\n" + std::string(headers) + "\r\n";
}

const std::string kChunkedPost = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

std::vector<BadCase> badCases() {
  using namespace std::string_literals;
  return {
      // Content-Length / Transfer-Encoding conflicts (CL.TE, TE.CL smuggling).
      {"ClThenTe", req("Host: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"), 400},
      {"TeThenCl", req("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"), 400},
      {"ClTeSpaceBeforeColon",
       req("Host: a\r\nContent-Length: 3\r\nTransfer-Encoding : chunked\r\n"), 400},
      {"ClTeTabAfterColon", req("Host: a\r\nContent-Length: 3\r\nTransfer-Encoding:\tchunked\r\n"),
       400},
      {"TeSpaceBeforeColon", req("Host: a\r\nTransfer-Encoding : chunked\r\n"), 400},
      {"ClTeHttp10", req("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "POST / HTTP/1.0"),
       400},
      // Content-Length syntax.
      {"DuplicateClEqual", req("Host: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n"), 400},
      {"DuplicateClDiffer", req("Host: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n"), 400},
      {"ClPlus", req("Host: a\r\nContent-Length: +5\r\n"), 400},
      {"ClMinus", req("Host: a\r\nContent-Length: -1\r\n"), 400},
      {"ClSpaceInside", req("Host: a\r\nContent-Length: 1 2\r\n"), 400},
      {"ClEmpty", req("Host: a\r\nContent-Length: \r\n"), 400},
      {"ClHuge", req("Host: a\r\nContent-Length: 99999999999999999999999\r\n"), 400},
      {"ClTwoToThe64", req("Host: a\r\nContent-Length: 18446744073709551616\r\n"), 400},
      {"ClCommaList", req("Host: a\r\nContent-Length: 3, 3\r\n"), 400},
      {"ClHex", req("Host: a\r\nContent-Length: 0x10\r\n"), 400},
      // Transfer-Encoding values.
      {"TeGzipChunked", req("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n"), 501},
      {"TeChunkedGzip", req("Host: a\r\nTransfer-Encoding: chunked, gzip\r\n"), 400},
      {"TeChunkedChunked", req("Host: a\r\nTransfer-Encoding: chunked, chunked\r\n"), 400},
      {"TeIdentity", req("Host: a\r\nTransfer-Encoding: identity\r\n"), 400},
      {"TeXchunked", req("Host: a\r\nTransfer-Encoding: xchunked\r\n"), 400},
      {"TeGzipOnly", req("Host: a\r\nTransfer-Encoding: gzip\r\n"), 400},
      {"TeEmpty", req("Host: a\r\nTransfer-Encoding: \r\n"), 400},
      {"TeChunkedWithParam", req("Host: a\r\nTransfer-Encoding: chunked;q=1\r\n"), 400},
      {"TeOnHttp10", req("Host: a\r\nTransfer-Encoding: chunked\r\n", "POST / HTTP/1.0"), 400},
      {"TeTwoHeaders",
       req("Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
      {"TeTwoHeadersGzipThenChunked",
       req("Host: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 400},
      // Line structure.
      {"ObsFold", req("Host: a\r\nX-A: one\r\n two\r\n"), 400},
      {"BareLfAfterRequestLine", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
      {"BareLfAfterHeader", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
      {"BareLfEndOfHead", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
      {"BareCrInHeader", "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400},
      {"BareCrAfterRequestLine", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
      {"NulInValue", req("Host: a\r\nX-A: a\0b\r\n"s), 400},
      {"CtlInValue", req("Host: a\r\nX-A: a\x01b\r\n"), 400},
      {"DelInValue",
       req("Host: a\r\nX-A: a\x7f"
           "b\r\n"),
       400},
      {"SpaceBeforeColon", req("Host: a\r\nX-A : b\r\n"), 400},
      {"WhitespaceBeforeFirstHeader", req(" Host: a\r\n"), 400},
      {"EmptyHeaderName", req("Host: a\r\n: b\r\n"), 400},
      {"NonTokenHeaderName", req("Host: a\r\nX(A): b\r\n"), 400},
      // Host.
      {"MissingHostHttp11", req("X-A: b\r\n"), 400},
      {"TwoHosts", req("Host: a\r\nHost: b\r\n"), 400},
      {"TwoHostsHttp10", req("Host: a\r\nHost: b\r\n", "GET / HTTP/1.0"), 400},
      {"HostWithSpace", req("Host: a b\r\n"), 400},
      {"HostWithSlash", req("Host: a/b\r\n"), 400},
      {"HostWithUserinfo", req("Host: user@a\r\n"), 400},
      {"HostEmpty", req("Host: \r\n"), 400},
      {"HostBadPort", req("Host: a:99999\r\n"), 400},
      {"HostUnclosedLiteral", req("Host: [::1\r\n"), 400},
      // Chunked body syntax (the head is fine: kHeadComplete comes first).
      {"ChunkSizeNotHex", kChunkedPost + "zz\r\n", 400, false},
      {"ChunkSizeOverflow", kChunkedPost + "fffffffffffffffff\r\n", 400, false},
      {"ChunkSizeNegative", kChunkedPost + "-1\r\nx\r\n0\r\n\r\n", 400, false},
      {"ChunkSizeSpaceBeforeExt", kChunkedPost + "1 ;a\r\nx\r\n0\r\n\r\n", 400, false},
      {"ChunkExtensionGarbage", kChunkedPost + "1;\x01\r\nx\r\n0\r\n\r\n", 400, false},
      {"ChunkExtensionSpace", kChunkedPost + "1;a b\r\nx\r\n0\r\n\r\n", 400, false},
      {"ChunkMissingCrlfAfterData", kChunkedPost + "1\r\nxy0\r\n\r\n", 400, false},
      {"ChunkBareLfAfterSize", kChunkedPost + "1\nx\r\n0\r\n\r\n", 400, false},
      {"ChunkBareLfAtEnd", kChunkedPost + "1\r\nx\r\n0\n\n", 400, false},
      // Request line: method.
      {"InvalidMethodChars", req("Host: a\r\n", "G@T / HTTP/1.1"), 400},
      {"LowercaseMethod", req("Host: a\r\n", "get / HTTP/1.1"), 400},
      {"UnknownMethod", req("Host: a\r\n", "FOO / HTTP/1.1"), 400},
      {"LeadingSpaceBeforeMethod", req("Host: a\r\n", " GET / HTTP/1.1"), 400},
      {"TabAfterMethod", req("Host: a\r\n", "GET\t/ HTTP/1.1"), 400},
      {"DoubleSpaceAfterMethod", req("Host: a\r\n", "GET  / HTTP/1.1"), 400},
      {"DoubleSpaceBeforeVersion", req("Host: a\r\n", "GET /  HTTP/1.1"), 400},
      // Request line: version.
      {"VersionHttp12", req("Host: a\r\n", "GET / HTTP/1.2"), 505},
      {"VersionHttp20", req("Host: a\r\n", "GET / HTTP/2.0"), 505},
      {"VersionHttp09", req("Host: a\r\n", "GET / HTTP/0.9"), 505},
      {"VersionHttp30", req("Host: a\r\n", "GET / HTTP/3.0"), 505},
      // The asterisk-form check (PRI is not OPTIONS) fires before the version's.
      {"H2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
      {"VersionHttp2NoDot", req("Host: a\r\n", "GET / HTTP/2"), 400},
      {"VersionMissing", "GET /\r\n\r\n", 400},
      {"VersionMissingWithHeaders", "GET /\r\nHost: a\r\n\r\n", 400},
      {"VersionLowercase", req("Host: a\r\n", "GET / http/1.1"), 400},
      {"VersionTrailingSpace", req("Host: a\r\n", "GET / HTTP/1.1 "), 400},
      {"VersionTwoDigitMinor", req("Host: a\r\n", "GET / HTTP/1.10"), 400},
      // llhttp judges the version as soon as the minor digit is read.
      {"VersionGarbageAfterUnsupported", req("Host: a\r\n", "GET / HTTP/3.0x"), 505},
      {"VersionGarbageAfterSupported", req("Host: a\r\n", "GET / HTTP/1.1x"), 400},
      // Request line: target.
      {"TargetWithSpace", req("Host: a\r\n", "GET /a b HTTP/1.1"), 400},
      {"TargetWithCtl", req("Host: a\r\n", "GET /a\x01z HTTP/1.1"), 400},
      {"TargetWithDel", req("Host: a\r\n", "GET /a\x7fz HTTP/1.1"), 400},
      {"TargetWithHighByte", req("Host: a\r\n", "GET /a\xff HTTP/1.1"), 400},
      {"TargetWithHighByteInQuery", req("Host: a\r\n", "GET /a?q=\xc3\xa9 HTTP/1.1"), 400},
      {"TargetWithFragment", req("Host: a\r\n", "GET /a#frag HTTP/1.1"), 400},
      {"TargetEmpty", req("Host: a\r\n", "GET  HTTP/1.1"), 400},
      {"TargetRelative", req("Host: a\r\n", "GET foo HTTP/1.1"), 400},
      {"TargetAuthorityFormWithGet", req("Host: a\r\n", "GET a.example:80 HTTP/1.1"), 400},
      {"AsteriskWithGet", req("Host: a\r\n", "GET * HTTP/1.1"), 400},
      {"AbsoluteFormFtp", req("Host: a\r\n", "GET ftp://a/b HTTP/1.1"), 400},
      {"AbsoluteFormUserinfo", req("Host: a\r\n", "GET http://u@a/b HTTP/1.1"), 400},
      {"AbsoluteFormEmptyAuthority", req("Host: a\r\n", "GET http:///b HTTP/1.1"), 400},
      {"Connect", req("Host: a:443\r\n", "CONNECT a:443 HTTP/1.1"), 501},
  };
}

class BadRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadRequestTest, RejectedWithStatus) {
  const BadCase& c = GetParam();
  std::vector<std::string> trace = driveWhole(c.input);
  ASSERT_FALSE(trace.empty());
  EXPECT_EQ(trace.back(), "ERROR " + std::to_string(c.status));
  if (c.in_head) {
    EXPECT_FALSE(hasHead(trace));
  }
  // The same, one byte at a time.
  EXPECT_EQ(driveByteByByte(c.input), trace);
}

TEST_P(BadRequestTest, ReportsAReason) {
  RequestParser parser(ParserLimits{});
  drive(parser, GetParam().input);
  EXPECT_FALSE(parser.errorReason().empty());
  // Sticky: the connection must close.
  RequestParser::Result r = parser.feed("GET / HTTP/1.1\r\n", 16);
  EXPECT_EQ(r.event, Event::kError);
}

INSTANTIATE_TEST_SUITE_P(Malformed, BadRequestTest, ::testing::ValuesIn(badCases()),
                         [](const ::testing::TestParamInfo<BadCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(RequestParserErrors, AtLeastFortyFiveMalformedCases) {
  EXPECT_GE(badCases().size(), 45u);
}

TEST(RequestParserErrors, ReasonsNameTheProblem) {
  RequestParser parser(ParserLimits{});
  drive(parser, req("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"));
  EXPECT_EQ(parser.errorStatus(), 400);
  EXPECT_NE(parser.errorReason().find("Content-Length"), std::string::npos);

  RequestParser missing_host(ParserLimits{});
  drive(missing_host, req(""));
  EXPECT_EQ(missing_host.errorReason(), "missing Host header");

  RequestParser te(ParserLimits{});
  drive(te, req("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n"));
  EXPECT_EQ(te.errorReason(), "unsupported transfer coding");
}

TEST(RequestParserErrors, DataAfterConnectionClose) {
  std::vector<std::string> trace =
      driveWhole("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "DONE");
  EXPECT_EQ(trace[2], "ERROR 400");
}

TEST(RequestParserErrors, ContentLengthInTrailersOfChunkedBody) {
  // llhttp applies its CL-with-TE rule to the trailer section too.
  std::vector<std::string> trace =
      driveWhole(kChunkedPost + "1\r\nx\r\n0\r\nContent-Length: 5\r\nX-T: 1\r\n\r\n");
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY x");
  EXPECT_EQ(trace[2], "ERROR 400");
}

// ---------------------------------------------------------------------------
// Limits.

TEST(RequestParserLimits, RequestLineTooLongIs414) {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  std::string input = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser parser(limits);
  std::vector<std::string> trace = drive(parser, input);
  ASSERT_EQ(trace, std::vector<std::string>{"ERROR 414"});
  EXPECT_EQ(driveByteByByte(input, limits), trace);
}

TEST(RequestParserLimits, HeadTooLargeIs431) {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-A: " + std::string(100, 'b') + "\r\n\r\n";
  EXPECT_EQ(driveWhole(input, limits), std::vector<std::string>{"ERROR 431"});
  EXPECT_EQ(driveByteByByte(input, limits), std::vector<std::string>{"ERROR 431"});
}

TEST(RequestParserLimits, HeadExactlyAtLimitIsAccepted) {
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-A: bbbb\r\n\r\n";
  ParserLimits limits;
  limits.max_header_bytes = input.size();
  std::vector<std::string> trace = driveWhole(input, limits);
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "DONE");
  EXPECT_EQ(driveByteByByte(input, limits), trace);

  limits.max_header_bytes = input.size() - 1;
  EXPECT_EQ(driveWhole(input, limits), std::vector<std::string>{"ERROR 431"});
}

TEST(RequestParserLimits, OversizedHeadDetectedBeforeItEnds) {
  // The head never ends, yet the error comes once the limit is reached.
  ParserLimits limits;
  limits.max_header_bytes = 100;
  RequestParser parser(limits);
  std::string input = "GET / HTTP/1.1\r\nHost: a\r\nX-A: " + std::string(1000, 'b');
  RequestParser::Result r = parser.feed(input.data(), input.size());
  EXPECT_EQ(r.event, Event::kError);
  EXPECT_EQ(parser.errorStatus(), 431);
  EXPECT_EQ(r.consumed, 100u);
}

TEST(RequestParserLimits, LimitCountsEachRequestSeparately) {
  std::string one = "GET /aaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n";
  ParserLimits limits;
  limits.max_header_bytes = one.size();
  std::vector<std::string> trace = driveWhole(one + one + one, limits);
  EXPECT_EQ(trace.size(), 6u);
  EXPECT_EQ(trace.back(), "DONE");
}

TEST(RequestParserLimits, TooManyHeadersIs431) {
  ParserLimits limits;
  limits.max_headers = 3;
  EXPECT_EQ(driveWhole(req("Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n"), limits),
            std::vector<std::string>{"ERROR 431"});
  std::vector<std::string> ok = driveWhole(req("Host: a\r\nA: 1\r\nB: 2\r\n"), limits);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[1], "DONE");
}

TEST(RequestParserLimits, BodyTooLargeByContentLengthIs413AtHead) {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  RequestParser parser(limits);
  std::string head = req("Host: a\r\nContent-Length: 11\r\n", "POST / HTTP/1.1");
  RequestParser::Result r = parser.feed(head.data(), head.size());
  EXPECT_EQ(r.event, Event::kError);  // no need to read the body
  EXPECT_EQ(parser.errorStatus(), 413);

  std::vector<std::string> ok = driveWhole(
      req("Host: a\r\nContent-Length: 10\r\n", "POST / HTTP/1.1") + "0123456789", limits);
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok[1], "BODY 0123456789");
}

// An empty input with no storage (a Buffer that gave its memory back while
// the client paused mid-body) reaches the parser as (nullptr, 0). llhttp
// restarts an open body span at the pointer it is given, so a null one made
// the next piece measure from address 0: a body "piece" of about the
// pointer's value, which crashed the worker (std::bad_alloc) under load.
TEST(RequestParserBody, AnEmptyNullInputMidBodyKeepsThePiecesExact) {
  RequestParser parser{ParserLimits()};
  const std::string head = req("Host: a\r\nContent-Length: 10\r\n", "POST / HTTP/1.1");
  const std::string first = head + "01234";
  RequestParser::Result r = parser.feed(first.data(), first.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  size_t offset = r.consumed;
  r = parser.feed(first.data() + offset, first.size() - offset);
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(parser.body(), "01234");
  r = parser.feed(nullptr, 0);  // the client is slow; the buffer was released
  EXPECT_EQ(r.event, Event::kNeedMore);
  const std::string rest = "56789";
  r = parser.feed(rest.data(), rest.size());
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(parser.body(), "56789");
  EXPECT_EQ(parser.body().data(), rest.data());
}

TEST(RequestParserLimits, BodyTooLargeChunkedIs413) {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  // 6 + 6 > 10: refused when the second chunk is announced.
  std::string input = kChunkedPost + "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, limits);
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY abcdef");
  EXPECT_EQ(trace[2], "ERROR 413");
  EXPECT_EQ(driveByteByByte(input, limits), trace);

  std::vector<std::string> ok =
      driveWhole(kChunkedPost + "5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n", limits);
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok[2], "DONE");
}

TEST(RequestParserLimits, TrailersAreBounded) {
  // The trailer section gets the head's byte limit.
  ParserLimits limits;
  limits.max_header_bytes = kChunkedPost.size() + 10;
  std::string input = kChunkedPost + "0\r\nX-T: " + std::string(100, 'x') + "\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, limits);
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "ERROR 431");
}

// Chunk lines (size, extensions, CRLF) are bounded per line: CVE-2024-22019
// in Node.js was a server reading endless chunk extensions that no limit saw.
ParserLimits smallChunkLines() {
  ParserLimits limits;
  limits.max_chunk_line_bytes = 32;
  return limits;
}

// Every split of `input` into two pieces, and byte by byte, gives `expected`.
void expectSplitInvariant(const std::string& input, const ParserLimits& limits,
                          const std::vector<std::string>& expected) {
  EXPECT_EQ(driveWhole(input, limits), expected);
  EXPECT_EQ(driveByteByByte(input, limits), expected);
  for (size_t i = 1; i < input.size(); ++i) {
    RequestParser parser(limits);
    ASSERT_EQ(drive(parser, input, {i}), expected) << "split at " << i;
  }
}

TEST(RequestParserChunkLines, LongExtensionIs413) {
  const std::string input = kChunkedPost + "1;" + std::string(40, 'a') + "\r\nx\r\n0\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, smallChunkLines());
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "ERROR 413");
  expectSplitInvariant(input, smallChunkLines(), trace);
}

TEST(RequestParserChunkLines, LongQuotedExtensionValueIs413) {
  const std::string input = kChunkedPost + "1;a=\"" + std::string(40, 'v') + "\"\r\nx\r\n0\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, smallChunkLines());
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "ERROR 413");
  expectSplitInvariant(input, smallChunkLines(), trace);
}

TEST(RequestParserChunkLines, LeadingZerosCount) {
  const std::string input = kChunkedPost + std::string(40, '0') + "1\r\nx\r\n0\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, smallChunkLines());
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "ERROR 413");
  expectSplitInvariant(input, smallChunkLines(), trace);
}

TEST(RequestParserChunkLines, LastChunkLineIsBoundedToo) {
  const std::string input = kChunkedPost + "1\r\nx\r\n0;" + std::string(40, 'e') + "\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input, smallChunkLines());
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY x");
  EXPECT_EQ(trace[2], "ERROR 413");
  expectSplitInvariant(input, smallChunkLines(), trace);
}

TEST(RequestParserChunkLines, LineOfExactlyTheLimitIsAccepted) {
  // "1;" + 28 bytes + CRLF = 32 bytes.
  const std::string line = "1;" + std::string(28, 'a') + "\r\n";
  ASSERT_EQ(line.size(), 32u);
  const std::string input =
      kChunkedPost + line + "x\r\n" + "0;" + std::string(28, 'b') + "\r\n\r\n";
  const std::vector<std::string> ok = driveWhole(input, smallChunkLines());
  ASSERT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok[1], "BODY x");
  EXPECT_EQ(ok[2], "DONE");
  expectSplitInvariant(input, smallChunkLines(), ok);

  const std::string one_more = kChunkedPost + "1;" + std::string(29, 'a') + "\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(driveWhole(one_more, smallChunkLines()).back(), "ERROR 413");
}

TEST(RequestParserChunkLines, LimitIsPerLine) {
  // Many lines near the limit add up to far more than it.
  std::string input = kChunkedPost;
  std::string payload;
  for (int i = 0; i < 20; ++i) {
    input +=
        "1;" + std::string(27, 'a') + "\r\n" + std::string(1, static_cast<char>('a' + i)) + "\r\n";
    payload.push_back(static_cast<char>('a' + i));
  }
  input += "0\r\n\r\n";
  const std::vector<std::string> trace = driveWhole(input, smallChunkLines());
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY " + payload);
  EXPECT_EQ(trace[2], "DONE");
  EXPECT_EQ(driveByteByByte(input, smallChunkLines()), trace);
}

TEST(RequestParserChunkLines, DetectedBeforeTheLineEnds) {
  // 8 MiB of extension, no line end: the error comes at the limit (16 KiB by
  // default) and the rest is never consumed, let alone buffered.
  RequestParser parser(ParserLimits{});
  RequestParser::Result r = parser.feed(kChunkedPost.data(), kChunkedPost.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  const std::string extension = "1;" + std::string(8 << 20, 'a');
  r = parser.feed(extension.data(), extension.size());
  EXPECT_EQ(r.event, Event::kError);
  EXPECT_EQ(parser.errorStatus(), 413);
  EXPECT_EQ(r.consumed, ParserLimits{}.max_chunk_line_bytes);
  EXPECT_NE(parser.errorReason().find("chunk"), std::string::npos) << parser.errorReason();
}

TEST(RequestParserChunkLines, DefaultLimitAllowsOrdinaryExtensions) {
  const std::string input =
      kChunkedPost + "5;name=value;q=\"quoted \\\" string\"\r\nhello\r\n0\r\n\r\n";
  const std::vector<std::string> trace = driveWhole(input);
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY hello");
  EXPECT_EQ(trace[2], "DONE");
}

TEST(RequestParserLimits, TrailerWhitespaceCountsTowardTheTrailerLimit) {
  // llhttp drops the OWS before a field value without a callback; the raw
  // bytes of the trailer section count all the same.
  const std::string input = kChunkedPost + "0\r\nX-T:" + std::string(64 * 1024, ' ') + "v\r\n\r\n";
  const std::vector<std::string> trace = driveWhole(input);
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "ERROR 431");
}

TEST(RequestParserLimits, TrailerSectionOfExactlyTheLimitIsAccepted) {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  // The trailer section: "X-T: " + value + CRLF + CRLF = 64 bytes.
  const std::string trailers = "X-T: " + std::string(55, 't') + "\r\n\r\n";
  ASSERT_EQ(trailers.size(), 64u);
  // The head must fit the same limit.
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_LE(head.size(), 64u);
  const std::string input = head + "0\r\n" + trailers;
  const std::vector<std::string> ok = driveWhole(input, limits);
  ASSERT_EQ(ok.size(), 2u);
  EXPECT_EQ(ok[1], "DONE");
  EXPECT_EQ(driveByteByByte(input, limits), ok);
  const std::string over = head + "0\r\nX-T: " + std::string(56, 't') + "\r\n\r\n";
  EXPECT_EQ(driveWhole(over, limits).back(), "ERROR 431");
  EXPECT_EQ(driveByteByByte(over, limits).back(), "ERROR 431");
}

TEST(RequestParserLimits, EndlessEmptyLinesAreBounded) {
  ParserLimits limits;
  limits.max_header_bytes = 32;
  std::string input;
  for (int i = 0; i < 40; ++i)
    input += "\r\n";
  EXPECT_EQ(driveWhole(input, limits), std::vector<std::string>{"ERROR 400"});
}

// ---------------------------------------------------------------------------
// Valid requests.

TEST(RequestParser, SimpleGet) {
  RequestParser parser(ParserLimits{});
  std::string input = "GET /path?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n";
  RequestParser::Result r = parser.feed(input.data(), input.size());
  EXPECT_EQ(r.event, Event::kHeadComplete);
  EXPECT_EQ(r.consumed, input.size());
  EXPECT_TRUE(parser.inMessage());
  const RequestHead& h = parser.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/path?q=1");
  EXPECT_EQ(h.version_major, 1);
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.host, "example.com:8080");
  EXPECT_EQ(h.framing, BodyFraming::kNone);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.isHead());
  ASSERT_EQ(h.headers.size(), 2u);
  ASSERT_NE(h.find("accept"), nullptr);
  EXPECT_EQ(h.find("ACCEPT")->value, "*/*");
  EXPECT_EQ(h.find("X-Missing"), nullptr);

  // No body: the completion comes from a call that consumes nothing.
  r = parser.feed(input.data() + input.size(), 0);
  EXPECT_EQ(r.event, Event::kMessageComplete);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_FALSE(parser.inMessage());
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.head().target, "/path?q=1");  // still readable
  r = parser.feed(nullptr, 0);
  EXPECT_EQ(r.event, Event::kNeedMore);
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
}

TEST(RequestParser, Head) {
  RequestParser parser(ParserLimits{});
  drive(parser, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(parser.head().isHead());
}

TEST(RequestParser, HeaderNamesKeepCaseAndValuesAreTrimmed) {
  RequestParser parser(ParserLimits{});
  std::string input =
      "GET / HTTP/1.1\r\nhOsT: a\r\nX-Mixed-Case:  \t v a l \t \r\nX-Empty:\r\n\r\n";
  RequestParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  const RequestHead& h = parser.head();
  ASSERT_EQ(h.headers.size(), 3u);
  EXPECT_EQ(h.headers[0].name, "hOsT");
  EXPECT_EQ(h.headers[1].name, "X-Mixed-Case");
  EXPECT_EQ(h.headers[1].value, "v a l");
  EXPECT_EQ(h.headers[2].value, "");
  EXPECT_EQ(h.host, "a");
}

TEST(RequestParser, ObsTextInValueIsAccepted) {
  std::vector<std::string> trace = driveWhole(req("Host: a\r\nX-A: caf\xc3\xa9\r\n"));
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_NE(trace[0].find("[X-A: caf\xc3\xa9]"), std::string::npos);
}

TEST(RequestParser, PostWithContentLength) {
  RequestParser parser(ParserLimits{});
  std::string input = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  size_t head_size = input.size() - 5;
  RequestParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  EXPECT_EQ(r.consumed, head_size);
  EXPECT_EQ(parser.head().framing, BodyFraming::kContentLength);
  EXPECT_EQ(parser.head().content_length, 5u);
  r = parser.feed(input.data() + head_size, 5);
  ASSERT_EQ(r.event, Event::kBody);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_EQ(parser.body(), "hello");
  EXPECT_EQ(parser.body().data(), input.data() + head_size);  // no copy
  r = parser.feed(input.data() + input.size(), 0);
  EXPECT_EQ(r.event, Event::kMessageComplete);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(RequestParser, ContentLengthZero) {
  std::vector<std::string> trace =
      driveWhole(req("Host: a\r\nContent-Length: 0\r\n", "POST / HTTP/1.1"));
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_NE(trace[0].find("framing=1 cl=0"), std::string::npos);
  EXPECT_EQ(trace[1], "DONE");
}

TEST(RequestParser, LeadingZerosInContentLength) {
  std::vector<std::string> trace =
      driveWhole(req("Host: a\r\nContent-Length: 003\r\n", "POST / HTTP/1.1") + "abc");
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY abc");
}

TEST(RequestParser, ChunkedBodyTrailersDropped) {
  std::string input = kChunkedPost + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
  RequestParser parser(ParserLimits{});
  std::vector<std::string> trace = drive(parser, input);
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_NE(trace[0].find("framing=2"), std::string::npos);
  EXPECT_EQ(trace[1], "BODY hello world");
  EXPECT_EQ(trace[2], "DONE");
  EXPECT_EQ(parser.head().find("X-Trailer"), nullptr);
  EXPECT_EQ(parser.head().headers.size(), 2u);
}

TEST(RequestParser, ChunkedCodingIsCaseInsensitive) {
  std::vector<std::string> trace = driveWhole(
      req("Host: a\r\nTransfer-Encoding: Chunked \r\n", "POST / HTTP/1.1") + "1\r\nx\r\n0\r\n\r\n");
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[2], "DONE");
}

TEST(RequestParser, ChunkedWithTrailingHtabOrMixedOws) {
  // RFC 9110 §5.5: OWS (SP / HTAB) around a field value is not part of it.
  // llhttp skips only SP after "chunked" and, for the rest, refuses the
  // request as if the final coding were not chunked.
  for (const char* value : {"chunked\t", "chunked \t ", "CHUNKED\t\t", "\tchunked\t"}) {
    const std::string input =
        req(std::string("Host: a\r\nTransfer-Encoding: ") + value + "\r\n", "POST / HTTP/1.1") +
        "3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n" + "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::vector<std::string> trace = driveWhole(input);
    ASSERT_EQ(trace.size(), 5u) << value;
    EXPECT_NE(trace[0].find("framing=2"), std::string::npos) << value;
    EXPECT_EQ(trace[1], "BODY abc") << value;
    EXPECT_EQ(trace[2], "DONE") << value;
    EXPECT_EQ(trace[3].rfind("HEAD GET /next", 0), 0u) << value;
    EXPECT_EQ(driveByteByByte(input), trace) << value;
  }
}

TEST(RequestParser, ChunkedWithTrailingHtabAndContentLengthIsStill400) {
  EXPECT_EQ(driveWhole(req("Host: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\t\r\n",
                           "POST / HTTP/1.1"))
                .back(),
            "ERROR 400");
  // HTAB does not make other codings pass.
  EXPECT_EQ(driveWhole(req("Host: a\r\nTransfer-Encoding: chunked\t, gzip\r\n", "POST / HTTP/1.1"))
                .back(),
            "ERROR 400");
  EXPECT_EQ(
      driveWhole(req("Host: a\r\nTransfer-Encoding: chunked\tx\r\n", "POST / HTTP/1.1")).back(),
      "ERROR 400");
}

TEST(RequestParser, ChunkedBodyAtEverySplit) {
  std::string input = kChunkedPost + "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
  std::vector<std::string> whole = driveWhole(input);
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(whole[1], "BODY abc0123456789abcdef");
  for (size_t i = 1; i < input.size(); ++i) {
    RequestParser parser(ParserLimits{});
    EXPECT_EQ(drive(parser, input, {i}), whole) << "split at " << i;
  }
}

const std::string kPipelined =
    "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    "DELETE /three HTTP/1.1\r\nHost: a\r\n\r\n";

// The parser keeps the previous head's Header objects for reuse: a later
// head with fewer, shorter fields must show exactly its own.
TEST(RequestParser, ReusedHeadersCarryNothingOver) {
  const std::string input =
      "GET /one HTTP/1.1\r\nHost: first.example\r\nX-Long-Name: a long value here\r\n"
      "Accept: */*\r\n\r\n"
      "GET /two HTTP/1.1\r\nHost: b\r\n\r\n"
      "GET /three HTTP/1.1\r\nHost: c\r\nX: 1\r\nY: 2\r\nZ: 3\r\nW: 4\r\n\r\n";
  const std::vector<std::string> expected = {
      "HEAD GET /one 1.1 host=first.example framing=0 cl=0 ka=1 ec=0 [Host: first.example] "
      "[X-Long-Name: a long value here] [Accept: */*]",
      "DONE",
      "HEAD GET /two 1.1 host=b framing=0 cl=0 ka=1 ec=0 [Host: b]",
      "DONE",
      "HEAD GET /three 1.1 host=c framing=0 cl=0 ka=1 ec=0 [Host: c] [X: 1] [Y: 2] [Z: 3] [W: 4]",
      "DONE",
  };
  EXPECT_EQ(driveWhole(input), expected);
  EXPECT_EQ(driveByteByByte(input), expected);
}

TEST(RequestParser, PipelinedRequestsExactConsumedCounts) {
  RequestParser parser(ParserLimits{});
  const char* p = kPipelined.data();
  size_t left = kPipelined.size();
  struct Step {
    Event event;
    size_t consumed;
  };
  const size_t first = std::string("GET /one HTTP/1.1\r\nHost: a\r\n\r\n").size();
  const size_t second_head =
      std::string("POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n").size();
  const size_t third = std::string("DELETE /three HTTP/1.1\r\nHost: a\r\n\r\n").size();
  const std::vector<Step> expected = {
      {Event::kHeadComplete, first},       {Event::kMessageComplete, 0},
      {Event::kHeadComplete, second_head}, {Event::kBody, 3},
      {Event::kMessageComplete, 0},        {Event::kHeadComplete, third},
      {Event::kMessageComplete, 0},        {Event::kNeedMore, 0},
  };
  std::vector<std::string> targets;
  for (const Step& step : expected) {
    RequestParser::Result r = parser.feed(p, left);
    EXPECT_EQ(r.event, step.event);
    EXPECT_EQ(r.consumed, step.consumed);
    if (r.event == Event::kHeadComplete) targets.push_back(parser.head().target);
    if (r.event == Event::kBody) {
      EXPECT_EQ(parser.body(), "abc");
    }
    p += r.consumed;
    left -= r.consumed;
  }
  EXPECT_EQ(left, 0u);
  EXPECT_EQ(targets, (std::vector<std::string>{"/one", "/two", "/three"}));
}

TEST(RequestParser, KeepAliveRules) {
  struct Case {
    const char* version;
    const char* connection;  // nullptr: no Connection header
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1", nullptr, true},
      {"HTTP/1.1", "close", false},
      {"HTTP/1.1", "Close", false},
      {"HTTP/1.1", "keep-alive", true},
      {"HTTP/1.1", "foo, CLOSE", false},
      {"HTTP/1.1", "closed", true},
      {"HTTP/1.0", nullptr, false},
      {"HTTP/1.0", "keep-alive", true},
      {"HTTP/1.0", "Keep-Alive", true},
      {"HTTP/1.0", "te, keep-alive", true},
      {"HTTP/1.0", "keep-alive, close", false},
      {"HTTP/1.0", "close", false},
  };
  for (const Case& c : cases) {
    std::string headers = "Host: a\r\n";
    if (c.connection != nullptr) headers += std::string("Connection: ") + c.connection + "\r\n";
    RequestParser parser(ParserLimits{});
    std::string input = req(headers, std::string("GET / ") + c.version);
    RequestParser::Result r = parser.feed(input.data(), input.size());
    ASSERT_EQ(r.event, Event::kHeadComplete) << c.version << " " << parser.errorReason();
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive)
        << c.version << " Connection: " << (c.connection ? c.connection : "(none)");
  }
}

TEST(RequestParser, ConnectionTokensFromSeveralHeaders) {
  RequestParser parser(ParserLimits{});
  std::string input = req("Host: a\r\nConnection: te\r\nConnection: close\r\n");
  ASSERT_EQ(parser.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_FALSE(parser.head().keep_alive);
}

TEST(RequestParser, Http10WithoutHost) {
  RequestParser parser(ParserLimits{});
  std::string input = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(parser.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_EQ(parser.head().version_minor, 0);
  EXPECT_EQ(parser.head().host, "");
  EXPECT_FALSE(parser.head().keep_alive);
}

TEST(RequestParser, ExpectContinue) {
  RequestParser parser(ParserLimits{});
  std::string input =
      req("Host: a\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n", "PUT /x HTTP/1.1");
  RequestParser::Result r = parser.feed(input.data(), input.size());
  ASSERT_EQ(r.event, Event::kHeadComplete);
  EXPECT_TRUE(parser.head().expect_continue);
  // The server answers 100 Continue, then the body arrives.
  r = parser.feed("data", 4);
  EXPECT_EQ(r.event, Event::kBody);

  RequestParser http10(ParserLimits{});
  input = req("Expect: 100-continue\r\nContent-Length: 4\r\n", "PUT /x HTTP/1.0");
  ASSERT_EQ(http10.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_FALSE(http10.head().expect_continue);  // RFC 9110 §10.1.1
}

TEST(RequestParser, AbsoluteForm) {
  RequestParser parser(ParserLimits{});
  std::string input =
      req("Host: ignored.example\r\n", "GET http://Origin.example:8080/p?q HTTP/1.1");
  ASSERT_EQ(parser.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_EQ(parser.head().target, "http://Origin.example:8080/p?q");
  EXPECT_EQ(parser.head().host, "Origin.example:8080");

  RequestParser no_path(ParserLimits{});
  input = req("Host: a\r\n", "GET https://b.example HTTP/1.1");
  ASSERT_EQ(no_path.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_EQ(no_path.head().host, "b.example");
}

TEST(RequestParser, HostForms) {
  for (const char* host : {"a", "a.example", "a.example:80", "127.0.0.1", "127.0.0.1:8080", "[::1]",
                           "[::1]:443", "xn--caf-dma.example", "a_b.example"}) {
    RequestParser parser(ParserLimits{});
    std::string input = req(std::string("Host: ") + host + "\r\n");
    RequestParser::Result r = parser.feed(input.data(), input.size());
    EXPECT_EQ(r.event, Event::kHeadComplete) << host << ": " << parser.errorReason();
    EXPECT_EQ(parser.head().host, host);
  }
}

TEST(RequestParser, OptionsAsterisk) {
  RequestParser parser(ParserLimits{});
  std::string input = req("Host: a\r\n", "OPTIONS * HTTP/1.1");
  ASSERT_EQ(parser.feed(input.data(), input.size()).event, Event::kHeadComplete);
  EXPECT_EQ(parser.head().method, "OPTIONS");
  EXPECT_EQ(parser.head().target, "*");
}

TEST(RequestParser, UpgradeIsParsedAsAnOrdinaryRequest) {
  std::string input =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input);
  ASSERT_EQ(trace.size(), 4u);
  EXPECT_NE(trace[0].find("GET /ws"), std::string::npos);
  EXPECT_EQ(trace[1], "DONE");
  EXPECT_NE(trace[2].find("GET /next"), std::string::npos);
  EXPECT_EQ(trace[3], "DONE");
  EXPECT_EQ(driveByteByByte(input), trace);
}

TEST(RequestParser, UpgradeWithBodyThenPipelined) {
  std::string input =
      "POST /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: "
      "2\r\n\r\nhi"
      "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  std::vector<std::string> trace = driveWhole(input);
  ASSERT_EQ(trace.size(), 5u);
  EXPECT_EQ(trace[1], "BODY hi");
  EXPECT_NE(trace[3].find("GET /next"), std::string::npos);
  EXPECT_EQ(trace[4], "DONE");
}

TEST(RequestParser, LeadingEmptyLinesAreSkipped) {
  RequestParser parser(ParserLimits{});
  std::vector<std::string> trace = drive(parser, "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(trace.size(), 2u);
  EXPECT_EQ(trace[1], "DONE");
}

TEST(RequestParser, ExtensionMethodsKnownToLlhttp) {
  for (const char* method : {"PATCH", "PURGE", "PROPFIND", "QUERY"}) {
    RequestParser parser(ParserLimits{});
    std::string input = req("Host: a\r\n", std::string(method) + " / HTTP/1.1");
    ASSERT_EQ(parser.feed(input.data(), input.size()).event, Event::kHeadComplete) << method;
    EXPECT_EQ(parser.head().method, method);
  }
}

// ---------------------------------------------------------------------------
// finish().

TEST(RequestParserFinish, CleanCloseBetweenRequests) {
  RequestParser parser(ParserLimits{});
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
  EXPECT_EQ(drive(parser, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", {}, true).back(), "DONE");
}

TEST(RequestParserFinish, TruncatedHead) {
  RequestParser parser(ParserLimits{});
  EXPECT_FALSE(parser.started());
  std::vector<std::string> trace = drive(parser, "GET / HTTP/1.1\r\nHo", {}, true);
  EXPECT_EQ(trace, std::vector<std::string>{"ERROR 400"});
  EXPECT_EQ(parser.errorReason(), "request truncated");
}

TEST(RequestParserFinish, TruncatedBody) {
  RequestParser parser(ParserLimits{});
  std::vector<std::string> trace =
      drive(parser, req("Host: a\r\nContent-Length: 5\r\n", "POST / HTTP/1.1") + "ab", {}, true);
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[1], "BODY ab");
  EXPECT_EQ(trace[2], "ERROR 400");
}

TEST(RequestParserFinish, OnlyEmptyLinesIsAClean) {
  RequestParser parser(ParserLimits{});
  drive(parser, "\r\n\r\n");
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.finish().event, Event::kNeedMore);
}

// ---------------------------------------------------------------------------
// Split invariance: a buffer of varied requests gives the same events fed
// whole, one byte at a time, and split in two at every position.

const std::string kMixed =
    "\r\nGET /a HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n"
    "POST /b?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
    "hello world"
    "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4;name=\"v a\"\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Checksum: 1\r\n\r\n"
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET http://b.example/d HTTP/1.1\r\nHost: b.example\r\n\r\n"
    "GET /e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "HEAD /f HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

TEST(RequestParserSplit, WholeTrace) {
  std::vector<std::string> trace = driveWhole(kMixed);
  ASSERT_EQ(trace.size(), 18u);
  EXPECT_EQ(trace[3], "BODY hello world");
  EXPECT_EQ(trace[6], "BODY wikipedia");
  EXPECT_EQ(trace.back(), "DONE");
  for (const std::string& e : trace)
    EXPECT_EQ(e.find("ERROR"), std::string::npos) << e;
}

TEST(RequestParserSplit, ByteByByte) {
  EXPECT_EQ(driveByteByByte(kMixed), driveWhole(kMixed));
}

TEST(RequestParserSplit, EverySplitPoint) {
  std::vector<std::string> whole = driveWhole(kMixed);
  for (size_t i = 1; i < kMixed.size(); ++i) {
    RequestParser parser(ParserLimits{});
    ASSERT_EQ(drive(parser, kMixed, {i}), whole) << "split at " << i;
  }
}

TEST(RequestParserSplit, EveryPairOfSplitPointsInTheChunkedRequest) {
  std::string input = kChunkedPost + "4;a=b\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n";
  std::vector<std::string> whole = driveWhole(input);
  for (size_t i = 1; i < input.size(); ++i) {
    for (size_t j = i + 1; j < input.size(); ++j) {
      RequestParser parser(ParserLimits{});
      ASSERT_EQ(drive(parser, input, {i, j}), whole) << "split at " << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace sluice::http

namespace sluice::http {
namespace {

// Deterministic mutations of valid traffic (flip, insert, delete, duplicate a
// byte): whatever the outcome, it must not depend on how the bytes arrive.
std::string mutate(std::string s, uint32_t* state) {
  auto next = [state] {
    *state = *state * 1103515245u + 12345u;  // fixed-seed LCG: reproducible
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

TEST(RequestParserSplit, MutatedInputIsSplitInvariant) {
  uint32_t state = 12345;
  int errors = 0;
  for (int round = 0; round < 400; ++round) {
    std::string input = mutate(kMixed, &state);
    std::vector<std::string> whole = driveWhole(input);
    if (whole.back().rfind("ERROR", 0) == 0) ++errors;
    ASSERT_EQ(driveByteByByte(input), whole) << "round " << round;
    size_t cut = state % input.size();
    RequestParser parser(ParserLimits{});
    ASSERT_EQ(drive(parser, input, {cut}), whole) << "round " << round << " cut " << cut;
  }
  // The mutations reach both the error paths and the accepting ones.
  EXPECT_GT(errors, 100);
  EXPECT_LT(errors, 400);
}

}  // namespace
}  // namespace sluice::http
