#include "stream/data_stream.h"

#include <algorithm>

namespace weft::stream {
namespace {

// What the allocator adds to each block (glibc: one size word, 16-byte granularity).
size_t allocated(size_t bytes) {
  return bytes == 0 ? 0 : (bytes + sizeof(size_t) + 15) / 16 * 16;
}

// A std::map node: the value plus three links and a colour, as the allocator hands it out.
template <typename Value>
constexpr size_t kMapNodeBytes = sizeof(Value) + 4 * sizeof(void*);

}  // namespace

void DataStream::SyscallLog::pop_front() {
  ++first_;
  if (first_ == items_.size()) {
    items_.clear();
    first_ = 0;
  } else if (first_ * 2 >= items_.size()) {
    // Once the dead outnumber the live: the vector stays within twice what is live (a stream
    // always keeps the syscall before its head), and each item moves O(1) times on average.
    items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(first_));
    first_ = 0;
  }
}

size_t DataStream::memory_bytes() const {
  size_t bytes = allocated(syscalls_.capacity_bytes());
  // A std::string holds up to 15 bytes inside itself; beyond, capacity + 1 on the heap.
  if (buf_.capacity() > 15) bytes += allocated(buf_.capacity() + 1);
  for (const auto& [pos, piece] : pending_)
    bytes += allocated(kMapNodeBytes<std::pair<const uint64_t, Piece>>) +
             allocated(piece.bytes.capacity());
  return bytes;
}

void DataStream::remember_syscall(uint64_t start, uint64_t end, const ByteOrigin& origin) {
  Syscall s{start, end, origin};
  if (syscalls_.size() >= kMaxSyscalls) syscalls_.pop_front();
  if (syscalls_.empty() || syscalls_.back().start <= start) {
    syscalls_.push_back(s);
    return;
  }
  auto at = std::upper_bound(syscalls_.begin(), syscalls_.end(), start,
                             [](uint64_t p, const Syscall& c) { return p < c.start; });
  syscalls_.insert(at, s);
}

void DataStream::add(uint64_t pos, std::span<const uint8_t> bytes, uint64_t syscall_end,
                     const ByteOrigin& origin) {
  if (!started_) {
    head_ = pos;
    started_ = true;
  }
  newest_ns_ = std::max(newest_ns_, origin.mono_ns);
  syscall_end = std::max(syscall_end, pos + bytes.size());
  if (syscall_end > head_) remember_syscall(pos, syscall_end, origin);
  known_end_ = std::max(known_end_, syscall_end);
  if (bytes.empty()) return;

  uint64_t end = pos + bytes.size();
  uint64_t filled = buf_end();
  if (end <= filled) {
    late_bytes_ += bytes.size();
    return;
  }
  if (pos < filled) {  // overlap with what is already held: keep only the new part
    late_bytes_ += filled - pos;
    bytes = bytes.subspan(filled - pos);
    pos = filled;
  }
  captured_end_ = std::max(captured_end_, end);
  if (pos == filled) {
    buf_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    append_ready();
    return;
  }
  auto& piece = pending_[pos];
  if (piece.bytes.size() < bytes.size()) {
    pending_bytes_ += bytes.size() - piece.bytes.size();
    piece.bytes.assign(bytes.begin(), bytes.end());
  }
  if (pending_.size() == 1) oldest_pending_ns_ = origin.mono_ns;
}

// Moves pending pieces that now touch the contiguous bytes into them.
void DataStream::append_ready() {
  while (!pending_.empty()) {
    auto it = pending_.begin();
    uint64_t filled = buf_end();
    if (it->first > filled) break;
    const auto& bytes = it->second.bytes;
    uint64_t skip = filled - it->first;
    if (skip < bytes.size())
      buf_.append(reinterpret_cast<const char*>(bytes.data()) + skip, bytes.size() - skip);
    pending_bytes_ -= bytes.size();
    pending_.erase(it);
    // A new hole may now be at the head: its wait for late records starts now.
    oldest_pending_ns_ = newest_ns_;
  }
}

uint64_t DataStream::skippable() const {
  if (buf_.size() > buf_off_) return 0;
  return skippable_at(head_);
}

uint64_t DataStream::missing_after_readable() const {
  return skippable_at(buf_end());
}

uint64_t DataStream::skippable_at(uint64_t at) const {
  uint64_t end = pending_.empty() ? known_end_ : pending_.begin()->first;
  if (end <= at) return 0;
  // Inside a syscall's extent, bytes that were not captured will never come.
  for (auto it = syscalls_.rbegin(); it != syscalls_.rend(); ++it) {
    if (it->start <= at && at < it->end) return std::min(it->end, end) - at;
  }
  if (pending_.empty()) return 0;  // nothing known beyond: wait for more bytes
  bool waited = settled_ || end <= settled_until_ || pending_.size() >= kReorderPieces ||
                newest_ns_ - oldest_pending_ns_ >= kReorderWindowNs;
  return waited ? end - at : 0;
}

void DataStream::consume(uint64_t n) {
  size_t held = buf_.size() - buf_off_;
  if (held > 0) {
    n = std::min<uint64_t>(n, held);
    buf_off_ += n;
    head_ += n;
    if (buf_off_ == buf_.size()) {
      release_consumed();
    } else if (buf_off_ > 4096 && buf_off_ * 2 > buf_.size()) {
      buf_.erase(0, buf_off_);
      buf_off_ = 0;
    }
  } else {
    head_ += std::min(n, skippable());
    append_ready();
  }
  // Keep the syscall that holds the byte just before the head: parsers ask for the origin of
  // a message's last byte right after consuming it.
  while (syscalls_.size() > 1 && syscalls_[1].start < head_ && syscalls_.front().end < head_)
    syscalls_.pop_front();
}

void DataStream::release_consumed() {
  if (buf_.capacity() > kKeptCapacity)
    std::string().swap(buf_);
  else
    buf_.clear();
  buf_off_ = 0;
}

uint64_t DataStream::next_syscall_start(uint64_t pos) const {
  for (const Syscall& s : syscalls_)
    if (s.start > pos) return s.start;
  return UINT64_MAX;
}

uint64_t DataStream::skip_to_next_boundary() {
  uint64_t target = known_end_;
  for (const Syscall& s : syscalls_) {
    if (s.start > head_) {
      target = s.start;
      break;
    }
  }
  uint64_t from = head_;
  while (head_ < target) {
    uint64_t before = head_;
    uint64_t held = readable().size();
    consume(std::min(target - head_, held > 0 ? held : skippable()));
    if (head_ == before) break;  // a hole that may still be filled: stop at it
  }
  return head_ - from;
}

ByteOrigin DataStream::origin_of(uint64_t pos) const {
  for (auto it = syscalls_.rbegin(); it != syscalls_.rend(); ++it) {
    if (it->start <= pos) {
      ByteOrigin o = it->origin;
      // 0: no sequence number (TLS plaintext the library had buffered), none for its bytes.
      if (o.tcp_seq != 0) o.tcp_seq += static_cast<uint32_t>(pos - it->start);
      return o;
    }
  }
  return {};
}

}  // namespace weft::stream
