// How message bodies are delimited on the wire when sluice writes them, and
// the chunked encoding itself. Shared by ServerCodec and ClientCodec, which
// own all framing; nothing outside them writes Content-Length,
// Transfer-Encoding or chunk bytes. Stateless.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "buffer/buffer.h"
#include "http/message.h"

namespace sluice::http {

// What the producer of a body knows about its size.
struct BodySize {
  enum class Kind : uint8_t {
    kNone,     // no body follows
    kKnown,    // exactly `length` bytes
    kUnknown,  // streamed until its end (chunked upstream, close-delimited)
  };
  Kind kind = Kind::kNone;
  uint64_t length = 0;
  // For kNone: the length the body *would* have, when known — a response
  // to HEAD or a 304 may state it (RFC 9110 §8.6); nothing else may.
  bool has_entity_length = false;

  static BodySize none() { return {}; }
  static BodySize known(uint64_t n) { return {Kind::kKnown, n, false}; }
  static BodySize unknown() { return {Kind::kUnknown, 0, false}; }
  static BodySize noneButLength(uint64_t n) { return {Kind::kNone, n, true}; }
};

enum class WireFraming : uint8_t {
  kNoBody,
  kContentLength,
  kChunked,
  kUntilClose,  // the end of the body is the end of the connection
};

// "<hex>\r\n<data>\r\n"; nothing for empty data (an empty chunk would end the body).
void appendChunk(std::string_view data, Buffer& out);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";
// The last chunk with a trailer section ("0\r\n" fields "\r\n"); only the
// fields `keep` accepts are written.
void appendLastChunk(const std::vector<Header>& trailers, bool (*keep)(std::string_view name),
                     Buffer& out);

void appendDecimal(uint64_t n, Buffer& out);

}  // namespace sluice::http
