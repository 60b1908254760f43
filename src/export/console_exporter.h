// Each finished trace as an indented tree for people.
#pragma once

#include <cstdio>

#include "export/exporter.h"

namespace weft::exporter {

class ConsoleExporter : public BatchExporter {
 public:
  explicit ConsoleExporter(FILE* out) : out_(out) {}
  ExportResult export_batch(const std::vector<trace::Trace>& batch) override;
  std::string destination() const override { return "the console"; }

 private:
  void print(const trace::Trace& trace);
  FILE* out_;
};

}  // namespace weft::exporter
