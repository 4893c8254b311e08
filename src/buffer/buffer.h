// Buffer: a contiguous byte queue for one direction of one connection, with
// non-blocking fd read/write. Storage is allocated on first use and can be
// released when empty, so idle keep-alive connections hold no I/O memory.
// Owned by the connection that uses it; single-threaded.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>

#include "core/io_result.h"

namespace sluice {

class Buffer {
 public:
  // Bytes reserved at the tail before each read(2).
  static constexpr size_t kReadChunk = 16 * 1024;

  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& other) noexcept
      : storage_(std::move(other.storage_)),
        capacity_(std::exchange(other.capacity_, 0)),
        begin_(std::exchange(other.begin_, 0)),
        end_(std::exchange(other.end_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      releaseStorage();
      storage_ = std::move(other.storage_);
      capacity_ = std::exchange(other.capacity_, 0);
      begin_ = std::exchange(other.begin_, 0);
      end_ = std::exchange(other.end_, 0);
    }
    return *this;
  }

  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  const char* data() const { return storage_.get() + begin_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return capacity_; }

  void consume(size_t n);
  void append(const char* bytes, size_t n);
  void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }
  void clear() { begin_ = end_ = 0; }
  // Frees the storage if the buffer is empty (idle connections keep none).
  void releaseIfEmpty();

  // One read(2) of up to `max_bytes` into the tail.
  IoResult readFrom(int fd, size_t max_bytes = kReadChunk);
  // One write(2) of the queued bytes; consumes what was written.
  IoResult writeTo(int fd);

 private:
  void reserveTail(size_t n);
  void releaseStorage();

  std::unique_ptr<char[]> storage_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace sluice
