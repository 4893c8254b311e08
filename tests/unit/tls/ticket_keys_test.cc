#include "tls/ticket_keys.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tls/certificate.h"

namespace sluice::tls {
namespace {

bool same(const TicketKey& a, const TicketKey& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

TEST(TicketKeyRing, RotationKeepsThePreviousKey) {
  TicketKeyRing ring;
  ring.rotate();
  TicketKey first, previous;
  bool has_previous = true;
  ring.read(&first, &previous, &has_previous);
  EXPECT_FALSE(has_previous);  // nothing to open old tickets with yet
  ring.rotate();
  TicketKey second;
  ring.read(&second, &previous, &has_previous);
  EXPECT_TRUE(has_previous);
  EXPECT_TRUE(same(previous, first));  // tickets of the last hour still open
  EXPECT_FALSE(same(second, first));
  EXPECT_NE(std::memcmp(second.name, first.name, sizeof first.name), 0);
  ring.rotate();
  TicketKey third;
  ring.read(&third, &previous, &has_previous);
  EXPECT_TRUE(same(previous, second));  // the first is gone after two rotations
}

TEST(CertificateNames, WildcardsCoverExactlyOneLabel) {
  EXPECT_TRUE(nameMatches("a.example.com", "a.example.com"));
  EXPECT_TRUE(nameMatches("*.example.com", "a.example.com"));
  EXPECT_FALSE(nameMatches("*.example.com", "example.com"));
  EXPECT_FALSE(nameMatches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(nameMatches("*.example.com", ".example.com"));
  EXPECT_FALSE(nameMatches("a.example.com", "b.example.com"));
}

}  // namespace
}  // namespace sluice::tls
