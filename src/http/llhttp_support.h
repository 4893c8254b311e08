// What RequestParser and ResponseParser share on top of llhttp: the byte
// budget of the part of a message llhttp is in, the header fields both
// interpret, and small helpers for llhttp's callbacks and execute loop.
// Members of one parser each (value types); internal to src/http, hence
// namespace detail (the parser headers include it for their members).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace sluice::http::detail {

// The part of a message llhttp is in. The bounded parts get a budget of raw
// bytes, and a parser never hands llhttp more than the part may still grow
// by, so an oversized part is caught at its limit, not after buffering it.
enum class Section {
  kHead,       // leading empty lines, start line, fields
  kBody,       // Content-Length body or chunk data (unbounded here)
  kChunkLine,  // chunk size (leading zeros too), extensions, CRLF
  kTrailers,   // the trailer section after the last chunk
};

class SectionBudget {
 public:
  Section section() const { return section_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t serial() const { return serial_; }

  // Called at the llhttp pause that ends the previous section, so that the
  // bytes of one llhttp_execute() always belong to one section.
  void enter(Section section) {
    section_ = section;
    bytes_ = 0;
    ++serial_;
  }
  // How many of `available` bytes llhttp may get (`limit` 0 = unbounded).
  size_t room(size_t available, uint64_t limit) const {
    if (limit == 0) return available;
    const uint64_t left = bytes_ < limit ? limit - bytes_ : 0;
    return available > left ? static_cast<size_t>(left) : available;
  }
  // After an execute that started when serial() was `serial_at_start`: a
  // section entered since then has consumed nothing yet.
  void account(uint64_t serial_at_start, size_t used) {
    if (serial_ == serial_at_start) bytes_ += used;
  }
  bool exhausted(uint64_t limit) const { return limit != 0 && bytes_ >= limit; }

 private:
  Section section_ = Section::kHead;
  uint64_t bytes_ = 0;
  uint64_t serial_ = 0;
};

// Runs llhttp on `len` bytes and returns how many it used: all on HPE_OK,
// else those before its error position (for a pause: up to the event).
inline size_t executeCounted(llhttp_t* parser, const char* data, size_t len, llhttp_errno_t* err) {
  // llhttp restarts an open span (a body piece) at the pointer it is given;
  // an empty Buffer without storage gives nullptr, which would make the next
  // piece start at address 0 (and measure the pointer's value in bytes).
  static constexpr char kNothing = 0;
  if (data == nullptr) data = &kNothing;
  *err = llhttp_execute(parser, data, len);
  if (*err == HPE_OK) return len;
  const char* pos = llhttp_get_error_pos(parser);
  return pos != nullptr && pos >= data && pos <= data + len ? static_cast<size_t>(pos - data) : 0;
}

// The header fields of a head as llhttp hands them over, and the ones that
// decide framing and persistence, judged the same way for both directions.
class HeadFields {
 public:
  enum class Problem {
    kNone,
    kControlChar,            // RFC 9110 §5.5; would split a re-serialized head
    kRepeatedContentLength,  // even equal repeats: a smuggling vector when hops differ
    kInvalidContentLength,
    kRepeatedTransferEncoding,
  };

  // clear() rather than reassignment keeps the capacity for the next head.
  void reset() {
    name_.clear();
    value_.clear();
    content_length_count_ = 0;
    transfer_encoding_count_ = 0;
    connection_close_ = false;
    connection_keep_alive_ = false;
  }
  void appendName(const char* at, size_t len) { name_.append(at, len); }
  void appendValue(const char* at, size_t len) { value_.append(at, len); }

  // Ends the current field: trims its value (llhttp strips leading OWS, the
  // trailing OWS is part of its span), checks it and notes the framing
  // fields (Content-Length into *content_length). Then name()/value() are
  // the field, until take().
  Problem finish(uint64_t* content_length);
  std::string_view name() const { return name_; }
  std::string_view value() const { return value_; }
  // Appends the finished field to `headers`, into a Header kept from an
  // earlier head when there is one (its strings keep their storage).
  void take(std::vector<Header>* headers);
  // Empties `headers`, keeping its Headers for the next head's take(): a
  // parser that is reused (keep-alive) allocates nothing per message once
  // its fields have been this large before.
  void recycle(std::vector<Header>* headers);

  uint32_t contentLengthCount() const { return content_length_count_; }
  uint32_t transferEncodingCount() const { return transfer_encoding_count_; }
  // RFC 9112 §9.3: HTTP/1.1 persists unless a `close` token; HTTP/1.0 only
  // with `keep-alive` and no `close`.
  bool persistent(bool http11) const {
    return http11 ? !connection_close_ : connection_keep_alive_ && !connection_close_;
  }

 private:
  std::string name_;
  std::string value_;
  std::vector<Header> spare_;  // recycled Headers, their strings' storage kept
  uint32_t content_length_count_ = 0;
  uint32_t transfer_encoding_count_ = 0;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
};

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

}  // namespace sluice::http::detail
