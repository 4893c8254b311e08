// TLS listeners through the real binary, with certificates made by the
// openssl command line for the test and real TLS clients (curl, openssl
// s_client): SNI, protocol versions, plain HTTP on a TLS port, session
// resumption across workers, X-Forwarded-Proto, client certificates,
// located config errors and reloads with broken or renewed certificates.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "integration/backend.h"
#include "integration/harness.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;

// Runs `command` with sh (stdin from /dev/null), returns its exit code and
// combined output. Every command here is bounded by `timeout`.
CommandResult shell(const std::string& command) {
  CommandResult result;
  const std::string full = "timeout 20 sh -c '" + command + "' </dev/null 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return result;
}

// Certificates for the whole suite: a CA, an RSA certificate for a.test and
// *.b.test, an ECDSA one for c.test, a client certificate, all signed by
// the CA, and a second CA nobody trusts.
class Pki {
 public:
  Pki() {
    const std::string d = dir_.path();
    ok_ = run("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + d + "/ca.key -out " + d +
              "/ca.crt -subj /CN=sluice-test-ca -days 2") &&
          run("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + d + "/evil-ca.key -out " + d +
              "/evil-ca.crt -subj /CN=evil-ca -days 2") &&
          leaf("a", "rsa:2048", "DNS:a.test,DNS:*.b.test", "ca") &&
          leaf("c", "ec -pkeyopt ec_paramgen_curve:prime256v1", "DNS:c.test", "ca") &&
          leaf("a2", "rsa:2048", "DNS:a.test,DNS:*.b.test", "ca") &&
          leaf("client", "rsa:2048", "DNS:client.test", "ca") &&
          leaf("intruder", "rsa:2048", "DNS:client.test", "evil-ca");
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

 private:
  bool run(const std::string& command) {
    CommandResult r = shell(command);
    if (r.exit_code != 0) std::fprintf(stderr, "%s\n%s\n", command.c_str(), r.output.c_str());
    return r.exit_code == 0;
  }
  bool leaf(const std::string& name, const std::string& key, const std::string& sans,
            const std::string& ca) {
    const std::string d = dir_.path() + "/";
    dir_.write(name + ".ext", "subjectAltName=" + sans + "\n");
    return run("openssl req -newkey " + key + " -nodes -keyout " + d + name + ".key -out " + d +
               name + ".csr -subj /CN=" + name + ".test") &&
           run("openssl x509 -req -in " + d + name + ".csr -CA " + d + ca + ".crt -CAkey " + d +
               ca + ".key -CAcreateserial -out " + d + name + ".crt -days 2 -extfile " + d + name +
               ".ext");
  }
  TempDir dir_;
  bool ok_ = false;
};

const Pki& pki() {
  static const Pki* instance = new Pki();  // made once, for every test
  return *instance;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pki().ok()); }
  void TearDown() override {
    if (sluice_.running()) {
      EXPECT_EQ(sluice_.stop(SIGTERM), 0);
      EXPECT_EQ(sanitizerReport(sluice_.errorLog()), "");
    }
  }

  // A TLS listener on port_ in front of `backend_port`, plus a plain
  // listener on plain_port_.
  std::string config(const std::string& tls_extra = "", int workers = 1,
                     const std::string& certificates = "") const {
    const std::string certs = certificates.empty()
                                  ? "        - {cert: " + pki().path("a.crt") +
                                        ", key: " + pki().path("a.key") +
                                        "}\n        - {cert: " + pki().path("c.crt") +
                                        ", key: " + pki().path("c.key") + "}\n"
                                  : certificates;
    return "workers: " + std::to_string(workers) +
           "\nshutdown_timeout: 1s\npid_file: " + sluice_.dir().path() +
           "/sluice.pid\n"
           "log: {level: debug, error: stderr, access: off}\n"
           "listeners:\n"
           "  - name: secure\n"
           "    address: 127.0.0.1:" +
           std::to_string(port_) +
           "\n"
           "    tls:\n"
           "      certificates:\n" +
           certs + tls_extra +
           "    routes:\n"
           "      - upstream: app\n"
           "upstreams:\n"
           "  app:\n"
           "    servers: [{address: 127.0.0.1:" +
           std::to_string(backend_.port()) + "}]\n";
  }

  void start(const std::string& yaml) {
    ASSERT_TRUE(sluice_.start(yaml, port_)) << sluice_.errorLog();
  }

  std::string curl(const std::string& host, const std::string& extra = "") const {
    return "curl -sS --max-time 5 --cacert " + pki().path("ca.crt") + " --resolve " + host + ":" +
           std::to_string(port_) + ":127.0.0.1 " + extra + " https://" + host + ":" +
           std::to_string(port_) + "/hello";
  }

  std::string sClient(const std::string& options) const {
    return "openssl s_client -connect 127.0.0.1:" + std::to_string(port_) + " -CAfile " +
           pki().path("ca.crt") + " " + options;
  }

  Backend backend_{[](const ReceivedRequest& request, int, int) {
    return Reply::send(httpResponse(200, "proto=" + request.value("x-forwarded-proto")));
  }};
  int port_ = freePort();
  SluiceProcess sluice_;
};

TEST_F(TlsTest, CurlGetsTheResponseAndTheUpstreamSeesHttps) {
  start(config());
  CommandResult r = shell(curl("a.test"));
  EXPECT_EQ(r.exit_code, 0) << r.output << sluice_.errorLog();
  EXPECT_EQ(r.output, "proto=https");
  // A wildcard name of the same certificate.
  r = shell(curl("x.b.test"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "proto=https");
}

TEST_F(TlsTest, SniChoosesTheCertificateAndTheFirstIsTheDefault) {
  start(config());
  CommandResult c = shell("echo | " + sClient("-servername c.test -verify_return_error") +
                          " | openssl x509 -noout -subject");
  EXPECT_NE(c.output.find("CN = c.test"), std::string::npos) << c.output;
  CommandResult unknown =
      shell("echo | " + sClient("-servername nobody.test") + " | openssl x509 -noout -subject");
  EXPECT_NE(unknown.output.find("CN = a.test"), std::string::npos) << unknown.output;
  CommandResult none =
      shell("echo | " + sClient("-noservername") + " | openssl x509 -noout -subject");
  EXPECT_NE(none.output.find("CN = a.test"), std::string::npos) << none.output;
}

TEST_F(TlsTest, ProtocolVersionsAreEnforced) {
  start(config("      protocols: [TLSv1.3]\n"));
  EXPECT_EQ(shell("echo | " + sClient("-servername a.test -tls1_3")).exit_code, 0);
  CommandResult old = shell("echo | " + sClient("-servername a.test -tls1_2"));
  EXPECT_NE(old.exit_code, 0) << old.output;
  CommandResult older = shell("echo | " + sClient("-servername a.test -tls1_1"));
  EXPECT_NE(older.exit_code, 0) << older.output;
}

TEST_F(TlsTest, DefaultsOfferTls12WithIntermediateCiphersAndTls13) {
  start(config());
  CommandResult v12 = shell("echo | " + sClient("-servername a.test -tls1_2"));
  EXPECT_EQ(v12.exit_code, 0) << v12.output;
  // The client's preference among the offered suites (Mozilla intermediate:
  // no server preference): an ECDHE AEAD suite.
  EXPECT_TRUE(std::regex_search(v12.output, std::regex("Cipher is ECDHE-RSA-(AES(128|256)-GCM|"
                                                       "CHACHA20-POLY1305)")))
      << v12.output;
  // A suite Mozilla's intermediate list leaves out.
  CommandResult weak =
      shell("echo | " + sClient("-servername a.test -tls1_2 -cipher AES128-SHA256"));
  EXPECT_NE(weak.exit_code, 0) << weak.output;
  CommandResult v13 = shell("echo | " + sClient("-servername a.test -tls1_3"));
  EXPECT_NE(v13.output.find("TLSv1.3"), std::string::npos) << v13.output;
  // ALPN: http/1.1 is offered; h2 alone is refused (RFC 7301 alert).
  CommandResult alpn = shell("echo | " + sClient("-servername a.test -alpn h2,http/1.1"));
  EXPECT_NE(alpn.output.find("ALPN protocol: http/1.1"), std::string::npos) << alpn.output;
  EXPECT_NE(shell("echo | " + sClient("-servername a.test -alpn h2")).exit_code, 0);
}

TEST_F(TlsTest, PlainHttpOnTheTlsPortGetsA400AndIsClosed) {
  start(config());
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
  bool closed = false;
  const std::string got = c.readUntilClose(3000ms, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(statusOf(got), 400) << got;
  EXPECT_NE(got.find("This port speaks HTTPS"), std::string::npos) << got;
  EXPECT_EQ(backend_.requestCount(), 0);
}

TEST_F(TlsTest, SessionsResumeAcrossWorkers) {
  start(config("", /*workers=*/2));
  const std::string session = pki().path("session-" + std::to_string(port_));
  // A whole request and its answer, so that s_client reads the TLS 1.3
  // session ticket (sent after the handshake) before it exits.
  const std::string request =
      "printf \"GET / HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n\" | ";
  CommandResult first =
      shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_out " + session));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_NE(first.output.find("proto=https"), std::string::npos) << first.output;
  // Sessions live 5 minutes (nginx's and HAProxy's default), not OpenSSL's 2 hours.
  EXPECT_NE(first.output.find("lifetime hint: 300 (seconds)"), std::string::npos) << first.output;
  // Each reconnection lands on either worker; every one resumes.
  for (int i = 0; i < 8; ++i) {
    CommandResult again =
        shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_in " + session));
    EXPECT_NE(again.output.find("Reused, TLSv1.3"), std::string::npos) << i << "\n" << again.output;
  }
  // A reload starts new workers; the keys are the master's, so the same
  // ticket still resumes.
  CommandResult reload = runSluice({"-s", "reload", "-c", sluice_.dir().path() + "/sluice.yaml"});
  ASSERT_EQ(reload.exit_code, 0) << reload.output;
  for (int i = 0; i < 4; ++i) {
    CommandResult after =
        shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_in " + session));
    EXPECT_NE(after.output.find("Reused, TLSv1.3"), std::string::npos) << i << "\n" << after.output;
  }
}

// A TLS 1.3 client uses each ticket once (RFC 8446 C.4), so every resumed
// connection must bring a fresh ticket: a chain of reconnections, each with
// the session the previous one ended with, resumes every time (wrk
// reconnects this way; without fresh tickets every other one was full).
TEST_F(TlsTest, EveryResumedConnectionBringsAFreshTicket) {
  start(config(""));
  const std::string request =
      "printf \"GET / HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n\" | ";
  const std::string base = pki().path("chain-" + std::to_string(port_));
  CommandResult first =
      shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_out " + base + "-0"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  for (int i = 1; i <= 3; ++i) {
    const std::string in = base + "-" + std::to_string(i - 1);
    const std::string out = base + "-" + std::to_string(i);
    CommandResult next = shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_in " +
                                                 in + " -sess_out " + out));
    EXPECT_NE(next.output.find("Reused, TLSv1.3"), std::string::npos) << i << "\n" << next.output;
    // s_client writes -sess_out only when the server sent a ticket.
    ASSERT_TRUE(std::filesystem::exists(out)) << i << ": no new ticket on a resumed connection";
  }
}

TEST_F(TlsTest, ClientCertificatesWhenRequired) {
  start(config("      client_auth: {mode: required, ca: " + pki().path("ca.crt") + "}\n"));
  const std::string client =
      "--cert " + pki().path("client.crt") + " --key " + pki().path("client.key");
  CommandResult with = shell(curl("a.test", client));
  EXPECT_EQ(with.exit_code, 0) << with.output;
  EXPECT_EQ(with.output, "proto=https");
  CommandResult without = shell(curl("a.test"));
  EXPECT_NE(without.exit_code, 0) << without.output;
  CommandResult intruder = shell(curl(
      "a.test", "--cert " + pki().path("intruder.crt") + " --key " + pki().path("intruder.key")));
  EXPECT_NE(intruder.exit_code, 0) << intruder.output;
  EXPECT_EQ(backend_.requestCount(), 1);
}

TEST_F(TlsTest, TheAccessLogSaysProtocolCipherSniAndClientSubject) {
  const std::string log_path = sluice_.dir().path() + "/access.log";
  std::string yaml =
      config("      client_auth: {mode: optional, ca: " + pki().path("ca.crt") + "}\n");
  const std::string off = "access: off";
  yaml.replace(yaml.find(off), off.size(), "access: " + log_path + ", access_format: json");
  start(yaml);
  CommandResult r = shell(curl("a.test", "--tlsv1.3 --cert " + pki().path("client.crt") +
                                             " --key " + pki().path("client.key")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(sluice_.stop(SIGTERM), 0);  // flushes the log
  std::ifstream in(log_path);
  std::stringstream lines;
  lines << in.rdbuf();
  const std::string text = lines.str();
  EXPECT_NE(text.find("\"tls_protocol\":\"TLSv1.3\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"tls_cipher\":\"TLS_"), std::string::npos) << text;
  EXPECT_NE(text.find("\"tls_server_name\":\"a.test\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"tls_client_subject\":\"/CN=client.test\""), std::string::npos) << text;
}

// A plain listener sends clients to the TLS one: same host, path and query.
TEST_F(TlsTest, RedirectRouteSendsPlainClientsToHttps) {
  const int plain = freePort();
  std::string yaml = config();
  yaml.replace(yaml.find("upstreams:"), 0,
               "  - name: plain\n    address: 127.0.0.1:" + std::to_string(plain) +
                   "\n    routes:\n      - redirect: {scheme: https, port: " +
                   std::to_string(port_) + "}\n");
  start(yaml);
  const std::string resolve = " --resolve a.test:" + std::to_string(plain) +
                              ":127.0.0.1 --resolve a.test:" + std::to_string(port_) +
                              ":127.0.0.1 ";
  CommandResult head =
      shell("curl -sS --max-time 5 -o /dev/null -w \"%{http_code} %{redirect_url}\"" + resolve +
            "\"http://a.test:" + std::to_string(plain) + "/x/y?z=1\"");
  EXPECT_EQ(head.output, "308 https://a.test:" + std::to_string(port_) + "/x/y?z=1") << head.output;
  CommandResult followed = shell("curl -sS --max-time 5 -L --cacert " + pki().path("ca.crt") +
                                 resolve + "http://a.test:" + std::to_string(plain) + "/x");
  EXPECT_EQ(followed.output, "proto=https") << followed.output;
  EXPECT_EQ(backend_.requestCount(), 1);  // the redirect itself forwarded nothing
}

// sluice in front of a TLS upstream (another sluice with a TLS listener):
// verified by default, against server_name (or the address).
TEST_F(TlsTest, UpstreamTlsIsVerifiedByDefault) {
  start(config());
  const auto front = [&](const std::string& tls) {
    const int port = freePort();
    auto process = std::make_unique<SluiceProcess>();
    const std::string yaml =
        "workers: 1\nshutdown_timeout: 1s\nlog: {level: debug, error: stderr, access: off}\n"
        "listeners:\n  - address: 127.0.0.1:" +
        std::to_string(port) +
        "\n    routes: [{upstream: secure}]\n"
        "upstreams:\n  secure:\n    retries: 0\n    passive: off\n    tls: " +
        tls + "\n    servers: [{address: 127.0.0.1:" + std::to_string(port_) + "}]\n";
    EXPECT_TRUE(process->start(yaml, port)) << process->errorLog();
    RawClient c;
    EXPECT_TRUE(c.connect(port));
    c.send("GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    const std::string response = c.readResponse();
    const std::string log = process->errorLog();
    EXPECT_EQ(process->stop(SIGTERM), 0);
    return std::make_pair(response, log);
  };
  const std::string ca = pki().path("ca.crt");
  auto [ok, ok_log] = front("{ca: " + ca + ", server_name: a.test}");
  EXPECT_EQ(statusOf(ok), 200) << ok << ok_log;
  EXPECT_NE(ok.find("proto=https"), std::string::npos) << ok;
  auto [untrusted, untrusted_log] = front("{server_name: a.test}");  // the system store
  EXPECT_EQ(statusOf(untrusted), 502) << untrusted;
  EXPECT_NE(untrusted_log.find("upstream certificate refused"), std::string::npos) << untrusted_log;
  auto [wrong_name, wrong_name_log] = front("{ca: " + ca + ", server_name: other.test}");
  EXPECT_EQ(statusOf(wrong_name), 502) << wrong_name;
  EXPECT_NE(wrong_name_log.find("hostname mismatch"), std::string::npos) << wrong_name_log;
  auto [by_ip, by_ip_log] = front("{ca: " + ca + "}");  // no IP in the certificate
  EXPECT_EQ(statusOf(by_ip), 502) << by_ip;
  auto [unverified, unverified_log] = front("{verify: false}");
  EXPECT_EQ(statusOf(unverified), 200) << unverified << unverified_log;
  EXPECT_NE(unverified_log.find("warning: verify: false"), std::string::npos) << unverified_log;
}

// Upstream TLS sessions are reused: a second connection to the same server
// resumes the first one's session (an abbreviated handshake), as nginx's
// proxy_ssl_session_reuse does.
TEST_F(TlsTest, UpstreamTlsSessionsAreResumed) {
  start(config());
  const int port = freePort();
  const int admin_port = freePort();
  SluiceProcess front;
  const std::string yaml =
      "workers: 1\nshutdown_timeout: 1s\nlog: {level: debug, error: stderr, access: off}\n"
      "admin: {address: 127.0.0.1:" +
      std::to_string(admin_port) +
      "}\n"
      "listeners:\n  - address: 127.0.0.1:" +
      std::to_string(port) +
      "\n    routes: [{upstream: secure}]\n"
      "upstreams:\n  secure:\n    keepalive: {max_idle: 0}\n    tls: {ca: " +
      pki().path("ca.crt") +
      ", server_name: a.test}\n    servers: [{address: 127.0.0.1:" + std::to_string(port_) + "}]\n";
  ASSERT_TRUE(front.start(yaml, port)) << front.errorLog();
  for (int i = 0; i < 3; ++i) {
    RawClient c;
    ASSERT_TRUE(c.connect(port));
    c.send("GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(statusOf(c.readResponse()), 200);
  }
  const std::string log = front.errorLog();
  EXPECT_NE(log.find("upstream TLSv1.3 handshake (full)"), std::string::npos) << log;
  EXPECT_NE(log.find("upstream TLSv1.3 handshake (session resumed)"), std::string::npos) << log;
  // The same in /metrics: one full handshake, then resumed sessions.
  RawClient scrape;
  ASSERT_TRUE(scrape.connect(admin_port));
  scrape.send("GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const std::string metrics = scrape.readResponse();
  const std::string series =
      "{upstream=\"secure\",server=\"127.0.0.1:" + std::to_string(port_) + "\"} ";
  EXPECT_NE(metrics.find("sluice_upstream_tls_handshakes_total" + series + "1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_upstream_tls_resumed_total" + series + "2\n"), std::string::npos)
      << metrics;
  EXPECT_EQ(front.stop(SIGTERM), 0);
  EXPECT_EQ(sanitizerReport(log), "");
}

// client_cert_header: the verified certificate reaches the upstream, URL-
// encoded; a client's own header of that name never does.
TEST_F(TlsTest, ClientCertificateIsPassedOnOnlyWhenVerified) {
  Backend echo([](const ReceivedRequest& request, int, int) {
    return Reply::send(httpResponse(200, "cert=" + request.value("x-client-cert")));
  });
  std::string yaml =
      config("      client_auth: {mode: optional, ca: " + pki().path("ca.crt") + "}\n");
  const std::string route = "      - upstream: app\n";
  yaml.replace(yaml.find(route), route.size(),
               "      - upstream: app\n        client_cert_header: X-Client-Cert\n");
  const std::string old_backend = "127.0.0.1:" + std::to_string(backend_.port());
  yaml.replace(yaml.find(old_backend), old_backend.size(),
               "127.0.0.1:" + std::to_string(echo.port()));
  start(yaml);
  CommandResult with = shell(
      curl("a.test", "--cert " + pki().path("client.crt") + " --key " + pki().path("client.key")));
  EXPECT_EQ(with.output.rfind("cert=-----BEGIN%20CERTIFICATE-----%0A", 0), 0u) << with.output;
  EXPECT_NE(with.output.find("-----END%20CERTIFICATE-----%0A"), std::string::npos) << with.output;
  CommandResult forged = shell(curl("a.test", "-H \"X-Client-Cert: forged\""));
  EXPECT_EQ(forged.output, "cert=") << forged.output;
}

// Bad input before and during the handshake: each is closed with nothing
// forwarded, the worker survives (the ASan build runs this too).
TEST_F(TlsTest, GarbageAndTruncatedHandshakesAreClosed) {
  start(config());
  // Each is closed (perhaps after a TLS alert), never answered in HTTP.
  const auto closedWithoutHttp = [&](const std::string& bytes, bool half_close) {
    RawClient c;
    EXPECT_TRUE(c.connect(port_));
    EXPECT_TRUE(c.send(bytes));
    if (half_close) c.shutdownWrite();
    bool closed = false;
    const std::string got = c.readUntilClose(3000ms, &closed);
    EXPECT_TRUE(closed) << "not closed after " << bytes.size() << " bytes";
    EXPECT_EQ(got.rfind("HTTP/", 0), std::string::npos) << got;
  };
  closedWithoutHttp(std::string("\x16\x03\x01\x00\x05garbagegarbage", 19), false);
  // The start of a ClientHello record, then the client goes away.
  closedWithoutHttp(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), true);
  closedWithoutHttp(std::string(64, '\0'), false);
  EXPECT_EQ(backend_.requestCount(), 0);
  CommandResult r = shell(curl("a.test"));
  EXPECT_EQ(r.output, "proto=https") << r.output;
  EXPECT_EQ(sluice_.errorLog().find("killed by signal"), std::string::npos) << sluice_.errorLog();
}

// An upstream that accepts and resets at once, in the middle of our
// handshake: 502, the reason logged, the front sluice fine.
TEST_F(TlsTest, UpstreamThatResetsItsHandshakeIs502) {
  const int upstream_port = freePort();
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  std::thread resetter([listener] {
    for (int i = 0; i < 3; ++i) {
      const int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buf[512];
      (void)::recv(fd, buf, sizeof buf, 0);  // the ClientHello
      const linger reset{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ::close(fd);  // RST
    }
  });
  const int port = freePort();
  SluiceProcess front;
  const std::string yaml =
      "workers: 1\nshutdown_timeout: 1s\nlog: {level: info, error: stderr, access: off}\n"
      "listeners:\n  - address: 127.0.0.1:" +
      std::to_string(port) +
      "\n    routes: [{upstream: flaky}]\n"
      "upstreams:\n  flaky:\n    retries: 0\n    passive: off\n    tls: {ca: " +
      pki().path("ca.crt") +
      "}\n    servers: [{address: 127.0.0.1:" + std::to_string(upstream_port) + "}]\n";
  ASSERT_TRUE(front.start(yaml, port)) << front.errorLog();
  for (int i = 0; i < 3; ++i) {
    RawClient c;
    ASSERT_TRUE(c.connect(port));
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(statusOf(c.readResponse()), 502);
  }
  resetter.join();
  ::close(listener);
  EXPECT_NE(front.errorLog().find("connect failed: "), std::string::npos) << front.errorLog();
  EXPECT_EQ(front.stop(SIGTERM), 0);
  EXPECT_EQ(sanitizerReport(front.errorLog()), "");
}

TEST_F(TlsTest, HandshakeTimeoutClosesASilentClient) {
  start(config("      handshake_timeout: 500ms\n"));
  RawClient c;
  ASSERT_TRUE(c.connect(port_));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closedByPeer(3000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2000ms);
}

TEST_F(TlsTest, BadCertificatesAreLocatedConfigErrors) {
  TempDir dir;
  const auto check = [&](const std::string& certificates) {
    const std::string path = dir.write("sluice.yaml", config("", 1, certificates));
    return runSluice({"-t", "-c", path});
  };
  CommandResult missing =
      check("        - {cert: /nonexistent/site.crt, key: " + pki().path("a.key") + "}\n");
  EXPECT_EQ(missing.exit_code, 1);
  // Line and column of the cert value itself.
  EXPECT_NE(missing.output.find("sluice.yaml:10:18: "), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("listeners[0].tls.certificates[0].cert: cannot read certificate "
                                "/nonexistent/site.crt: No such file or directory"),
            std::string::npos)
      << missing.output;
  CommandResult mismatch =
      check("        - {cert: " + pki().path("a.crt") + ", key: " + pki().path("c.key") + "}\n");
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.output.find("does not match certificate"), std::string::npos)
      << mismatch.output;
  CommandResult good = check("");
  EXPECT_EQ(good.exit_code, 0) << good.output;
}

// An OCSP response made by the test CA for `name`'s certificate (openssl
// ocsp as a one-shot responder over an index file), written to DIR/name.ocsp;
// and NAME-chain.crt, the certificate followed by its issuer.
bool makeOcsp(const TempDir& dir, const std::string& name) {
  const std::string d = dir.path() + "/";
  const std::string serial = shell("openssl x509 -noout -serial -in " + pki().path(name + ".crt"))
                                 .output.substr(7);  // "serial=ABCD\n"
  dir.write("index.txt", "V\t301231235959Z\t\t" + serial.substr(0, serial.size() - 1) +
                             "\tunknown\t/CN=" + name + ".test\n");
  return shell("cat " + pki().path(name + ".crt") + " " + pki().path("ca.crt") + " > " + d + name +
               "-chain.crt && openssl ocsp -issuer " + pki().path("ca.crt") + " -cert " +
               pki().path(name + ".crt") + " -no_nonce -reqout " + d + name +
               ".req && openssl ocsp -index " + d + "index.txt -rsigner " + pki().path("ca.crt") +
               " -rkey " + pki().path("ca.key") + " -CA " + pki().path("ca.crt") + " -reqin " + d +
               name + ".req -respout " + d + name + ".ocsp -ndays 1")
             .exit_code == 0;
}

TEST_F(TlsTest, OcspResponsesAreStapledAndCheckedAtLoad) {
  TempDir dir;
  ASSERT_TRUE(makeOcsp(dir, "a"));
  const std::string chain = dir.path() + "/a-chain.crt";
  start(config("", 1,
               "        - {cert: " + chain + ", key: " + pki().path("a.key") +
                   ", ocsp: " + dir.path() + "/a.ocsp}\n"));
  CommandResult r = shell("echo | " + sClient("-servername a.test -status"));
  EXPECT_NE(r.output.find("OCSP Response Status: successful"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Cert Status: good"), std::string::npos) << r.output;
  // A client that does not ask gets no staple.
  CommandResult plain = shell("echo | " + sClient("-servername a.test"));
  EXPECT_EQ(plain.output.find("OCSP Response Status"), std::string::npos) << plain.output;

  // At load: not a response, a response about another certificate.
  const auto check = [&](const std::string& cert, const std::string& ocsp) {
    const std::string path = dir.write(
        "check.yaml", config("", 1,
                             "        - {cert: " + cert + ", key: " + pki().path("a.key") +
                                 ", ocsp: " + ocsp + "}\n"));
    return runSluice({"-t", "-c", path});
  };
  CommandResult garbage = check(chain, dir.write("garbage.ocsp", "not DER"));
  EXPECT_EQ(garbage.exit_code, 1);
  EXPECT_NE(garbage.output.find("check.yaml:10:"), std::string::npos) << garbage.output;
  EXPECT_NE(garbage.output.find("listeners[0].tls.certificates[0].ocsp: " + dir.path() +
                                "/garbage.ocsp is not a DER OCSP response"),
            std::string::npos)
      << garbage.output;
  ASSERT_TRUE(makeOcsp(dir, "client"));  // a response about client.crt
  CommandResult other = check(chain, dir.path() + "/client.ocsp");
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.output.find("is not about certificate " + chain), std::string::npos)
      << other.output;
}

// An expired certificate is a warning (clients will refuse it), not an
// error: `openssl ca` with a CA database can sign one that ended in 2020.
TEST_F(TlsTest, AnExpiredCertificateIsALocatedWarning) {
  TempDir dir;
  const std::string d = dir.path() + "/";
  dir.write("index.txt", "");
  dir.write("serial", "1000\n");
  dir.write("ca.cnf", "[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = " + d +
                          "index.txt\nnew_certs_dir = " + d + "\nserial = " + d +
                          "serial\ndefault_md = sha256\npolicy = any\n[any]\n"
                          "commonName = supplied\n");
  ASSERT_EQ(shell("openssl req -newkey rsa:2048 -nodes -keyout " + d + "old.key -out " + d +
                  "old.csr -subj /CN=a.test && openssl ca -batch -config " + d + "ca.cnf -cert " +
                  pki().path("ca.crt") + " -keyfile " + pki().path("ca.key") + " -in " + d +
                  "old.csr -out " + d +
                  "old.crt -notext -startdate 20200101000000Z -enddate 20200102000000Z")
                .exit_code,
            0);
  const std::string path = dir.write(
      "sluice.yaml", config("", 1, "        - {cert: " + d + "old.crt, key: " + d + "old.key}\n"));
  CommandResult r = runSluice({"-t", "-c", path});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(path +
                          ":10:18: listeners[0].tls.certificates[0].cert: warning: "
                          "certificate " +
                          d +
                          "old.crt expired (Jan  2 00:00:00 2020 "
                          "GMT); clients will refuse it"),
            std::string::npos)
      << r.output;
}

TEST_F(TlsTest, RouteHostsNeedACertificateName) {
  TempDir dir;
  std::string yaml = config();
  const std::string routes = "    routes:\n      - upstream: app\n";
  yaml.replace(yaml.find(routes), routes.size(),
               "    routes:\n      - match: {host: d.test}\n        upstream: app\n");
  CommandResult r = runSluice({"-t", "-c", dir.write("sluice.yaml", yaml)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no certificate of this listener is valid for \"d.test\""),
            std::string::npos)
      << r.output;
}

// Reload re-reads the certificates; a broken one refuses the reload and
// the old generation keeps serving with the old certificate.
TEST_F(TlsTest, ReloadRenewsCertificatesAndRefusesBrokenOnes) {
  TempDir files;
  const std::string cert = files.path() + "/site.crt";
  const std::string key = files.path() + "/site.key";
  const auto install = [&](const std::string& name) {
    ASSERT_EQ(shell("cp " + pki().path(name + ".crt") + " " + cert + " && cp " +
                    pki().path(name + ".key") + " " + key)
                  .exit_code,
              0);
  };
  install("a");
  const std::string certificates = "        - {cert: " + cert + ", key: " + key + "}\n";
  start(config("", 1, certificates));
  const auto serial = [&] {
    return shell("echo | " + sClient("-servername a.test") + " | openssl x509 -noout -serial")
        .output;
  };
  const std::string before = serial();
  ASSERT_NE(before.find("serial="), std::string::npos) << before;
  // A key that does not match: refused, the old certificate still served.
  ASSERT_EQ(shell("cp " + pki().path("c.key") + " " + key).exit_code, 0);
  CommandResult refused = runSluice({"-s", "reload", "-c", sluice_.dir().path() + "/sluice.yaml"});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("does not match"), std::string::npos) << refused.output;
  EXPECT_EQ(serial(), before);
  // The master refuses it too when signalled directly (no -s pre-check).
  ::kill(sluice_.pid(), SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (sluice_.errorLog().find("reload failed") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(sluice_.errorLog().find("reload failed"), std::string::npos) << sluice_.errorLog();
  EXPECT_EQ(serial(), before);
  EXPECT_EQ(shell(curl("a.test")).output, "proto=https");
  // A renewed certificate (same names, new serial): served after reload.
  install("a2");
  CommandResult renewed = runSluice({"-s", "reload", "-c", sluice_.dir().path() + "/sluice.yaml"});
  EXPECT_EQ(renewed.exit_code, 0) << renewed.output;
  const std::string after = serial();
  EXPECT_NE(after, before);
  EXPECT_NE(after.find("serial="), std::string::npos) << after;
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

// The admin /metrics counts handshakes on TLS listeners, and the ones that
// failed by reason.
TEST_F(TlsTest, MetricsCountHandshakesAndFailuresByReason) {
  const int admin_port = freePort();
  start("admin: {address: 127.0.0.1:" + std::to_string(admin_port) + "}\n" + config());
  const auto value = [](const std::string& text, const std::string& prefix) {
    const size_t at = text.find("\n" + prefix);
    return at == std::string::npos ? -1.0
                                   : std::strtod(text.c_str() + at + 1 + prefix.size(), nullptr);
  };
  const auto scrape = [&] {
    RawClient c;
    if (!c.connect(admin_port)) return std::string();
    c.send("GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    return c.readResponse();
  };
  const std::string eof = "sluice_tls_handshake_failures_total{reason=\"eof\"} ";
  // The start-up probe (a connection closed without a byte) counts as one.
  const double eof_before = value(scrape(), eof);
  ASSERT_GE(eof_before, 0);
  for (int i = 0; i < 2; ++i) {
    const CommandResult ok = shell(curl("a.test"));
    ASSERT_EQ(ok.exit_code, 0) << ok.output;
  }
  // One more full TLS 1.3 handshake that saves its session, one that
  // resumes it, and a full TLS 1.2 one.
  const std::string session = pki().path("metrics-session-" + std::to_string(port_));
  const std::string request =
      "printf \"GET / HTTP/1.1\\r\\nHost: a.test\\r\\nConnection: close\\r\\n\\r\\n\" | ";
  const CommandResult saved =
      shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_out " + session));
  ASSERT_EQ(saved.exit_code, 0) << saved.output;
  const CommandResult resumed =
      shell(request + sClient("-servername a.test -tls1_3 -ign_eof -sess_in " + session));
  ASSERT_NE(resumed.output.find("Reused, TLSv1.3"), std::string::npos) << resumed.output;
  const CommandResult tls12 = shell(request + sClient("-servername a.test -tls1_2 -ign_eof"));
  ASSERT_EQ(tls12.exit_code, 0) << tls12.output;
  {
    RawClient plain;  // plain HTTP on the TLS port: a protocol failure
    ASSERT_TRUE(plain.connect(port_));
    ASSERT_TRUE(plain.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    plain.readUntilClose(3000ms);
  }
  {
    RawClient gone;  // connects and leaves before any handshake byte
    ASSERT_TRUE(gone.connect(port_));
  }
  std::string text;
  for (int attempt = 0; attempt < 100; ++attempt) {
    text = scrape();
    if (value(text, eof) == eof_before + 1) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(value(text, "sluice_tls_handshakes_total{protocol=\"TLSv1.3\",session=\"full\"} "), 3)
      << text;
  EXPECT_EQ(value(text, "sluice_tls_handshakes_total{protocol=\"TLSv1.3\",session=\"resumed\"} "),
            1)
      << text;
  EXPECT_EQ(value(text, "sluice_tls_handshakes_total{protocol=\"TLSv1.2\",session=\"full\"} "), 1)
      << text;
  EXPECT_EQ(value(text, "sluice_tls_handshakes_total{protocol=\"TLSv1.2\",session=\"resumed\"} "),
            0)
      << text;
  EXPECT_EQ(value(text, "sluice_tls_handshake_failures_total{reason=\"protocol\"} "), 1) << text;
  EXPECT_EQ(value(text, eof), eof_before + 1) << text;
  EXPECT_EQ(value(text, "sluice_tls_handshake_failures_total{reason=\"timeout\"} "), 0) << text;
}

}  // namespace
}  // namespace sluice::testing
