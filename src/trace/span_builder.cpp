#include "trace/span_builder.h"

#include <unistd.h>

#include <algorithm>

#include "protocols/protocol.h"

namespace weft::trace {
namespace {

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void add(std::vector<Attribute>& attrs, std::string key, AttributeValue value) {
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
  uint64_t key = static_cast<uint64_t>(c.pid) << 32 ^ std::hash<std::string>{}(exe);
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

Span SpanBuilder::build(std::shared_ptr<const Exchange> ex) {
  const ConnectionInfo& c = *ex->connection;
  protocols::SpanDescription d;
  ex->protocol->describe(*ex, describe_options_, d);
  Span s;
  s.name = std::move(d.name);
  s.kind = d.kind;
  s.status = d.status;
  s.attributes = std::move(d.attributes);
  s.outcome = std::move(d.outcome);
  s.metric_family = ex->protocol->metric_family(d.kind);
  if (d.context_carrier) s.wire = extract_context(*d.context_carrier);
  if (c.capture_degraded) add(s.attributes, "weft.capture.degraded", true);
  s.start_ns = ex->request.start_ns + c.wall_offset_ns;
  s.end_ns = std::max(ex->response.end_ns, ex->request.start_ns) + c.wall_offset_ns;
  s.resource = resource_for(c);
  s.exchange = std::move(ex);
  return s;
}

}  // namespace weft::trace
