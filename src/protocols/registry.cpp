#include "protocols/http1/http1.h"
#include "protocols/http2/http2.h"
#include "protocols/mysql/mysql.h"
#include "protocols/postgres/postgres.h"
#include "protocols/protocol.h"
#include "protocols/redis/redis.h"

namespace weft::protocols {

const std::vector<const Protocol*>& registry() {
  static const std::vector<const Protocol*> protocols = {
      &http1::protocol(),
      &redis::protocol(),
      &http2::protocol(),
      &postgres::protocol(),
      &mysql::protocol(),
  };
  return protocols;
}

const Protocol* find_protocol(std::string_view name) {
  for (const Protocol* p : registry())
    if (p->name() == name) return p;
  return nullptr;
}

std::vector<const MetricFamily*> Protocol::metric_families() const {
  std::vector<const MetricFamily*> out;
  for (SpanKind kind : {SpanKind::Server, SpanKind::Client})
    if (const MetricFamily* f = metric_family(kind)) out.push_back(f);
  return out;
}

const MetricFamily* Protocol::metric_family(SpanKind kind) const {
  if (kind == SpanKind::Server && parts_.server_family) return &parts_.server_family();
  if (kind == SpanKind::Client && parts_.client_family) return &parts_.client_family();
  return nullptr;
}

const Protocol* protocol_for_upgrade(std::string_view token) {
  for (const Protocol* p : registry())
    if (!p->upgrade_token().empty() && p->upgrade_token() == token) return p;
  return nullptr;
}

size_t registry_index(const Protocol* protocol) {
  const auto& all = registry();
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] == protocol) return i;
  return all.size();
}

}  // namespace weft::protocols
