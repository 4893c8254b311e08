// What RequestParser and ResponseParser share on top of llhttp: small
// helpers for its callbacks and its execute loop. Internal to src/http (the
// parsers' public headers do not include it); stateless.
#pragma once

#include <llhttp.h>

namespace sluice::http {

// Tells llhttp that the message is chunked once sluice's own check
// (classifyTransferEncoding() == kChunked) says so. Call from
// on_headers_complete.
//
// llhttp's strict Transfer-Encoding state machine skips only SP after
// `chunked` (src/llhttp/http.ts, node header_value_te_chunked_last); an HTAB
// there — OWS, which RFC 9110 §5.5 excludes from the value — sends it to
// "some other coding", so it refuses `chunked<HTAB>` in a request ("Request
// has invalid Transfer-Encoding") and reads such a response until close while
// sluice's head says chunked. No lenient flag fixes only that (lenient
// transfer-encoding would accept every non-chunked coding), so sluice sets the
// flag that `chunked<SP>` would have set: llhttp then decides the framing in
// llhttp__after_headers_complete() exactly as for `chunked<SP>`. It is set only
// for values sluice has already judged to be one `chunked` coding, and sluice
// has already refused Content-Length with Transfer-Encoding and repeated
// Transfer-Encoding headers.
inline void markChunkedForLlhttp(llhttp_t* parser) {
  parser->flags |= F_CHUNKED;
}

}  // namespace sluice::http
