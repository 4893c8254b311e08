#include "config/units.h"

#include "config/validate.h"

#include <algorithm>
#include <vector>

namespace sluice::config {
namespace {

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// Splits `<digits><rest>`; returns false when there is no leading digit.
bool splitNumber(std::string_view text, std::string_view* digits, std::string_view* rest) {
  size_t i = 0;
  while (i < text.size() && isDigit(text[i]))
    ++i;
  if (i == 0) return false;
  *digits = text.substr(0, i);
  *rest = text.substr(i);
  return true;
}

// Accumulates decimal digits; false on overflow past `max`.
bool accumulate(std::string_view digits, uint64_t max, uint64_t* out) {
  uint64_t value = 0;
  for (char c : digits) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  *out = value;
  return true;
}

}  // namespace

bool parseDuration(std::string_view text, Duration* out, std::string* error) {
  static constexpr std::string_view kUnits = "ms, s, m or h";
  if (text.empty()) return fail(error, "expected a duration like 5s or 250ms, got an empty value");
  if (text.front() == '-')
    return fail(error, quote(text) + " is negative; durations are 0 or more");
  std::string_view digits;
  std::string_view unit;
  if (!splitNumber(text, &digits, &unit)) {
    return fail(error, quote(text) + " is not a duration (expected a whole number and a unit: " +
                           std::string(kUnits) + ", e.g. 5s or 250ms)");
  }
  if (!unit.empty() && (unit.front() == '.' || unit.front() == ',')) {
    return fail(
        error,
        quote(text) + " is not a whole number; use a smaller unit instead (e.g. 1500ms for 1.5s)");
  }
  int64_t ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "m") {
    ms_per_unit = 60 * 1000;
  } else if (unit == "h") {
    ms_per_unit = 60 * 60 * 1000;
  } else if (unit.empty()) {
    if (std::all_of(digits.begin(), digits.end(), [](char c) { return c == '0'; })) {
      *out = Duration::zero();
      return true;
    }
    return fail(error, quote(text) + " has no unit (did you mean " +
                           quote(std::string(text) + "s") + "? units: ms, s, m, h)");
  } else {
    return fail(error, quote(text) + " has an unknown unit " + quote(unit) + " (use " +
                           std::string(kUnits) + ")");
  }
  const uint64_t max_units = static_cast<uint64_t>(kMaxDuration.count() / ms_per_unit);
  uint64_t value = 0;
  if (!accumulate(digits, max_units, &value)) {
    return fail(error,
                quote(text) + " is too large (at most " + formatDuration(kMaxDuration) + ")");
  }
  *out = Duration(static_cast<int64_t>(value) * ms_per_unit);
  return true;
}

bool parseSize(std::string_view text, uint64_t* out, std::string* error) {
  if (text.empty()) return fail(error, "expected a size like 16k or 1m, got an empty value");
  if (text.front() == '-') return fail(error, quote(text) + " is negative; sizes are 0 or more");
  std::string_view digits;
  std::string_view unit;
  if (!splitNumber(text, &digits, &unit)) {
    return fail(error, quote(text) +
                           " is not a size (expected a whole number of bytes, optionally with a "
                           "unit k, m or g, e.g. 16k or 1m)");
  }
  if (!unit.empty() && (unit.front() == '.' || unit.front() == ',')) {
    return fail(
        error,
        quote(text) + " is not a whole number; use a smaller unit instead (e.g. 1536k for 1.5m)");
  }
  uint64_t multiplier = 0;
  if (unit.empty()) {
    multiplier = 1;
  } else if (unit == "k" || unit == "K") {
    multiplier = uint64_t{1} << 10;
  } else if (unit == "m" || unit == "M") {
    multiplier = uint64_t{1} << 20;
  } else if (unit == "g" || unit == "G") {
    multiplier = uint64_t{1} << 30;
  } else {
    return fail(error, quote(text) + " has an unknown unit " + quote(unit) +
                           " (use k, m or g, or no unit for bytes)");
  }
  uint64_t value = 0;
  if (!accumulate(digits, UINT64_MAX / multiplier, &value)) {
    return fail(error, quote(text) + " is too large");
  }
  *out = value * multiplier;
  return true;
}

bool parseUnsigned(std::string_view text, uint64_t max, uint64_t* out, std::string* error) {
  if (text.empty()) return fail(error, "expected a whole number, got an empty value");
  if (text.front() == '-') {
    return fail(error, quote(text) + " is negative (expected a whole number 0-" +
                           std::to_string(max) + ")");
  }
  if (!std::all_of(text.begin(), text.end(), isDigit)) {
    return fail(error, quote(text) + " is not a whole number");
  }
  uint64_t value = 0;
  if (!accumulate(text, max, &value)) {
    return fail(error, quote(text) + " is too large (at most " + std::to_string(max) + ")");
  }
  *out = value;
  return true;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closestMatch(std::string_view word,
                         std::initializer_list<std::string_view> candidates) {
  return closestMatchIn(word, candidates);
}

std::string formatDuration(Duration d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % (60 * 60 * 1000) == 0) return std::to_string(ms / (60 * 60 * 1000)) + "h";
  if (ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string formatSize(uint64_t bytes) {
  if (bytes == 0) return "0";
  if (bytes % (uint64_t{1} << 30) == 0) return std::to_string(bytes >> 30) + "g";
  if (bytes % (uint64_t{1} << 20) == 0) return std::to_string(bytes >> 20) + "m";
  if (bytes % (uint64_t{1} << 10) == 0) return std::to_string(bytes >> 10) + "k";
  return std::to_string(bytes);
}

}  // namespace sluice::config
