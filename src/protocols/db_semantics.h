// What every database protocol's spans share under the OpenTelemetry database semantic
// conventions: the duration buckets and the two duration families (one metric per name, whatever
// the database), with one label order every protocol's metric_labels() fills.
#pragma once

#include <vector>

#include "weft/telemetry.h"

namespace weft::protocols::db {

// The conventions' advisory bucket bounds for db.client.operation.duration, seconds.
inline const std::vector<double>& duration_buckets() {
  static const std::vector<double> buckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
  return buckets;
}

// Function-local statics in inline functions: one family for the whole program.
inline const MetricFamily& client_duration_family() {
  static const MetricFamily family{
      "db.client.operation.duration",
      "Duration of database client operations.",
      {"db.system.name", "db.operation.name", "db.namespace", "db.collection.name",
       "db.response.status_code", "server.address", "server.port"},
      "db.operation.name",
      duration_buckets()};
  return family;
}

// The conventions define no server-side database metric; the contract wants one per span kind.
// weft's own name says so; the labels are the client family's (server.* is this process).
inline const MetricFamily& server_duration_family() {
  static const MetricFamily family{
      "weft.db.server.operation.duration",
      "Duration of database operations served, from request to reply (weft's own metric).",
      {"db.system.name", "db.operation.name", "db.namespace", "db.collection.name",
       "db.response.status_code", "server.address", "server.port"},
      "db.operation.name",
      duration_buckets()};
  return family;
}

}  // namespace weft::protocols::db
