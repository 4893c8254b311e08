// JSON for the admin `/status` document: JsonWriter appends compact JSON to a
// caller's string (kept between requests, so rendering does not allocate once
// its capacity is reached), and parseJson reads a document back into a small
// tree (for `sluice status`, which prints it as a table). Strings are escaped
// per RFC 8259; bytes that are not valid UTF-8 become U+FFFD, so a config
// name in some other encoding still gives a valid document.
// Plain values; no state shared between instances.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

// `text` as a JSON string literal (quotes included), appended to `out`.
void appendJsonString(std::string& out, std::string_view text);

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject() { open('{'); }
  void endObject() { close('}'); }
  void beginArray() { open('['); }
  void endArray() { close(']'); }
  // The next member's name; the value written next is its value.
  void key(std::string_view name);

  void string(std::string_view value);
  void number(int64_t value);
  void number(uint64_t value);
  void number(uint32_t value) { number(static_cast<uint64_t>(value)); }
  void number(int32_t value) { number(static_cast<int64_t>(value)); }
  void boolean(bool value);
  void null();

  // key(name) then the value.
  template <typename T>
  void field(std::string_view name, T value) {
    key(name);
    write(value);
  }
  // A string member, or null when `value` is empty.
  void stringOrNull(std::string_view name, std::string_view value);

  // Every object and array closed (for assertions in tests).
  bool complete() const { return depth_ == 0 && !after_key_; }

 private:
  void beforeValue();
  void open(char bracket);
  void close(char bracket);
  void write(std::string_view value) { string(value); }
  void write(const char* value) { string(value); }
  void write(bool value) { boolean(value); }
  void write(int64_t value) { number(value); }
  void write(uint64_t value) { number(value); }
  void write(uint32_t value) { number(value); }
  void write(int32_t value) { number(value); }

  std::string& out_;
  // Bit d set: the container at depth d already holds a value (a comma
  // goes before the next). 64 levels is far beyond what /status nests.
  uint64_t has_value_ = 0;
  uint32_t depth_ = 0;
  bool after_key_ = false;
};

struct JsonMember;

struct JsonValue {
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;                 // kString
  std::vector<JsonValue> items;     // kArray
  std::vector<JsonMember> members;  // kObject, in document order

  bool isNull() const { return type == Type::kNull; }
  // The member `name` of an object, or a null value (absent, or not an object).
  const JsonValue& operator[](std::string_view name) const;
  // Conversions that give `fallback` for another type.
  std::string_view str(std::string_view fallback = "") const;
  int64_t integer(int64_t fallback = 0) const;
};

struct JsonMember {
  std::string name;
  JsonValue value;
};

// The document in `text`, or nullopt with `*error` saying where it is broken.
// Nesting deeper than 64 levels is refused (it is no /status document).
std::optional<JsonValue> parseJson(std::string_view text, std::string* error);

}  // namespace sluice
