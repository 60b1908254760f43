// OTLP/JSON encoding of traces (the OpenTelemetry protocol's JSON mapping: hex ids, integer
// enums, 64-bit integers as strings), and the Collector file format: one
// ExportTraceServiceRequest per line.
#pragma once

#include <cstdio>
#include <string>

#include "export/exporter.h"

namespace weft::exporter {

std::string to_otlp_json(const trace::Trace& trace);

class OtlpFileExporter : public TraceExporter {
 public:
  // Returns null with a one-line error when the file cannot be opened for appending.
  static std::unique_ptr<OtlpFileExporter> open(const std::string& path, std::string* error);
  ~OtlpFileExporter() override;
  void export_trace(const trace::Trace& trace) override;
  void flush() override;

 private:
  explicit OtlpFileExporter(FILE* file) : file_(file) {}
  FILE* file_;
};

}  // namespace weft::exporter
