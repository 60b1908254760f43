#include "export/console_exporter.h"

#include <algorithm>
#include <unordered_set>

namespace weft::exporter {
namespace {

const std::string kNoOutcome = "-";

template <size_t N>
std::string key(const std::array<uint8_t, N>& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

std::string describe(const trace::Span& s) {
  return (s.resource ? s.resource->service_name : std::string("?")) + " " + s.name;
}

// The batch's spans grouped by trace id, in order of first appearance.
std::vector<std::pair<std::string, std::vector<const trace::Span*>>> by_trace(
    const std::vector<trace::Trace>& batch) {
  std::vector<std::pair<std::string, std::vector<const trace::Span*>>> groups;
  std::unordered_map<std::string, size_t> index;
  for (const auto& t : batch)
    for (const auto& s : t.spans) {
      auto [it, fresh] = index.try_emplace(key(s.trace_id), groups.size());
      if (fresh) groups.push_back({it->first, {}});
      groups[it->second].second.push_back(&s);
    }
  return groups;
}

}  // namespace

ExportResult ConsoleExporter::export_batch(const std::vector<trace::Trace>& batch) {
  for (const auto& [trace_key, spans] : by_trace(batch)) print(trace_key, spans);
  // A closed terminal or pipe will not come back: retrying would only hold memory.
  if (std::fflush(out_) != 0)
    return {ExportResult::Kind::Failed, {}, "writing to the console failed"};
  return {};
}

// Why a root has a parent weft did not print with it: a span printed earlier (a part of the
// same trace that left before), or one upstream that weft never saw (the wire named it).
std::string ConsoleExporter::parent_note(
    const trace::Span& root, const std::unordered_map<std::string, std::string>* earlier) const {
  if (!root.has_parent()) return "";
  std::string id = trace::to_hex(root.parent_span_id.data(), 8);
  if (earlier)
    if (auto it = earlier->find(key(root.parent_span_id)); it != earlier->end())
      return "  (parent " + id + ": " + it->second + ", printed above)";
  return "  (parent " + id + " upstream)";
}

void ConsoleExporter::print(const std::string& trace_key, const Spans& spans) {
  std::unordered_set<std::string> ids;
  for (const auto* s : spans) ids.insert(key(s->span_id));
  std::unordered_map<std::string, Spans> children;
  Spans roots;
  uint64_t start = UINT64_MAX, end = 0;
  for (const auto* s : spans) {
    if (s->has_parent() && ids.contains(key(s->parent_span_id)))
      children[key(s->parent_span_id)].push_back(s);
    else
      roots.push_back(s);
    start = std::min(start, s->start_ns);
    end = std::max(end, s->end_ns);
  }
  auto earlier = printed_.find(trace_key);
  const auto* earlier_spans = earlier == printed_.end() ? nullptr : &earlier->second;
  std::string id = trace::to_hex(reinterpret_cast<const uint8_t*>(trace_key.data()), 16);
  const char* plural = spans.size() == 1 ? "" : "s";
  if (earlier_spans)
    std::fprintf(out_, "trace %s  continued: %zu more span%s (this trace was printed above)\n",
                 id.c_str(), spans.size(), plural);
  else
    std::fprintf(out_, "trace %s  %zu span%s  %.3fms\n", id.c_str(), spans.size(), plural,
                 static_cast<double>(end - start) / 1e6);

  struct Item {
    const trace::Span* span;
    std::string prefix;
    bool last;
    bool root;
  };
  std::vector<Item> stack;
  for (size_t i = roots.size(); i-- > 0;)
    stack.push_back({roots[i], "", i == roots.size() - 1, true});
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    const trace::Span& s = *item.span;
    const std::string& code = s.outcome.empty() ? kNoOutcome : s.outcome;
    std::string note = item.root ? parent_note(s, earlier_spans) : "";
    std::fprintf(out_, "%s%s %s  %s  %s  %.3fms  %s%s%s\n", item.prefix.c_str(),
                 item.last ? "└─" : "├─", s.resource ? s.resource->service_name.c_str() : "?",
                 s.name.c_str(), code.c_str(), static_cast<double>(s.end_ns - s.start_ns) / 1e6,
                 to_string(s.kind), s.status == trace::StatusCode::Error ? "  ERROR" : "",
                 note.c_str());
    auto it = children.find(key(s.span_id));
    if (it == children.end()) continue;
    std::string prefix = item.prefix + (item.last ? "   " : "│  ");
    const auto& kids = it->second;
    for (size_t i = kids.size(); i-- > 0;)
      stack.push_back({kids[i], prefix, i == kids.size() - 1, false});
  }
  remember(trace_key, spans);
}

void ConsoleExporter::remember(const std::string& trace_key, const Spans& spans) {
  auto [it, fresh] = printed_.try_emplace(trace_key);
  if (fresh) {
    printed_order_.push_back(trace_key);
    if (printed_order_.size() > kRememberedTraces) {
      printed_.erase(printed_order_.front());
      printed_order_.pop_front();
    }
  }
  for (const auto* s : spans)
    if (it->second.size() < kRememberedSpansPerTrace)
      it->second.emplace(key(s->span_id), describe(*s));
}

}  // namespace weft::exporter
