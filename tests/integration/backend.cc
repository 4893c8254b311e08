#include "integration/backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice::testing {
namespace {

constexpr size_t kPatternPeriod = 251 * 256;  // not a power of two

const std::array<char, kPatternPeriod>& patternTable() {
  static const std::array<char, kPatternPeriod> table = [] {
    std::array<char, kPatternPeriod> t{};
    for (size_t i = 0; i < kPatternPeriod; ++i)
      t[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
    return t;
  }();
  return table;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Fills the request line and headers of `request` from its head bytes.
void parseHead(ReceivedRequest* request) {
  std::string_view head = request->head;
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 != std::string_view::npos && sp2 > sp1) {
    request->method = line.substr(0, sp1);
    request->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    request->version = line.substr(sp2 + 1);
  }
  size_t pos = line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    std::string_view field = head.substr(pos, end - pos);
    size_t colon = field.find(':');
    if (colon != std::string_view::npos) {
      request->headers.emplace_back(field.substr(0, colon), trim(field.substr(colon + 1)));
    }
    pos = end + 2;
  }
  for (const auto& [name, value] : request->headers) {
    if (equalsIgnoreCase(name, "transfer-encoding") && equalsIgnoreCase(value, "chunked")) {
      request->chunked = true;
    }
  }
}

// Parses a chunk-size line ("1a", "1a;ext=x"); false if malformed.
bool parseChunkSize(std::string_view line, uint64_t* size) {
  size_t end = line.find(';');
  std::string_view digits = line.substr(0, end);
  if (digits.empty() || digits.size() > 15) return false;
  uint64_t value = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    value = value * 16 + static_cast<uint64_t>(d);
  }
  *size = value;
  return true;
}

std::string_view reasonOf(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    default:
      return "Whatever";
  }
}

}  // namespace

uint64_t fnv1a(uint64_t hash, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

char patternByte(uint64_t offset) {
  return patternTable()[offset % kPatternPeriod];
}

void fillPattern(uint64_t offset, char* out, size_t n) {
  const auto& table = patternTable();
  size_t at = offset % kPatternPeriod;
  while (n > 0) {
    size_t take = std::min(n, kPatternPeriod - at);
    std::memcpy(out, table.data() + at, take);
    out += take;
    n -= take;
    at = 0;
  }
}

uint64_t patternHash(uint64_t n) {
  std::string block(1 << 20, '\0');
  uint64_t hash = kFnvOffset;
  for (uint64_t done = 0; done < n;) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(block.size(), n - done));
    fillPattern(done, block.data(), take);
    hash = fnv1a(hash, block.data(), take);
    done += take;
  }
  return hash;
}

int ReceivedRequest::count(std::string_view name) const {
  int n = 0;
  for (const auto& header : headers) {
    if (equalsIgnoreCase(header.first, name)) ++n;
  }
  return n;
}

std::string ReceivedRequest::value(std::string_view name) const {
  for (const auto& header : headers) {
    if (equalsIgnoreCase(header.first, name)) return header.second;
  }
  return "";
}

Reply Reply::send(std::string bytes) {
  Reply reply;
  reply.pieces.push_back({milliseconds(0), std::move(bytes), 0});
  return reply;
}

Reply Reply::closeNow() {
  Reply reply;
  reply.after = After::kClose;
  return reply;
}

Reply Reply::silent() {
  Reply reply;
  reply.after = After::kSilent;
  return reply;
}

Reply& Reply::then(milliseconds delay, std::string bytes) {
  pieces.push_back({delay, std::move(bytes), 0});
  return *this;
}

Reply& Reply::delayed(milliseconds delay) {
  if (pieces.empty()) pieces.push_back({});
  pieces.front().delay += delay;
  return *this;
}

Reply& Reply::pattern(uint64_t n) {
  pieces.push_back({milliseconds(0), "", n});
  return *this;
}

Reply& Reply::andClose() {
  after = After::kClose;
  return *this;
}

std::string httpResponse(int status, std::string_view body, std::string_view extra_headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reasonOf(status)) +
                    "\r\n" + std::string(extra_headers) +
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

Backend::Backend(Script script, Options options) : script_(std::move(script)), options_(options) {
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return;
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, options_.bind_ip.c_str(), &addr.sin_addr) != 1) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  addr.sin_port = htons(static_cast<uint16_t>(options_.port));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

Backend::~Backend() {
  stop();
}

void Backend::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stop_pipe_[1] >= 0) {
    char x = 'x';
    [[maybe_unused]] ssize_t n = ::write(stop_pipe_[1], &x, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads)
    t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  for (int& fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void Backend::acceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || fds[1].revents != 0) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    int index = static_cast<int>(conns_.size());
    conns_.emplace_back();
    threads_.emplace_back([this, fd, index] { serve(fd, index); });
    cv_.notify_all();
  }
}

bool Backend::pause(milliseconds delay) {
  if (delay.count() <= 0) return true;
  pollfd p{stop_pipe_[0], POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(delay.count())) == 0;
}

bool Backend::readMore(int fd, int index, std::string* in) {
  if (!pause(options_.read_pause)) return false;
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || fds[1].revents != 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, options_.read_size), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      markClosed(index);
      return false;
    }
    in->append(buf, static_cast<size_t>(n));
    std::lock_guard<std::mutex> lock(mu_);
    Conn& conn = conns_[static_cast<size_t>(index)];
    size_t keep =
        std::min(static_cast<size_t>(n),
                 options_.record_limit - std::min(options_.record_limit, conn.raw.size()));
    conn.raw.append(buf, keep);
    conn.raw_size += static_cast<uint64_t>(n);
    cv_.notify_all();
    return true;
  }
}

bool Backend::writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_pipe_[0], POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || fds[1].revents != 0) return false;
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return false;  // EPIPE, ECONNRESET: the peer is gone (the caller marks it)
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Backend::markClosed(int index) {
  std::lock_guard<std::mutex> lock(mu_);
  conns_[static_cast<size_t>(index)].peer_closed = true;
  cv_.notify_all();
}

void Backend::serve(int fd, int index) {
  std::string in;
  const size_t limit = options_.record_limit;
  // Everything below returns when the connection ends; the fd is closed once.
  auto session = [&]() {
    if (!pause(options_.read_delay)) return;
    for (int request_index = 0;; ++request_index) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!readMore(fd, index, &in)) return;
      }
      ReceivedRequest request;
      request.connection = index;
      request.index = request_index;
      request.head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      parseHead(&request);
      if (options_.body_read_delay && !pause(options_.body_read_delay(request))) return;

      auto raw = [&](const char* data, size_t n) {
        request.raw_body.append(data,
                                std::min(n, limit - std::min(limit, request.raw_body.size())));
      };
      auto payload = [&](const char* data, size_t n) {
        request.body.append(data, std::min(n, limit - std::min(limit, request.body.size())));
        request.body_size += n;
        request.body_hash = fnv1a(request.body_hash, data, n);
      };
      // `n` body bytes, streamed (a large body is never held whole).
      auto take = [&](uint64_t n) {
        while (n > 0) {
          if (in.empty() && !readMore(fd, index, &in)) return false;
          size_t piece = static_cast<size_t>(std::min<uint64_t>(n, in.size()));
          payload(in.data(), piece);
          raw(in.data(), piece);
          in.erase(0, piece);
          n -= piece;
        }
        return true;
      };
      auto line = [&](std::string* out) {
        size_t eol;
        while ((eol = in.find("\r\n")) == std::string::npos) {
          if (in.size() > 65536 || !readMore(fd, index, &in)) return false;
        }
        out->assign(in, 0, eol);
        raw(in.data(), eol + 2);
        in.erase(0, eol + 2);
        return true;
      };

      if (request.chunked) {
        for (;;) {
          std::string size_line;
          uint64_t size = 0;
          if (!line(&size_line)) return;
          if (!parseChunkSize(size_line, &size)) return;  // bad framing: drop the connection
          if (size == 0) {
            std::string trailer;
            do {
              if (!line(&trailer)) return;
            } while (!trailer.empty());
            break;
          }
          std::string crlf;
          if (!take(size) || !line(&crlf) || !crlf.empty()) return;
        }
      } else {
        std::string length = request.value("content-length");
        if (!length.empty()) {
          // No exceptions on this thread: a bad value drops the connection.
          if (length.size() > 18 || length.find_first_not_of("0123456789") != std::string::npos) {
            return;
          }
          if (!take(std::strtoull(length.c_str(), nullptr, 10))) return;
        }
      }

      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
        cv_.notify_all();
      }
      Reply reply = script_(request, index, request_index);
      for (const Reply::Piece& piece : reply.pieces) {
        if (!pause(piece.delay)) return;
        if (!writeAll(fd, piece.bytes)) return markClosed(index);
        std::string block;
        for (uint64_t done = 0; done < piece.pattern_bytes;) {
          size_t n =
              static_cast<size_t>(std::min<uint64_t>(256 * 1024, piece.pattern_bytes - done));
          block.resize(n);
          fillPattern(done, block.data(), n);
          if (!writeAll(fd, block)) return markClosed(index);
          done += n;
        }
      }
      switch (reply.after) {
        case Reply::After::kKeepOpen:
          break;
        case Reply::After::kClose:
          return;
        case Reply::After::kSilent:
          while (readMore(fd, index, &in))
            in.clear();
          return;
      }
    }
  };
  session();
  ::close(fd);
}

template <typename Pred>
bool Backend::waitUntil(milliseconds timeout, Pred pred) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, pred);
}

int Backend::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(conns_.size());
}

int Backend::requestCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(requests_.size());
}

std::vector<ReceivedRequest> Backend::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::string Backend::raw(int connection) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection < 0 || static_cast<size_t>(connection) >= conns_.size()) return "";
  return conns_[static_cast<size_t>(connection)].raw;
}

uint64_t Backend::rawSize(int connection) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection < 0 || static_cast<size_t>(connection) >= conns_.size()) return 0;
  return conns_[static_cast<size_t>(connection)].raw_size;
}

uint64_t Backend::totalBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const Conn& conn : conns_)
    total += conn.raw_size;
  return total;
}

bool Backend::peerClosed(int connection) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (connection < 0 || static_cast<size_t>(connection) >= conns_.size()) return false;
  return conns_[static_cast<size_t>(connection)].peer_closed;
}

bool Backend::waitForConnections(int n, milliseconds timeout) const {
  return waitUntil(timeout, [&] { return static_cast<int>(conns_.size()) >= n; });
}

bool Backend::waitForRequests(int n, milliseconds timeout) const {
  return waitUntil(timeout, [&] { return static_cast<int>(requests_.size()) >= n; });
}

bool Backend::waitForPeerClose(int connection, milliseconds timeout) const {
  return waitUntil(timeout, [&] {
    return connection >= 0 && static_cast<size_t>(connection) < conns_.size() &&
           conns_[static_cast<size_t>(connection)].peer_closed;
  });
}

bool Backend::waitForRawEnding(int connection, const std::string& suffix,
                               milliseconds timeout) const {
  return waitUntil(timeout, [&] {
    return connection >= 0 && static_cast<size_t>(connection) < conns_.size() &&
           conns_[static_cast<size_t>(connection)].raw.ends_with(suffix);
  });
}

bool Backend::syncProbe(milliseconds timeout) {
  int before = connections();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            waitForConnections(before + 1, timeout);
  ::close(fd);
  return ok;
}

}  // namespace sluice::testing
