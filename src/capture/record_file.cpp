#include "capture/record_file.h"

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "capture/event_codec.h"

namespace weft::capture {
namespace {

constexpr char kMagic[8] = {'W', 'E', 'F', 'T', 'R', 'E', 'C', '\0'};
constexpr uint32_t kEventRecord = 1;
constexpr uint32_t kProcessRecord = 2;
constexpr uint32_t kLossRecord = 3;
constexpr uint32_t kMaxRecordBytes = 1 << 20;  // far above any real record: a corrupt length

struct FileHeader {
  char magic[8];
  uint32_t file_version;
  uint32_t event_abi;
  int64_t wall_offset_ns;
  uint64_t reserved;
};

}  // namespace

std::unique_ptr<RecordWriter> RecordWriter::create(const std::string& path, int64_t wall_offset_ns,
                                                   std::string* error) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.file_version = kRecordFileVersion;
  header.event_abi = WEFT_EVENT_ABI_VERSION;
  header.wall_offset_ns = wall_offset_ns;
  std::unique_ptr<RecordWriter> writer(new RecordWriter(file, path));
  if (std::fwrite(&header, sizeof(header), 1, file) != 1) writer->failed_ = true;
  return writer;
}

RecordWriter::~RecordWriter() {
  if (file_) std::fclose(file_);
}

void RecordWriter::put(uint32_t type, const void* a, uint32_t a_len, const void* b,
                       uint32_t b_len) {
  uint32_t head[2] = {type, a_len + b_len};
  if (std::fwrite(head, sizeof(head), 1, file_) != 1 ||
      (a_len && std::fwrite(a, a_len, 1, file_) != 1) ||
      (b_len && std::fwrite(b, b_len, 1, file_) != 1))
    failed_ = true;
}

void RecordWriter::write(const Event& event) {
  if (event.process && written_[event.pid] != event.process.get()) {
    written_[event.pid] = event.process.get();
    const ProcessInfo& p = *event.process;
    std::string fields = p.exe + '\0' + p.service_name + '\0' + p.command_line + '\0' + p.runtime;
    put(kProcessRecord, &event.pid, sizeof(event.pid), fields.data(),
        static_cast<uint32_t>(fields.size()));
  }
  std::vector<uint8_t> raw = encode_event(event);
  put(kEventRecord, raw.data(), static_cast<uint32_t>(raw.size()));
}

void RecordWriter::write_losses(const SourceStats& stats) {
  put(kLossRecord, stats.kernel.data(), sizeof(stats.kernel));
}

bool RecordWriter::finish(std::string* error) {
  if (std::fflush(file_) != 0) failed_ = true;
  if (std::fclose(file_) != 0) failed_ = true;
  file_ = nullptr;
  if (failed_) *error = "writing " + path_ + " failed: " + std::strerror(errno);
  return !failed_;
}

std::unique_ptr<RecordReader> RecordReader::open(const std::string& path, std::string* error) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<RecordReader> reader(new RecordReader(file, path));
  if (!reader->read_header(error)) return nullptr;
  return reader;
}

RecordReader::~RecordReader() {
  if (file_) std::fclose(file_);
}

bool RecordReader::read_header(std::string* error) {
  FileHeader header{};
  size_t got = std::fread(&header, 1, sizeof(header), file_);
  if (got < sizeof(kMagic) || std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0) {
    *error = path_ + " is not a weft recording (bad magic)";
    return false;
  }
  if (got < sizeof(header)) {
    *error = path_ + " is truncated: the file header is incomplete";
    return false;
  }
  if (header.file_version != kRecordFileVersion || header.event_abi != WEFT_EVENT_ABI_VERSION) {
    *error = path_ + " is a version " + std::to_string(header.file_version) +
             " recording (event ABI " + std::to_string(header.event_abi) +
             "); this weft reads version " + std::to_string(kRecordFileVersion) + " (event ABI " +
             std::to_string(WEFT_EVENT_ABI_VERSION) + ")";
    return false;
  }
  wall_offset_ns_ = header.wall_offset_ns;
  return true;
}

bool RecordReader::poll(std::chrono::milliseconds, const EventSink& sink) {
  // Bounded batches so a consumer can interleave its own work with a large file.
  constexpr int kBatch = 4096;
  std::vector<uint8_t>& buffer = body_;
  for (int i = 0; i < kBatch && file_; ++i) {
    uint32_t head[2];
    size_t got = std::fread(head, 1, sizeof(head), file_);
    if (got == 0 && std::feof(file_)) {
      // Every finished recording ends with its loss counters; without them it was cut short.
      if (!saw_losses_)
        error_ = path_ + " is truncated: it ends without its final record (was weft killed?)";
      return false;
    }
    if (got != sizeof(head) || head[1] > kMaxRecordBytes) {
      error_ = path_ + " is truncated or corrupt: bad record header";
      return false;
    }
    // Grown only, never shrunk: resizing between short and long records would zero-fill.
    if (buffer.size() < head[1]) buffer.resize(head[1]);
    std::span<const uint8_t> body(buffer.data(), head[1]);
    if (head[1] && std::fread(buffer.data(), 1, head[1], file_) != head[1]) {
      error_ = path_ + " is truncated: the last record is incomplete";
      return false;
    }
    if (head[0] == kProcessRecord && body.size() >= 4) {
      auto info = std::make_shared<ProcessInfo>();
      std::memcpy(&info->pid, body.data(), 4);
      // exe, then (from later writers) NUL-separated service name, command line and runtime.
      std::string fields(body.begin() + 4, body.end());
      std::string* into[] = {&info->exe, &info->service_name, &info->command_line, &info->runtime};
      size_t at = 0;
      for (std::string* field : into) {
        size_t end = fields.find('\0', at);
        *field = fields.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (end == std::string::npos) break;
        at = end + 1;
      }
      processes_.remember(std::move(info), "");
    } else if (head[0] == kLossRecord && body.size() == sizeof(stats_.kernel)) {
      std::memcpy(stats_.kernel.data(), body.data(), body.size());
      saw_losses_ = true;
    } else if (head[0] == kEventRecord) {
      // As the live source does: one Event, its buffers reused once the sink swapped them.
      Event& event = decoded_;
      if (!decode_event_into(body, event, nullptr)) {
        ++stats_.malformed;
        continue;
      }
      ++stats_.records;
      event.wall_ns = event.mono_ns + static_cast<uint64_t>(wall_offset_ns_);
      event.process = processes_.known(event.pid);
      if (event.mono_ns > newest_ns_) newest_ns_ = event.mono_ns;
      sink(std::move(event));
    } else {
      ++stats_.malformed;  // a record type from a newer weft: skip it, keep the rest
    }
  }
  return true;
}

}  // namespace weft::capture
