// TlsTransport over a socketpair, server and client ends in one thread: the
// "drained" answer that saves the read returning EAGAIN after each record.
#include "tls/tls_transport.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "buffer/buffer.h"
#include "net/raw_transport.h"
#include "tls/client_context.h"
#include "tls/server_context.h"

namespace sluice::tls {
namespace {

// A self-signed ECDSA certificate made with the openssl command (as the
// integration tests do), in a temporary directory.
class SelfSigned {
 public:
  SelfSigned() {
    char dir[] = "/tmp/sluice-tls-unit-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return;
    dir_ = dir;
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -keyout " +
        key() + " -out " + cert() + " -subj /CN=unit.test -days 2 >/dev/null 2>&1";
    ok_ = std::system(command.c_str()) == 0;
  }
  ~SelfSigned() {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  bool ok() const { return ok_; }
  std::string cert() const { return dir_ + "/cert.pem"; }
  std::string key() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
  bool ok_ = false;
};

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(certificate_.ok()) << "openssl could not make a test certificate";
    ServerSettings server_settings;
    server_settings.certificates.push_back({certificate_.cert(), certificate_.key(), ""});
    std::string error;
    server_context_ = ServerContext::create(server_settings, &error);
    ASSERT_NE(server_context_, nullptr) << error;
    ClientSettings client_settings;
    client_settings.verify = false;
    client_context_ = ClientContext::create(client_settings, &error);
    ASSERT_NE(client_context_, nullptr) << error;
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    server_ = std::make_unique<TlsTransport>(
        std::make_unique<net::RawTransport>(fds[0], /*connecting=*/false), *server_context_);
    client_ = std::make_unique<TlsTransport>(
        std::make_unique<net::RawTransport>(fds[1], /*connecting=*/false),
        client_context_->newSsl("127.0.0.1"));
    // Both sides in turn until both are done: each step is non-blocking.
    bool server_done = false, client_done = false;
    for (int step = 0; step < 50 && !(server_done && client_done); ++step) {
      if (!client_done) {
        const IoResult r = client_->handshake();
        ASSERT_FALSE(r.isError()) << "client handshake: " << client_->reason();
        client_done = r.isOk();
      }
      if (!server_done) {
        const IoResult r = server_->handshake();
        ASSERT_FALSE(r.isError()) << "server handshake: " << server_->reason();
        server_done = r.isOk();
      }
    }
    ASSERT_TRUE(server_done && client_done);
    // TLS 1.3 sends session tickets after the handshake: take them in.
    Buffer discard;
    client_->read(discard, 4096);
  }

  void clientSends(const std::string& bytes) {
    Buffer out;
    out.append(bytes);
    while (!out.empty())
      ASSERT_TRUE(client_->write(out).isOk());
  }

  SelfSigned certificate_;
  std::unique_ptr<ServerContext> server_context_;
  std::unique_ptr<ClientContext> client_context_;
  std::unique_ptr<TlsTransport> server_;
  std::unique_ptr<TlsTransport> client_;
};

TEST_F(TlsTransportTest, ARecordThatEmptiesTheSocketReadsAsDrained) {
  clientSends("GET / HTTP/1.1\r\n\r\n");
  Buffer in;
  const IoResult r = server_->read(in, 16 * 1024);
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(in.size(), 18u);
  EXPECT_TRUE(r.drained) << "the socket is empty: no read for EAGAIN needed";
}

TEST_F(TlsTransportTest, RecordsStillBufferedAreNotDrained) {
  // Two records in the socket; read-ahead takes both in one read, and the
  // first SSL_read returns only the first.
  clientSends("first");
  clientSends("second");
  Buffer in;
  const IoResult first = server_->read(in, 16 * 1024);
  ASSERT_TRUE(first.isOk());
  if (in.size() == 5) {
    EXPECT_FALSE(first.drained) << "the second record is still in OpenSSL's buffer";
    const IoResult second = server_->read(in, 16 * 1024);
    ASSERT_TRUE(second.isOk());
    EXPECT_TRUE(second.drained);
  } else {
    EXPECT_EQ(in.size(), 11u);  // both at once
    EXPECT_TRUE(first.drained);
  }
  EXPECT_EQ(std::string(in.data(), in.size()), "firstsecond");
  // Drained was true: nothing is left, and a read says so.
  EXPECT_TRUE(server_->read(in, 16 * 1024).isAgain());
}

TEST_F(TlsTransportTest, AFullReadAheadBufferIsNotDrained) {
  // More than OpenSSL's read-ahead buffer holds: its read comes back full,
  // so the socket may hold more.
  clientSends(std::string(64 * 1024, 'x'));
  Buffer in;
  const IoResult r = server_->read(in, 16 * 1024);
  ASSERT_TRUE(r.isOk());
  EXPECT_FALSE(r.drained);
  size_t total = in.size();
  for (int i = 0; i < 100 && total < 64 * 1024; ++i) {
    in.clear();
    const IoResult next = server_->read(in, 16 * 1024);
    ASSERT_TRUE(next.isOk());
    total += in.size();
  }
  EXPECT_EQ(total, 64u * 1024);
}

}  // namespace
}  // namespace sluice::tls
