// Each finished trace as an indented tree for people.
#pragma once

#include <cstdio>

#include "export/exporter.h"

namespace weft::exporter {

class ConsoleExporter : public TraceExporter {
 public:
  explicit ConsoleExporter(FILE* out) : out_(out) {}
  void export_trace(const trace::Trace& trace) override;
  void flush() override { std::fflush(out_); }

 private:
  FILE* out_;
};

}  // namespace weft::exporter
