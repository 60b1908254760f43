#include "export/otlp_exporter.h"

#include <algorithm>

#include "opentelemetry/sdk/resource/resource.h"

namespace weft::exporter {
namespace {

namespace otel = opentelemetry;

// What an SDK resource attribute is as weft's: the SDK's scalar types; its arrays, which
// nothing weft sets produces, are left out.
std::optional<AttributeValue> weft_value(const otel::sdk::common::OwnedAttributeValue& value) {
  return otel::nostd::visit(
      [](const auto& v) -> std::optional<AttributeValue> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool> ||
                      std::is_same_v<T, double>)
          return AttributeValue(v);
        else if constexpr (std::is_integral_v<T>)
          return AttributeValue(static_cast<int64_t>(v));
        else
          return std::nullopt;
      },
      value);
}

void encode(const ResourceGroups& groups, const ResourceExtras& extras, Encoding encoding,
            EncodeBuffer& out) {
  if (encoding == Encoding::Json)
    append_otlp_json(groups, extras, out);
  else
    append_otlp_protobuf(groups, extras, out);
}

}  // namespace

ResourceExtras resource_extras(const ResourceOverrides& overrides) {
  otel::sdk::common::AttributeMap attributes;
  for (const auto& [k, v] : overrides.extra_attributes)
    attributes.SetAttribute(k, otel::nostd::string_view(v));
  auto resource = otel::sdk::resource::Resource::Create(attributes);
  ResourceExtras extras;
  for (const auto& [key, value] : resource.GetAttributes())
    if (auto v = weft_value(value)) extras.push_back({key, std::move(*v)});
  std::sort(extras.begin(), extras.end(),
            [](const Attribute& a, const Attribute& b) { return a.key < b.key; });
  return extras;
}

std::string encode_traces(const std::vector<trace::Trace>& batch, const ResourceExtras& extras,
                          Encoding encoding) {
  ResourceGroups groups;
  groups.assign(batch);
  EncodeBuffer out;
  encode(groups, extras, encoding, out);
  return out.str();
}

OtlpTraceExporter::OtlpTraceExporter(std::unique_ptr<OtlpTransport> transport,
                                     const ResourceOverrides& overrides)
    : transport_(std::move(transport)), extras_(resource_extras(overrides)) {}

ExportResult OtlpTraceExporter::export_batch(const std::vector<trace::Trace>& batch) {
  groups_.assign(batch);
  request_.clear();
  encode(groups_, extras_, transport_->encoding(), request_);
  return transport_->send_encoded(request_.view());
}

}  // namespace weft::exporter
