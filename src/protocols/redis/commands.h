// What the Redis handler needs to know per command: whether weft knows its name (so wire bytes
// cannot become unbounded metric labels), whether it has subcommands, how it changes the
// connection's state, how many replies it draws, and its db.query.text with redaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocols/redis/resp.h"

namespace weft::protocols::redis {

// How a command changes the connection beyond drawing its own reply.
enum class Effect : uint8_t {
  None,
  Select,           // SELECT n: db.namespace becomes n once the reply is +OK
  Multi,            // a transaction begins: later commands are answered "+QUEUED"
  Exec,             // the transaction ends; its reply is an array of the queued commands' replies
  Discard,          // the transaction ends; "+OK"
  Subscribe,        // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: the connection enters subscribed mode
  Unsubscribe,      // UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: it leaves when the count is 0
  Hello,            // HELLO n: the protocol becomes RESP n once the reply is not an error
  Reset,            // RESET: no transaction, no subscriptions, db 0, RESP2, replies on
  Quit,             // "+OK", then the server closes the connection
  Monitor,          // "+OK", then the server streams a line per command forever: stop parsing
  ClientReplyOn,    // CLIENT REPLY ON: replies again ("+OK")
  ClientReplyOff,   // CLIENT REPLY OFF: no reply to it nor to anything after it
  ClientReplySkip,  // CLIENT REPLY SKIP: no reply to it nor to the next command
};

// What a request does, read from the request alone; the reply decides whether it took effect.
struct RequestEffect {
  Effect effect = Effect::None;
  // Replies the request draws while replies are on: 1 for most commands, one per channel for
  // the subscribe family (RESP3 sends them as pushes), 0 for an empty request and for CLIENT
  // REPLY OFF/SKIP. kRepliesPerSubscription: an UNSUBSCRIBE family command without arguments,
  // answered once per current subscription (once with count 0 when there is none).
  int64_t replies = 1;
  std::optional<int64_t> db;    // Select: the index
  std::optional<int> protocol;  // Hello: the version asked for (2 or 3)
};
inline constexpr int64_t kRepliesPerSubscription = -1;

// Whether `name` (any case) is a Redis command weft knows. Only known names may become metric
// labels or span names; others are reported as kOtherOperation.
bool known_command(std::string_view name);
// Whether a command takes a subcommand as its second word (CLIENT SETNAME, CONFIG GET).
bool has_subcommands(std::string_view name);
// The operation name for metric labels: the upper-cased command name when known, else
// kOtherOperation. OpenTelemetry's Redis conventions use the command name as db.operation.name
// and define no catch-all; "_OTHER" follows its rule for unknown HTTP methods.
inline constexpr std::string_view kOtherOperation = "_OTHER";
std::string_view operation_name(std::string_view command);

RequestEffect request_effect(const RequestSummary& request);

// db.query.text: the command, its subcommand and its arguments. Unless `raw`, each argument is
// "?" ("SET ? ?", "CLIENT SETNAME ?"). Credentials are "?" even when raw: AUTH's arguments,
// HELLO's AUTH username and password, MIGRATE's AUTH/AUTH2, ACL SETUSER's rules and CONFIG SET of
// requirepass/masterauth/masteruser. Raw arguments are quoted like redis-cli when they need it;
// arguments not kept or cut short end in "...".
std::string query_text(const RequestSummary& request, bool raw);

}  // namespace weft::protocols::redis
