// Request smuggling and malformed requests through the proxy path: sluice
// proxies every request to a recording backend (backend.h), and each request
// below must be answered by sluice itself with the status docs/http.md gives,
// on a connection it then closes, with not one byte reaching the backend.
#include <signal.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

struct Case {
  const char* name;
  std::string bytes;
  int status;
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.name;
}

std::string get(const std::string& headers) {
  return "GET / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\n";
}

std::string post(const std::string& headers, const std::string& body = "") {
  return "POST / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\n" + body;
}

// max_header_bytes is 8k, max_headers 50 and max_body_bytes 1m below.
const Case kHeadCases[] = {
    // Content-Length with Transfer-Encoding, in every disguise.
    {"cl_then_te", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
    {"te_then_cl", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), 400},
    {"te_tab_with_cl", post("Content-Length: 5\r\nTransfer-Encoding:\tchunked\r\n", "0\r\n\r\n"),
     400},
    {"cl_zero_with_te", post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
     400},
    {"te_space_before_colon", post("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), 400},
    {"te_obs_fold", post("X-A: a\r\n Transfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
    {"te_folded_value", post("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"), 400},
    // Transfer-Encoding values.
    {"te_gzip_chunked", post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), 501},
    {"te_chunked_gzip", post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"), 400},
    {"te_chunked_chunked", post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"), 400},
    {"te_identity", post("Transfer-Encoding: identity\r\n", "0\r\n\r\n"), 400},
    {"te_gzip", post("Transfer-Encoding: gzip\r\n", "0\r\n\r\n"), 400},
    {"te_xchunked", post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"), 400},
    {"te_chunked_param", post("Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"), 400},
    {"te_quoted", post("Transfer-Encoding: \"chunked\"\r\n", "0\r\n\r\n"), 400},
    {"te_empty", post("Transfer-Encoding: \r\n", "0\r\n\r\n"), 400},
    {"te_twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
     400},
    {"te_on_http10", "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400},
    // Content-Length values.
    {"cl_twice_equal", post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"), 400},
    {"cl_twice_different", post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"), 400},
    {"cl_list", post("Content-Length: 3, 3\r\n", "abc"), 400},
    {"cl_empty", post("Content-Length: \r\n"), 400},
    {"cl_plus", post("Content-Length: +3\r\n", "abc"), 400},
    {"cl_minus", post("Content-Length: -1\r\n"), 400},
    {"cl_hex", post("Content-Length: 0x10\r\n", "0123456789abcdef"), 400},
    {"cl_inner_space", post("Content-Length: 1 2\r\n", "0123456789ab"), 400},
    {"cl_2pow64", post("Content-Length: 18446744073709551616\r\n"), 400},
    {"cl_huge", post("Content-Length: 99999999999999999999999999\r\n"), 400},
    {"cl_over_max_body", post("Content-Length: 2000000\r\n"), 413},
    // Field syntax.
    {"obs_fold", get("X-A: a\r\n b\r\n"), 400},
    {"bare_lf_line_ends", "GET / HTTP/1.1\nHost: h\n\n", 400},
    {"bare_lf_after_header", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 400},
    {"bare_cr_in_value", get("X-A: a\rb\r\n"), 400},
    {"nul_in_value", get(std::string("X-A: a\0b\r\n", 10)), 400},
    {"ctl_in_value", get("X-A: a\x01z\r\n"), 400},
    {"del_in_value", get("X-A: a\x7fz\r\n"), 400},
    {"space_before_colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"empty_header_name", get(": x\r\n"), 400},
    {"non_token_header_name", get("Bad[Name]: x\r\n"), 400},
    {"space_in_header_name", get("Bad Name: x\r\n"), 400},
    // Host.
    {"missing_host_11", "GET / HTTP/1.1\r\n\r\n", 400},
    {"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"two_equal_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
    {"empty_host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
    {"host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
    {"host_with_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
    {"host_with_path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
    {"host_empty_port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400},
    {"host_bad_port", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400},
    {"host_invalid_on_http10", "GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400},
    // Size limits.
    {"oversized_header", get("X-Big: " + std::string(9000, 'x') + "\r\n"), 431},
    {"too_many_headers",
     [] {
       std::string headers;
       for (int i = 0; i < 60; ++i)
         headers += "X-H" + std::to_string(i) + ": v\r\n";
       return get(headers);
     }(),
     431},
    {"oversized_request_line", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
     414},
    // Request line and target.
    {"space_in_target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"ctl_in_target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"del_in_target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"non_ascii_in_target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"fragment_in_target", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"relative_target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"authority_form_get", "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"absolute_form_ftp", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"absolute_form_userinfo", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"asterisk_with_get", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"double_space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"tab_separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"leading_space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"lowercase_method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"unknown_method", "FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"method_with_at", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501},
    {"pri_h2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
    // Versions.
    {"http12", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
    {"http30", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
    {"http09", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
    {"http20", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"no_version", "GET /\r\nHost: h\r\n\r\n", 400},
    {"lowercase_version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
    {"version_1_10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
    {"version_2", "GET / HTTP/2\r\nHost: h\r\n\r\n", 400},
    {"trailing_space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
};

// Errors in a chunked body: the head is valid and was already forwarded
// (sluice streams request bodies), so the backend may have received the head
// and the valid part of the body, but never the bad bytes or a complete
// request. sluice answers the client itself (no response has started) and
// closes both connections.
const Case kBodyCases[] = {
    {"chunk_size_not_hex", post("Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n"), 400},
    {"chunk_size_negative", post("Transfer-Encoding: chunked\r\n", "-1\r\na\r\n0\r\n\r\n"), 400},
    {"chunk_size_0x", post("Transfer-Encoding: chunked\r\n", "0x1\r\na\r\n0\r\n\r\n"), 400},
    {"chunk_size_overflow",
     post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff1\r\na\r\n0\r\n\r\n"), 400},
    {"chunk_ext_space", post("Transfer-Encoding: chunked\r\n", "3 ;x=1\r\nabc\r\n0\r\n\r\n"), 400},
    {"chunk_ext_garbage", post("Transfer-Encoding: chunked\r\n", "3;\x01\r\nabc\r\n0\r\n\r\n"),
     400},
    {"chunk_missing_crlf", post("Transfer-Encoding: chunked\r\n", "3\r\nabcX0\r\n\r\n"), 400},
    {"chunk_bare_lf", post("Transfer-Encoding: chunked\r\n", "3\nabc\n0\n\n"), 400},
    {"chunk_after_valid_one",
     post("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\nGET / HTTP/1.1\r\n\r\n"), 400},
    {"chunked_over_max_body", post("Transfer-Encoding: chunked\r\n", "200000\r\nabc"), 413},
    // Chunk lines beyond 16 KiB (CVE-2024-22019 in Node.js).
    {"chunk_ext_too_long",
     post("Transfer-Encoding: chunked\r\n", "1;" + std::string(20000, 'a') + "\r\nx\r\n0\r\n\r\n"),
     413},
    {"chunk_ext_quoted_too_long",
     post("Transfer-Encoding: chunked\r\n",
          "1;a=\"" + std::string(20000, 'a') + "\"\r\nx\r\n0\r\n\r\n"),
     413},
    {"chunk_size_zeros_too_long",
     post("Transfer-Encoding: chunked\r\n", std::string(20000, '0') + "1\r\nx\r\n0\r\n\r\n"), 413},
    {"cl_trailer", post("Transfer-Encoding: chunked\r\n", "0\r\nContent-Length: 5\r\n\r\n"), 400},
};

std::string caseName(const ::testing::TestParamInfo<Case>& param_info) {
  return param_info.param.name;
}

ProxyConfig smugglingConfig(int backend_port) {
  ProxyConfig config;
  config.servers = {{backend_port, 1}};
  config.limits = "{max_header_bytes: 8k, max_headers: 50, max_body_bytes: 1m}";
  config.timeouts = "{header: 3s, body: 3s, idle: 60s, send: 3s}";
  return config;
}

// Sends `bytes` and reads until sluice closes. The expected status must come
// with `Connection: close` and the connection must end.
void expectAnsweredAndClosed(int port, const Case& c) {
  RawClient client;
  ASSERT_TRUE(client.connect(port));
  ASSERT_TRUE(client.send(c.bytes));
  bool closed = false;
  std::string got = client.readUntilClose(5000ms, &closed);
  EXPECT_EQ(statusOf(got), c.status) << got;
  EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(closed) << "sluice kept the connection open";
  // Exactly one response: nothing after its body.
  size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  size_t cl = got.find("Content-Length: ");
  ASSERT_NE(cl, std::string::npos);
  EXPECT_EQ(got.size(), head_end + 4 + std::stoul(got.substr(cl + 16))) << got;
}

void checkSluiceLog(SluiceProcess* sluice) {
  int code = sluice->stop(SIGTERM);
  std::string log = sluice->errorLog();
  EXPECT_EQ(code, 0) << log;
  EXPECT_EQ(sanitizerReport(log), "") << log;
}

// One sluice and one backend for all head cases: any connection at all to
// the backend is a failure, and is caught by the case that caused it.
// One sluice in front of one recording backend per test suite (a suite runs
// many cases against the same pair). `Suite` only makes the static members
// distinct per suite.
template <typename Suite>
class SluiceInFrontOfBackend : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    backend_ = new Backend(
        [](const ReceivedRequest&, int, int) { return Reply::send(httpResponse(200, "backend")); });
    port_ = freePort();
    sluice_ = new SluiceProcess();
    if (!sluice_->start(proxyConfigYaml(port_, smugglingConfig(backend_->port())), port_)) {
      port_ = 0;
    }
  }
  static void TearDownTestSuite() {
    checkSluiceLog(sluice_);
    delete sluice_;
    sluice_ = nullptr;
    delete backend_;
    backend_ = nullptr;
  }

  inline static Backend* backend_ = nullptr;
  inline static SluiceProcess* sluice_ = nullptr;
  inline static int port_ = 0;
};

class SmugglingHeadTest : public SluiceInFrontOfBackend<SmugglingHeadTest> {};

TEST_P(SmugglingHeadTest, AnsweredBySluiceNothingReachesBackend) {
  ASSERT_NE(port_, 0) << sluice_->errorLog();
  ASSERT_TRUE(sluice_->running());
  const int probes_before = backend_->connections();
  expectAnsweredAndClosed(port_, GetParam());
  // Accepting is FIFO: once the probe is accepted, any connection sluice
  // opened for this request has been counted.
  ASSERT_TRUE(backend_->syncProbe());
  EXPECT_EQ(backend_->connections(), probes_before + 1) << "sluice connected to the backend";
  EXPECT_EQ(backend_->totalBytes(), 0u);
  EXPECT_EQ(backend_->requestCount(), 0);
}

INSTANTIATE_TEST_SUITE_P(Smuggling, SmugglingHeadTest, ::testing::ValuesIn(kHeadCases), caseName);

// The sanity check for the table: the same sluice does forward a good request.
TEST(SmugglingControl, WellFormedRequestsDoReachTheBackend) {
  Backend backend(
      [](const ReceivedRequest& r, int, int) { return Reply::send(httpResponse(200, r.body)); });
  int port = freePort();
  SluiceProcess sluice;
  ASSERT_TRUE(sluice.start(proxyConfigYaml(port, smugglingConfig(backend.port())), port))
      << sluice.errorLog();
  {
    RawClient c;
    ASSERT_TRUE(c.connect(port));
    ASSERT_TRUE(c.send(post("Transfer-Encoding: CHUNKED\r\n", "3\r\nabc\r\n0\r\n\r\n") +
                       post("Content-Length: 2\r\n", "de") + get("")));
    EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nde");
    EXPECT_EQ(c.readResponse(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(backend.requestCount(), 3);
  }  // closed before the drain, which would give an idle connection 1 s
  checkSluiceLog(&sluice);
}

// Body cases: a fresh backend per case, since the head may reach it.
class SmugglingBodyTest : public SluiceInFrontOfBackend<SmugglingBodyTest> {};

TEST_P(SmugglingBodyTest, AnsweredBySluiceAndUpstreamConnectionClosed) {
  ASSERT_NE(port_, 0) << sluice_->errorLog();
  ASSERT_TRUE(sluice_->running());
  const int requests_before = backend_->requestCount();
  const int connections_before = backend_->connections();
  expectAnsweredAndClosed(port_, GetParam());
  // Whatever connection sluice opened for this request is closed, and no
  // complete request was seen on it.
  ASSERT_TRUE(backend_->syncProbe());
  const int connections_after = backend_->connections();
  for (int i = connections_before; i < connections_after; ++i) {
    EXPECT_TRUE(backend_->waitForPeerClose(i, 2000ms)) << "backend connection " << i << " open";
  }
  EXPECT_EQ(backend_->requestCount(), requests_before) << "a complete request reached the backend";
}

INSTANTIATE_TEST_SUITE_P(Smuggling, SmugglingBodyTest, ::testing::ValuesIn(kBodyCases), caseName);

}  // namespace
}  // namespace sluice::testing
