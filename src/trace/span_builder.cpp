#include "trace/span_builder.h"

#include <unistd.h>

#include <algorithm>
#include <unordered_set>

#include "protocols/protocol.h"

namespace weft::trace {
namespace {

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// HTTP client spans have up to 20 attributes, server spans up to 19.
constexpr size_t kAttributesPerSpan = 20;

void add(std::vector<Attribute>& attrs, AttributeKey key, AttributeValue value) {
  attrs.push_back({std::move(key), std::move(value)});
}

}  // namespace

const Attribute* find_attribute(const Span& span, std::string_view key) {
  for (const auto& a : span.attributes)
    if (a.key == key) return &a;
  return nullptr;
}

SpanBuilder::SpanBuilder(SpanOptions options)
    : options_(options), describe_options_{options.query_values, options.statement_values} {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) host_name_ = name;
}

std::shared_ptr<const Resource> SpanBuilder::resource_for(const ConnectionInfo& c) {
  std::string exe = c.process ? c.process->exe : "";
  uint64_t key = static_cast<uint64_t>(c.pid) << 32 | (std::hash<std::string>{}(exe)&0xffffffff);
  if (auto it = resources_.find(key); it != resources_.end()) return it->second;
  if (resources_.size() > 65536) resources_.clear();  // bounded; rebuilt on demand

  auto r = std::make_shared<Resource>();
  std::string executable = exe.empty() ? c.comm : basename_of(exe);
  r->service_name = !options_.service_name.empty()                  ? options_.service_name
                    : c.process && !c.process->service_name.empty() ? c.process->service_name
                                                                    : executable;
  add(r->attributes, "service.name", r->service_name);
  add(r->attributes, "process.pid", static_cast<int64_t>(c.pid));
  add(r->attributes, "process.executable.name", executable);
  if (!exe.empty()) add(r->attributes, "process.executable.path", exe);
  if (options_.command_line && c.process && !c.process->command_line.empty())
    add(r->attributes, "process.command_line", c.process->command_line);
  if (!host_name_.empty()) add(r->attributes, "host.name", host_name_);
  add(r->attributes, "telemetry.distro.name", std::string("weft"));
  resources_[key] = r;
  return r;
}

void SpanBuilder::forget_processes(const std::vector<uint32_t>& pids) {
  if (pids.empty()) return;
  std::unordered_set<uint32_t> gone(pids.begin(), pids.end());
  std::erase_if(resources_, [&](const auto& entry) {
    return gone.contains(static_cast<uint32_t>(entry.first >> 32));
  });
}

Span SpanBuilder::build(std::shared_ptr<const Exchange> ex) {
  Span s = build_deferred(std::move(ex));
  describe(s);
  return s;
}

Span SpanBuilder::build_deferred(std::shared_ptr<const Exchange> ex) {
  const ConnectionInfo& c = *ex->connection;
  Span s;
  protocols::SpanEssentials e;
  if (ex->protocol->essentials(*ex, e)) {
    s.kind = e.kind;
    s.status = e.status;
    if (e.context_carrier) s.wire = extract_context(*e.context_carrier);
  } else {
    s.exchange = ex;
    describe(s);
  }
  s.metric_family = ex->protocol->metric_family(s.kind);
  s.start_ns = ex->request.start_ns + c.wall_offset_ns;
  s.end_ns = std::max(ex->response.end_ns, ex->request.start_ns) + c.wall_offset_ns;
  s.resource = resource_for(c);
  s.exchange = std::move(ex);
  return s;
}

void SpanBuilder::describe(Span& s) const {
  if (!s.name.empty()) return;
  const Exchange& ex = *s.exchange;
  protocols::SpanDescription d;
  // Room for a protocol's attributes at once: growing one at a time moves every string 4 times.
  d.attributes.reserve(kAttributesPerSpan + s.attributes.size() + 1);
  ex.protocol->describe(ex, describe_options_, d);
  s.name = d.name.empty() ? std::string(ex.protocol->name()) : std::move(d.name);
  s.kind = d.kind;
  s.status = d.status;
  if (!s.wire && d.context_carrier) s.wire = extract_context(*d.context_carrier);
  s.outcome = std::move(d.outcome);
  // What the stitcher added before (weft.start_bounded_by_child) follows the protocol's own.
  d.attributes.insert(d.attributes.end(), std::make_move_iterator(s.attributes.begin()),
                      std::make_move_iterator(s.attributes.end()));
  s.attributes = std::move(d.attributes);
  if (ex.connection->capture_degraded) add(s.attributes, "weft.capture.degraded", true);
}

}  // namespace weft::trace
