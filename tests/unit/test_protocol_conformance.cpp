// The protocol conformance suite: every protocol in protocols::registry() is driven through the
// connection tracker, without a kernel, with its sample conversations (conformance_samples.cpp)
// cut and damaged the ways real captures are: garbage before and between messages, one-byte
// syscalls, syscalls reported as several chunk records, records lost in a head and in a body,
// captures shorter than the syscall, records delivered out of order, a close in the middle of a
// message, a stream first seen mid-conversation, and a megabyte of garbage and of traffic. Both
// roles every time: a client (requests on Send) and a server (requests on Recv).
//
// Generic over the registry: nothing here names a protocol. A registered protocol without
// samples fails the suite.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "conformance_samples.h"
#include "http1_scenarios.h"
#include "protocols/protocol.h"
#include "weft/exchange.h"
#include "weft_events.h"

namespace weft::test {
namespace {

using conformance::Message;
using conformance::Pair;
using conformance::ProtocolSamples;
using protocols::Protocol;

constexpr uint64_t kMillis = 1'000'000;

template <size_t N>
std::string bin(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// Binary junk of no protocol: control bytes, bytes >= 0x80, NULs, line ends.
const std::string kJunkA = bin("\x00\x01\x02\xff\xfe\x80 binary\n\x7f\x00 more \r\n");
const std::string kJunkB = bin("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xa7\x00\x9b\xee\x10");

// Deterministic pseudo-random bytes (xorshift), never starting with a printable byte.
std::string noise(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x >> 24);
  }
  if (n > 0) out[0] = '\x01';
  return out;
}

// ---- the wire: syscalls of one connection, as records the kernel would emit ------------------

// Builds the records of a conversation on one socket, then delivers them to the tracker in
// order, or in the order a test rearranged them to.
class Wire {
 public:
  Wire(Capture& cap, Role role, uint64_t start_pos = 0) : socket_(cap, 1, role) {
    pos_[0] = pos_[1] = start_pos;
  }

  // One syscall moving `bytes` from `from`: its first `captured` bytes are captured and reported
  // in records of at most `chunk` bytes; only the last record carries WEFT_DATA_LAST_CHUNK, and
  // every record WEFT_DATA_TRUNCATED when the syscall moved more than was captured (as
  // capture_syscall in bpf/helpers/capture.h does).
  void syscall(Peer from, std::string_view bytes, size_t captured = kAll, size_t chunk = kAll) {
    Direction dir = socket_.dir(from);
    uint64_t& pos = pos_[static_cast<int>(dir)];
    captured = std::min(captured, bytes.size());
    chunk = std::max<size_t>(1, std::min(chunk, std::max<size_t>(captured, 1)));
    size_t offset = 0;
    do {
      size_t n = std::min(chunk, captured - offset);
      Event e = socket_.make(dir, pos, bytes.size(), bytes.substr(offset, n),
                             static_cast<uint32_t>(offset));
      if (captured < bytes.size()) e.flags |= WEFT_DATA_TRUNCATED;
      offset += n;
      if (offset >= captured) e.flags |= WEFT_DATA_LAST_CHUNK;
      records.push_back(std::move(e));
    } while (offset < captured);
    pos += bytes.size();
    socket_.now_ns += socket_.step_ns;
  }
  // A syscall whose records were all lost: its bytes moved, nothing of it is reported.
  void lose(Peer from, size_t len) {
    pos_[static_cast<int>(socket_.dir(from))] += len;
    socket_.now_ns += socket_.step_ns;
  }
  // A message cut into syscalls of at most `size` bytes.
  void segments(Peer from, std::string_view bytes, size_t size) {
    for (size_t at = 0; at < bytes.size(); at += size) syscall(from, bytes.substr(at, size));
  }
  void pair(const Pair& p) {
    socket_.now_ns += gap_ns;
    syscall(Peer::Client, p.request.bytes);
    syscall(Peer::Server, p.response.bytes);
  }
  void pairs(const std::vector<Pair>& ps) {
    for (const Pair& p : ps) pair(p);
  }
  void wait(uint64_t ns) { socket_.now_ns += ns; }

  // Delivers every record built so far (in the order of `records`), then forgets them.
  void deliver() {
    for (const Event& e : records) socket_.feed(e);
    records.clear();
  }
  void close() {
    deliver();
    socket_.close();
  }

  std::vector<Event> records;
  uint64_t gap_ns = 0;  // kernel time before each pair()

 private:
  Socket socket_;
  uint64_t pos_[2] = {0, 0};
};

// ---- what a run produced -------------------------------------------------------------------

struct Counters {
  protocols::ProtocolCounters own;  // the protocol under test
  uint64_t parse_errors = 0;        // all protocols
  uint64_t resyncs = 0;
  uint64_t skipped_bytes = 0;
  uint64_t unmatched = 0;  // requests and responses
  conn::TrackerCounters tracker;
};

struct Run {
  std::vector<Exchange> exchanges;
  Counters counters;
  size_t peak_memory = 0;
  size_t final_connections = 0;
};

// One line per exchange that a damaged capture must reproduce: what the protocol renders, and
// how many bytes each side had on the wire (bodies skipped by length still count). Trailing
// bracketed notes ("[truncated]", "[end inferred]") are left out: an exchange may say that part
// of it was not seen.
std::string key_of(const Exchange& ex) {
  std::string key = ex.protocol ? ex.protocol->render_text(ex) : std::string("<no protocol>");
  while (!key.empty() && key.back() == ']') {
    size_t open = key.rfind(" [");
    if (open == std::string::npos) break;
    key.erase(open);
  }
  return key + " | request " + std::to_string(ex.request.wire_bytes) + " B, response " +
         std::to_string(ex.response.wire_bytes) + " B";
}

std::vector<std::string> keys_of(const std::vector<Exchange>& exchanges) {
  std::vector<std::string> keys;
  for (const Exchange& ex : exchanges) keys.push_back(key_of(ex));
  return keys;
}

std::vector<std::string> keys_from(const std::vector<std::string>& keys, size_t first) {
  return {keys.begin() + static_cast<std::ptrdiff_t>(std::min(first, keys.size())), keys.end()};
}

// `wanted`, in order, within `got` (other exchanges may come between).
bool contains_in_order(const std::vector<std::string>& got,
                       const std::vector<std::string>& wanted) {
  size_t at = 0;
  for (const std::string& k : got)
    if (at < wanted.size() && k == wanted[at]) ++at;
  return at == wanted.size();
}

std::string listing(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) out += "\n    " + k;
  return out.empty() ? "\n    (none)" : out;
}

// Duration-metric labels taken from the exchange are the attributes describe() gives: a span
// sampled out (never described) lands in the same series as one that is exported.
void check_metric_labels(const Protocol& p, const Exchange& ex,
                         const protocols::SpanDescription& d) {
  const MetricFamily* family = p.metric_family(d.kind);
  std::vector<LabelValue> values;
  if (!family || !p.metric_labels(ex, d.kind, values)) return;
  REQUIRE(values.size() == family->label_keys.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string& key = family->label_keys[i];
    CAPTURE(key);
    auto attribute = std::find_if(d.attributes.begin(), d.attributes.end(),
                                  [&](const Attribute& a) { return a.key == key; });
    LabelValue described =
        attribute == d.attributes.end() ? LabelValue() : LabelValue(attribute->value);
    CHECK(values[i] == described);
  }
}

// What every exchange of a protocol must be able to say about itself.
void check_description(const Protocol& p, const Exchange& ex, Role role) {
  CAPTURE(key_of(ex));
  REQUIRE(ex.protocol == &p);
  CHECK(ex.protocol_name() == p.name());
  CHECK(ex.side == role);
  CHECK(ex.connection != nullptr);
  protocols::SpanDescription d;
  p.describe(ex, protocols::DescribeOptions{}, d);
  CHECK_FALSE(d.name.empty());
  CHECK(d.kind == (role == Role::Server ? SpanKind::Server : SpanKind::Client));
  // A kind may record no duration (null); one that does records into a family it lists.
  if (const MetricFamily* family = p.metric_family(d.kind)) {
    auto families = p.metric_families();
    CHECK(std::find(families.begin(), families.end(), family) != families.end());
  }
  check_metric_labels(p, ex, d);
  CHECK_FALSE(p.render_text(ex).empty());
  nlohmann::json j = nlohmann::json::object();
  p.render_json(ex, j);
  CHECK(j.is_object());
  CHECK_FALSE(j.empty());
}

// Feeds a conversation built by `script` to a fresh tracker from `role`'s side and closes it.
Run run(const Protocol& p, Role role, const std::function<void(Wire&)>& script,
        uint64_t start_pos = 0, conn::TrackerConfig config = {}) {
  Capture cap(config);
  Run r;
  {
    Wire w(cap, role, start_pos);
    script(w);
    w.close();
  }
  r.exchanges = std::move(cap.exchanges);
  r.final_connections = cap.tracker.connection_count();
  size_t index = protocols::registry_index(&p);
  const auto& all = cap.tracker.protocol_counters();
  REQUIRE(index < all.size());
  r.counters.own = all[index];
  for (const auto& c : all) {
    r.counters.parse_errors += c.parse_errors;
    r.counters.resyncs += c.resyncs;
    r.counters.skipped_bytes += c.skipped_bytes;
    r.counters.unmatched += c.unmatched_requests + c.unmatched_responses;
  }
  r.counters.tracker = cap.tracker.counters();
  for (const Exchange& ex : r.exchanges) check_description(p, ex, role);
  CHECK(r.final_connections == 0);
  return r;
}

// Calls `check` for every registered protocol that has samples, from both sides.
void for_each_protocol(
    const std::function<void(const Protocol&, const ProtocolSamples&, Role)>& check) {
  for (const Protocol* p : protocols::registry()) {
    const ProtocolSamples* samples = conformance::samples_for(p->name());
    if (!samples) continue;  // "every registered protocol has samples" fails for it
    for (Role role : kBothSides) {
      CAPTURE(p->name());
      CAPTURE(role);
      check(*p, *samples, role);
    }
  }
}

// Everyday pairs, the bodied ones, then everyday pairs again.
std::vector<Pair> full_conversation(const ProtocolSamples& s) {
  std::vector<Pair> all = s.conversation;
  all.insert(all.end(), s.bodied.begin(), s.bodied.end());
  all.insert(all.end(), s.conversation.begin(), s.conversation.end());
  return all;
}

// Exchanges of the clean conversation `pairs`, one syscall per message.
std::vector<std::string> clean_keys(const Protocol& p, Role role, const std::vector<Pair>& pairs) {
  Run r = run(p, role, [&](Wire& w) { w.pairs(pairs); });
  return keys_of(r.exchanges);
}

#define CHECK_SAME_EXCHANGES(got, want)                                 \
  do {                                                                  \
    auto got_keys_ = keys_of(got);                                      \
    INFO("got:" << listing(got_keys_) << "\n  want:" << listing(want)); \
    CHECK(got_keys_ == (want));                                         \
  } while (0)

#define CHECK_FOUND_IN_ORDER(got, want)                                                        \
  do {                                                                                         \
    auto got_keys_ = keys_of(got);                                                             \
    INFO("got:" << listing(got_keys_) << "\n  want (in order, among them):" << listing(want)); \
    CHECK(contains_in_order(got_keys_, (want)));                                               \
  } while (0)

// ---- the suite --------------------------------------------------------------------------------

TEST_CASE("conformance: every registered protocol has sample conversations") {
  REQUIRE_FALSE(protocols::registry().empty());
  for (const Protocol* p : protocols::registry()) {
    CAPTURE(p->name());
    const ProtocolSamples* s = conformance::samples_for(p->name());
    if (!s) {
      FAIL_CHECK("protocol \"" << p->name()
                               << "\" is registered but has no conformance samples: add its "
                                  "request/response pairs to tests/unit/conformance_samples.cpp "
                                  "(see docs/protocols.md, \"The conformance suite\")");
      continue;
    }
    CHECK(s->conversation.size() >= 3);
    CHECK_FALSE(s->bodied.empty());
    for (const Pair& pair : s->bodied) {
      CAPTURE(pair.label);
      CHECK((pair.request.has_body() || pair.response.has_body()));
      for (const Message* m : {&pair.request, &pair.response}) {
        if (!m->has_body()) continue;
        CHECK(m->body_length >= 1024);
        CHECK(m->body_offset > 0);
        CHECK(m->body_offset + m->body_length <= m->bytes.size());
      }
    }
  }
  for (const std::string& name : conformance::protocols_with_samples())
    if (!protocols::find_protocol(name))
      MESSAGE("conformance samples for \"" << name << "\", which is not registered: unused");
}

TEST_CASE("conformance: every sample pair alone makes one exchange of its protocol") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    for (const Pair& pair : full_conversation(s)) {
      CAPTURE(pair.label);
      Run r = run(p, role, [&](Wire& w) { w.pair(pair); });
      CHECK(r.exchanges.size() == 1);
      CHECK(r.counters.own.exchanges == 1);
      CHECK(r.counters.parse_errors == 0);
      CHECK(r.counters.unmatched == 0);
    }
  });
}

TEST_CASE("conformance: a clean conversation of N pairs makes exactly N exchanges") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    Run r = run(p, role, [&](Wire& w) { w.pairs(pairs); });
    CHECK(r.exchanges.size() == pairs.size());
    for (const Exchange& ex : r.exchanges) CHECK(ex.protocol_name() == p.name());
    CHECK(r.counters.own.exchanges == pairs.size());
    CHECK(r.counters.parse_errors == 0);
    CHECK(r.counters.resyncs == 0);
    CHECK(r.counters.unmatched == 0);
    CHECK(r.counters.tracker.undetected == 0);
    CHECK(r.counters.tracker.detect_bytes == 0);
    // Pipelined: every request first, then every response.
    Run piped = run(p, role, [&](Wire& w) {
      for (const Pair& pair : pairs) w.syscall(Peer::Client, pair.request.bytes);
      for (const Pair& pair : pairs) w.syscall(Peer::Server, pair.response.bytes);
    });
    CHECK_SAME_EXCHANGES(piped.exchanges, keys_of(r.exchanges));
  });
}

TEST_CASE("conformance: garbage before the first message and between messages is passed over") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    SUBCASE("before the first message") {
      Run r = run(p, role, [&](Wire& w) {
        w.syscall(Peer::Client, kJunkA);
        w.syscall(Peer::Client, kJunkB);
        w.pairs(pairs);
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.tracker.detect_bytes >= kJunkA.size() + kJunkB.size());
      CHECK(r.counters.tracker.redetected == 1);
    }
    SUBCASE("before the first message, in both directions") {
      Run r = run(p, role, [&](Wire& w) {
        w.syscall(Peer::Server, kJunkB);
        w.syscall(Peer::Client, kJunkA);
        w.pairs(pairs);
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.tracker.detect_bytes > 0);
    }
    SUBCASE("between requests") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          if (i > 0) w.syscall(Peer::Client, i % 2 ? kJunkA : kJunkB);
          w.pair(pairs[i]);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors + r.counters.resyncs > 0);
    }
    SUBCASE("between responses") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          w.syscall(Peer::Client, pairs[i].request.bytes);
          if (i > 0) w.syscall(Peer::Server, i % 2 ? kJunkB : kJunkA);
          w.syscall(Peer::Server, pairs[i].response.bytes);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors + r.counters.resyncs > 0);
    }
    SUBCASE("random bytes between pairs") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          if (i > 0) w.syscall(i % 2 ? Peer::Client : Peer::Server, noise(200 + i * 37, i));
          w.pair(pairs[i]);
        }
      });
      // Random bytes may begin something a protocol frames (and hold the next message in it):
      // what follows the last of them must parse.
      CHECK_FOUND_IN_ORDER(r.exchanges, keys_from(want, pairs.size() - 1));
      CHECK(r.exchanges.size() <= pairs.size());
    }
  });
}

TEST_CASE("conformance: one-byte syscalls make the same exchanges") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    Run r = run(p, role, [&](Wire& w) {
      for (const Pair& pair : pairs) {
        w.segments(Peer::Client, pair.request.bytes, 1);
        w.segments(Peer::Server, pair.response.bytes, 1);
      }
    });
    CHECK_SAME_EXCHANGES(r.exchanges, want);
    CHECK(r.counters.parse_errors == 0);
    CHECK(r.counters.unmatched == 0);
  });
}

TEST_CASE("conformance: syscalls reported as several chunk records make the same exchanges") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    for (size_t chunk : {1, 7, 64, 1000}) {
      CAPTURE(chunk);
      Run r = run(p, role, [&](Wire& w) {
        for (const Pair& pair : pairs) {
          w.syscall(Peer::Client, pair.request.bytes, kAll, chunk);
          w.syscall(Peer::Server, pair.response.bytes, kAll, chunk);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
    }
  });
}

// The part of `m` a test damages: its body when it has one, else its middle third.
struct Span {
  size_t begin, end;
};
Span middle_of_head(const Message& m) {
  size_t head = m.has_body() ? m.body_offset : m.bytes.size();
  return {head / 3, std::max(head / 3 + 1, 2 * head / 3)};
}
Span middle_of_body(const Message& m) {
  return {m.body_offset + m.body_length / 4, m.body_offset + 3 * m.body_length / 4};
}

// Writes `m` as three syscalls around `lost`, whose records never arrive.
void write_losing(Wire& w, Peer from, const Message& m, Span lost) {
  std::string_view b = m.bytes;
  w.syscall(from, b.substr(0, lost.begin));
  w.lose(from, lost.end - lost.begin);
  w.syscall(from, b.substr(lost.end));
}

// Messages after one whose head lost records, every 30 ms (past the reorder window, so the hole
// is final by the next pair): every later pair is found, in order, exactly as in the clean capture.
void check_head_loss(const Protocol& p, const ProtocolSamples& s, Role role, Peer damaged) {
  const auto pairs = full_conversation(s);
  const auto want = clean_keys(p, role, pairs);
  for (size_t at : {size_t{0}, size_t{1}}) {
    CAPTURE(at);
    Run r = run(p, role, [&](Wire& w) {
      for (size_t i = 0; i < pairs.size(); ++i) {
        w.wait(30 * kMillis);
        const Pair& pair = pairs[i];
        if (i == at && damaged == Peer::Client)
          write_losing(w, Peer::Client, pair.request, middle_of_head(pair.request));
        else
          w.syscall(Peer::Client, pair.request.bytes);
        if (i == at && damaged == Peer::Server)
          write_losing(w, Peer::Server, pair.response, middle_of_head(pair.response));
        else
          w.syscall(Peer::Server, pair.response.bytes);
      }
    });
    CHECK_FOUND_IN_ORDER(r.exchanges, keys_from(want, at + 1));
    CHECK(r.exchanges.size() <= pairs.size());
  }
}

TEST_CASE("conformance: records lost in the middle of a request head") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    check_head_loss(p, s, role, Peer::Client);
  });
}

// A response whose head lost records is one damaged response: it still answers its request, and
// it does not swallow the next one (http1 looks for a start line at syscall boundaries inside a
// line; redis keeps a reply whose type byte was seen).
TEST_CASE("conformance: records lost in the middle of a response head") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    check_head_loss(p, s, role, Peer::Server);
  });
}

TEST_CASE("conformance: records lost in the middle of a body are skipped by length") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    const size_t first_bodied = s.conversation.size();
    for (size_t b = 0; b < s.bodied.size(); ++b) {
      const Pair& bodied = s.bodied[b];
      CAPTURE(bodied.label);
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          w.wait(30 * kMillis);
          const Pair& pair = pairs[i];
          bool here = i == first_bodied + b;
          if (here && pair.request.has_body())
            write_losing(w, Peer::Client, pair.request, middle_of_body(pair.request));
          else
            w.syscall(Peer::Client, pair.request.bytes);
          if (here && pair.response.has_body())
            write_losing(w, Peer::Server, pair.response, middle_of_body(pair.response));
          else
            w.syscall(Peer::Server, pair.response.bytes);
        }
      });
      // The damaged exchange itself too: a body's length says where the next message starts.
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.own.skipped_bytes > 0);
      CHECK(r.counters.parse_errors == 0);
    }
  });
}

TEST_CASE("conformance: truncated captures skip bodies by their length") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    uint64_t body_bytes = 0;
    for (const Pair& pair : s.bodied)
      body_bytes += pair.request.body_length + pair.response.body_length;
    auto captured = [](const Message& m) { return m.has_body() ? m.body_offset + 16 : kAll; };
    SUBCASE("one syscall per message, its body captured only in part") {
      Run r = run(p, role, [&](Wire& w) {
        for (const Pair& pair : pairs) {
          w.syscall(Peer::Client, pair.request.bytes, captured(pair.request));
          w.syscall(Peer::Server, pair.response.bytes, captured(pair.response));
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.own.skipped_bytes >= body_bytes - 16 * 2 * s.bodied.size());
      CHECK(r.counters.parse_errors == 0);
    }
    SUBCASE("the same, in chunk records of 5 bytes") {
      Run r = run(p, role, [&](Wire& w) {
        for (const Pair& pair : pairs) {
          w.syscall(Peer::Client, pair.request.bytes, captured(pair.request), 5);
          w.syscall(Peer::Server, pair.response.bytes, captured(pair.response), 5);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
    }
    SUBCASE("a body in syscalls of 1000 bytes, each capturing 10") {
      auto write = [](Wire& w, Peer from, const Message& m) {
        if (!m.has_body()) return w.syscall(from, m.bytes);
        std::string_view b = m.bytes;
        w.syscall(from, b.substr(0, m.body_offset));
        for (size_t at = m.body_offset; at < b.size(); at += 1000)
          w.syscall(from, b.substr(at, 1000), 10);
      };
      Run r = run(p, role, [&](Wire& w) {
        for (const Pair& pair : pairs) {
          write(w, Peer::Client, pair.request);
          write(w, Peer::Server, pair.response);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.own.skipped_bytes > 0);
      CHECK(r.counters.parse_errors == 0);
    }
    SUBCASE("nothing of a body captured (count-only syscalls)") {
      auto write = [](Wire& w, Peer from, const Message& m) {
        if (!m.has_body()) return w.syscall(from, m.bytes);
        std::string_view b = m.bytes;
        w.syscall(from, b.substr(0, m.body_offset));
        w.syscall(from, b.substr(m.body_offset), 0);
      };
      Run r = run(p, role, [&](Wire& w) {
        for (const Pair& pair : pairs) {
          write(w, Peer::Client, pair.request);
          write(w, Peer::Server, pair.response);
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
    }
  });
}

TEST_CASE(
    "conformance: records of consecutive syscalls delivered swapped make the same exchanges") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    SUBCASE("every message in two syscalls, the second delivered first") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          for (const auto& [from, m] : {std::pair{Peer::Client, &pairs[i].request},
                                        std::pair{Peer::Server, &pairs[i].response}}) {
            std::string_view b = m->bytes;
            size_t cut = std::max<size_t>(1, b.size() / 2);
            w.syscall(from, b.substr(0, cut));
            w.syscall(from, b.substr(cut));
            // The first syscall of a direction sets where its stream starts: that one stays in
            // order (see "first records of a stream delivered swapped" below).
            if (i > 0) std::swap(w.records[w.records.size() - 2], w.records.back());
          }
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
      CHECK(r.counters.tracker.late_bytes == 0);
    }
    SUBCASE("first records of a stream delivered swapped") {
      // The first record seen sets where a stream starts, so the first syscall's bytes arriving
      // after the second's are late: that message may be lost, never the ones after it.
      Run r = run(p, role, [&](Wire& w) {
        for (const auto& [from, m] : {std::pair{Peer::Client, &pairs[0].request},
                                      std::pair{Peer::Server, &pairs[0].response}}) {
          std::string_view b = m->bytes;
          w.syscall(from, b.substr(0, b.size() / 2));
          w.syscall(from, b.substr(b.size() / 2));
          std::swap(w.records[w.records.size() - 2], w.records.back());
        }
        for (size_t i = 1; i < pairs.size(); ++i) w.pair(pairs[i]);
      });
      CHECK_FOUND_IN_ORDER(r.exchanges, keys_from(want, 1));
      CHECK(r.exchanges.size() <= pairs.size());
    }
    SUBCASE("pipelined requests, the end of one swapped with the start of the next") {
      Run r = run(p, role, [&](Wire& w) {
        w.pair(pairs[0]);
        for (size_t i = 1; i + 1 < pairs.size(); i += 2) {
          const std::string& a = pairs[i].request.bytes;
          const std::string& b = pairs[i + 1].request.bytes;
          size_t cut_a = a.size() / 2, cut_b = b.size() / 2;
          w.syscall(Peer::Client, std::string_view(a).substr(0, cut_a));
          w.syscall(Peer::Client, std::string_view(a).substr(cut_a));
          w.syscall(Peer::Client, std::string_view(b).substr(0, cut_b));
          w.syscall(Peer::Client, std::string_view(b).substr(cut_b));
          size_t n = w.records.size();
          std::swap(w.records[n - 3], w.records[n - 2]);
          w.syscall(Peer::Server, pairs[i].response.bytes);
          w.syscall(Peer::Server, pairs[i + 1].response.bytes);
        }
        if (pairs.size() % 2 == 0) w.pair(pairs.back());
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
    }
    SUBCASE("chunk records of one syscall delivered out of order") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < pairs.size(); ++i) {
          for (const auto& [from, m] : {std::pair{Peer::Client, &pairs[i].request},
                                        std::pair{Peer::Server, &pairs[i].response}}) {
            size_t before = w.records.size();
            size_t chunk = std::max<size_t>(1, (m->bytes.size() + 2) / 3);
            w.syscall(from, m->bytes, kAll, chunk);
            size_t n = w.records.size() - before;
            // Alternately the last record (the one flagged last chunk) first, or the middle one.
            if (i > 0 && n >= 2) {
              if (i % 2)
                std::swap(w.records[w.records.size() - 2], w.records.back());
              else if (n >= 3)
                std::swap(w.records[before], w.records[before + 1]);
            }
          }
        }
      });
      CHECK_SAME_EXCHANGES(r.exchanges, want);
      CHECK(r.counters.parse_errors == 0);
    }
  });
}

TEST_CASE("conformance: a close in the middle of a message") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    const size_t done = s.conversation.size();  // pairs complete before the close
    const Pair& cut = s.bodied.front();
    const std::vector<std::string> before(want.begin(), want.begin() + done);
    SUBCASE("in a request") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < done; ++i) w.pair(pairs[i]);
        const Message& m = cut.request;
        w.syscall(Peer::Client, std::string_view(m.bytes).substr(0, m.bytes.size() / 2));
      });
      CHECK_SAME_EXCHANGES(r.exchanges, before);
    }
    SUBCASE("in a response") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < done; ++i) w.pair(pairs[i]);
        w.syscall(Peer::Client, cut.request.bytes);
        const Message& m = cut.response;
        w.syscall(Peer::Server, std::string_view(m.bytes).substr(0, m.bytes.size() / 2));
      });
      CHECK_FOUND_IN_ORDER(r.exchanges, before);
      CHECK(r.exchanges.size() <= done + 1);
      // The request is either reported unanswered or ends in an exchange without its answer.
      CHECK((r.counters.own.unmatched_requests > 0 || r.exchanges.size() == done + 1));
    }
    SUBCASE("after a request, before its response") {
      Run r = run(p, role, [&](Wire& w) {
        for (size_t i = 0; i < done; ++i) w.pair(pairs[i]);
        w.syscall(Peer::Client, pairs[0].request.bytes);
      });
      CHECK_SAME_EXCHANGES(r.exchanges, before);
      CHECK(r.counters.own.unmatched_requests == 1);
    }
    SUBCASE("in a body") {
      for (const Pair& bodied : s.bodied) {
        CAPTURE(bodied.label);
        Run r = run(p, role, [&](Wire& w) {
          for (size_t i = 0; i < done; ++i) w.pair(pairs[i]);
          if (bodied.request.has_body()) {
            const Message& m = bodied.request;
            w.syscall(Peer::Client, std::string_view(m.bytes).substr(0, m.body_offset + 10));
            return;
          }
          w.syscall(Peer::Client, bodied.request.bytes);
          const Message& m = bodied.response;
          w.syscall(Peer::Server, std::string_view(m.bytes).substr(0, m.body_offset + 10));
        });
        CHECK_FOUND_IN_ORDER(r.exchanges, before);
        CHECK(r.exchanges.size() <= done + 1);
      }
    }
  });
}

TEST_CASE("conformance: a stream first seen mid-conversation is picked up at its next message") {
  for_each_protocol([](const Protocol& p, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    const auto want = clean_keys(p, role, pairs);
    const uint64_t start = 1'000'000'007;  // both directions, far from zero
    SUBCASE("the first syscall is the second half of a request") {
      Run r = run(
          p, role,
          [&](Wire& w) {
            const Pair& first = pairs[0];
            std::string_view req = first.request.bytes;
            w.syscall(Peer::Client, req.substr(req.size() / 2));
            w.syscall(Peer::Server, first.response.bytes);
            for (size_t i = 1; i < pairs.size(); ++i) w.pair(pairs[i]);
          },
          start);
      CHECK_SAME_EXCHANGES(r.exchanges, keys_from(want, 1));
      // The half request was looked past: by detection, or by the parser when the response
      // decided the protocol first (a half request without a line end leaves HTTP/1 waiting).
      CHECK(r.counters.tracker.detect_bytes + r.counters.resyncs > 0);
    }
    SUBCASE("the first syscall is inside a body") {
      const size_t b = s.conversation.size();  // the first bodied pair
      Run r = run(
          p, role,
          [&](Wire& w) {
            const Pair& first = pairs[b];
            const Message& m = first.request.has_body() ? first.request : first.response;
            std::string_view tail = std::string_view(m.bytes).substr(m.body_offset + 100);
            if (first.request.has_body()) {
              w.syscall(Peer::Client, tail);
              w.syscall(Peer::Server, first.response.bytes);
            } else {
              w.syscall(Peer::Server, tail);
            }
            for (size_t i = b + 1; i < pairs.size(); ++i) w.pair(pairs[i]);
          },
          start);
      CHECK_SAME_EXCHANGES(r.exchanges, keys_from(want, b + 1));
    }
    SUBCASE("the first syscall is the second half of a response") {
      Run r = run(
          p, role,
          [&](Wire& w) {
            std::string_view resp = pairs[0].response.bytes;
            w.syscall(Peer::Server, resp.substr(resp.size() / 2));
            for (size_t i = 1; i < pairs.size(); ++i) w.pair(pairs[i]);
          },
          start);
      CHECK_SAME_EXCHANGES(r.exchanges, keys_from(want, 1));
    }
  });
}

TEST_CASE("conformance: memory stays bounded under a megabyte of garbage and of traffic") {
  constexpr size_t kMegabyte = 1 << 20;
  constexpr size_t kBound = 256 * 1024;
  for_each_protocol([&](const Protocol&, const ProtocolSamples& s, Role role) {
    const auto pairs = full_conversation(s);
    // Feeds record by record, watching the tracker's memory after each.
    auto peak = [&](const std::function<void(Wire&)>& script) {
      Capture cap;
      Wire w(cap, role);
      size_t peak_bytes = 0;
      size_t fed = 0;
      std::function<void()> drain = [&] {
        for (; fed < w.records.size(); ++fed) {
          cap.tracker.on_event(w.records[fed]);
          peak_bytes = std::max(peak_bytes, cap.tracker.memory_used());
        }
      };
      script(w);
      drain();
      w.records.clear();
      w.close();
      CHECK(cap.tracker.connection_count() == 0);
      return peak_bytes;
    };
    SUBCASE("garbage on a fresh connection") {
      size_t m = peak([&](Wire& w) {
        for (size_t at = 0; at < kMegabyte; at += 4096)
          w.syscall(at % 8192 ? Peer::Server : Peer::Client, noise(4096, at));
      });
      CHECK(m <= kBound);
    }
    SUBCASE("garbage on a connection already parsed") {
      size_t m = peak([&](Wire& w) {
        w.pairs(pairs);
        for (size_t at = 0; at < kMegabyte; at += 4096)
          w.syscall(at % 8192 ? Peer::Server : Peer::Client, noise(4096, at));
      });
      CHECK(m <= kBound);
    }
    SUBCASE("garbage without a line end, one direction, in small syscalls") {
      size_t m = peak([&](Wire& w) {
        w.pairs(pairs);
        std::string junk(kMegabyte, 'A');
        w.segments(Peer::Client, junk, 512);
      });
      CHECK(m <= kBound);
    }
    SUBCASE("valid traffic") {
      size_t m = peak([&](Wire& w) {
        size_t total = 0;
        while (total < kMegabyte) {
          for (const Pair& pair : pairs) {
            w.pair(pair);
            total += pair.request.bytes.size() + pair.response.bytes.size();
          }
        }
      });
      CHECK(m <= kBound);
    }
  });
}

}  // namespace
}  // namespace weft::test
