// EventFilter: which events `weft events --pid/--port/--comm` keeps.
#include <doctest/doctest.h>

#include "cli/commands.h"
#include "test_helpers.h"

namespace weft::cli {
namespace {

using test::base_event;
using test::endpoint;

// pid 4242, comm "curl", 127.0.0.1:54321 -> 10.1.2.3:80.
Event sample() {
  return base_event(EventKind::Connect, 1, 1);
}

TEST_CASE("filter: an empty filter keeps everything") {
  EventFilter filter;
  CHECK(filter.matches(sample()));
  CHECK(filter.matches(Event{}));
}

TEST_CASE("filter: pid") {
  EventFilter filter;
  filter.pid = 4242;
  CHECK(filter.matches(sample()));
  filter.pid = 4243;  // the event's tid, not its pid
  CHECK_FALSE(filter.matches(sample()));
  filter.pid = 0;
  CHECK_FALSE(filter.matches(sample()));
}

TEST_CASE("filter: port matches the local or the remote end") {
  EventFilter filter;
  filter.port = 80;
  CHECK(filter.matches(sample()));  // remote
  filter.port = 54321;
  CHECK(filter.matches(sample()));  // local
  filter.port = 443;
  CHECK_FALSE(filter.matches(sample()));

  Event v6 = sample();
  v6.local = endpoint("::1", 8443);
  v6.remote = endpoint("::1", 60000);
  filter.port = 8443;
  CHECK(filter.matches(v6));
  filter.port = 80;
  CHECK_FALSE(filter.matches(v6));
}

TEST_CASE("filter: comm must match exactly") {
  EventFilter filter;
  filter.comm = "curl";
  CHECK(filter.matches(sample()));
  for (const char* other : {"cur", "curl2", "Curl", " curl", "wget"}) {
    CAPTURE(other);
    filter.comm = other;
    CHECK_FALSE(filter.matches(sample()));
  }
}

TEST_CASE("filter: all conditions must hold") {
  EventFilter filter;
  filter.pid = 4242;
  filter.port = 80;
  filter.comm = "curl";
  CHECK(filter.matches(sample()));

  Event other_pid = sample();
  other_pid.pid = 1;
  CHECK_FALSE(filter.matches(other_pid));

  Event other_port = sample();
  other_port.remote.port = 81;
  CHECK_FALSE(filter.matches(other_port));

  Event other_comm = sample();
  other_comm.comm = "nginx";
  CHECK_FALSE(filter.matches(other_comm));
}

}  // namespace
}  // namespace weft::cli
