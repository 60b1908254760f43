// HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on top of it: the protocol objects and the
// HTTP/2 part of an exchange, which only this folder (and its tests) reads.
//
// One folder, two Protocol objects: `http2` is the registered one (it detects and parses
// connections); its handler gives each exchange whose request is gRPC (content-type
// application/grpc) to `grpc`, which describes it by the RPC conventions and records
// rpc.*.duration. `grpc` detects nothing and is not in the registry.
#pragma once

#include <cstdint>
#include <string>

#include "protocols/protocol.h"

namespace weft::protocols::http2 {

// One stream's request and response.
struct Http2Exchange : ExchangeDetails {
  uint32_t stream_id = 0;
  std::string method;           // :method ("" when not recovered)
  std::string path;             // :path, query included
  std::string scheme;           // :scheme
  std::string authority;        // :authority
  std::string route;            // route template of the path (http1's rules), "" when unknown
  int status = 0;               // final :status; 0 when not recovered
  HeaderList request_headers;   // only those later stages use (trace context, content-type...)
  HeaderList response_headers;  // response headers and trailers, same selection
  // gRPC: the request's content-type is application/grpc[+...].
  bool grpc = false;
  // grpc-status from the trailers or a trailers-only response; -1 when absent.
  int grpc_status = -1;
  std::string grpc_message;  // its first bytes
  // gRPC length-prefixed messages each way (0 and 0: not counted, e.g. DATA bytes were lost).
  uint32_t request_messages = 0;
  uint32_t response_messages = 0;
  // RST_STREAM ended the stream: its error code (RFC 9113, 7); -1 when none.
  int64_t reset_code = -1;
  // Header fields of the exchange's blocks, and those that named HPACK table entries weft never
  // saw (joined late, lost blocks).
  uint32_t fields = 0;
  uint32_t unknown_fields = 0;
  bool method_unknown = false;  // :method may be among the unknown fields
  bool path_unknown = false;    // :path may be among the unknown fields
  bool status_unknown = false;  // :status may be among the unknown fields
  // A header block was not wholly captured (lost records, over the size cap).
  bool headers_damaged = false;
  // gRPC known only by the stream's framing (its content-type and grpc-status were HPACK
  // entries weft never saw): see framed_as_grpc in handler.cpp.
  bool grpc_inferred = false;
  // A gRPC call whose last header block named entries weft never saw and gave no grpc-status:
  // its status is unknown, never taken for OK.
  bool grpc_status_unknown = false;
  // Stream 1 of a connection upgraded from HTTP/1.1 (h2c): its request was HTTP/1.1's.
  bool upgraded = false;
};

// The registered protocol: plain HTTP/2, by the HTTP conventions.
const Protocol& protocol();
// gRPC exchanges found by the http2 handler, by the RPC conventions.
const Protocol& grpc_protocol();

const Http2Exchange& http2_of(const Exchange& exchange);

// Parts of the contract, each in its own file.
DetectResult detect(std::span<const uint8_t> bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters);
std::unique_ptr<ProtocolHandler> take_over_upgrade(std::shared_ptr<const ConnectionInfo> connection,
                                                   ProtocolCounters& counters, Handoff&& handoff);
// "/pkg.Service/Method" -> ("pkg.Service", "Method"); false for any other shape.
bool split_rpc(std::string_view path, std::string_view& service, std::string_view& method);
void describe(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
// One of each for both protocol objects: an exchange's conventions follow Http2Exchange::grpc.
void essentials(const Exchange& exchange, SpanEssentials& out);
void metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out);
void describe_grpc(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
const MetricFamily& grpc_server_duration_family();
const MetricFamily& grpc_client_duration_family();
std::string render_text(const Exchange& exchange);
void render_json(const Exchange& exchange, nlohmann::json& out);

}  // namespace weft::protocols::http2
