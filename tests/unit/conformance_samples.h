// Sample conversations for the protocol conformance suite (test_protocol_conformance.cpp), one
// set per protocol, keyed by the protocol's registry name. The suite is generic over
// protocols::registry(): a protocol registered without samples here fails it, so every new
// protocol is put through the same hostile-capture checks as the ones before it.
//
// To add a protocol: add an entry to the map in conformance_samples.cpp with well-formed
// request/response pairs (each pair must make exactly one exchange) and at least one pair whose
// request or response carries a body framed by a declared length of a few KiB.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace weft::test::conformance {

// One message as its peer writes it.
struct Message {
  std::string bytes;
  // A body framed by a declared length (HTTP Content-Length, a RESP bulk string): where it
  // starts in `bytes` and how long it is. 0 and 0: no such body.
  size_t body_offset = 0;
  size_t body_length = 0;

  bool has_body() const { return body_length > 0; }
};

// A request and the response that answers it: exactly one exchange.
struct Pair {
  std::string label;
  Message request;
  Message response;
};

struct ProtocolSamples {
  // Well-formed pairs of everyday traffic (at least three, of different shapes).
  std::vector<Pair> conversation;
  // Pairs where the request or the response (or both) carries a length-framed body of at least
  // 1 KiB: the suite loses, truncates and cuts those bodies.
  std::vector<Pair> bodied;
};

// The samples of a registered protocol, or null when nobody wrote any.
const ProtocolSamples* samples_for(std::string_view protocol_name);
// Names with samples (some may not be registered yet: their samples are simply unused).
std::vector<std::string> protocols_with_samples();

}  // namespace weft::test::conformance
