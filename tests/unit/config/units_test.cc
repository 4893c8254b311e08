#include "config/units.h"

#include <string>

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

Duration durationOk(const std::string& text) {
  Duration d{-1};
  std::string error;
  EXPECT_TRUE(parseDuration(text, &d, &error)) << text << ": " << error;
  return d;
}

std::string durationError(const std::string& text) {
  Duration d{-1};
  std::string error;
  EXPECT_FALSE(parseDuration(text, &d, &error)) << text << " parsed as " << d.count() << "ms";
  EXPECT_EQ(d, Duration{-1}) << "output written on failure";
  return error;
}

TEST(DurationTest, Units) {
  EXPECT_EQ(durationOk("250ms"), milliseconds(250));
  EXPECT_EQ(durationOk("5s"), seconds(5));
  EXPECT_EQ(durationOk("2m"), minutes(2));
  EXPECT_EQ(durationOk("1h"), hours(1));
  EXPECT_EQ(durationOk("0ms"), Duration::zero());
  EXPECT_EQ(durationOk("007s"), seconds(7));
}

TEST(DurationTest, BareZeroIsAcceptedOtherBareNumbersAreNot) {
  EXPECT_EQ(durationOk("0"), Duration::zero());
  EXPECT_EQ(durationOk("000"), Duration::zero());
  EXPECT_EQ(durationError("30"), "\"30\" has no unit (did you mean \"30s\"? units: ms, s, m, h)");
}

TEST(DurationTest, RejectsUnknownUnits) {
  EXPECT_EQ(durationError("5x"), "\"5x\" has an unknown unit \"x\" (use ms, s, m or h)");
  durationError("5S");     // units are lower case: M could be read as months
  durationError("5 s");    // no space
  durationError("1m30s");  // one unit only
  durationError("5sec");
  durationError("1d");
  durationError("5us");
}

TEST(DurationTest, RejectsNegativeFractionalAndEmpty) {
  EXPECT_EQ(durationError("-5s"), "\"-5s\" is negative; durations are 0 or more");
  EXPECT_EQ(durationError("1.5s"),
            "\"1.5s\" is not a whole number; use a smaller unit instead (e.g. 1500ms for 1.5s)");
  EXPECT_EQ(durationError(""), "expected a duration like 5s or 250ms, got an empty value");
  EXPECT_EQ(durationError("s"),
            "\"s\" is not a duration (expected a whole number and a unit: ms, s, m or h, e.g. 5s "
            "or 250ms)");
  durationError("+5s");
  durationError(" 5s");
  durationError("five seconds");
}

TEST(DurationTest, RejectsOverflowAndHugeValues) {
  EXPECT_EQ(durationOk("8760h"), hours(8760));
  EXPECT_EQ(durationOk("31536000s"), hours(8760));
  EXPECT_EQ(durationError("8761h"), "\"8761h\" is too large (at most 8760h)");
  durationError("31536001s");
  durationError("31536000001ms");
  durationError("99999999999999999999999999s");  // past uint64
  durationError("18446744073709551616ms");       // 2^64
}

uint64_t sizeOk(const std::string& text) {
  uint64_t n = 12345;
  std::string error;
  EXPECT_TRUE(parseSize(text, &n, &error)) << text << ": " << error;
  return n;
}

std::string sizeError(const std::string& text) {
  uint64_t n = 12345;
  std::string error;
  EXPECT_FALSE(parseSize(text, &n, &error)) << text << " parsed as " << n;
  EXPECT_EQ(n, 12345u);
  return error;
}

TEST(SizeTest, UnitsArePowersOf1024) {
  EXPECT_EQ(sizeOk("0"), 0u);
  EXPECT_EQ(sizeOk("1500"), 1500u);
  EXPECT_EQ(sizeOk("16k"), 16u * 1024);
  EXPECT_EQ(sizeOk("16K"), 16u * 1024);
  EXPECT_EQ(sizeOk("1m"), 1024u * 1024);
  EXPECT_EQ(sizeOk("1M"), 1024u * 1024);
  EXPECT_EQ(sizeOk("1g"), 1024u * 1024 * 1024);
  EXPECT_EQ(sizeOk("2G"), 2ull * 1024 * 1024 * 1024);
}

TEST(SizeTest, RejectsBadForms) {
  EXPECT_EQ(sizeError("16kb"),
            "\"16kb\" has an unknown unit \"kb\" (use k, m or g, or no unit for bytes)");
  EXPECT_EQ(sizeError("-1k"), "\"-1k\" is negative; sizes are 0 or more");
  EXPECT_EQ(sizeError("1.5m"),
            "\"1.5m\" is not a whole number; use a smaller unit instead (e.g. 1536k for 1.5m)");
  EXPECT_EQ(sizeError(""), "expected a size like 16k or 1m, got an empty value");
  sizeError("k");
  sizeError("16 k");
  sizeError("1t");
  sizeError("0x10");
}

TEST(SizeTest, RejectsOverflow) {
  EXPECT_EQ(sizeOk("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(sizeError("18446744073709551616"), "\"18446744073709551616\" is too large");
  EXPECT_EQ(sizeOk("17179869183g"), 17179869183ull << 30);
  sizeError("17179869184g");  // 2^34 g = 2^64
  sizeError("18014398509481984k");
}

TEST(UnsignedTest, DigitsOnly) {
  uint64_t n = 0;
  std::string error;
  EXPECT_TRUE(parseUnsigned("42", 100, &n, &error));
  EXPECT_EQ(n, 42u);
  EXPECT_TRUE(parseUnsigned("100", 100, &n, &error));
  EXPECT_FALSE(parseUnsigned("101", 100, &n, &error));
  EXPECT_EQ(error, "\"101\" is too large (at most 100)");
  EXPECT_FALSE(parseUnsigned("-1", 100, &n, &error));
  EXPECT_EQ(error, "\"-1\" is negative (expected a whole number 0-100)");
  EXPECT_FALSE(parseUnsigned("1e3", 10000, &n, &error));
  EXPECT_EQ(error, "\"1e3\" is not a whole number");
  EXPECT_FALSE(parseUnsigned("+1", 100, &n, &error));
  EXPECT_FALSE(parseUnsigned("0x1", 100, &n, &error));
  EXPECT_FALSE(parseUnsigned("", 100, &n, &error));
  EXPECT_TRUE(parseUnsigned("18446744073709551615", UINT64_MAX, &n, &error));
  EXPECT_EQ(n, UINT64_MAX);
  EXPECT_FALSE(parseUnsigned("18446744073709551616", UINT64_MAX, &n, &error));
}

TEST(SuggestTest, EditDistance) {
  EXPECT_EQ(editDistance("", ""), 0u);
  EXPECT_EQ(editDistance("abc", ""), 3u);
  EXPECT_EQ(editDistance("ap", "app"), 1u);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(editDistance("listners", "listeners"), 1u);
}

TEST(SuggestTest, ClosestMatch) {
  EXPECT_EQ(closestMatch("listner", {"workers", "listeners", "upstreams"}), "listeners");
  EXPECT_EQ(closestMatch("upstream", {"workers", "listeners", "upstreams"}), "upstreams");
  EXPECT_EQ(closestMatch("banana", {"workers", "listeners"}), "");
  // Too short to guess from.
  EXPECT_EQ(closestMatch("x", {"s", "ms"}), "");
  EXPECT_EQ(closestMatch("ap", {"app", "api"}), "app");
  EXPECT_EQ(closestMatch("warning", {"error", "warn", "info", "debug"}), "warn");
  EXPECT_EQ(closestMatch("information", {"error", "warn", "info", "debug"}), "info");
  EXPECT_EQ(closestMatch("ms", {"m"}), "m");  // distance 1 < length 2
}

TEST(FormatTest, DurationsAndSizes) {
  EXPECT_EQ(formatDuration(Duration::zero()), "0s");
  EXPECT_EQ(formatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(formatDuration(seconds(90)), "90s");
  EXPECT_EQ(formatDuration(minutes(2)), "2m");
  EXPECT_EQ(formatDuration(hours(3)), "3h");
  EXPECT_EQ(formatSize(0), "0");
  EXPECT_EQ(formatSize(1500), "1500");
  EXPECT_EQ(formatSize(16 * 1024), "16k");
  EXPECT_EQ(formatSize(1024 * 1024), "1m");
  EXPECT_EQ(formatSize(uint64_t{1} << 30), "1g");
}

}  // namespace
}  // namespace sluice::config
