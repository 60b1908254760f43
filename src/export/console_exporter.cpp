#include "export/console_exporter.h"

#include <string>
#include <unordered_map>

namespace weft::exporter {
namespace {

std::string span_key(const trace::SpanId& id) { return std::string(reinterpret_cast<const char*>(id.data()), id.size()); }

const char* kind_name(trace::SpanKind k) { return k == trace::SpanKind::Server ? "server" : "client"; }

}  // namespace

ExportResult ConsoleExporter::export_batch(const std::vector<trace::Trace>& batch) {
  for (const auto& t : batch) print(t);
  // A closed terminal or pipe will not come back: retrying would only hold memory.
  if (std::fflush(out_) != 0) return {ExportResult::Kind::Failed, {}, "writing to the console failed"};
  return {};
}

void ConsoleExporter::print(const trace::Trace& t) {
  if (t.spans.empty()) return;
  const trace::Span& root = t.spans.front();
  std::unordered_map<std::string, std::vector<const trace::Span*>> children;
  for (const auto& s : t.spans)
    if (&s != &root) children[span_key(s.parent_span_id)].push_back(&s);

  std::fprintf(out_, "trace %s  %zu span%s  %.3fms%s\n", trace::to_hex(root.trace_id.data(), 16).c_str(), t.spans.size(),
               t.spans.size() == 1 ? "" : "s", static_cast<double>(root.end_ns - root.start_ns) / 1e6,
               root.has_parent() ? ("  (parent " + trace::to_hex(root.parent_span_id.data(), 8) + " upstream)").c_str() : "");
  struct Item {
    const trace::Span* span;
    std::string prefix;
    bool last;
  };
  std::vector<Item> stack{{&root, "", true}};
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    const trace::Span& s = *item.span;
    const trace::Attribute* status = trace::find_attribute(s, "http.response.status_code");
    std::string code = status ? std::to_string(std::get<int64_t>(status->value)) : "-";
    std::fprintf(out_, "%s%s %s  %s  %s  %.3fms  %s%s\n", item.prefix.c_str(), item.last ? "└─" : "├─",
                 s.resource->service_name.c_str(), s.name.c_str(), code.c_str(),
                 static_cast<double>(s.end_ns - s.start_ns) / 1e6, kind_name(s.kind),
                 s.status == trace::StatusCode::Error ? "  ERROR" : "");
    auto it = children.find(span_key(s.span_id));
    if (it == children.end()) continue;
    std::string prefix = item.prefix + (item.last ? "   " : "│  ");
    const auto& kids = it->second;
    for (size_t i = kids.size(); i-- > 0;) stack.push_back({kids[i], prefix, i == kids.size() - 1});
  }
}

}  // namespace weft::exporter
