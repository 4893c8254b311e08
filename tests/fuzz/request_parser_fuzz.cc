// libFuzzer target: the strict request parser on arbitrary bytes. Besides
// "no crash, no sanitizer report", it checks a property: feeding the input
// whole and feeding it split at a point chosen by the input itself must give
// the same sequence of events and the same heads (no state depends on how
// bytes arrive).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "http/request_parser.h"

namespace {

using sluice::http::RequestParser;

struct Trace {
  std::vector<int> events;
  std::string heads;  // method, target, version, framing of each head
  std::string body;
  int error_status = 0;
};

void feedAll(RequestParser& parser, const char* data, size_t len, Trace* trace) {
  size_t offset = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    RequestParser::Result r = parser.feed(data + offset, len - offset);
    offset += r.consumed;
    if (r.event == RequestParser::Event::kNeedMore) return;
    trace->events.push_back(static_cast<int>(r.event));
    if (r.event == RequestParser::Event::kHeadComplete) {
      const auto& head = parser.head();
      trace->heads += head.method + " " + head.target + " " + std::to_string(head.version_minor) +
                      " " + std::to_string(static_cast<int>(head.framing)) + " " +
                      std::to_string(head.content_length) + "|";
    }
    if (r.event == RequestParser::Event::kBody) trace->body.append(parser.body());
    if (r.event == RequestParser::Event::kError) {
      trace->error_status = parser.errorStatus();
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  sluice::http::ParserLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_headers = 32;
  limits.max_body_bytes = 1 << 20;
  limits.max_chunk_line_bytes = 64;  // small enough for mutations to reach it
  const size_t split = data[0] % (size);
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const size_t len = size - 1;

  Trace whole;
  {
    RequestParser parser(limits);
    feedAll(parser, bytes, len, &whole);
  }
  Trace pieces;
  {
    RequestParser parser(limits);
    size_t first = split < len ? split : len;
    feedAll(parser, bytes, first, &pieces);
    if (pieces.error_status == 0) feedAll(parser, bytes + first, len - first, &pieces);
  }
  // Events may be reported in more pieces (body), so compare what they say.
  if (whole.heads != pieces.heads || whole.body != pieces.body ||
      whole.error_status != pieces.error_status) {
    std::abort();
  }
  return 0;
}
