// One direction of a connection as a byte stream: chunks placed by stream position, holes
// where bytes were not captured (beyond the capture limit) or records were lost, and the
// kernel facts (time, thread, TCP sequence) of the syscall behind every byte.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace weft::stream {

// What the kernel said about the syscall that moved a byte.
struct ByteOrigin {
  uint64_t mono_ns = 0;
  uint32_t tid = 0;
  uint32_t tcp_seq = 0;  // sequence number of the byte asked about
};

class DataStream {
 public:
  // A hole bounded by later bytes is declared lost (skippable) once the stream has seen this
  // much newer kernel time, or this many later pieces: records from different CPUs may arrive
  // slightly out of order and fill it before then.
  static constexpr uint64_t kReorderWindowNs = 20'000'000;
  static constexpr size_t kReorderPieces = 16;
  // Syscalls remembered for origin_of(); beyond this the oldest are forgotten (their bytes
  // then report no origin), so a stream nobody consumes cannot grow without bound.
  static constexpr size_t kMaxSyscalls = 4096;
  // Declares lost every hole that exists now (later ones still get their reorder window):
  // used when the other direction shows the conversation has moved on.
  void settle_existing_holes() { settled_until_ = std::max(settled_until_, known_end_); }

  // Bytes captured at `pos`, from a syscall whose bytes end at `syscall_end` (>= pos + size;
  // anything between the captured bytes and syscall_end was moved but not captured).
  void add(uint64_t pos, std::span<const uint8_t> bytes, uint64_t syscall_end,
           const ByteOrigin& origin);

  uint64_t head() const { return head_; }
  // Captured bytes available contiguously from head().
  std::span<const uint8_t> readable() const {
    return {reinterpret_cast<const uint8_t*>(buf_.data()) + buf_off_, buf_.size() - buf_off_};
  }
  // Bytes at head() known to exist but never to be seen (uncaptured or lost), 0 when the head
  // has readable bytes or when a hole might still be filled by late records.
  uint64_t skippable() const;
  // Like skippable(), for the bytes right after readable(): non-zero when what follows the
  // captured bytes will never be seen (e.g. headers longer than the capture limit).
  uint64_t missing_after_readable() const;
  // Advances the head over n bytes: readable ones, or a skippable hole.
  void consume(uint64_t n);
  // Declares every hole final (connection closing, idle flush).
  void settle() { settled_ = true; }

  // Where the first syscall that starts after `pos` starts (UINT64_MAX when none is known).
  uint64_t next_syscall_start(uint64_t pos) const;
  // Skips to the next syscall boundary (where a message is likeliest to begin) after the head:
  // the start of the next syscall seen, or everything held when none is known yet. Returns
  // the bytes passed over.
  uint64_t skip_to_next_boundary();

  // Where the stream is known to reach (end of the furthest syscall seen).
  uint64_t known_end() const { return known_end_; }
  // Kernel facts of the byte at pos; zeros when pos is outside what the stream remembers.
  ByteOrigin origin_of(uint64_t pos) const;
  // Captured and pending bytes held (for the memory budget).
  size_t buffered_bytes() const { return buf_.size() - buf_off_ + pending_bytes_; }
  // Heap bytes the stream has allocated (buffer and bookkeeping capacity, not just what is in
  // use): what it really costs beyond sizeof(DataStream), for the memory budget.
  size_t memory_bytes() const;
  // A consumed buffer keeps at most this much capacity: enough for a keep-alive connection's
  // small messages without an allocation per message, while a large message's buffer is freed
  // once read instead of staying at its high-water mark for the connection's lifetime.
  static constexpr size_t kKeptCapacity = 1024;
  // Bytes that came after the head had already passed them (late duplicates): dropped.
  uint64_t late_bytes() const { return late_bytes_; }

 private:
  struct Piece {
    std::vector<uint8_t> bytes;
  };
  void release_consumed();
  struct Syscall {
    uint64_t start;
    uint64_t end;
    ByteOrigin origin;  // tcp_seq of `start`
  };
  // Syscalls by start, dropped from the front as the head passes them. A vector read from an
  // offset, not a std::deque: a deque allocates 576 bytes even when empty, which was a
  // quarter of an idle connection's cost.
  class SyscallLog {
   public:
    using Items = std::vector<Syscall>;
    size_t size() const { return items_.size() - first_; }
    bool empty() const { return size() == 0; }
    Items::const_iterator begin() const { return items_.begin() + first_; }
    Items::const_iterator end() const { return items_.end(); }
    std::reverse_iterator<Items::const_iterator> rbegin() const { return items_.rbegin(); }
    std::reverse_iterator<Items::const_iterator> rend() const {
      return std::reverse_iterator<Items::const_iterator>(begin());
    }
    const Syscall& operator[](size_t i) const { return items_[first_ + i]; }
    const Syscall& front() const { return items_[first_]; }
    const Syscall& back() const { return items_.back(); }
    void push_back(const Syscall& s) { items_.push_back(s); }
    void insert(Items::const_iterator at, const Syscall& s) { items_.insert(at, s); }
    void pop_front();
    size_t capacity_bytes() const { return items_.capacity() * sizeof(Syscall); }

   private:
    Items items_;
    size_t first_ = 0;  // items before it were popped
  };
  void append_ready();
  uint64_t buf_end() const { return head_ + (buf_.size() - buf_off_); }
  void remember_syscall(uint64_t start, uint64_t end, const ByteOrigin& origin);
  uint64_t skippable_at(uint64_t at) const;

  uint64_t head_ = 0;
  bool started_ = false;
  std::string buf_;                    // captured bytes from head_ onward, from buf_off_
  size_t buf_off_ = 0;                 // consumed prefix of buf_, compacted lazily
  std::map<uint64_t, Piece> pending_;  // captured bytes beyond a hole, by position
  size_t pending_bytes_ = 0;
  SyscallLog syscalls_;  // syscalls not yet consumed past, by start
  uint64_t known_end_ = 0;
  uint64_t captured_end_ = 0;  // end of the furthest captured byte
  uint64_t newest_ns_ = 0;
  uint64_t oldest_pending_ns_ = 0;
  bool settled_ = false;
  uint64_t settled_until_ = 0;  // holes ending at or before this are final
  uint64_t late_bytes_ = 0;
};

}  // namespace weft::stream
