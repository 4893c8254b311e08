// Backend: an in-test HTTP/1.1 origin server on a loopback ephemeral port,
// for the proxy tests. It records exactly the bytes it receives on each
// connection, counts connections, parses just enough to find request
// boundaries (head until CRLFCRLF; body by Content-Length or chunked up to the
// last-chunk and trailers) and answers each complete request according to the
// test's script. One thread accepts, one thread serves each connection
// (blocking sockets with poll(); a self-pipe wakes every thread on stop).
// Scripts run on the connection threads and must be thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::testing {

using std::chrono::milliseconds;

// FNV-1a (64 bit), to compare large payloads without keeping them.
inline constexpr uint64_t kFnvOffset = 1469598103934665603ull;
uint64_t fnv1a(uint64_t hash, const char* data, size_t n);

// A deterministic endless payload: byte `offset` of it. Its period is not a
// power of two, so a dropped, repeated or shifted block changes the hash.
char patternByte(uint64_t offset);
void fillPattern(uint64_t offset, char* out, size_t n);
// fnv1a of the first `n` bytes of the pattern.
uint64_t patternHash(uint64_t n);

struct ReceivedRequest {
  int connection = -1;  // backend connection index (accept order, from 0)
  int index = -1;       // request index on that connection (from 0)
  std::string head;     // the exact bytes from the request line to the blank line
  std::string method;
  std::string target;
  std::string version;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
  bool chunked = false;
  std::string body;      // de-chunked payload (at most Backend::Options::record_limit bytes)
  std::string raw_body;  // body bytes as framed on the wire (same limit)
  uint64_t body_size = 0;
  uint64_t body_hash = kFnvOffset;  // fnv1a of the whole payload

  // Case-insensitive header lookups.
  int count(std::string_view name) const;
  std::string value(std::string_view name) const;  // the first one, "" if absent
  bool has(std::string_view name) const { return count(name) > 0; }
};

// What the backend does with one complete request.
struct Reply {
  struct Piece {
    milliseconds delay{0};       // waited before this piece is written
    std::string bytes;           // written first
    uint64_t pattern_bytes = 0;  // then this many bytes of patternByte(0..)
  };
  enum class After {
    kKeepOpen,  // read the next request on the connection
    kClose,     // close the connection
    kSilent,    // never answer again: keep reading (recording) until the peer closes
  };
  std::vector<Piece> pieces;
  After after = After::kKeepOpen;

  // Write `bytes`, then read the next request.
  static Reply send(std::string bytes);
  // Close the connection without answering.
  static Reply closeNow();
  // Never answer.
  static Reply silent();
  // Another piece, written after `delay`.
  Reply& then(milliseconds delay, std::string bytes);
  // Wait `delay` before the first piece.
  Reply& delayed(milliseconds delay);
  // `n` bytes of the pattern, after the pieces so far.
  Reply& pattern(uint64_t n);
  // Close once everything is written.
  Reply& andClose();
};

// "HTTP/1.1 <status> <reason>\r\n<extra_headers>Content-Length: N\r\n\r\n<body>"
// (`extra_headers` is empty or CRLF-terminated lines).
std::string httpResponse(int status, std::string_view body, std::string_view extra_headers = "");

class Backend {
 public:
  using Script = std::function<Reply(const ReceivedRequest& request, int connection, int index)>;
  struct Options {
    // Wait this long after accepting a connection before reading from it (a
    // slow server: the proxy must hold back the client).
    milliseconds read_delay{0};
    // Called with each request head (no body yet): wait this long before
    // reading the body (a server slow to take an upload).
    std::function<milliseconds(const ReceivedRequest&)> body_read_delay;
    // At most this many bytes per read, and a pause before each read after
    // the first (a server that stays slow).
    size_t read_size = 65536;
    milliseconds read_pause{0};
    // Bytes of raw input and of each body kept for inspection; beyond it they
    // are only counted and hashed.
    size_t record_limit = 1 << 20;
    // Where to listen: another loopback address (127.0.0.2…) and a fixed
    // port, for servers that one DNS name resolves to (port 0 = ephemeral).
    std::string bind_ip = "127.0.0.1";
    int port = 0;
  };

  explicit Backend(Script script) : Backend(std::move(script), Options()) {}
  Backend(Script script, Options options);
  ~Backend();  // stop()
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  int port() const { return port_; }
  // Closes the listening socket and every connection, joins all threads.
  void stop();

  int connections() const;
  int requestCount() const;
  // Complete requests in the order they were read, over all connections.
  std::vector<ReceivedRequest> requests() const;
  // Exact bytes received on connection `index` (up to record_limit) and their count.
  std::string raw(int connection) const;
  uint64_t rawSize(int connection) const;
  // Bytes received on all connections together.
  uint64_t totalBytes() const;
  // The peer closed (EOF or reset) connection `index`.
  bool peerClosed(int connection) const;

  bool waitForConnections(int n, milliseconds timeout) const;
  bool waitForRequests(int n, milliseconds timeout) const;
  bool waitForPeerClose(int connection, milliseconds timeout) const;
  // Until the bytes recorded on `connection` end with `suffix`.
  bool waitForRawEnding(int connection, const std::string& suffix, milliseconds timeout) const;

  // Connects to the backend directly and waits until it has accepted that
  // connection. Accepting is FIFO, so every connection the proxy opened
  // before this call has been counted by then: connections() is exact.
  // The probe connection sends nothing and is closed before returning; it
  // counts as a connection.
  bool syncProbe(milliseconds timeout = milliseconds(2000));

 private:
  struct Conn {
    std::string raw;
    uint64_t raw_size = 0;
    bool peer_closed = false;
  };

  void acceptLoop();
  void serve(int fd, int index);
  // Reads once into `in`, recording; false on EOF, error or stop.
  bool readMore(int fd, int index, std::string* in);
  bool writeAll(int fd, std::string_view bytes);
  // Waits `delay` unless stopping; false when stopping.
  bool pause(milliseconds delay);
  void markClosed(int index);
  template <typename Pred>
  bool waitUntil(milliseconds timeout, Pred pred) const;

  Script script_;
  Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  bool stopped_ = false;
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Conn> conns_;
  std::vector<ReceivedRequest> requests_;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::testing
