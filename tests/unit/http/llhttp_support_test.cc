#include "http/llhttp_support.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::http::detail {
namespace {

TEST(SectionBudget, RoomAndAccounting) {
  SectionBudget budget;
  EXPECT_EQ(budget.section(), Section::kHead);
  EXPECT_EQ(budget.room(100, 0), 100u);  // 0 = unbounded
  EXPECT_EQ(budget.room(100, 30), 30u);
  uint64_t serial = budget.serial();
  budget.account(serial, 20);
  EXPECT_EQ(budget.room(100, 30), 10u);
  EXPECT_FALSE(budget.exhausted(30));
  budget.account(serial, 10);
  EXPECT_EQ(budget.room(100, 30), 0u);
  EXPECT_TRUE(budget.exhausted(30));
  EXPECT_FALSE(budget.exhausted(0));
  // Bytes of an execute during which a new section began are not counted
  // toward it: the section changed exactly at the pause that ended the execute.
  serial = budget.serial();
  budget.enter(Section::kChunkLine);
  budget.account(serial, 7);
  EXPECT_EQ(budget.section(), Section::kChunkLine);
  EXPECT_EQ(budget.bytes(), 0u);
}

TEST(HeadFields, TrimsChecksAndNotesFraming) {
  HeadFields fields;
  std::vector<Header> headers;
  uint64_t content_length = 0;
  auto add = [&](std::string name, std::string value) {
    fields.appendName(name.data(), name.size());
    fields.appendValue(value.data(), value.size());
    HeadFields::Problem problem = fields.finish(&content_length);
    if (problem == HeadFields::Problem::kNone) fields.take(&headers);
    return problem;
  };
  EXPECT_EQ(add("X-A", " \tv a \t "), HeadFields::Problem::kNone);
  EXPECT_EQ(headers.back().value, "v a");
  EXPECT_EQ(add("content-length", "12"), HeadFields::Problem::kNone);
  EXPECT_EQ(content_length, 12u);
  EXPECT_EQ(add("Content-Length", "12"), HeadFields::Problem::kRepeatedContentLength);
  fields.reset();
  EXPECT_EQ(add("Content-Length", "1 2"), HeadFields::Problem::kInvalidContentLength);
  fields.reset();
  EXPECT_EQ(add("X", std::string("a\0b", 3)), HeadFields::Problem::kControlChar);
  fields.reset();
  EXPECT_EQ(add("Transfer-Encoding", "chunked"), HeadFields::Problem::kNone);
  EXPECT_EQ(add("transfer-encoding", "chunked"), HeadFields::Problem::kRepeatedTransferEncoding);
  EXPECT_EQ(fields.transferEncodingCount(), 2u);
}

TEST(HeadFields, PersistenceRules) {
  HeadFields fields;
  EXPECT_TRUE(fields.persistent(true));
  EXPECT_FALSE(fields.persistent(false));
  uint64_t unused = 0;
  std::vector<Header> headers;
  fields.appendName("Connection", 10);
  fields.appendValue("Keep-Alive", 10);
  ASSERT_EQ(fields.finish(&unused), HeadFields::Problem::kNone);
  fields.take(&headers);
  EXPECT_TRUE(fields.persistent(false));
  fields.appendName("Connection", 10);
  fields.appendValue("x, close", 8);
  ASSERT_EQ(fields.finish(&unused), HeadFields::Problem::kNone);
  EXPECT_FALSE(fields.persistent(true));
  EXPECT_FALSE(fields.persistent(false));
  fields.reset();
  EXPECT_TRUE(fields.persistent(true));
}

}  // namespace
}  // namespace sluice::http::detail
