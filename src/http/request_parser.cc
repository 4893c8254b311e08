#include "http/request_parser.h"

#include <utility>

#include "http/llhttp_support.h"

namespace sluice::http {

using detail::HeadFields;
using detail::Section;

namespace {

constexpr int kStatusBadRequest = 400;
constexpr int kStatusContentTooLarge = 413;
constexpr int kStatusUriTooLong = 414;
constexpr int kStatusFieldsTooLarge = 431;
constexpr int kStatusNotImplemented = 501;
constexpr int kStatusVersionNotSupported = 505;

}  // namespace

// Static trampolines from llhttp's C callbacks into the parser. Each returns
// 0 to go on, HPE_PAUSED to stop llhttp right after an event (so feed() can
// report it with an exact byte count), or HPE_USER after fail().
struct ParserCallbacks {
  static RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

  static int onMessageBegin(llhttp_t* p) {
    RequestParser* s = self(p);
    s->resetMessage();
    s->started_ = true;
    return 0;
  }

  static int onMethod(llhttp_t* p, const char* at, size_t len) {
    RequestParser* s = self(p);
    if (s->head_.method.empty()) s->method_start_ = s->streamOffset(at);
    s->head_.method.append(at, len);
    return 0;
  }

  static int onMethodComplete(llhttp_t* p) {
    // CONNECT turns the connection into a tunnel; sluice is a reverse proxy
    // and has no tunnel mode (RFC 9110 §9.3.6).
    if (p->method == HTTP_CONNECT) {
      return self(p)->fail(kStatusNotImplemented, "CONNECT is not supported");
    }
    return 0;
  }

  static int onUrl(llhttp_t* p, const char* at, size_t len) {
    RequestParser* s = self(p);
    if (s->head_.target.empty()) s->target_start_ = s->streamOffset(at);
    s->head_.target.append(at, len);
    return 0;
  }

  static int onUrlComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    // RFC 9112 §3: exactly one SP after the method. llhttp skips extra
    // spaces; a server that splits on single spaces would read a different
    // target, so refuse the difference. (Checked here rather than in the span
    // callback so the outcome does not depend on how the input was split.)
    if (s->target_start_ != s->method_start_ + s->head_.method.size() + 1) {
      return s->fail(kStatusBadRequest, "extra whitespace in request line");
    }
    return s->checkTarget();
  }

  static int onVersion(llhttp_t* p, const char* at, size_t /*len*/) {
    RequestParser* s = self(p);
    if (!s->version_started_) {
      s->version_started_ = true;
      s->version_start_ = s->streamOffset(at);
    }
    return 0;
  }

  static int onVersionComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    s->version_seen_ = true;
    s->request_line_done_ = true;
    // " HTTP/" sits between the target and the version digits.
    if (s->version_start_ != s->target_start_ + s->head_.target.size() + 6) {
      return s->fail(kStatusBadRequest, "extra whitespace in request line");
    }
    s->head_.version_major = p->http_major;
    s->head_.version_minor = p->http_minor;
    // llhttp accepts HTTP/0.9 and HTTP/2.0 request lines; sluice speaks
    // HTTP/1.0 and 1.1 only (RFC 9110 §15.6.6).
    if (p->http_major != 1 || p->http_minor > 1) {
      return s->fail(kStatusVersionNotSupported, "unsupported HTTP version");
    }
    return 0;
  }

  static int onHeaderField(llhttp_t* p, const char* at, size_t len) {
    RequestParser* s = self(p);
    if (s->in_message_) {  // a trailer (bounded as raw bytes by the section budget)
      s->trailer_name_.append(at, len);
      return 0;
    }
    s->fields_.appendName(at, len);
    return 0;
  }

  static int onHeaderFieldComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    if (s->in_message_) {
      if (++s->trailer_count_ > s->limits_.max_headers) {
        return s->fail(kStatusFieldsTooLarge, "too many trailer fields");
      }
      return 0;
    }
    // A request line without a version (HTTP/0.9 style) goes straight to
    // headers in llhttp.
    if (!s->version_seen_) return s->fail(kStatusBadRequest, "missing HTTP version");
    if (++s->header_count_ > s->limits_.max_headers) {
      return s->fail(kStatusFieldsTooLarge, "too many header fields");
    }
    return 0;
  }

  static int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
    RequestParser* s = self(p);
    if (s->in_message_) {
      s->trailer_value_.append(at, len);
      return 0;
    }
    s->fields_.appendValue(at, len);
    return 0;
  }

  static int onHeaderValueComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    if (s->in_message_) return s->finishTrailer();
    return s->finishHeader();
  }

  static int onHeadersComplete(llhttp_t* p) { return self(p)->completeHead(); }

  static int onChunkHeader(llhttp_t* p) {
    RequestParser* s = self(p);
    // llhttp stores the announced chunk size in content_length: refuse an
    // oversized body before reading it.
    uint64_t max = s->limits_.max_body_bytes;
    if (max != 0 && p->content_length > max - s->body_bytes_) {
      return s->fail(kStatusContentTooLarge, "request body larger than the limit");
    }
    // The chunk line ends here; size 0 is the last chunk, trailers follow.
    s->budget_.enter(p->content_length == 0 ? Section::kTrailers : Section::kBody);
    s->silent_pause_ = true;
    return HPE_PAUSED;
  }

  static int onChunkComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    // llhttp also calls this after the trailer section; the message ends next.
    if (s->budget_.section() == Section::kTrailers) return 0;
    // The CRLF after chunk data: the next chunk line starts here.
    s->budget_.enter(Section::kChunkLine);
    s->silent_pause_ = true;
    return HPE_PAUSED;
  }

  static int onBody(llhttp_t* p, const char* at, size_t len) {
    RequestParser* s = self(p);
    // llhttp flushes an open body span at the end of every execute, possibly
    // empty; that is not an event.
    if (len == 0) return 0;
    uint64_t max = s->limits_.max_body_bytes;
    if (max != 0 && len > max - s->body_bytes_) {
      return s->fail(kStatusContentTooLarge, "request body larger than the limit");
    }
    s->body_bytes_ += len;
    s->body_ = std::string_view(at, len);
    s->pending_event_ = RequestParser::Event::kBody;
    return HPE_PAUSED;
  }

  static int onMessageComplete(llhttp_t* p) {
    RequestParser* s = self(p);
    s->in_message_ = false;
    s->started_ = false;
    s->budget_.enter(Section::kHead);
    s->pending_event_ = RequestParser::Event::kMessageComplete;
    return HPE_PAUSED;
  }
};

// The callbacks are the same for every parser, so one settings table is
// shared (llhttp only reads it): a connection does not carry its own copy.
static const llhttp_settings_t* requestParserSettings() {
  static const llhttp_settings_t table = [] {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_message_begin = &ParserCallbacks::onMessageBegin;
    settings.on_method = &ParserCallbacks::onMethod;
    settings.on_method_complete = &ParserCallbacks::onMethodComplete;
    settings.on_url = &ParserCallbacks::onUrl;
    settings.on_url_complete = &ParserCallbacks::onUrlComplete;
    settings.on_version = &ParserCallbacks::onVersion;
    settings.on_version_complete = &ParserCallbacks::onVersionComplete;
    settings.on_header_field = &ParserCallbacks::onHeaderField;
    settings.on_header_field_complete = &ParserCallbacks::onHeaderFieldComplete;
    settings.on_header_value = &ParserCallbacks::onHeaderValue;
    settings.on_header_value_complete = &ParserCallbacks::onHeaderValueComplete;
    settings.on_headers_complete = &ParserCallbacks::onHeadersComplete;
    settings.on_chunk_header = &ParserCallbacks::onChunkHeader;
    settings.on_chunk_complete = &ParserCallbacks::onChunkComplete;
    settings.on_body = &ParserCallbacks::onBody;
    settings.on_message_complete = &ParserCallbacks::onMessageComplete;
    // Every llhttp_set_lenient_* flag stays off: each one re-opens a known
    // request-smuggling vector.
    return settings;
  }();
  return &table;
}

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, requestParserSettings());
  parser_.data = this;
}

RequestParser::~RequestParser() = default;

void RequestParser::reset() {
  llhttp_reset(&parser_);
  resetMessage();
  body_ = {};
  pending_event_ = Event::kNeedMore;
  exec_base_ = nullptr;
  exec_offset_ = 0;
  budget_ = detail::SectionBudget();
  silent_pause_ = false;
  in_message_ = false;
  started_ = false;
  error_status_ = 0;
  error_reason_.clear();
}

void RequestParser::resetMessage() {
  // clear() rather than reassignment keeps the capacity for the next request.
  head_.method.clear();
  head_.target.clear();
  head_.version_major = 1;
  head_.version_minor = 1;
  fields_.recycle(&head_.headers);
  head_.host.clear();
  head_.framing = BodyFraming::kNone;
  head_.content_length = 0;
  head_.keep_alive = true;
  head_.expect_continue = false;
  fields_.reset();
  method_start_ = 0;
  target_start_ = 0;
  version_started_ = false;
  version_start_ = 0;
  absolute_form_ = false;
  authority_pos_ = 0;
  authority_len_ = 0;
  body_bytes_ = 0;
  header_count_ = 0;
  trailer_count_ = 0;
  trailers_.clear();
  trailer_name_.clear();
  trailer_value_.clear();
  host_count_ = 0;
  version_seen_ = false;
  request_line_done_ = false;
}

int RequestParser::fail(int status, std::string reason) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_reason_ = std::move(reason);
  }
  return HPE_USER;
}

void RequestParser::failFromLlhttp(llhttp_errno_t err) {
  const char* reason = llhttp_get_error_reason(&parser_);
  std::string_view text = reason != nullptr ? reason : "";
  int status = kStatusBadRequest;
  // llhttp reads `HTTP/D.D` and then refuses an unknown pair (1.2, 3.0) with
  // this reason; every other version error is a malformed line. (If a newer
  // llhttp rewords it, this degrades to 400 and the unit tests say so.)
  if (err == HPE_INVALID_VERSION && text == "Invalid HTTP version") {
    status = kStatusVersionNotSupported;
  }
  fail(status, text.empty() ? std::string(llhttp_errno_name(err)) : std::string(text));
}

uint64_t RequestParser::sectionLimit() const {
  switch (budget_.section()) {
    case Section::kHead:
      return limits_.max_header_bytes;
    case Section::kChunkLine:
      return limits_.max_chunk_line_bytes;
    case Section::kTrailers:
      // Trailers arrive after the head limit stopped applying; bound them the
      // same way so a client cannot stream fields forever.
      return limits_.max_header_bytes;
    case Section::kBody:
      break;
  }
  return 0;  // unbounded here (max_body_bytes is checked per piece)
}

void RequestParser::failSectionTooLarge() {
  switch (budget_.section()) {
    case Section::kHead:
      if (!started_) {
        fail(kStatusBadRequest, "too many empty lines before the request");
      } else if (!request_line_done_) {
        fail(kStatusUriTooLong, "request line too long");
      } else {
        fail(kStatusFieldsTooLarge, "request head too large");
      }
      return;
    case Section::kChunkLine:
      // 413 as Node.js answers (CVE-2024-22019): the body is what is too large.
      fail(kStatusContentTooLarge, "chunk line too long (chunk size and extensions)");
      return;
    case Section::kTrailers:
      fail(kStatusFieldsTooLarge, "trailer section too large");
      return;
    case Section::kBody:
      return;
  }
}

int RequestParser::checkTarget() {
  const std::string& target = head_.target;
  // RFC 9112 §3.2: a request-target is visible ASCII; a fragment is never
  // sent (RFC 9110 §7.1), so `#` is refused rather than forwarded.
  for (char c : target) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#') {
      return fail(kStatusBadRequest, "invalid character in request target");
    }
  }
  if (!target.empty() && target.front() == '/') return 0;  // origin-form
  if (target == "*") {                                     // asterisk-form, RFC 9112 §3.2.4
    if (parser_.method != HTTP_OPTIONS) {
      return fail(kStatusBadRequest, "asterisk-form target without OPTIONS");
    }
    return 0;
  }
  // absolute-form (RFC 9112 §3.2.2): http(s)://authority[/path][?query].
  size_t scheme_end = target.find("://");
  if (scheme_end != std::string::npos) {
    std::string_view scheme(target.data(), scheme_end);
    if (equalsIgnoreCase(scheme, "http") || equalsIgnoreCase(scheme, "https")) {
      size_t start = scheme_end + 3;
      size_t end = target.find_first_of("/?", start);
      if (end == std::string::npos) end = target.size();
      if (!isValidAuthority(std::string_view(target).substr(start, end - start))) {
        return fail(kStatusBadRequest, "invalid authority in request target");
      }
      absolute_form_ = true;
      authority_pos_ = start;
      authority_len_ = end - start;
      return 0;
    }
  }
  // authority-form belongs to CONNECT, refused earlier.
  return fail(kStatusBadRequest, "invalid request target");
}

int RequestParser::finishHeader() {
  switch (fields_.finish(&head_.content_length)) {
    case HeadFields::Problem::kNone:
      break;
    case HeadFields::Problem::kControlChar:
      return fail(kStatusBadRequest, "control character in header value");
    case HeadFields::Problem::kRepeatedContentLength:
      return fail(kStatusBadRequest, "multiple Content-Length headers");
    case HeadFields::Problem::kInvalidContentLength:
      return fail(kStatusBadRequest, "invalid Content-Length");
    case HeadFields::Problem::kRepeatedTransferEncoding:
      return fail(kStatusBadRequest, "multiple Transfer-Encoding headers");
  }
  const std::string_view name = fields_.name();
  const std::string_view value = fields_.value();
  if (equalsIgnoreCase(name, "Host")) {
    // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
    if (++host_count_ > 1) return fail(kStatusBadRequest, "multiple Host headers");
    if (!isValidAuthority(value)) return fail(kStatusBadRequest, "invalid Host header");
    head_.host = value;
  } else if (equalsIgnoreCase(name, "Expect")) {
    if (equalsIgnoreCase(value, "100-continue")) head_.expect_continue = true;
  }
  fields_.take(&head_.headers);
  return 0;
}

int RequestParser::finishTrailer() {
  // Kept for the proxy to forward (when the next hop accepts trailers);
  // what a trailer may carry is the proxy's call (RFC 9110 §6.5.1).
  std::string_view value = trimOws(trailer_value_);
  trailers_.push_back(Header{std::move(trailer_name_), std::string(value)});
  trailer_name_.clear();
  trailer_value_.clear();
  return 0;
}

int RequestParser::completeHead() {
  // "GET /\r\n\r\n": llhttp parses an HTTP/0.9-style line without a version.
  if (!version_seen_) return fail(kStatusBadRequest, "missing HTTP version");
  const bool http11 = head_.version_minor == 1;
  const bool chunked_header = fields_.transferEncodingCount() > 0;

  // RFC 9112 §6.3: CL with TE "ought to be handled as an error" — it is the
  // classic smuggling shape (CL.TE / TE.CL). llhttp refuses it too.
  if (chunked_header && fields_.contentLengthCount() > 0) {
    return fail(kStatusBadRequest, "Content-Length with Transfer-Encoding");
  }
  // RFC 9112 §6.1: TE in an HTTP/1.0 message means the framing is faulty.
  if (chunked_header && !http11) return fail(kStatusBadRequest, "Transfer-Encoding on HTTP/1.0");
  if (http11 && host_count_ == 0) return fail(kStatusBadRequest, "missing Host header");

  if (chunked_header) {
    const Header* te = head_.find("Transfer-Encoding");
    switch (classifyTransferEncoding(te->value)) {
      case TransferCoding::kChunked:
        head_.framing = BodyFraming::kChunked;
        detail::markChunkedForLlhttp(&parser_);
        break;
      case TransferCoding::kUnsupported:
        // RFC 9112 §6.1: a coding we do not implement gets 501.
        return fail(kStatusNotImplemented, "unsupported transfer coding");
      case TransferCoding::kMalformed:
        return fail(kStatusBadRequest, "invalid Transfer-Encoding");
    }
  } else if (fields_.contentLengthCount() > 0) {
    head_.framing = BodyFraming::kContentLength;
    if (limits_.max_body_bytes != 0 && head_.content_length > limits_.max_body_bytes) {
      // Answerable right away, without reading the body.
      return fail(kStatusContentTooLarge, "request body larger than the limit");
    }
  } else {
    head_.framing = BodyFraming::kNone;  // RFC 9112 §6.3 rule 7
  }

  if (absolute_form_) head_.host = head_.target.substr(authority_pos_, authority_len_);
  // RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
  head_.keep_alive = fields_.persistent(http11);
  // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored.
  if (!http11) head_.expect_continue = false;

  in_message_ = true;
  budget_.enter(head_.framing == BodyFraming::kChunked ? Section::kChunkLine : Section::kBody);
  pending_event_ = Event::kHeadComplete;
  return HPE_PAUSED;
}

RequestParser::Result RequestParser::feed(const char* data, size_t len) {
  body_ = {};
  if (error_status_ != 0) return {Event::kError, 0};
  size_t offset = 0;
  while (true) {
    // Never hand llhttp more than the current section may still grow by, so
    // an oversized head, chunk line or trailer section is caught at its
    // limit, not after buffering it all.
    const uint64_t limit = sectionLimit();
    const uint64_t serial = budget_.serial();
    const size_t chunk = budget_.room(len - offset, limit);
    const char* start = data + offset;
    exec_base_ = start;
    llhttp_errno_t err;
    const size_t used = detail::executeCounted(&parser_, start, chunk, &err);
    exec_offset_ += used;
    offset += used;
    // A section ends only at a pause, so these bytes all belong to the section
    // the execute started in.
    budget_.account(serial, used);

    switch (err) {
      case HPE_OK:
        if (budget_.exhausted(limit)) {
          // The section has not ended (that would have paused), so it needs
          // at least one more byte. Only empty lines before a request, with
          // no more input yet, may still turn out to be a clean close.
          if (budget_.section() != Section::kHead || started_ || offset < len) {
            failSectionTooLarge();
            return {Event::kError, offset};
          }
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
      case HPE_PAUSED_UPGRADE:
        // `Connection: upgrade` + `Upgrade`: llhttp hands the connection over
        // after the message. sluice does not upgrade (the proxy strips Upgrade
        // as hop-by-hop), so keep parsing HTTP/1.1.
        llhttp_resume_after_upgrade(&parser_);
        continue;
      default:
        if (error_status_ == 0) failFromLlhttp(err);
        return {Event::kError, offset};
    }
  }
}

RequestParser::Result RequestParser::finish() {
  if (error_status_ != 0) return {Event::kError, 0};
  if (started_) {
    fail(kStatusBadRequest, "request truncated");
    return {Event::kError, 0};
  }
  return {Event::kNeedMore, 0};
}

}  // namespace sluice::http
