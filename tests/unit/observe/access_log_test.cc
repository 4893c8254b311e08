// The access log over stdout when stdout is a pipe that is read slowly or
// not at all: writing never blocks, lines that cannot wait are dropped whole
// and counted, and every line that arrives is complete.
#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "event/clock.h"
#include "event/timer.h"

namespace sluice::observe {
namespace {

class StdoutPipe {
 public:
  StdoutPipe() {
    saved_ = ::dup(STDOUT_FILENO);
    EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0);
    ::dup2(fds_[1], STDOUT_FILENO);
    ::fcntl(fds_[0], F_SETFL, O_NONBLOCK);
  }
  ~StdoutPipe() {
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  // Everything the pipe holds now.
  std::string drain() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds_[0], buf, sizeof buf)) > 0)
      out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  int saved_ = -1;
  int fds_[2] = {-1, -1};
};

RequestRecord record() {
  RequestRecord r;
  r.client_ip = "127.0.0.1";
  r.method = "GET";
  r.target = "/a/fairly/long/path/so/that/lines/do/not/divide/the/pipe/evenly?x=1";
  r.status = 200;
  r.body_bytes_sent = 1234;
  r.user_agent = "access-log-test";
  r.started = std::chrono::system_clock::now();
  return r;
}

size_t countLines(const std::string& text) {
  size_t lines = 0;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = text.substr(start, end - start);
    EXPECT_EQ(line.rfind("127.0.0.1 ", 0), 0u) << "a broken line: " << line;
    EXPECT_NE(line.find("\"access-log-test\""), std::string::npos) << line;
    ++lines;
  }
  EXPECT_EQ(start, text.size()) << "a line without its end";
  return lines;
}

TEST(AccessLog, AStalledStdoutNeverBlocksAndDropsWholeLines) {
  StdoutPipe pipe;
  event::ManualClock clock;
  event::TimerQueue timers(clock);
  AccessLog log(timers);
  Counter dropped{0};
  log.countDropsIn(&dropped);
  std::string error;
  ASSERT_TRUE(log.open("stdout", "combined", &error)) << error;
  constexpr size_t kLines = 20000;  // ~3 MB: far beyond a 64 KiB pipe + 256 KiB
  for (size_t i = 0; i < kLines; ++i)
    log.append(record());  // would hang here if a write blocked
  log.flush();
  EXPECT_GT(dropped.load(), 0u);
  EXPECT_EQ(dropped.load(), log.linesDropped());
  // The reader wakes up: what was kept arrives, whole, and nothing is lost
  // that was not counted.
  std::string received;
  for (int round = 0; round < 100; ++round) {
    received += pipe.drain();
    log.flush();
  }
  received += pipe.drain();
  EXPECT_EQ(countLines(received) + dropped.load(), kLines);
}

TEST(AccessLog, AReaderThatKeepsUpLosesNothing) {
  StdoutPipe pipe;
  event::ManualClock clock;
  event::TimerQueue timers(clock);
  AccessLog log(timers);
  std::string error;
  ASSERT_TRUE(log.open("stdout", "json", &error)) << error;
  std::string received;
  for (size_t i = 0; i < 5000; ++i) {
    log.append(record());
    if (i % 100 == 0) received += pipe.drain();
  }
  log.flush();
  received += pipe.drain();
  size_t lines = 0;
  for (char c : received)
    lines += c == '\n' ? 1 : 0;
  EXPECT_EQ(lines, 5000u);
  EXPECT_EQ(log.linesDropped(), 0u);
}

}  // namespace
}  // namespace sluice::observe
