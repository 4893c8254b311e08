// libFuzzer target: the upstream response parser on arbitrary bytes, for
// each request method that changes framing (GET, HEAD), including finish()
// at end of input as when an upstream closes. Each head also goes through
// what the proxy does with it (the client head, the Keep-Alive hint).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/response_parser.h"
#include "proxy/forwarding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const char* method : {"GET", "HEAD"}) {
    sluice::http::ResponseParser parser(4096, 32, /*max_chunk_line_bytes=*/64);
    parser.expectResponseTo(method);
    const char* bytes = reinterpret_cast<const char*>(data);
    size_t offset = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      auto r = parser.feed(bytes + offset, size - offset);
      offset += r.consumed;
      if (r.event == sluice::http::ResponseParser::Event::kError) break;
      if (r.event == sluice::http::ResponseParser::Event::kHeadComplete) {
        sluice::Buffer client_head;
        sluice::proxy::appendClientResponseHeaders(parser.head(), client_head);
        if (sluice::proxy::keepAliveTimeoutMs(parser.head()) < 0) std::abort();
      }
      if (r.event == sluice::http::ResponseParser::Event::kNeedMore) {
        parser.finish();
        break;
      }
      if (r.event == sluice::http::ResponseParser::Event::kMessageComplete &&
          parser.head().status >= 200) {
        parser.expectResponseTo(method);
      }
    }
  }
  return 0;
}
