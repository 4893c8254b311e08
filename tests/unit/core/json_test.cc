// JsonWriter escaping and comma placement, parseJson on what it wrote and on
// broken documents.
#include "core/json.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

std::string quoted(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

TEST(JsonTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(quoted(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
  // '/' needs no escape; non-ASCII UTF-8 is kept as is.
  EXPECT_EQ(quoted("/status é ✓ 𝄞"), "\"/status é ✓ 𝄞\"");
}

TEST(JsonTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(quoted("a\xff"
                   "b"),
            "\"a\\ufffdb\"");
  EXPECT_EQ(quoted("\xc3"), "\"\\ufffd\"");                                   // truncated sequence
  EXPECT_EQ(quoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");                        // overlong '/'
  EXPECT_EQ(quoted("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");             // a surrogate
  EXPECT_EQ(quoted("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
}

TEST(JsonTest, WriterPlacesCommasAndNests) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.field("version", "0.1.0");
  w.field("n", uint64_t{18446744073709551615u});
  w.field("neg", int64_t{-3});
  w.field("ok", true);
  w.stringOrNull("dns", "");
  w.key("list");
  w.beginArray();
  w.beginObject();
  w.endObject();
  w.number(int64_t{1});
  w.beginArray();
  w.endArray();
  w.null();
  w.endArray();
  w.key("a\"b");
  w.string("x");
  w.endObject();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(out,
            "{\"version\":\"0.1.0\",\"n\":18446744073709551615,\"neg\":-3,\"ok\":true,"
            "\"dns\":null,\"list\":[{},1,[],null],\"a\\\"b\":\"x\"}");
}

TEST(JsonTest, ParsesWhatTheWriterWrote) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.field("name", "web \"edge\"\n\xff");
  w.field("pid", int64_t{4242});
  w.key("servers");
  w.beginArray();
  w.beginObject();
  w.field("address", "127.0.0.1:8080");
  w.field("ejected", false);
  w.endObject();
  w.endArray();
  w.endObject();
  std::string error;
  std::optional<JsonValue> doc = parseJson(out, &error);
  ASSERT_TRUE(doc) << error;
  EXPECT_EQ((*doc)["name"].str(), "web \"edge\"\n\xef\xbf\xbd");
  EXPECT_EQ((*doc)["pid"].integer(), 4242);
  ASSERT_EQ((*doc)["servers"].items.size(), 1u);
  EXPECT_EQ((*doc)["servers"].items[0]["address"].str(), "127.0.0.1:8080");
  EXPECT_EQ((*doc)["servers"].items[0]["ejected"].type, JsonValue::Type::kBool);
  EXPECT_FALSE((*doc)["servers"].items[0]["ejected"].boolean);
  EXPECT_TRUE((*doc)["missing"].isNull());
  EXPECT_TRUE((*doc)["name"]["not an object"].isNull());
}

TEST(JsonTest, ParsesEscapesNumbersAndSurrogatePairs) {
  std::string error;
  std::optional<JsonValue> doc =
      parseJson(R"( {"s":"\u00e9\ud834\udd1e\/\b\f","lone":"\ud800x","n":[-0.5e2,0,12]} )", &error);
  ASSERT_TRUE(doc) << error;
  EXPECT_EQ((*doc)["s"].str(), "\xc3\xa9\xf0\x9d\x84\x9e/\b\f");
  EXPECT_EQ((*doc)["lone"].str(), "\xef\xbf\xbdx");
  ASSERT_EQ((*doc)["n"].items.size(), 3u);
  EXPECT_EQ((*doc)["n"].items[0].number, -50);
  EXPECT_EQ((*doc)["n"].items[2].integer(), 12);
}

TEST(JsonTest, RefusesBrokenDocuments) {
  for (const char* text :
       {"", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "[1 2]", "{\"a\":1,}", "01", "1.", "-",
        "\"\x01\"", "\"abc", "\"\\x\"", "\"\\u12\"", "nul", "[] x", "\"\xff\""}) {
    std::string error;
    EXPECT_FALSE(parseJson(text, &error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
  std::string deep(100, '[');
  deep += std::string(100, ']');
  std::string error;
  EXPECT_FALSE(parseJson(deep, &error));
  EXPECT_NE(error.find("nested too deeply"), std::string::npos) << error;
}

}  // namespace
}  // namespace sluice
