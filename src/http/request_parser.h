// RequestParser: strict HTTP/1.1 request parsing on llhttp (no lenient flags)
// plus the checks llhttp leaves to us (see docs/http.md). Incremental: feed
// bytes as they arrive; it stops after each head, each body piece and each
// message end so the caller can act (route, stream, answer pipelined
// requests in order). Owned by one client connection.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/llhttp_support.h"
#include "http/message.h"

namespace sluice::http {

struct ParserLimits {
  uint64_t max_header_bytes = 16 * 1024;  // request line + headers
  uint32_t max_headers = 100;
  uint64_t max_body_bytes = 0;  // 0 = unlimited
  // One chunk line: size, extensions and CRLF. Node.js bounds the same bytes
  // at 16 KiB since CVE-2024-22019; nothing legitimate comes near it.
  uint64_t max_chunk_line_bytes = 16 * 1024;
};

class RequestParser {
 public:
  enum class Event {
    kNeedMore,         // everything given was consumed; feed more bytes
    kHeadComplete,     // head() is ready; feed the rest to continue with the body
    kBody,             // body() holds a piece of body (points into the fed buffer)
    kMessageComplete,  // the request ended; the parser is ready for the next one
    kError,            // errorStatus()/errorReason() say why; the connection must close
  };

  struct Result {
    Event event;
    size_t consumed;  // bytes of the input used up to and including this event
  };

  explicit RequestParser(const ParserLimits& limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Back to the state of a new connection (llhttp_reset keeps the settings).
  void reset();

  // Parses from `data`; returns at the first event. Call again with the
  // unconsumed rest — also when nothing is left: a request without a body
  // reports kMessageComplete from a call that consumes 0 bytes after its
  // kHeadComplete. Keep calling until kNeedMore (or kError).
  // After kError, every call returns kError.
  Result feed(const char* data, size_t len);
  // The peer closed its side: returns kError if a request was partially read
  // (so the caller can tell a truncated request from a clean close), else kNeedMore.
  Result finish();

  // Valid from kHeadComplete until the next request starts.
  const RequestHead& head() const { return head_; }
  // Valid until the next feed() call.
  std::string_view body() const { return body_; }
  // The trailer fields of a chunked message (names as received, values
  // trimmed); valid from its kMessageComplete until the next message starts.
  const std::vector<Header>& trailers() const { return trailers_; }
  // True between kHeadComplete and kMessageComplete.
  bool inMessage() const { return in_message_; }
  // True once any byte of the current request has been seen.
  bool started() const { return started_; }

  int errorStatus() const { return error_status_; }  // 400, 413, 414, 431, 501 or 505
  const std::string& errorReason() const { return error_reason_; }  // for the error log

 private:
  // llhttp callbacks (static trampolines in the .cc).
  friend struct ParserCallbacks;

  void resetMessage();
  int fail(int status, std::string reason);
  void failFromLlhttp(llhttp_errno_t err);
  // Absolute stream offset of a pointer into the buffer being executed.
  uint64_t streamOffset(const char* at) const {
    return exec_offset_ + static_cast<uint64_t>(at - exec_base_);
  }
  // The byte budget of the current section: head and trailers
  // max_header_bytes, a chunk line max_chunk_line_bytes, a body none here
  // (max_body_bytes is checked per piece).
  uint64_t sectionLimit() const;
  // Fails with the status of the section whose budget ran out.
  void failSectionTooLarge();
  int checkTarget();
  int completeHead();
  int finishTrailer();
  int finishHeader();

  ParserLimits limits_;
  llhttp_t parser_;
  RequestHead head_;
  detail::HeadFields fields_;
  std::string_view body_;
  Event pending_event_ = Event::kNeedMore;  // set by the callback that paused llhttp
  // The pause only marks a section boundary (chunk header, chunk end): feed()
  // resumes and goes on without reporting an event.
  bool silent_pause_ = false;

  // Where llhttp is in the stream, so request-line spans can be checked for
  // exactly one SP between the parts (llhttp skips extra spaces).
  const char* exec_base_ = nullptr;
  uint64_t exec_offset_ = 0;  // stream offset of exec_base_
  uint64_t method_start_ = 0;
  uint64_t target_start_ = 0;
  uint64_t version_start_ = 0;
  bool version_started_ = false;
  // Absolute-form target: where its authority sits in head_.target.
  bool absolute_form_ = false;
  size_t authority_pos_ = 0;
  size_t authority_len_ = 0;

  detail::SectionBudget budget_;
  uint64_t body_bytes_ = 0;
  uint32_t header_count_ = 0;
  uint32_t trailer_count_ = 0;
  std::vector<Header> trailers_;
  std::string trailer_name_;
  std::string trailer_value_;
  uint32_t host_count_ = 0;
  bool version_seen_ = false;
  bool request_line_done_ = false;
  bool in_message_ = false;
  bool started_ = false;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace sluice::http
