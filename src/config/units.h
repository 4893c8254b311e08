// Parsing of the value forms used in sluice.yaml: durations (`250ms`, `5s`),
// sizes (`16k`, `1m`), plain counts, and "did you mean" suggestions.
// Free functions with no state; owned by the config module, used by its loader.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "config/config.h"

namespace sluice::config {

// Durations above this are refused: timers add them to a nanosecond clock,
// and nothing in a proxy legitimately waits a year.
inline constexpr Duration kMaxDuration{std::chrono::hours(24 * 365)};

// `<digits><unit>` with unit ms, s, m or h. A bare `0` is accepted (zero is
// zero in any unit); any other bare number is refused, because nginx reads
// it as seconds and HAProxy as milliseconds. On failure returns false and
// sets *error to a message that quotes the text, e.g.
// `"30" has no unit (did you mean "30s"? units: ms, s, m, h)`.
bool parseDuration(std::string_view text, Duration* out, std::string* error);

// `<digits>` (bytes) or `<digits><unit>` with unit k, m or g (case
// insensitive, powers of 1024).
bool parseSize(std::string_view text, uint64_t* out, std::string* error);

// Digits only (no sign, hex, spaces or exponent), at most `max`.
// On failure *error says what was expected, e.g. `"abc" is not a whole number`.
bool parseUnsigned(std::string_view text, uint64_t max, uint64_t* out, std::string* error);

// Levenshtein distance; small inputs only (config keys and names).
size_t editDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` within edit distance 2 (ties: first
// candidate), or empty when none is close. The distance must also be smaller
// than the word, so `x` does not "mean" every two-letter name. A word that
// starts with a candidate (`warning` for `warn`) also counts as close.
std::string closestMatch(std::string_view word, std::initializer_list<std::string_view> candidates);
template <typename Range>
std::string closestMatchIn(std::string_view word, const Range& candidates) {
  std::string best;
  size_t best_distance = 3;
  for (const auto& candidate : candidates) {
    const std::string_view c(candidate);
    // `warning` for `warn`, `errors` for `error`: a longer spelling of a
    // name counts as close whatever the distance.
    const bool extends = c.size() >= 3 && word.size() > c.size() && word.substr(0, c.size()) == c;
    const size_t d = extends ? 1 : editDistance(word, c);
    if (d < best_distance && d < word.size()) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

// Formats a duration in the largest unit that represents it exactly (`90s`,
// `250ms`, `2m`), for messages and describe().
std::string formatDuration(Duration d);
// Same for sizes (`16k`, `1m`, `1500`).
std::string formatSize(uint64_t bytes);

}  // namespace sluice::config
