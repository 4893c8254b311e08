#include "buffer/buffer.h"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace sluice {
namespace {

// Chunks of the common size are recycled through a small per-thread free
// list (workers are single-threaded processes): a keep-alive connection
// gives its buffers back after every response, and taking them again for
// the next request should not cost a malloc and a free each time.
constexpr size_t kFreeListMax = 256;

std::vector<std::unique_ptr<char[]>>& freeChunks() {
  thread_local std::vector<std::unique_ptr<char[]>> chunks;
  return chunks;
}

std::unique_ptr<char[]> takeChunk(size_t capacity) {
  auto& chunks = freeChunks();
  if (capacity == Buffer::kReadChunk && !chunks.empty()) {
    std::unique_ptr<char[]> chunk = std::move(chunks.back());
    chunks.pop_back();
    return chunk;
  }
  return std::make_unique_for_overwrite<char[]>(capacity);
}

void giveChunk(std::unique_ptr<char[]> chunk, size_t capacity) {
  auto& chunks = freeChunks();
  if (capacity == Buffer::kReadChunk && chunks.size() < kFreeListMax) {
    chunks.push_back(std::move(chunk));
  }
}

}  // namespace

void Buffer::consume(size_t n) {
  if (n >= size()) {
    begin_ = end_ = 0;
    return;
  }
  begin_ += static_cast<uint32_t>(n);
}

void Buffer::append(const char* bytes, size_t n) {
  if (n == 0) return;
  reserveTail(n);
  std::memcpy(storage_.get() + end_, bytes, n);
  end_ += static_cast<uint32_t>(n);
}

void Buffer::releaseIfEmpty() {
  if (empty()) releaseStorage();
}

Buffer::~Buffer() {
  releaseStorage();
}

void Buffer::releaseStorage() {
  if (storage_) giveChunk(std::move(storage_), capacity_);
  capacity_ = begin_ = end_ = 0;
}

char* Buffer::reserveTail(size_t n) {
  if (capacity_ - end_ >= n) return storage_.get() + end_;
  const size_t used = size();
  // A broken invariant, not a recoverable error (see kMaxCapacity).
  if (n > kMaxCapacity - used) std::abort();
  // Slide the unread bytes to the front when that makes room: cheaper than
  // growing, and keeps a steady-state connection at one allocation.
  if (begin_ > 0 && capacity_ - used >= n) {
    std::memmove(storage_.get(), storage_.get() + begin_, used);
    begin_ = 0;
    end_ = static_cast<uint32_t>(used);
    return storage_.get() + end_;
  }
  size_t new_capacity = capacity_ == 0 ? kReadChunk : capacity_;
  while (new_capacity - used < n)
    new_capacity *= 2;
  std::unique_ptr<char[]> grown = takeChunk(new_capacity);
  if (used > 0) std::memcpy(grown.get(), storage_.get() + begin_, used);
  if (storage_) giveChunk(std::move(storage_), capacity_);
  storage_ = std::move(grown);
  capacity_ = static_cast<uint32_t>(new_capacity);
  begin_ = 0;
  end_ = static_cast<uint32_t>(used);
  return storage_.get() + end_;
}

}  // namespace sluice
