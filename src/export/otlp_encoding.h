// weft's spans written straight into an OTLP ExportTraceServiceRequest, as protobuf wire format
// (OTLP/HTTP protobuf, OTLP/gRPC) or as OTLP/JSON text (OTLP/HTTP JSON, the file exporter), into
// a buffer the caller keeps from batch to batch: no message objects, no allocation once the
// buffers have grown. Field numbers are opentelemetry-proto's (trace.proto, common.proto,
// resource.proto); the unit tests parse the output with the generated classes.
//
// Both encodings write what the opentelemetry-cpp recordables wrote before (one ResourceSpans
// per process, scope "weft" with weft's version, every span field and attribute), and also what
// they lost: span flags (W3C trace flags, and whether the parent is remote), span kinds other
// than server and client, and text that is not UTF-8: each ill-formed sequence becomes U+FFFD,
// since protobuf strings and JSON text must be UTF-8 and a backend may refuse a whole request
// for one bad byte.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trace/stitcher.h"

namespace weft::exporter {

// A byte buffer that keeps its memory between uses. Encoders reserve an upper bound for what
// they are about to write, then write through a raw pointer without further checks.
class EncodeBuffer {
 public:
  void clear() { size_ = 0; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_.get(), size_}; }
  std::string str() const { return std::string(view()); }
  char* data() { return data_.get(); }
  // Room for `n` more bytes after size(); returns where they go. Moves the contents.
  char* reserve(size_t n) {
    if (capacity_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  // The bytes up to `end` (within the last reservation) are now part of the buffer.
  void commit(char* end) { size_ = static_cast<size_t>(end - data_.get()); }

 private:
  void grow(size_t n);
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// The spans of a batch (or of one trace) grouped by the process (resource) they come from, in
// order of first appearance, each group in the batch's order. Reused from batch to batch.
class ResourceGroups {
 public:
  struct Group {
    const trace::Resource* resource;  // null: a resource without attributes
    size_t begin, end;                // into spans()
  };
  void assign(const std::vector<trace::Trace>& batch);
  void assign(const trace::Trace& trace);
  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<const trace::Span*>& spans() const { return spans_; }

 private:
  void clear();
  void add(const trace::Trace& trace);
  void finish();
  uint32_t index_of(const trace::Resource* resource);

  std::vector<const trace::Resource*> resources_;
  std::unordered_map<const trace::Resource*, uint32_t> index_;  // only when there are many
  std::vector<std::pair<uint32_t, const trace::Span*>> tagged_;
  std::vector<Group> groups_;
  std::vector<const trace::Span*> spans_;
};

// Attributes every exported resource carries besides the process's own; the process's own win
// on a shared key.
using ResourceExtras = std::vector<Attribute>;

// Appends one ExportTraceServiceRequest in protobuf wire format.
void append_otlp_protobuf(const ResourceGroups& groups, const ResourceExtras& extras,
                          EncodeBuffer& out);

// Appends one ExportTraceServiceRequest as OTLP/JSON on one line: ids as lowercase hex, enums
// and flags as integers, 64-bit integers as strings, keys in alphabetical order (the order the
// file exporter has always written).
void append_otlp_json(const ResourceGroups& groups, const ResourceExtras& extras,
                      EncodeBuffer& out);

}  // namespace weft::exporter
