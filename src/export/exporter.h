// Where finished traces go. Exporters run on the pipeline thread for now; each must be quick
// or hand work to its own thread.
#pragma once

#include "trace/stitcher.h"

namespace weft::exporter {

class TraceExporter {
 public:
  virtual ~TraceExporter() = default;
  virtual void export_trace(const trace::Trace& trace) = 0;
  virtual void flush() {}
};

}  // namespace weft::exporter
