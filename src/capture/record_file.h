// The recorded event file: what `weft record` writes and `--replay` reads.
//
// Layout (little-endian, version 1):
//   header  : magic "WEFTREC\0", u32 file version, u32 event ABI version,
//             i64 wall-minus-monotonic offset (ns), u64 reserved
//   records : u32 type, u32 length, `length` bytes
//     type 1 event    : one struct weft_*_event exactly as the kernel writes it
//     type 2 process  : u32 pid, then the executable path, and optionally "\0" service name
//                       "\0" command line "\0" runtime (each optional: older files stop sooner)
//     type 3 losses   : u64 per enum weft_loss, the kernel's counters when recording stopped
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "capture/event_source.h"
#include "capture/process_info.h"

namespace weft::capture {

inline constexpr uint32_t kRecordFileVersion = 1;

class RecordWriter {
 public:
  // Returns null and sets error when the file cannot be created.
  static std::unique_ptr<RecordWriter> create(const std::string& path, int64_t wall_offset_ns,
                                              std::string* error);
  ~RecordWriter();

  void write(const Event& event);  // also writes the process record the first time a pid shows
  void write_losses(const SourceStats& stats);
  bool finish(std::string* error);  // flushes and closes; false when any write failed

 private:
  RecordWriter(FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  void put(uint32_t type, const void* a, uint32_t a_len, const void* b = nullptr,
           uint32_t b_len = 0);

  FILE* file_;
  std::string path_;
  bool failed_ = false;
  // The process info last written per pid: a new one (after an exec) is written again.
  std::unordered_map<uint32_t, const ProcessInfo*> written_;
};

class RecordReader : public EventSource {
 public:
  // Returns null and sets a one-line error for a missing, foreign, truncated or
  // other-version file.
  static std::unique_ptr<RecordReader> open(const std::string& path, std::string* error);
  ~RecordReader() override;

  bool poll(std::chrono::milliseconds timeout, const EventSink& sink) override;
  uint64_t now_mono_ns() const override { return newest_ns_; }
  SourceStats stats() const override { return stats_; }
  int64_t wall_offset_ns() const override { return wall_offset_ns_; }
  // Set when the file ended in the middle of a record or held a bad record.
  const std::string& error() const { return error_; }

 private:
  RecordReader(FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  bool read_header(std::string* error);

  FILE* file_;
  std::string path_;
  int64_t wall_offset_ns_ = 0;
  uint64_t newest_ns_ = 0;
  SourceStats stats_;
  ProcessResolver processes_{"/nonexistent"};  // replay never looks at this machine's /proc
  std::string error_;
  bool saw_losses_ = false;
  std::vector<uint8_t> body_;  // the record being read, kept across polls
  Event decoded_;              // each event is decoded here (its buffers reused)
};

}  // namespace weft::capture
