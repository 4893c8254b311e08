#include "integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool connectable(int port) {
  RawClient probe;
  return probe.connect(port);
}

}  // namespace

// Ports come from below the kernel's ephemeral range: a port the kernel
// handed out for bind(0) can be taken a moment later as the local port of
// some outgoing connection, and then sluice cannot bind it. Candidates are
// spread by pid so parallel test processes rarely collide, and each is
// checked by binding it.
int freePort() {
  static int next = -1;
  int low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low;
  const int first = 10000;
  const int span = std::max(low - first, 1000);
  if (next < 0) next = first + static_cast<int>((::getpid() * 7919L) % span);
  for (int attempt = 0; attempt < span; ++attempt) {
    int port = first + (next - first + 1) % span;
    next = port;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (ok) return port;
  }
  return 0;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  char* made = ::mkdtemp(buf.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string file = path_ + "/" + name;
  std::ofstream(file, std::ios::binary) << content;
  return file;
}

const char* sluiceBinary() {
  const char* override_path = std::getenv("SLUICE_BINARY_UNDER_TEST");
  return override_path != nullptr && *override_path != '\0' ? override_path : SLUICE_BINARY;
}

CommandResult runSluice(const std::vector<std::string>& args) {
  TempDir dir;
  std::string out_path = dir.path() + "/out.txt";
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(sluiceBinary()));
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(sluiceBinary(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  result.output = ss.str();
  return result;
}

SluiceProcess::~SluiceProcess() {
  if (pid_ > 0) stop(SIGKILL, milliseconds(5000));
}

bool SluiceProcess::launch(const std::string& yaml) {
  std::string config = dir_.write("sluice.yaml", yaml);
  std::string log = dir_.path() + "/error.log";
  pid_ = ::fork();
  if (pid_ == 0) {
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(stdout_fd_ >= 0 ? stdout_fd_ : out, 1);
    ::dup2(out, 2);
    ::execl(sluiceBinary(), sluiceBinary(), "-c", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid_ > 0;
}

bool SluiceProcess::start(const std::string& yaml, int wait_port) {
  if (!launch(yaml)) return false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (!running()) return false;
    if (connectable(wait_port)) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

bool SluiceProcess::startUnix(const std::string& yaml, const std::string& socket_path) {
  if (!launch(yaml)) return false;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (!running()) return false;
    RawClient probe;
    if (probe.connectUnix(socket_path)) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

bool SluiceProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int SluiceProcess::stop(int sig, milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  auto deadline = Clock::now() + timeout;
  int status = 0;
  while (Clock::now() < deadline) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::string SluiceProcess::errorLog() const {
  std::ifstream in(dir_.path() + "/error.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(other.fd_), pending_(std::move(other.pending_)) {
  other.fd_ = -1;
}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    pending_ = std::move(other.pending_);
    other.fd_ = -1;
  }
  return *this;
}

bool RawClient::connect(int port, const std::string& host) {
  sockaddr_storage storage{};
  socklen_t len;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr);
    len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &a4->sin_addr);
    len = sizeof *a4;
  }
  fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&storage), len) != 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

bool RawClient::connectFrom(int port, const std::string& source_ip) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in source{};
  source.sin_family = AF_INET;
  ::inet_pton(AF_INET, source_ip.c_str(), &source.sin_addr);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0 ||
      ::connect(fd_, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

bool RawClient::connectUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

bool RawClient::send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

void RawClient::shutdownWrite() {
  ::shutdown(fd_, SHUT_WR);
}

// Waits for readability and appends what arrives.
int RawClient::fillOnce(milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready == 0) return -1;
  if (ready < 0) return 0;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return 0;
  pending_.append(buf, static_cast<size_t>(n));
  return 1;
}

std::string RawClient::readUntilClose(milliseconds timeout) {
  bool closed = false;
  return readUntilClose(timeout, &closed);
}

std::string RawClient::readUntilClose(milliseconds timeout, bool* closed) {
  *closed = false;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    int r = fillOnce(left);
    if (r == 0) *closed = true;
    if (r <= 0) break;
  }
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

std::string RawClient::readResponse(bool head_request, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max(milliseconds(0),
                    std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  };
  size_t head_end;
  while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(left())) return "";
  }
  head_end += 4;
  std::string head = pending_.substr(0, head_end);
  std::string lower = head;
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int status = statusOf(head);
  size_t total = head_end;
  bool no_body = head_request || status == 204 || status == 304 || (status >= 100 && status < 200);
  if (!no_body) {
    size_t cl = lower.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      size_t length = std::stoul(lower.substr(cl + 17));
      total = head_end + length;
      while (pending_.size() < total) {
        if (!fill(left())) return "";
      }
    } else if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      // Walk the chunks to the last one, then its trailer section (which
      // ends with an empty line; often it is just that line).
      size_t pos = head_end;
      for (;;) {
        size_t eol;
        while ((eol = pending_.find("\r\n", pos)) == std::string::npos) {
          if (!fill(left())) return "";
        }
        const size_t size = std::stoul(pending_.substr(pos, eol - pos), nullptr, 16);
        pos = eol + 2;
        if (size == 0) break;
        while (pending_.size() < pos + size + 2) {
          if (!fill(left())) return "";
        }
        pos += size + 2;
      }
      for (;;) {
        size_t eol;
        while ((eol = pending_.find("\r\n", pos)) == std::string::npos) {
          if (!fill(left())) return "";
        }
        const bool empty_line = eol == pos;
        pos = eol + 2;
        if (empty_line) break;
      }
      total = pos;
    } else {
      while (fill(left())) {
      }
      total = pending_.size();
    }
  }
  std::string response = pending_.substr(0, total);
  pending_.erase(0, total);
  return response;
}

bool RawClient::closedByPeer(milliseconds timeout, std::string* unexpected) {
  if (!pending_.empty()) {
    if (unexpected) *unexpected = pending_;
    return false;
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[4096];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n > 0) {
    if (unexpected) unexpected->assign(buf, static_cast<size_t>(n));
    return false;
  }
  return true;  // 0 = EOF, <0 = reset: closed either way
}

std::string maskDate(std::string response) {
  // Rebuilt rather than replace()d in place: g++ 12 warns falsely
  // (-Wrestrict) on std::string::replace at -O2.
  std::string out;
  out.reserve(response.size());
  size_t pos = 0;
  for (;;) {
    size_t found = response.find("\r\nDate: ", pos);
    if (found == std::string::npos) break;
    size_t end = response.find("\r\n", found + 8);
    if (end == std::string::npos) break;
    out.append(response, pos, found + 8 - pos).append("X");
    pos = end;
  }
  out.append(response, pos, std::string::npos);
  return out;
}

int statusOf(const std::string& bytes) {
  if (bytes.size() < 12 || bytes.compare(0, 5, "HTTP/") != 0) return 0;
  return std::atoi(bytes.c_str() + 9);
}

std::string sanitizerReport(const std::string& log) {
  for (const char* marker :
       {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "killed by signal"}) {
    size_t at = log.find(marker);
    if (at == std::string::npos) continue;
    size_t begin = log.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return log.substr(begin, log.find('\n', at) - begin);
  }
  return "";
}

long vmRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

std::vector<pid_t> childProcesses(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("PPid:", 0) == 0) {
        if (std::atol(line.c_str() + 5) == parent) children.push_back(std::stoi(name));
        break;
      }
    }
  }
  return children;
}

std::string proxyConfigYaml(int listen_port, const ProxyConfig& config) {
  std::string yaml = "workers: " + std::to_string(config.workers) +
                     "\n"
                     "shutdown_timeout: 1s\n"
                     "log: {level: debug, error: stderr, access: off}\n"
                     "timeouts: " +
                     config.timeouts + "\nlimits: " + config.limits +
                     "\ntrusted_proxies: " + config.trusted_proxies +
                     "\nlisteners:\n"
                     "  - name: web\n"
                     "    address: 127.0.0.1:" +
                     std::to_string(listen_port) +
                     "\n"
                     "    routes:\n"
                     "      - upstream: app\n" +
                     config.route_extra +
                     "upstreams:\n"
                     "  app:\n";
  if (!config.balance.empty()) yaml += "    balance: " + config.balance + "\n";
  if (!config.hash.empty()) yaml += "    hash: " + config.hash + "\n";
  if (!config.passive.empty()) yaml += "    passive: " + config.passive + "\n";
  yaml += config.upstream_extra;
  yaml += "    servers:\n";
  for (const ProxyConfig::Server& server : config.servers) {
    yaml += "      - {address: 127.0.0.1:" + std::to_string(server.port) +
            ", weight: " + std::to_string(server.weight) + "}\n";
  }
  yaml += "    retries: " + std::to_string(config.retries) +
          "\n    keepalive: " + config.keepalive + "\n    timeouts: " + config.upstream_timeouts +
          "\n";
  return yaml;
}

std::vector<pid_t> waitForChildProcesses(pid_t parent, size_t count) {
  std::vector<pid_t> children = childProcesses(parent);
  for (int i = 0; i < 250 && children.size() != count; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    children = childProcesses(parent);
  }
  return children;
}

}  // namespace sluice::testing
