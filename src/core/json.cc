#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace sluice {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr uint32_t kMaxDepth = 64;

bool isContinuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0.
size_t utf8Length(std::string_view text, size_t i) {
  const auto at = [&](size_t k) -> unsigned char {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
  };
  const unsigned char c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return isContinuation(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return at(1) >= lo && at(1) <= hi && isContinuation(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return at(1) >= lo && at(1) <= hi && isContinuation(at(2)) && isContinuation(at(3)) ? 4 : 0;
  }
  return 0;
}

void appendUtf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | code >> 6);
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | code >> 12);
    out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | code >> 18);
    out += static_cast<char>(0x80 | (code >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view text, std::string* error) : text_(text), error_(error) {}

  std::optional<JsonValue> document() {
    JsonValue value;
    if (!parseValue(&value, 0)) return std::nullopt;
    skipSpace();
    if (pos_ != text_.size()) return fail("text after the document");
    return value;
  }

 private:
  std::nullopt_t fail(const char* what) {
    if (error_ != nullptr) *error_ = std::string(what) + " at byte " + std::to_string(pos_);
    return std::nullopt;
  }
  bool failed(const char* what) {
    fail(what);
    return false;
  }
  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return failed("unexpected token");
    pos_ += word.size();
    return true;
  }

  bool parseValue(JsonValue* value, uint32_t depth) {
    if (depth >= kMaxDepth) return failed("nested too deeply");
    skipSpace();
    if (pos_ >= text_.size()) return failed("unexpected end");
    switch (text_[pos_]) {
      case '{':
        return parseObject(value, depth);
      case '[':
        return parseArray(value, depth);
      case '"':
        value->type = JsonValue::Type::kString;
        return parseString(&value->text);
      case 't':
        value->type = JsonValue::Type::kBool;
        value->boolean = true;
        return literal("true");
      case 'f':
        value->type = JsonValue::Type::kBool;
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return parseNumber(value);
    }
  }

  bool parseObject(JsonValue* value, uint32_t depth) {
    value->type = JsonValue::Type::kObject;
    ++pos_;
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return failed("expected a member name");
      JsonMember member;
      if (!parseString(&member.name)) return false;
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return failed("expected ':'");
      ++pos_;
      if (!parseValue(&member.value, depth + 1)) return false;
      value->members.push_back(std::move(member));
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return failed("expected ',' or '}'");
    }
  }

  bool parseArray(JsonValue* value, uint32_t depth) {
    value->type = JsonValue::Type::kArray;
    ++pos_;
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      JsonValue item;
      if (!parseValue(&item, depth + 1)) return false;
      value->items.push_back(std::move(item));
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return failed("expected ',' or ']'");
    }
  }

  bool hex4(uint32_t* code) {
    if (pos_ + 4 > text_.size()) return failed("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return failed("bad \\u escape");
      }
    }
    *code = v;
    return true;
  }

  bool parseString(std::string* out) {
    ++pos_;  // the opening quote
    for (;;) {
      if (pos_ >= text_.size()) return failed("unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return failed("control character in a string");
      if (c != '\\') {
        const size_t n = c < 0x80 ? 1 : utf8Length(text_, pos_);
        if (n == 0) return failed("invalid UTF-8");
        out->append(text_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      if (++pos_ >= text_.size()) return failed("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *out += e;
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          if (!hex4(&code)) return false;
          if (code >= 0xD800 && code <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
            const size_t saved = pos_;
            pos_ += 2;
            uint32_t low = 0;
            if (!hex4(&low)) return false;
            if (low >= 0xDC00 && low <= 0xDFFF) {
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = saved;  // a lone high surrogate; the next escape stands alone
              code = 0xFFFD;
            }
          } else if (code >= 0xD800 && code <= 0xDFFF) {
            code = 0xFFFD;  // a lone surrogate has no UTF-8 form
          }
          appendUtf8(*out, code);
          break;
        }
        default:
          return failed("unknown escape");
      }
    }
  }

  bool parseNumber(JsonValue* value) {
    // RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = pos_;
    const auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9')
        ++pos_;
      return pos_ - from;
    };
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return failed("unexpected token");
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return failed("bad number");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) return failed("bad number");
    }
    value->type = JsonValue::Type::kNumber;
    const auto [end, ec] =
        std::from_chars(text_.data() + start, text_.data() + pos_, value->number);
    if (ec != std::errc() || end != text_.data() + pos_) return failed("bad number");
    return true;
  }

  std::string_view text_;
  std::string* error_;
  size_t pos_ = 0;
};

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t n = utf8Length(text, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void JsonWriter::beforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0) {
    const uint64_t bit = uint64_t{1} << (depth_ - 1);
    if ((has_value_ & bit) != 0) out_ += ',';
    has_value_ |= bit;
  }
}

void JsonWriter::open(char bracket) {
  beforeValue();
  out_ += bracket;
  ++depth_;
  has_value_ &= ~(uint64_t{1} << (depth_ - 1));
}

void JsonWriter::close(char bracket) {
  out_ += bracket;
  --depth_;
}

void JsonWriter::key(std::string_view name) {
  beforeValue();
  appendJsonString(out_, name);
  out_ += ':';
  after_key_ = true;
}

void JsonWriter::string(std::string_view value) {
  beforeValue();
  appendJsonString(out_, value);
}

void JsonWriter::number(int64_t value) {
  beforeValue();
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out_.append(digits, result.ptr);
}

void JsonWriter::number(uint64_t value) {
  beforeValue();
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out_.append(digits, result.ptr);
}

void JsonWriter::boolean(bool value) {
  beforeValue();
  out_ += value ? "true" : "false";
}

void JsonWriter::null() {
  beforeValue();
  out_ += "null";
}

void JsonWriter::stringOrNull(std::string_view name, std::string_view value) {
  key(name);
  if (value.empty()) {
    null();
  } else {
    string(value);
  }
}

const JsonValue& JsonValue::operator[](std::string_view name) const {
  static const JsonValue kNull;
  if (type != Type::kObject) return kNull;
  for (const auto& [member, value] : members) {
    if (member == name) return value;
  }
  return kNull;
}

std::string_view JsonValue::str(std::string_view fallback) const {
  return type == Type::kString ? std::string_view(text) : fallback;
}

int64_t JsonValue::integer(int64_t fallback) const {
  if (type != Type::kNumber || !std::isfinite(number)) return fallback;
  return static_cast<int64_t>(std::llround(number));
}

std::optional<JsonValue> parseJson(std::string_view text, std::string* error) {
  return Parser(text, error).document();
}

}  // namespace sluice
