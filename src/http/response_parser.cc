#include "http/response_parser.h"

#include <utility>

#include "http/llhttp_support.h"

namespace sluice::http {

using detail::HeadFields;
using detail::Section;

// Static trampolines from llhttp's C callbacks (see RequestParser's).
struct ResponseParserCallbacks {
  static ResponseParser* self(llhttp_t* p) { return static_cast<ResponseParser*>(p->data); }

  static int onMessageBegin(llhttp_t* p) {
    ResponseParser* s = self(p);
    s->resetMessage();
    s->started_ = true;
    return 0;
  }

  static int onStatus(llhttp_t* p, const char* at, size_t len) {
    self(p)->head_.reason.append(at, len);
    return 0;
  }

  static int onVersionComplete(llhttp_t* p) {
    // llhttp accepts HTTP/0.9 and HTTP/2.0 status lines.
    if (p->http_major != 1 || p->http_minor > 1) {
      return self(p)->fail("unsupported HTTP version in response");
    }
    return 0;
  }

  static int onHeaderField(llhttp_t* p, const char* at, size_t len) {
    ResponseParser* s = self(p);
    if (s->in_message_) {  // a trailer (bounded as raw bytes by the section budget)
      s->trailer_name_.append(at, len);
      return 0;
    }
    s->fields_.appendName(at, len);
    return 0;
  }

  static int onHeaderFieldComplete(llhttp_t* p) {
    ResponseParser* s = self(p);
    uint32_t& count = s->in_message_ ? s->trailer_count_ : s->header_count_;
    if (++count > s->max_headers_) return s->fail("too many response header fields");
    return 0;
  }

  static int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
    ResponseParser* s = self(p);
    if (s->in_message_) {
      s->trailer_value_.append(at, len);
      return 0;
    }
    s->fields_.appendValue(at, len);
    return 0;
  }

  static int onHeaderValueComplete(llhttp_t* p) {
    ResponseParser* s = self(p);
    if (s->in_message_) return s->finishTrailer();
    return s->finishHeader();
  }

  static int onHeadersComplete(llhttp_t* p) { return self(p)->completeHead(); }

  static int onChunkHeader(llhttp_t* p) {
    ResponseParser* s = self(p);
    // The chunk line ends here; size 0 is the last chunk, trailers follow.
    s->budget_.enter(p->content_length == 0 ? Section::kTrailers : Section::kBody);
    s->silent_pause_ = true;
    return HPE_PAUSED;
  }

  static int onChunkComplete(llhttp_t* p) {
    ResponseParser* s = self(p);
    // Also called after the trailer section; the message ends next.
    if (s->budget_.section() == Section::kTrailers) return 0;
    s->budget_.enter(Section::kChunkLine);
    s->silent_pause_ = true;
    return HPE_PAUSED;
  }

  static int onBody(llhttp_t* p, const char* at, size_t len) {
    ResponseParser* s = self(p);
    if (len == 0) return 0;  // llhttp's end-of-buffer span flush
    s->body_ = std::string_view(at, len);
    s->pending_event_ = ResponseParser::Event::kBody;
    return HPE_PAUSED;
  }

  static int onMessageComplete(llhttp_t* p) {
    ResponseParser* s = self(p);
    s->budget_.enter(Section::kHead);
    // A bodiless response: the head event is still to be reported; the
    // completion follows on the next call (complete_pending_).
    if (!s->complete_pending_) {
      s->completeMessage();
      s->pending_event_ = ResponseParser::Event::kMessageComplete;
    }
    return HPE_PAUSED;
  }
};

// The callbacks are the same for every parser, so one settings table is
// shared (llhttp only reads it): a connection does not carry its own copy.
static const llhttp_settings_t* responseParserSettings() {
  static const llhttp_settings_t table = [] {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_message_begin = &ResponseParserCallbacks::onMessageBegin;
    settings.on_status = &ResponseParserCallbacks::onStatus;
    settings.on_version_complete = &ResponseParserCallbacks::onVersionComplete;
    settings.on_header_field = &ResponseParserCallbacks::onHeaderField;
    settings.on_header_field_complete = &ResponseParserCallbacks::onHeaderFieldComplete;
    settings.on_header_value = &ResponseParserCallbacks::onHeaderValue;
    settings.on_header_value_complete = &ResponseParserCallbacks::onHeaderValueComplete;
    settings.on_headers_complete = &ResponseParserCallbacks::onHeadersComplete;
    settings.on_chunk_header = &ResponseParserCallbacks::onChunkHeader;
    settings.on_chunk_complete = &ResponseParserCallbacks::onChunkComplete;
    settings.on_body = &ResponseParserCallbacks::onBody;
    settings.on_message_complete = &ResponseParserCallbacks::onMessageComplete;
    // No lenient flags (see RequestParser).
    return settings;
  }();
  return &table;
}

ResponseParser::ResponseParser(uint64_t max_header_bytes, uint32_t max_headers,
                               uint64_t max_chunk_line_bytes)
    : max_header_bytes_(max_header_bytes),
      max_headers_(max_headers),
      max_chunk_line_bytes_(max_chunk_line_bytes) {
  llhttp_init(&parser_, HTTP_RESPONSE, responseParserSettings());
  parser_.data = this;
}

ResponseParser::~ResponseParser() = default;

void ResponseParser::expectResponseTo(std::string_view request_method, bool upgrade) {
  skip_body_ = request_method == "HEAD";
  upgrade_allowed_ = upgrade;
}

void ResponseParser::resetMessage() {
  head_.status = 0;
  head_.reason.clear();
  head_.version_major = 1;
  head_.version_minor = 1;
  fields_.recycle(&head_.headers);
  head_.framing = BodyFraming::kNone;
  head_.content_length = 0;
  head_.keep_alive = true;
  fields_.reset();
  header_count_ = 0;
  trailer_count_ = 0;
  trailers_.clear();
  trailer_name_.clear();
  trailer_value_.clear();
}

int ResponseParser::fail(std::string reason) {
  if (!failed_) {
    failed_ = true;
    error_reason_ = std::move(reason);
  }
  return HPE_USER;
}

uint64_t ResponseParser::sectionLimit() const {
  switch (budget_.section()) {
    case Section::kHead:
    case Section::kTrailers:
      return max_header_bytes_;
    case Section::kChunkLine:
      return max_chunk_line_bytes_;
    case Section::kBody:
      break;
  }
  return 0;  // unbounded
}

int ResponseParser::finishHeader() {
  switch (fields_.finish(&head_.content_length)) {
    case HeadFields::Problem::kNone:
      break;
    case HeadFields::Problem::kControlChar:
      return fail("control character in response header value");
    case HeadFields::Problem::kRepeatedContentLength:
      return fail("multiple Content-Length headers in response");
    case HeadFields::Problem::kInvalidContentLength:
      return fail("invalid Content-Length in response");
    case HeadFields::Problem::kRepeatedTransferEncoding:
      return fail("multiple Transfer-Encoding headers in response");
  }
  fields_.take(&head_.headers);
  return 0;
}

int ResponseParser::finishTrailer() {
  // Kept for the proxy to forward (when the next hop accepts trailers);
  // what a trailer may carry is the proxy's call (RFC 9110 §6.5.1).
  std::string_view value = trimOws(trailer_value_);
  trailers_.push_back(Header{std::move(trailer_name_), std::string(value)});
  trailer_name_.clear();
  trailer_value_.clear();
  return 0;
}

int ResponseParser::completeHead() {
  head_.status = parser_.status_code;
  head_.version_major = parser_.http_major;
  head_.version_minor = parser_.http_minor;
  const int status = head_.status;
  // RFC 9110 §15: status codes are 100..599 (llhttp takes any three digits).
  if (status < 100 || status > 599) return fail("invalid status code");
  if (hasControlChar(head_.reason)) return fail("control character in reason phrase");
  // RFC 9110 §15.2.2: 101 answers a request that asked to upgrade; one
  // nobody asked for cannot be relayed (the client would not expect the
  // bytes that follow).
  if (status == 101 && !upgrade_allowed_) {
    return fail("101 Switching Protocols to a request that did not ask to upgrade");
  }

  const bool http11 = head_.version_minor == 1;
  const bool has_te = fields_.transferEncodingCount() > 0;
  // RFC 9112 §6.3 rule 3: CL with TE "ought to be handled as an error".
  if (has_te && fields_.contentLengthCount() > 0) {
    return fail("Content-Length with Transfer-Encoding in response");
  }
  // RFC 9112 §6.1: TE in an HTTP/1.0 message means faulty framing.
  if (has_te && !http11) return fail("Transfer-Encoding in an HTTP/1.0 response");
  // The proxy strips Transfer-Encoding as hop-by-hop; forwarding a body that
  // is still gzip- or otherwise transfer-coded without it would corrupt it.
  if (has_te && classifyTransferEncoding(head_.find("Transfer-Encoding")->value) !=
                    TransferCoding::kChunked) {
    return fail("unsupported Transfer-Encoding in response");
  }

  // RFC 9112 §6.3 rule 1: HEAD responses, 1xx, 204 and 304 have no body.
  const bool no_body = skip_body_ || status < 200 || status == 204 || status == 304;
  if (no_body) {
    head_.framing = BodyFraming::kNone;
    head_.content_length = 0;
  } else if (has_te) {
    head_.framing = BodyFraming::kChunked;
    detail::markChunkedForLlhttp(&parser_);
  } else if (fields_.contentLengthCount() > 0) {
    head_.framing = BodyFraming::kContentLength;
  } else {
    head_.framing = BodyFraming::kUntilClose;  // rule 8
  }
  head_.keep_alive = fields_.persistent(http11) && head_.framing != BodyFraming::kUntilClose;

  in_message_ = true;
  budget_.enter(head_.framing == BodyFraming::kChunked ? Section::kChunkLine : Section::kBody);
  pending_event_ = Event::kHeadComplete;
  if (no_body) {
    // 1 = "no body" for llhttp, which then completes the message at once;
    // on_message_complete pauses and the completion is reported next call.
    complete_pending_ = true;
    return 1;
  }
  return HPE_PAUSED;
}

void ResponseParser::completeMessage() {
  in_message_ = false;
  started_ = false;
  // The request's method applies until its final (non-1xx) response.
  if (head_.status >= 200 || head_.status == 101) {
    skip_body_ = false;
    upgrade_allowed_ = false;
  }
}

ResponseParser::Result ResponseParser::feed(const char* data, size_t len) {
  body_ = {};
  if (failed_) return {Event::kError, 0};
  if (closed_) {
    fail("data fed after the upstream closed");
    return {Event::kError, 0};
  }
  if (complete_pending_) {
    complete_pending_ = false;
    completeMessage();
    return {Event::kMessageComplete, 0};
  }
  size_t offset = 0;
  while (true) {
    // As for requests: never more than the current section may still grow by.
    const uint64_t limit = sectionLimit();
    const uint64_t serial = budget_.serial();
    const size_t chunk = budget_.room(len - offset, limit);
    llhttp_errno_t err;
    const size_t used = detail::executeCounted(&parser_, data + offset, chunk, &err);
    offset += used;
    budget_.account(serial, used);

    switch (err) {
      case HPE_OK:
        if (budget_.exhausted(limit) &&
            (budget_.section() != Section::kHead || started_ || offset < len)) {
          const Section section = budget_.section();
          fail(section == Section::kHead        ? "response head too large"
               : section == Section::kChunkLine ? "chunk line too long in response (chunk size "
                                                  "and extensions)"
                                                : "response trailer section too large");
          return {Event::kError, offset};
        }
        if (offset < len) continue;
        return {Event::kNeedMore, offset};
      case HPE_PAUSED:
        llhttp_resume(&parser_);
        if (silent_pause_) {
          silent_pause_ = false;
          if (offset < len) continue;
          return {Event::kNeedMore, offset};
        }
        return {pending_event_, offset};
      default: {
        if (!failed_) {
          const char* reason = llhttp_get_error_reason(&parser_);
          fail(reason != nullptr && *reason != '\0' ? reason : llhttp_errno_name(err));
        }
        return {Event::kError, offset};
      }
    }
  }
}

ResponseParser::Result ResponseParser::finish() {
  if (failed_) return {Event::kError, 0};
  closed_ = true;
  if (complete_pending_) {
    complete_pending_ = false;
    completeMessage();
    return {Event::kMessageComplete, 0};
  }
  if (in_message_ && head_.framing == BodyFraming::kUntilClose) {
    completeMessage();
    return {Event::kMessageComplete, 0};
  }
  if (started_) {
    fail("upstream closed mid-message");
    return {Event::kError, 0};
  }
  return {Event::kNeedMore, 0};
}

}  // namespace sluice::http
