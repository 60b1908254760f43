// The OTLP JSON file exporter (the Collector's file format: one ExportTraceServiceRequest per
// line, one line per trace), written by weft's own OTLP/JSON encoder (otlp_encoding.h).
#pragma once

#include <cstdio>
#include <string>

#include "export/exporter.h"
#include "export/otlp_encoding.h"

namespace weft::exporter {

// One trace as the file exporter writes it, without the newline.
std::string to_otlp_json(const trace::Trace& trace);

class OtlpFileExporter : public BatchExporter {
 public:
  // Returns null with a one-line error when the file cannot be opened for appending.
  static std::unique_ptr<OtlpFileExporter> open(const std::string& path, std::string* error);
  ~OtlpFileExporter() override;
  // One line per trace. A failed write (disk full) is retryable: space may come back.
  ExportResult export_batch(const std::vector<trace::Trace>& batch) override;
  std::string destination() const override { return path_; }

 private:
  OtlpFileExporter(FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  FILE* file_;
  std::string path_;
  ResourceGroups groups_;
  EncodeBuffer lines_;
};

}  // namespace weft::exporter
