// Each finished trace as an indented tree for people.
//
// The stitcher may hand over one trace in several parts: spans that joined one trace through
// wire context without weft seeing the call between them (an SDK-instrumented caller), or a
// span that finished after the rest had left. Parts in one batch are printed as one tree
// (several roots under one header); a part arriving after its trace was printed gets a header
// that says it continues that trace, and each root line names the span it hangs off.
#pragma once

#include <cstdio>
#include <deque>
#include <string>
#include <unordered_map>

#include "export/exporter.h"

namespace weft::exporter {

class ConsoleExporter : public BatchExporter {
 public:
  explicit ConsoleExporter(FILE* out) : out_(out) {}
  ExportResult export_batch(const std::vector<trace::Trace>& batch) override;
  std::string destination() const override { return "the console"; }

 private:
  using Spans = std::vector<const trace::Span*>;
  void print(const std::string& trace_key, const Spans& spans);
  std::string parent_note(const trace::Span& root,
                          const std::unordered_map<std::string, std::string>* earlier) const;
  void remember(const std::string& trace_key, const Spans& spans);

  FILE* out_;
  // Recently printed traces: span id -> "service name" of each printed span, so a later part
  // can say which span it extends. Bounded: the oldest traces are forgotten first.
  static constexpr size_t kRememberedTraces = 4096;
  static constexpr size_t kRememberedSpansPerTrace = 1024;
  std::unordered_map<std::string, std::unordered_map<std::string, std::string>> printed_;
  std::deque<std::string> printed_order_;
};

}  // namespace weft::exporter
