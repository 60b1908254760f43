#include "export/otlp_json.h"

#include <cerrno>
#include <cstring>

namespace weft::exporter {
namespace {

// The file carries each process's own attributes only, as it always has.
const ResourceExtras kNoExtras;

}  // namespace

std::string to_otlp_json(const trace::Trace& t) {
  ResourceGroups groups;
  groups.assign(t);
  EncodeBuffer out;
  append_otlp_json(groups, kNoExtras, out);
  return out.str();
}

std::unique_ptr<OtlpFileExporter> OtlpFileExporter::open(const std::string& path,
                                                         std::string* error) {
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) {
    *error = "cannot open " + path + " for writing: " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<OtlpFileExporter>(new OtlpFileExporter(f, path));
}

OtlpFileExporter::~OtlpFileExporter() {
  if (file_) std::fclose(file_);
}

ExportResult OtlpFileExporter::export_batch(const std::vector<trace::Trace>& batch) {
  lines_.clear();
  for (const auto& t : batch) {
    groups_.assign(t);
    append_otlp_json(groups_, kNoExtras, lines_);
    char* p = lines_.reserve(1);
    *p = '\n';
    lines_.commit(p + 1);
  }
  bool ok = std::fwrite(lines_.data(), 1, lines_.size(), file_) == lines_.size() &&
            std::fflush(file_) == 0;
  if (ok) return {};
  std::string error = "writing " + path_ + " failed: " + std::strerror(errno);
  std::clearerr(file_);
  return {ExportResult::Kind::Retryable, {}, error};
}

}  // namespace weft::exporter
