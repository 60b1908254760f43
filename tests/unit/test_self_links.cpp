// weft's own metrics say how spans were linked and why inferred links were refused.
#include <doctest/doctest.h>

#include <algorithm>

#include "metrics/self_metrics.h"
#include "metrics/self_snapshot.h"

using namespace weft;

TEST_CASE("metrics: links by evidence and refused inferences by reason") {
  trace::StitchCounters stitch;
  stitch.linked_same_node = 9;
  stitch.linked_wire = 2;
  stitch.linked_inferred = 5;
  stitch.ambiguous_inference = 1;
  stitch.not_inferred_concurrent_requests = 3;
  stitch.not_inferred_thread_hopping = 4;
  stitch.not_inferred_opaque_server_traffic = 6;
  stitch.not_inferred_calls_outside_requests = 7;
  stitch.not_inferred_event_loop_runtime = 8;
  conn::ConnectionTracker tracker(
      {}, [](Exchange&&) {}, 0);
  metrics::SelfSnapshot s = metrics::collect_self_snapshot({}, {}, tracker, stitch, {});
  CHECK(s.links == std::map<std::string, uint64_t>{{"same_node", 9}, {"wire", 2}, {"inferred", 5}});
  CHECK(s.links_not_inferred == std::map<std::string, uint64_t>{{"ambiguous", 1},
                                                                {"concurrent_requests", 3},
                                                                {"thread_hopping", 4},
                                                                {"opaque_server_traffic", 6},
                                                                {"calls_outside_requests", 7},
                                                                {"event_loop_runtime", 8}});
  auto all = metrics::self_metrics(s, {});
  auto refused = std::find_if(all.begin(), all.end(), [](const metrics::SelfMetric& m) {
    return m.otel_name == "weft.links.not_inferred";
  });
  REQUIRE(refused != all.end());
  CHECK(refused->prometheus_name == "weft_links_not_inferred_total");
  CHECK(refused->label_key == "reason");
  CHECK(refused->points.size() == 6);
}
