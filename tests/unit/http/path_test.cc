#include "http/path.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::http {
namespace {

// The normalized path and query, or "REJECT".
std::string norm(std::string_view input, EscapedSlashes slashes = EscapedSlashes::kReject) {
  NormalizedPath result = normalizePath(input, slashes);
  if (!result.ok) {
    EXPECT_NE(std::string(result.error), "") << input;
    EXPECT_TRUE(result.path_and_query.empty());
    return "REJECT";
  }
  EXPECT_EQ(result.path(), result.path_and_query.substr(0, result.path_size));
  return result.path_and_query;
}

TEST(NormalizePath, AlreadyNormalPathsAreUnchanged) {
  for (const char* path : {"/", "/a", "/a/b", "/a/b/", "/a.b/c~d_e-f", "/%25", "/a%20b", "/a;p=1/b",
                           "/.well-known/x", "/..a/b..", "/...", "/a/.b"}) {
    EXPECT_EQ(norm(path), path);
  }
}

// RFC 3986 §5.2.4 and the §5.4 examples whose result is an absolute path,
// written as the merged path the algorithm sees (base "http://a/b/c/d;p?q").
TEST(NormalizePath, Rfc3986DotSegmentExamples) {
  EXPECT_EQ(norm("/a/b/c/./../../g"), "/a/g");  // §5.2.4
  // §5.4.1 normal examples.
  EXPECT_EQ(norm("/b/c/g"), "/b/c/g");
  EXPECT_EQ(norm("/b/c/./g"), "/b/c/g");
  EXPECT_EQ(norm("/b/c/g/"), "/b/c/g/");
  EXPECT_EQ(norm("/b/c/."), "/b/c/");
  EXPECT_EQ(norm("/b/c/./"), "/b/c/");
  EXPECT_EQ(norm("/b/c/.."), "/b/");
  EXPECT_EQ(norm("/b/c/../"), "/b/");
  EXPECT_EQ(norm("/b/c/../g"), "/b/g");
  EXPECT_EQ(norm("/b/c/../.."), "/");
  EXPECT_EQ(norm("/b/c/../../"), "/");
  EXPECT_EQ(norm("/b/c/../../g"), "/g");
  // §5.4.2 abnormal examples.
  EXPECT_EQ(norm("/./g"), "/g");
  EXPECT_EQ(norm("/b/c/g."), "/b/c/g.");
  EXPECT_EQ(norm("/b/c/.g"), "/b/c/.g");
  EXPECT_EQ(norm("/b/c/g.."), "/b/c/g..");
  EXPECT_EQ(norm("/b/c/..g"), "/b/c/..g");
  EXPECT_EQ(norm("/b/c/./../g"), "/b/g");
  EXPECT_EQ(norm("/b/c/./g/."), "/b/c/g/");
  EXPECT_EQ(norm("/b/c/g/./h"), "/b/c/g/h");
  EXPECT_EQ(norm("/b/c/g/../h"), "/b/c/h");
  EXPECT_EQ(norm("/b/c/g;x=1/./y"), "/b/c/g;x=1/y");
  EXPECT_EQ(norm("/b/c/g;x=1/../y"), "/b/c/y");
  // Where RFC 3986 drops a `..` above the root ("/b/c/../../../g" → "/g"),
  // sluice refuses: a backend might resolve it differently.
  EXPECT_EQ(norm("/b/c/../../../g"), "REJECT");
  EXPECT_EQ(norm("/../g"), "REJECT");
}

TEST(NormalizePath, EverySpellingOfAdminIsAdmin) {
  for (const char* spelling :
       {"/admin", "//admin", "///admin", "/./admin", "/x/../admin", "/%61dmin", "/%61%64%6D%69%6E",
        "/%2e/admin", "/x/%2e%2e/admin", "/x/%2E%2e/admin", "/x/.%2e/admin", "/x//..//admin",
        "/x/y/../../admin", "/./././admin"}) {
    EXPECT_EQ(norm(spelling), "/admin") << spelling;
  }
  EXPECT_EQ(norm("/admin/"), "/admin/");
  EXPECT_EQ(norm("//admin//x//"), "/admin/x/");
}

TEST(NormalizePath, SlashesMergeBeforeDotSegments) {
  // As nginx: "//" is one separator, so ".." removes "x", not an empty segment.
  EXPECT_EQ(norm("/x//../admin"), "/admin");
  EXPECT_EQ(norm("/a/b//../c"), "/a/c");
}

TEST(NormalizePath, PercentEncoding) {
  // Unreserved characters are decoded (RFC 3986 §2.3, §6.2.2.2)...
  EXPECT_EQ(norm("/%41%5a%61%7A%30%39%2D%2E%5F%7E"), "/AZaz09-._~");
  // ... every other escape stays, with upper-case hex (§6.2.2.1).
  EXPECT_EQ(norm("/a%2fb", EscapedSlashes::kKeep), "/a%2Fb");
  EXPECT_EQ(norm("/a%3bb%3F%25%20%ff%c3%a9"), "/a%3Bb%3F%25%20%FF%C3%A9");
  EXPECT_EQ(norm("/%7e%7E"), "/~~");
  // %25 is not decoded, so "%252e%252e" is no dot-segment.
  EXPECT_EQ(norm("/x/%252e%252e/admin"), "/x/%252e%252e/admin");
}

TEST(NormalizePath, InvalidOrDangerousEscapesAreRefused) {
  for (const char* path : {"/a%", "/a%2", "/a%zz", "/a%g0", "/%%41", "/a%2/"}) {
    EXPECT_EQ(norm(path), "REJECT") << path;
    EXPECT_EQ(norm(path, EscapedSlashes::kKeep), "REJECT") << path;
  }
  EXPECT_EQ(norm("/a%00b"), "REJECT");
  EXPECT_EQ(norm("/a%00b", EscapedSlashes::kKeep), "REJECT");
}

TEST(NormalizePath, EscapedSlashes) {
  // Rejected by default: a backend that decodes %2F would see /admin/x.
  EXPECT_EQ(norm("/admin%2Fx"), "REJECT");
  EXPECT_EQ(norm("/admin%2fx"), "REJECT");
  EXPECT_EQ(norm("/x/..%2Fadmin"), "REJECT");
  EXPECT_EQ(norm("/admin%5Cx"), "REJECT");
  EXPECT_EQ(norm("/admin%5cx"), "REJECT");
  EXPECT_EQ(norm("/x\\..\\admin"), "REJECT");
  // Kept, they are ordinary characters: no separator, no dot-segment.
  EXPECT_EQ(norm("/x/..%2Fadmin", EscapedSlashes::kKeep), "/x/..%2Fadmin");
  EXPECT_EQ(norm("/x/..%2f..%2fadmin", EscapedSlashes::kKeep), "/x/..%2F..%2Fadmin");
  EXPECT_EQ(norm("/a%5cb", EscapedSlashes::kKeep), "/a%5Cb");
  EXPECT_EQ(norm("/x\\..\\admin", EscapedSlashes::kKeep), "/x\\..\\admin");
  EXPECT_EQ(norm("/a/%2F/../b", EscapedSlashes::kKeep), "/a/b");
}

TEST(NormalizePath, QueryIsPreservedByteForByte) {
  EXPECT_EQ(norm("/a/./b?x=/../%2f&y=%41#"), "/a/b?x=/../%2f&y=%41#");
  EXPECT_EQ(norm("//a?"), "/a?");
  EXPECT_EQ(norm("/a?b?c"), "/a?b?c");
  NormalizedPath r = normalizePath("/x/../y?q=1", EscapedSlashes::kReject);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.path(), "/y");
  EXPECT_EQ(r.path_and_query, "/y?q=1");
  // The query is not checked either: only the path decides routing.
  EXPECT_EQ(norm("/a?%00%2F%zz"), "/a?%00%2F%zz");
}

TEST(NormalizePath, EmptyPathAndAsterisk) {
  EXPECT_EQ(norm(""), "/");
  EXPECT_EQ(norm("?q"), "/?q");
  EXPECT_EQ(norm("*"), "*");
  EXPECT_EQ(norm("a/b"), "REJECT");
}

TEST(NormalizePath, IsIdempotent) {
  for (const char* path : {"/a/./b/../c//d/", "/%61%2e%2E/x", "/a%3b/%7e", "/x/y/..?q=.."}) {
    std::string once = norm(path);
    EXPECT_EQ(norm(once), once) << path;
  }
}

// The out-parameter form takes a shortcut for paths already in normal form
// and reuses its result: reused over a mix of shortcut, full-pass and
// rejected inputs it must answer exactly what a fresh call answers.
TEST(NormalizePath, ReusedResultMatchesAFreshOne) {
  NormalizedPath reused;
  for (const char* input :
       {"/a/b?x=1", "/a/../b", "/plain", "/a%2Fb", "/a/b/", "/%7euser", "", "/ok?q=/../", "*",
        "/a//b", "/x\\y", "/last.txt", "/..", "/.hidden/x", "a/b", "/a?"}) {
    for (EscapedSlashes slashes : {EscapedSlashes::kReject, EscapedSlashes::kKeep}) {
      const NormalizedPath fresh = normalizePath(input, slashes);
      normalizePath(input, slashes, &reused);
      EXPECT_EQ(reused.ok, fresh.ok) << input;
      EXPECT_EQ(reused.path_and_query, fresh.path_and_query) << input;
      EXPECT_EQ(reused.path_size, fresh.path_size) << input;
      EXPECT_EQ(std::string(reused.error), std::string(fresh.error)) << input;
    }
  }
}

TEST(OriginFormPart, AllForms) {
  std::string_view authority = "unset";
  EXPECT_EQ(originFormPart("/a/b?x", &authority), "/a/b?x");
  EXPECT_EQ(authority, "");
  EXPECT_EQ(originFormPart("http://a.example/x?y", &authority), "/x?y");
  EXPECT_EQ(authority, "a.example");
  EXPECT_EQ(originFormPart("HTTP://A.example:8080?q", &authority), "?q");
  EXPECT_EQ(authority, "A.example:8080");
  EXPECT_EQ(originFormPart("https://h", &authority), "");
  EXPECT_EQ(authority, "h");
  EXPECT_EQ(originFormPart("*", &authority), "*");
  EXPECT_EQ(authority, "");
  EXPECT_EQ(originFormPart("http://h//x"), "//x");
}

}  // namespace
}  // namespace sluice::http
