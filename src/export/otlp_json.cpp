#include "export/otlp_json.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

namespace weft::exporter {
namespace {

using nlohmann::json;

json value_json(const trace::AttributeValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return {{"stringValue", x}};
        if constexpr (std::is_same_v<T, int64_t>) return {{"intValue", std::to_string(x)}};
        if constexpr (std::is_same_v<T, bool>) return {{"boolValue", x}};
        if constexpr (std::is_same_v<T, double>) return {{"doubleValue", x}};
      },
      v);
}

json attributes_json(const std::vector<trace::Attribute>& attrs) {
  json out = json::array();
  for (const auto& a : attrs) out.push_back({{"key", a.key}, {"value", value_json(a.value)}});
  return out;
}

json span_json(const trace::Span& s) {
  json j = {
      {"traceId", trace::to_hex(s.trace_id.data(), 16)},
      {"spanId", trace::to_hex(s.span_id.data(), 8)},
      {"name", s.name},
      {"kind", static_cast<int>(s.kind)},
      {"startTimeUnixNano", std::to_string(s.start_ns)},
      {"endTimeUnixNano", std::to_string(s.end_ns)},
      {"attributes", attributes_json(s.attributes)},
      {"status", json::object()},
      // W3C trace flags in the low byte, plus "the parent is known remote or not" bits.
      {"flags", (s.sampled ? 1 : 0) | 0x100 | (s.has_parent() && s.wire ? 0x200 : 0)},
  };
  if (s.has_parent()) j["parentSpanId"] = trace::to_hex(s.parent_span_id.data(), 8);
  if (!s.tracestate.empty()) j["traceState"] = s.tracestate;
  if (s.status != trace::StatusCode::Unset) j["status"]["code"] = static_cast<int>(s.status);
  return j;
}

}  // namespace

std::string to_otlp_json(const trace::Trace& t) {
  // One ResourceSpans per process (resource), in order of first appearance.
  std::vector<const trace::Resource*> order;
  std::map<const trace::Resource*, json> spans_by_resource;
  for (const auto& s : t.spans) {
    auto [it, fresh] = spans_by_resource.try_emplace(s.resource.get(), json::array());
    if (fresh) order.push_back(s.resource.get());
    it->second.push_back(span_json(s));
  }
  json resource_spans = json::array();
  for (const trace::Resource* r : order) {
    resource_spans.push_back({
        {"resource", {{"attributes", attributes_json(r->attributes)}}},
        {"scopeSpans", json::array({{{"scope", {{"name", "weft"}, {"version", WEFT_VERSION}}},
                                     {"spans", std::move(spans_by_resource[r])}}})},
    });
  }
  json request = {{"resourceSpans", std::move(resource_spans)}};
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unique_ptr<OtlpFileExporter> OtlpFileExporter::open(const std::string& path, std::string* error) {
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
  std::string lines;
  for (const auto& t : batch) {
    lines += to_otlp_json(t);
    lines += '\n';
  }
  bool ok = std::fwrite(lines.data(), 1, lines.size(), file_) == lines.size() && std::fflush(file_) == 0;
  if (ok) return {};
  std::string error = "writing " + path_ + " failed: " + std::strerror(errno);
  std::clearerr(file_);
  return {ExportResult::Kind::Retryable, {}, error};
}

}  // namespace weft::exporter
