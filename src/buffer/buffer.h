// Buffer: a contiguous byte queue for one direction of one connection.
// Storage is allocated on first use (16 KiB chunks come from a per-worker
// free list) and released when empty, so idle keep-alive connections hold no
// I/O memory. Buffers do no I/O themselves: a net::Transport reads into the
// tail (reserveTail + commit) and writes from the front (data + consume).
// Owned by the connection that uses it; single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

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

  // Makes room for at least `n` more bytes at the tail and returns where
  // they go; commit() then adds the bytes actually written there.
  char* reserveTail(size_t n);
  void commit(size_t n) { end_ += static_cast<uint32_t>(n); }

  // A buffer holds less than 4 GiB (its offsets are 32 bits: every
  // connection has two buffers, and an idle one should be small). Nothing
  // queues that much: connections stop reading at their high watermark.
  static constexpr size_t kMaxCapacity = uint32_t{1} << 31;

 private:
  void releaseStorage();

  std::unique_ptr<char[]> storage_;
  uint32_t capacity_ = 0;
  uint32_t begin_ = 0;
  uint32_t end_ = 0;
};

}  // namespace sluice
