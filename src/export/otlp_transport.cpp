#include "export/otlp_transport.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <strings.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>

// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include <google/protobuf/util/json_util.h>
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on
#include "export/delivery_report.h"
#include "opentelemetry/ext/http/client/http_client_factory.h"
#include "opentelemetry/ext/http/common/url_parser.h"
#include "trace/context.h"

namespace weft::exporter {
namespace {

namespace http = opentelemetry::ext::http::client;
namespace trace_proto = opentelemetry::proto::collector::trace::v1;
namespace metrics_proto = opentelemetry::proto::collector::metrics::v1;
using std::chrono::milliseconds;

const std::string kUserAgent = std::string("weft/") + WEFT_VERSION;

ExportResult retryable(std::string error, milliseconds after = milliseconds(0)) {
  return {ExportResult::Kind::Retryable, after, std::move(error)};
}
ExportResult failed(std::string error) {
  return {ExportResult::Kind::Failed, {}, std::move(error)};
}

// --- OTLP/HTTP ---

struct HttpOutcome {
  http::SessionState state = http::SessionState::Created;
  int status = 0;
  std::string retry_after;
  std::string body;
};

// Turns the curl client's callbacks into one outcome: the response, or the state that ended
// the session without one.
class OutcomeHandler : public http::EventHandler {
 public:
  std::future<HttpOutcome> outcome() { return promise_.get_future(); }

  void OnResponse(http::Response& response) noexcept override {
    HttpOutcome o;
    o.state = http::SessionState::Response;
    o.status = response.GetStatusCode();
    response.ForEachHeader(
        [&](opentelemetry::nostd::string_view name, opentelemetry::nostd::string_view value) {
          if (strcasecmp(std::string(name).c_str(), "Retry-After") == 0)
            o.retry_after = std::string(value);
          return true;
        });
    const auto& body = response.GetBody();
    o.body.assign(body.begin(), body.end());
    finish(std::move(o));
  }

  void OnEvent(http::SessionState state, opentelemetry::nostd::string_view) noexcept override {
    switch (state) {
      case http::SessionState::CreateFailed:
      case http::SessionState::ConnectFailed:
      case http::SessionState::SendFailed:
      case http::SessionState::SSLHandshakeFailed:
      case http::SessionState::TimedOut:
      case http::SessionState::NetworkError:
      case http::SessionState::ReadError:
      case http::SessionState::WriteError:
      case http::SessionState::Cancelled: {
        HttpOutcome o;
        o.state = state;
        finish(std::move(o));
        break;
      }
      default:
        break;
    }
  }

 private:
  void finish(HttpOutcome&& o) {
    if (!done_.exchange(true)) promise_.set_value(std::move(o));
  }
  std::promise<HttpOutcome> promise_;
  std::atomic<bool> done_{false};
};

const char* state_name(http::SessionState s) {
  switch (s) {
    case http::SessionState::CreateFailed:
      return "could not create the request";
    case http::SessionState::ConnectFailed:
      return "connection failed";
    case http::SessionState::SendFailed:
      return "sending failed";
    case http::SessionState::SSLHandshakeFailed:
      return "TLS handshake failed";
    case http::SessionState::TimedOut:
      return "timed out";
    case http::SessionState::NetworkError:
      return "network error";
    case http::SessionState::ReadError:
      return "reading the response failed";
    case http::SessionState::WriteError:
      return "writing the request failed";
    case http::SessionState::Cancelled:
      return "cancelled";
    default:
      return "no response";
  }
}

// OTLP partial success: the backend accepted the request but refused some of its items.
template <typename Response>
ExportResult partial_success(const Response& response, const std::string& where) {
  ExportResult r;
  const auto& p = response.partial_success();
  if constexpr (std::is_same_v<Response, trace_proto::ExportTraceServiceResponse>)
    r.rejected = p.rejected_spans();
  else
    r.rejected = p.rejected_data_points();
  if (r.rejected || !p.error_message().empty())
    r.error = where + ": the backend rejected " + std::to_string(r.rejected) + " items" +
              (p.error_message().empty() ? "" : ": " + p.error_message());
  return r;
}

// A successful answer's body: an Export*ServiceResponse in the request's encoding (often
// empty).
template <typename Response>
ExportResult read_success(const std::string& body, bool json, const std::string& where) {
  Response response;
  if (body.empty()) return {};
  bool parsed = json ? google::protobuf::util::JsonStringToMessage(body, &response).ok()
                     : response.ParseFromString(body);
  return parsed ? partial_success(response, where) : ExportResult{};
}

ExportResult read_success(Signal signal, const std::string& body, bool json,
                          const std::string& where) {
  return signal == Signal::Traces
             ? read_success<trace_proto::ExportTraceServiceResponse>(body, json, where)
             : read_success<metrics_proto::ExportMetricsServiceResponse>(body, json, where);
}

ExportResult classify_http(const HttpOutcome& o, const std::string& endpoint, Signal signal,
                           bool json) {
  if (o.state != http::SessionState::Response)
    return retryable("POST " + endpoint + ": " + state_name(o.state));
  if (o.status >= 200 && o.status < 300)
    return read_success(signal, o.body, json, "POST " + endpoint);
  std::string error = "POST " + endpoint + ": HTTP " + std::to_string(o.status);
  if (o.status == 429 || o.status == 502 || o.status == 503 || o.status == 504)
    return retryable(error, parse_retry_after(o.retry_after));
  return failed(error);
}

class HttpTransport : public OtlpTransport {
 public:
  HttpTransport(Signal signal, const OtlpSignal& s)
      : OtlpTransport(s.endpoint,
                      s.protocol == OtlpProtocol::HttpJson ? Encoding::Json : Encoding::Protobuf),
        signal_(signal),
        settings_(s),
        client_(http::HttpClientFactory::Create()) {
    opentelemetry::ext::http::common::UrlParser url(s.endpoint);
    // The client joins its "scheme://host:port/" base and this path: without the leading
    // slash, or the server would see "//v1/traces".
    path_ = url.path_.substr(url.path_.starts_with("/") ? 1 : 0) +
            (url.query_.empty() ? "" : "?" + url.query_);
    ssl_ = http::HttpSslOptions(s.endpoint, false, s.certificate, "", s.client_key, "",
                                s.client_certificate, "", "", "", "", "");
  }
  ~HttpTransport() override { client_->CancelAllSessions(); }

  ExportResult send_encoded(std::string_view message) override {
    bool json = encoding() == Encoding::Json;
    http::Body body;  // the client takes it over
    if (settings_.gzip) {
      std::string packed = gzip_compress(message);
      body.assign(packed.begin(), packed.end());
    } else {
      body.assign(message.begin(), message.end());
    }

    auto session = client_->CreateSession(endpoint());
    auto request = session->CreateRequest();
    request->SetMethod(http::Method::Post);
    request->SetUri(path_);
    request->SetSslOptions(ssl_);
    request->SetTimeoutMs(settings_.timeout);
    for (const auto& [k, v] : settings_.headers) request->AddHeader(k, v);
    request->ReplaceHeader("Content-Type", json ? "application/json" : "application/x-protobuf");
    request->ReplaceHeader("User-Agent", kUserAgent);
    if (settings_.gzip) request->ReplaceHeader("Content-Encoding", "gzip");
    request->SetBody(body);

    auto handler = std::make_shared<OutcomeHandler>();
    auto outcome = handler->outcome();
    {
      std::lock_guard lock(in_flight_mutex_);
      in_flight_ = session;
    }
    session->SendRequest(handler);
    // The client enforces the timeout; the margin only guards against a callback that never comes.
    bool answered =
        outcome.wait_for(settings_.timeout + milliseconds(2000)) == std::future_status::ready;
    {
      std::lock_guard lock(in_flight_mutex_);
      in_flight_.reset();
    }
    if (!answered) {
      session->CancelSession();
      return retryable("POST " + display_endpoint() + ": no answer within the timeout");
    }
    session->FinishSession();
    return classify_http(outcome.get(), display_endpoint(), signal_, json);
  }

  void cancel() override {
    std::lock_guard lock(in_flight_mutex_);
    if (in_flight_) in_flight_->CancelSession();  // the handler then sees Cancelled
  }

 private:
  Signal signal_;
  OtlpSignal settings_;
  std::shared_ptr<http::HttpClient> client_;
  std::mutex in_flight_mutex_;
  std::shared_ptr<http::Session> in_flight_;
  std::string path_;
  http::HttpSslOptions ssl_;
};

// --- OTLP/gRPC ---

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

// The OTLP specification's retryable gRPC codes.
bool retryable_grpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return true;
    default:
      return false;
  }
}

std::string to_string(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& slice : slices)
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return out;
}

// The request's bytes go out as they are through grpc++'s generic stub: the generated stubs
// would want a message object to serialise.
class GrpcTransport : public OtlpTransport {
 public:
  GrpcTransport(Signal signal, const OtlpSignal& s, std::shared_ptr<grpc::Channel> channel)
      : OtlpTransport(s.endpoint, Encoding::Protobuf),
        signal_(signal),
        settings_(s),
        channel_(std::move(channel)),
        stub_(channel_),
        method_(signal == Signal::Traces
                    ? "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                    : "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") {}

  ExportResult send_encoded(std::string_view message) override {
    grpc::ClientContext context;
    {
      std::lock_guard lock(in_flight_mutex_);
      in_flight_ = &context;
    }
    struct Done {  // forgets the context however the call ends
      GrpcTransport* t;
      ~Done() {
        std::lock_guard lock(t->in_flight_mutex_);
        t->in_flight_ = nullptr;
      }
    } done{this};
    context.set_deadline(std::chrono::system_clock::now() + settings_.timeout);
    // Wait (up to the deadline) for a channel that is reconnecting instead of failing at once:
    // a backend that comes back is used as soon as the channel reaches it.
    context.set_wait_for_ready(true);
    for (const auto& [k, v] : settings_.headers) {
      std::string key = k;
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      context.AddMetadata(key, v);
    }
    grpc::Slice slice(message.data(), message.size());
    grpc::ByteBuffer request(&slice, 1), response;
    std::promise<grpc::Status> finished;
    auto outcome = finished.get_future();
    stub_.UnaryCall(&context, method_, grpc::StubOptions(), &request, &response,
                    [&](grpc::Status status) { finished.set_value(std::move(status)); });
    grpc::Status status = outcome.get();  // the deadline bounds the wait
    std::string where = "gRPC " + display_endpoint();
    if (status.ok()) return read_success(signal_, to_string(response), false, where);
    std::string error = where + ": " + grpc_code_name(status.error_code()) +
                        (status.error_message().empty() ? "" : " (" + status.error_message() + ")");
    return retryable_grpc(status.error_code()) ? retryable(error) : failed(error);
  }

  void cancel() override {
    std::lock_guard lock(in_flight_mutex_);
    if (in_flight_) in_flight_->TryCancel();
  }

 private:
  static std::string grpc_code_name(grpc::StatusCode c) {
    static const char* names[] = {"OK",
                                  "CANCELLED",
                                  "UNKNOWN",
                                  "INVALID_ARGUMENT",
                                  "DEADLINE_EXCEEDED",
                                  "NOT_FOUND",
                                  "ALREADY_EXISTS",
                                  "PERMISSION_DENIED",
                                  "RESOURCE_EXHAUSTED",
                                  "FAILED_PRECONDITION",
                                  "ABORTED",
                                  "OUT_OF_RANGE",
                                  "UNIMPLEMENTED",
                                  "INTERNAL",
                                  "UNAVAILABLE",
                                  "DATA_LOSS",
                                  "UNAUTHENTICATED"};
    int i = static_cast<int>(c);
    return i >= 0 && i < 17 ? names[i] : "code " + std::to_string(i);
  }

  Signal signal_;
  OtlpSignal settings_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  std::string method_;
  std::mutex in_flight_mutex_;
  grpc::ClientContext* in_flight_ = nullptr;
};

std::unique_ptr<OtlpTransport> make_grpc(Signal signal, const OtlpSignal& s, std::string* error) {
  bool tls = s.endpoint.starts_with("https://");
  std::string target = s.endpoint.substr(s.endpoint.find("://") + 3);
  while (!target.empty() && target.back() == '/') target.pop_back();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions options;
    if (!s.certificate.empty() && !read_file(s.certificate, options.pem_root_certs)) {
      *error = "cannot read the OTLP certificate file " + s.certificate;
      return nullptr;
    }
    if (!s.client_key.empty() && (!read_file(s.client_key, options.pem_private_key) ||
                                  !read_file(s.client_certificate, options.pem_cert_chain))) {
      *error = "cannot read the OTLP client key or certificate";
      return nullptr;
    }
    credentials = grpc::SslCredentials(options);
  }
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix(kUserAgent);
  if (s.gzip) args.SetCompressionAlgorithm(GRPC_COMPRESS_GZIP);
  // gRPC's own reconnect backoff grows to two minutes; weft retries every few seconds at most
  // (ExportQueue), and a channel still backing off would fail those attempts after the
  // backend is back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  return std::make_unique<GrpcTransport>(signal, s, std::move(channel));
}

// --- OTLP/JSON ---

std::string base64_to_hex(const std::string& b64) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    size_t v = chars.find(c);
    if (v == std::string::npos) break;  // '=' padding ends the data
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return trace::to_hex(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// OTLP/JSON writes these bytes fields as hex where protobuf's mapping would use base64. One
// pass over the printed text: `"traceId":"` can only be a key there, since inside a string
// value its quotes would be escaped.
std::string ids_to_hex(const std::string& json) {
  static const char* const kIdKeys[] = {"\"traceId\":\"", "\"spanId\":\"", "\"parentSpanId\":\""};
  std::string out;
  out.reserve(json.size() + json.size() / 8);
  size_t i = 0;
  while (i < json.size()) {
    size_t key_end = std::string::npos;
    if (json[i] == '"') {
      for (const char* key : kIdKeys) {
        size_t n = std::strlen(key);
        if (json.compare(i, n, key) == 0) key_end = i + n;
      }
    }
    if (key_end == std::string::npos) {
      out += json[i++];
      continue;
    }
    size_t value_end = json.find('"', key_end);  // base64 has no quotes or escapes
    if (value_end == std::string::npos) return json;
    out.append(json, i, key_end - i);
    out += base64_to_hex(json.substr(key_end, value_end - key_end));
    i = value_end;
  }
  return out;
}

}  // namespace

std::string otlp_message_to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_enums_as_ints = true;
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return ids_to_hex(text);
}

std::chrono::milliseconds parse_retry_after(const std::string& raw) {
  size_t b = raw.find_first_not_of(" \t\r\n"), e = raw.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return milliseconds(0);
  std::string value = raw.substr(b, e - b + 1);
  char* end = nullptr;
  long seconds = std::strtol(value.c_str(), &end, 10);
  if (end != value.c_str() && *end == '\0')
    return milliseconds(std::clamp(seconds, 0L, 3600L) * 1000);
  std::tm tm{};  // an HTTP-date: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (!strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return milliseconds(0);
  long delta = static_cast<long>(timegm(&tm) - std::time(nullptr));
  return milliseconds(std::clamp(delta, 0L, 3600L) * 1000);
}

std::string gzip_compress(std::string_view data) {
  z_stream z{};
  // 15 window bits + 16: a gzip header and trailer instead of zlib's. The fastest level: an
  // agent's CPU is dearer than a few more bytes on the wire (the default level cost more than
  // encoding the spans; docs/performance.md).
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return std::string(data);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

OtlpTransport::OtlpTransport(std::string endpoint, Encoding encoding)
    : endpoint_(std::move(endpoint)),
      encoding_(encoding),
      display_endpoint_(redact_url(endpoint_)) {}

ExportResult OtlpTransport::send(const google::protobuf::Message& request) {
  return send_encoded(encoding_ == Encoding::Json ? otlp_message_to_json(request)
                                                  : request.SerializeAsString());
}

std::unique_ptr<OtlpTransport> OtlpTransport::create(Signal signal, const OtlpSignal& s,
                                                     std::string* error) {
  if (s.protocol == OtlpProtocol::Grpc) return make_grpc(signal, s, error);
  return std::make_unique<HttpTransport>(signal, s);
}

}  // namespace weft::exporter
