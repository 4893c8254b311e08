// ResponseParser: strict HTTP/1.1 response parsing on llhttp (no lenient
// flags) for upstream connections, with the same event style as
// RequestParser (see docs/http.md). Owned by one upstream connection.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/llhttp_support.h"
#include "http/message.h"

namespace sluice::http {

class ResponseParser {
 public:
  enum class Event {
    kNeedMore,         // everything given was consumed; feed more bytes
    kHeadComplete,     // head() is ready (a 1xx interim head or the final one)
    kBody,             // body() holds a piece of body (points into the fed buffer)
    kMessageComplete,  // the response (or the 1xx interim response) ended
    kError,            // errorReason() says why; the connection must close
  };

  struct Result {
    Event event;
    size_t consumed;  // bytes of the input used up to and including this event
  };

  // `max_chunk_line_bytes` bounds one chunk line (size, extensions, CRLF), as
  // ParserLimits does for requests.
  explicit ResponseParser(uint64_t max_header_bytes = 64 * 1024, uint32_t max_headers = 200,
                          uint64_t max_chunk_line_bytes = 16 * 1024);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Call before each response is parsed with the method of the request it
  // answers: a response to HEAD has no body whatever its headers say
  // (RFC 9112 §6.3 rule 1). Holds through 1xx interim responses until the
  // final response completes; without a call, a body is expected as usual.
  // `upgrade`: the request asked to switch protocols (Upgrade) and may be
  // answered 101; otherwise a 101 is an error.
  void expectResponseTo(std::string_view request_method, bool upgrade = false);

  // Parses from `data`; returns at the first event. Call again with the
  // unconsumed rest, also when nothing is left (a response without a body
  // may report kMessageComplete from a call that consumes 0 bytes). Bytes
  // after a complete response are never consumed in the same call: the
  // parser stops at kMessageComplete. After kError, every call returns kError.
  //
  // A 1xx interim response (100 Continue, 103 Early Hints) is reported as
  // kHeadComplete + kMessageComplete with head().status < 200; keep feeding
  // for the final response to the same request. A 101 to a request that
  // asked to upgrade is the final response (after it the bytes belong to the
  // new protocol: stop feeding); to any other request it is an error.
  Result feed(const char* data, size_t len);

  // The upstream closed its side. Completes a body delimited by the close
  // (kMessageComplete); reports kError when a head or a Content-Length or
  // chunked body was cut short; kNeedMore when no response was in progress.
  Result finish();

  // Valid from kHeadComplete until the next response starts.
  const ResponseHead& head() const { return head_; }
  // Valid until the next feed() call.
  std::string_view body() const { return body_; }
  // The trailer fields of a chunked message (names as received, values
  // trimmed); valid from its kMessageComplete until the next message starts.
  const std::vector<Header>& trailers() const { return trailers_; }
  // True between kHeadComplete and kMessageComplete.
  bool inMessage() const { return in_message_; }
  // True once any byte of the current response has been seen.
  bool started() const { return started_; }

  const std::string& errorReason() const { return error_reason_; }  // for the error log

 private:
  friend struct ResponseParserCallbacks;

  void resetMessage();
  int fail(std::string reason);
  uint64_t sectionLimit() const;  // see RequestParser
  int finishHeader();
  int completeHead();
  int finishTrailer();
  void completeMessage();

  uint64_t max_header_bytes_;
  uint32_t max_headers_;
  uint64_t max_chunk_line_bytes_;
  llhttp_t parser_;
  ResponseHead head_;
  detail::HeadFields fields_;
  std::string_view body_;
  Event pending_event_ = Event::kNeedMore;  // set by the callback that paused llhttp
  // A bodiless response ends inside the same llhttp pause as its head;
  // kMessageComplete is then reported by the next feed()/finish() call.
  bool complete_pending_ = false;
  // The pause only marks a section boundary; feed() goes on silently.
  bool silent_pause_ = false;

  bool skip_body_ = false;        // the request was HEAD
  bool upgrade_allowed_ = false;  // the request asked to upgrade: a 101 may end it
  detail::SectionBudget budget_;
  uint32_t header_count_ = 0;
  uint32_t trailer_count_ = 0;
  std::vector<Header> trailers_;
  std::string trailer_name_;
  std::string trailer_value_;
  bool in_message_ = false;
  bool started_ = false;
  bool closed_ = false;  // finish() was called
  bool failed_ = false;
  std::string error_reason_;
};

}  // namespace sluice::http
