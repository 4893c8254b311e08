#include "http/llhttp_support.h"

#include <utility>

namespace sluice::http::detail {

HeadFields::Problem HeadFields::finish(uint64_t* content_length) {
  size_t end = value_.find_last_not_of(" \t");
  value_.erase(end == std::string::npos ? 0 : end + 1);
  size_t begin = value_.find_first_not_of(" \t");
  if (begin != 0) value_.erase(0, begin);
  if (hasControlChar(value_)) return Problem::kControlChar;

  if (equalsIgnoreCase(name_, "Content-Length")) {
    // RFC 9110 §8.6 lets a recipient fold identical repeats; a proxy that
    // does so while another hop does not is a smuggling vector, so refuse
    // (llhttp refuses them too without a lenient flag).
    if (++content_length_count_ > 1) return Problem::kRepeatedContentLength;
    if (!parseContentLength(value_, content_length)) return Problem::kInvalidContentLength;
  } else if (equalsIgnoreCase(name_, "Transfer-Encoding")) {
    if (++transfer_encoding_count_ > 1) return Problem::kRepeatedTransferEncoding;
  } else if (equalsIgnoreCase(name_, "Connection")) {
    if (listContainsToken(value_, "close")) connection_close_ = true;
    if (listContainsToken(value_, "keep-alive")) connection_keep_alive_ = true;
  }
  return Problem::kNone;
}

void HeadFields::take(std::vector<Header>* headers) {
  if (spare_.empty()) {
    headers->emplace_back();
  } else {
    headers->push_back(std::move(spare_.back()));
    spare_.pop_back();
  }
  // Copies rather than moves: name_ and value_ keep their storage too.
  Header& header = headers->back();
  header.name.assign(name_);
  header.value.assign(value_);
  name_.clear();
  value_.clear();
}

void HeadFields::recycle(std::vector<Header>* headers) {
  for (Header& header : *headers)
    spare_.push_back(std::move(header));
  headers->clear();
}

}  // namespace sluice::http::detail
