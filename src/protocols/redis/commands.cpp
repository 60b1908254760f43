#include "protocols/redis/commands.h"

#include <algorithm>
#include <array>

namespace weft::protocols::redis {
namespace {

struct CommandInfo {
  std::string_view name;  // upper case
  bool subcommands;       // a container command: its second word names the operation
  Effect effect;
};

// Redis 7 commands (and a few of 7.4/8.0), sorted by name for binary search. A bounded table:
// only these names can become metric labels.
constexpr std::array<CommandInfo, 251> kCommands = {{
    {"ACL", true, Effect::None},
    {"APPEND", false, Effect::None},
    {"ASKING", false, Effect::None},
    {"AUTH", false, Effect::None},
    {"BGREWRITEAOF", false, Effect::None},
    {"BGSAVE", false, Effect::None},
    {"BITCOUNT", false, Effect::None},
    {"BITFIELD", false, Effect::None},
    {"BITFIELD_RO", false, Effect::None},
    {"BITOP", false, Effect::None},
    {"BITPOS", false, Effect::None},
    {"BLMOVE", false, Effect::None},
    {"BLMPOP", false, Effect::None},
    {"BLPOP", false, Effect::None},
    {"BRPOP", false, Effect::None},
    {"BRPOPLPUSH", false, Effect::None},
    {"BZMPOP", false, Effect::None},
    {"BZPOPMAX", false, Effect::None},
    {"BZPOPMIN", false, Effect::None},
    {"CLIENT", true, Effect::None},
    {"CLUSTER", true, Effect::None},
    {"COMMAND", true, Effect::None},
    {"CONFIG", true, Effect::None},
    {"COPY", false, Effect::None},
    {"DBSIZE", false, Effect::None},
    {"DEBUG", false, Effect::None},
    {"DECR", false, Effect::None},
    {"DECRBY", false, Effect::None},
    {"DEL", false, Effect::None},
    {"DISCARD", false, Effect::Discard},
    {"DUMP", false, Effect::None},
    {"ECHO", false, Effect::None},
    {"EVAL", false, Effect::None},
    {"EVALSHA", false, Effect::None},
    {"EVALSHA_RO", false, Effect::None},
    {"EVAL_RO", false, Effect::None},
    {"EXEC", false, Effect::Exec},
    {"EXISTS", false, Effect::None},
    {"EXPIRE", false, Effect::None},
    {"EXPIREAT", false, Effect::None},
    {"EXPIRETIME", false, Effect::None},
    {"FAILOVER", false, Effect::None},
    {"FCALL", false, Effect::None},
    {"FCALL_RO", false, Effect::None},
    {"FLUSHALL", false, Effect::None},
    {"FLUSHDB", false, Effect::None},
    {"FUNCTION", true, Effect::None},
    {"GEOADD", false, Effect::None},
    {"GEODIST", false, Effect::None},
    {"GEOHASH", false, Effect::None},
    {"GEOPOS", false, Effect::None},
    {"GEORADIUS", false, Effect::None},
    {"GEORADIUSBYMEMBER", false, Effect::None},
    {"GEORADIUSBYMEMBER_RO", false, Effect::None},
    {"GEORADIUS_RO", false, Effect::None},
    {"GEOSEARCH", false, Effect::None},
    {"GEOSEARCHSTORE", false, Effect::None},
    {"GET", false, Effect::None},
    {"GETBIT", false, Effect::None},
    {"GETDEL", false, Effect::None},
    {"GETEX", false, Effect::None},
    {"GETRANGE", false, Effect::None},
    {"GETSET", false, Effect::None},
    {"HDEL", false, Effect::None},
    {"HELLO", false, Effect::Hello},
    {"HEXISTS", false, Effect::None},
    {"HEXPIRE", false, Effect::None},
    {"HEXPIREAT", false, Effect::None},
    {"HEXPIRETIME", false, Effect::None},
    {"HGET", false, Effect::None},
    {"HGETALL", false, Effect::None},
    {"HGETDEL", false, Effect::None},
    {"HGETEX", false, Effect::None},
    {"HINCRBY", false, Effect::None},
    {"HINCRBYFLOAT", false, Effect::None},
    {"HKEYS", false, Effect::None},
    {"HLEN", false, Effect::None},
    {"HMGET", false, Effect::None},
    {"HMSET", false, Effect::None},
    {"HPERSIST", false, Effect::None},
    {"HPEXPIRE", false, Effect::None},
    {"HPEXPIREAT", false, Effect::None},
    {"HPEXPIRETIME", false, Effect::None},
    {"HPTTL", false, Effect::None},
    {"HRANDFIELD", false, Effect::None},
    {"HSCAN", false, Effect::None},
    {"HSET", false, Effect::None},
    {"HSETEX", false, Effect::None},
    {"HSETNX", false, Effect::None},
    {"HSTRLEN", false, Effect::None},
    {"HTTL", false, Effect::None},
    {"HVALS", false, Effect::None},
    {"INCR", false, Effect::None},
    {"INCRBY", false, Effect::None},
    {"INCRBYFLOAT", false, Effect::None},
    {"INFO", false, Effect::None},
    {"KEYS", false, Effect::None},
    {"LASTSAVE", false, Effect::None},
    {"LATENCY", true, Effect::None},
    {"LCS", false, Effect::None},
    {"LINDEX", false, Effect::None},
    {"LINSERT", false, Effect::None},
    {"LLEN", false, Effect::None},
    {"LMOVE", false, Effect::None},
    {"LMPOP", false, Effect::None},
    {"LOLWUT", false, Effect::None},
    {"LPOP", false, Effect::None},
    {"LPOS", false, Effect::None},
    {"LPUSH", false, Effect::None},
    {"LPUSHX", false, Effect::None},
    {"LRANGE", false, Effect::None},
    {"LREM", false, Effect::None},
    {"LSET", false, Effect::None},
    {"LTRIM", false, Effect::None},
    {"MEMORY", true, Effect::None},
    {"MGET", false, Effect::None},
    {"MIGRATE", false, Effect::None},
    {"MODULE", true, Effect::None},
    {"MONITOR", false, Effect::Monitor},
    {"MOVE", false, Effect::None},
    {"MSET", false, Effect::None},
    {"MSETNX", false, Effect::None},
    {"MULTI", false, Effect::Multi},
    {"OBJECT", true, Effect::None},
    {"PERSIST", false, Effect::None},
    {"PEXPIRE", false, Effect::None},
    {"PEXPIREAT", false, Effect::None},
    {"PEXPIRETIME", false, Effect::None},
    {"PFADD", false, Effect::None},
    {"PFCOUNT", false, Effect::None},
    {"PFDEBUG", false, Effect::None},
    {"PFMERGE", false, Effect::None},
    {"PFSELFTEST", false, Effect::None},
    {"PING", false, Effect::None},
    {"PSETEX", false, Effect::None},
    {"PSUBSCRIBE", false, Effect::Subscribe},
    {"PSYNC", false, Effect::None},
    {"PTTL", false, Effect::None},
    {"PUBLISH", false, Effect::None},
    {"PUBSUB", true, Effect::None},
    {"PUNSUBSCRIBE", false, Effect::Unsubscribe},
    {"QUIT", false, Effect::Quit},
    {"RANDOMKEY", false, Effect::None},
    {"READONLY", false, Effect::None},
    {"READWRITE", false, Effect::None},
    {"RENAME", false, Effect::None},
    {"RENAMENX", false, Effect::None},
    {"REPLCONF", false, Effect::None},
    {"REPLICAOF", false, Effect::None},
    {"RESET", false, Effect::Reset},
    {"RESTORE", false, Effect::None},
    {"RPOP", false, Effect::None},
    {"RPOPLPUSH", false, Effect::None},
    {"RPUSH", false, Effect::None},
    {"RPUSHX", false, Effect::None},
    {"SADD", false, Effect::None},
    {"SAVE", false, Effect::None},
    {"SCAN", false, Effect::None},
    {"SCARD", false, Effect::None},
    {"SCRIPT", true, Effect::None},
    {"SDIFF", false, Effect::None},
    {"SDIFFSTORE", false, Effect::None},
    {"SELECT", false, Effect::Select},
    {"SET", false, Effect::None},
    {"SETBIT", false, Effect::None},
    {"SETEX", false, Effect::None},
    {"SETNX", false, Effect::None},
    {"SETRANGE", false, Effect::None},
    {"SHUTDOWN", false, Effect::None},
    {"SINTER", false, Effect::None},
    {"SINTERCARD", false, Effect::None},
    {"SINTERSTORE", false, Effect::None},
    {"SISMEMBER", false, Effect::None},
    {"SLAVEOF", false, Effect::None},
    {"SLOWLOG", true, Effect::None},
    {"SMEMBERS", false, Effect::None},
    {"SMISMEMBER", false, Effect::None},
    {"SMOVE", false, Effect::None},
    {"SORT", false, Effect::None},
    {"SORT_RO", false, Effect::None},
    {"SPOP", false, Effect::None},
    {"SPUBLISH", false, Effect::None},
    {"SRANDMEMBER", false, Effect::None},
    {"SREM", false, Effect::None},
    {"SSCAN", false, Effect::None},
    {"SSUBSCRIBE", false, Effect::Subscribe},
    {"STRLEN", false, Effect::None},
    {"SUBSCRIBE", false, Effect::Subscribe},
    {"SUBSTR", false, Effect::None},
    {"SUNION", false, Effect::None},
    {"SUNIONSTORE", false, Effect::None},
    {"SUNSUBSCRIBE", false, Effect::Unsubscribe},
    {"SWAPDB", false, Effect::None},
    {"SYNC", false, Effect::None},
    {"TIME", false, Effect::None},
    {"TOUCH", false, Effect::None},
    {"TTL", false, Effect::None},
    {"TYPE", false, Effect::None},
    {"UNLINK", false, Effect::None},
    {"UNSUBSCRIBE", false, Effect::Unsubscribe},
    {"UNWATCH", false, Effect::None},
    {"WAIT", false, Effect::None},
    {"WAITAOF", false, Effect::None},
    {"WATCH", false, Effect::None},
    {"XACK", false, Effect::None},
    {"XADD", false, Effect::None},
    {"XAUTOCLAIM", false, Effect::None},
    {"XCLAIM", false, Effect::None},
    {"XDEL", false, Effect::None},
    {"XGROUP", true, Effect::None},
    {"XINFO", true, Effect::None},
    {"XLEN", false, Effect::None},
    {"XPENDING", false, Effect::None},
    {"XRANGE", false, Effect::None},
    {"XREAD", false, Effect::None},
    {"XREADGROUP", false, Effect::None},
    {"XREVRANGE", false, Effect::None},
    {"XSETID", false, Effect::None},
    {"XTRIM", false, Effect::None},
    {"ZADD", false, Effect::None},
    {"ZCARD", false, Effect::None},
    {"ZCOUNT", false, Effect::None},
    {"ZDIFF", false, Effect::None},
    {"ZDIFFSTORE", false, Effect::None},
    {"ZINCRBY", false, Effect::None},
    {"ZINTER", false, Effect::None},
    {"ZINTERCARD", false, Effect::None},
    {"ZINTERSTORE", false, Effect::None},
    {"ZLEXCOUNT", false, Effect::None},
    {"ZMPOP", false, Effect::None},
    {"ZMSCORE", false, Effect::None},
    {"ZPOPMAX", false, Effect::None},
    {"ZPOPMIN", false, Effect::None},
    {"ZRANDMEMBER", false, Effect::None},
    {"ZRANGE", false, Effect::None},
    {"ZRANGEBYLEX", false, Effect::None},
    {"ZRANGEBYSCORE", false, Effect::None},
    {"ZRANGESTORE", false, Effect::None},
    {"ZRANK", false, Effect::None},
    {"ZREM", false, Effect::None},
    {"ZREMRANGEBYLEX", false, Effect::None},
    {"ZREMRANGEBYRANK", false, Effect::None},
    {"ZREMRANGEBYSCORE", false, Effect::None},
    {"ZREVRANGE", false, Effect::None},
    {"ZREVRANGEBYLEX", false, Effect::None},
    {"ZREVRANGEBYSCORE", false, Effect::None},
    {"ZREVRANK", false, Effect::None},
    {"ZSCAN", false, Effect::None},
    {"ZSCORE", false, Effect::None},
    {"ZUNION", false, Effect::None},
    {"ZUNIONSTORE", false, Effect::None},
}};

static_assert(std::is_sorted(kCommands.begin(), kCommands.end(),
                             [](const CommandInfo& a, const CommandInfo& b) {
                               return a.name < b.name;
                             }));

// Longer than any name in the table: anything longer is unknown without a look.
constexpr size_t kLongestName = 32;

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

const CommandInfo* find_command(std::string_view name) {
  if (name.empty() || name.size() > kLongestName) return nullptr;
  std::array<char, kLongestName> upper{};
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    upper[i] = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
  }
  const std::string_view key(upper.data(), name.size());
  const auto it =
      std::lower_bound(kCommands.begin(), kCommands.end(), key,
                       [](const CommandInfo& info, std::string_view k) { return info.name < k; });
  return it != kCommands.end() && it->name == key ? &*it : nullptr;
}

// A kept argument as a whole number; nullopt when it is not one or was cut short.
std::optional<int64_t> argument_integer(const RequestSummary& request, size_t index) {
  if (index >= request.args.size() || request.args[index].truncated) return std::nullopt;
  const std::string_view s = request.args[index].value;
  const bool negative = !s.empty() && s.front() == '-';
  const std::string_view digits = negative ? s.substr(1) : s;
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

bool argument_is(const RequestSummary& request, size_t index, std::string_view word) {
  return index < request.args.size() && equals_ignore_case(request.args[index].value, word);
}

Effect client_reply_effect(const RequestSummary& request) {
  if (argument_is(request, 0, "ON")) return Effect::ClientReplyOn;
  if (argument_is(request, 0, "OFF")) return Effect::ClientReplyOff;
  if (argument_is(request, 0, "SKIP")) return Effect::ClientReplySkip;
  return Effect::None;
}

// Arguments that follow a keyword token and hold credentials: HELLO ... AUTH user pass,
// MIGRATE ... AUTH pass / AUTH2 user pass.
bool follows_auth_token(const RequestSummary& request, size_t index) {
  for (size_t back = 1; back <= 2 && back <= index; ++back) {
    if (argument_is(request, index - back, "AUTH2")) return true;
    if (argument_is(request, index - back, "AUTH") && (back == 1 || request.command == "HELLO")) {
      return true;
    }
  }
  return false;
}

bool is_credential_parameter(const RequestSummary& request, size_t index) {
  return argument_is(request, index, "requirepass") || argument_is(request, index, "masterauth") ||
         argument_is(request, index, "masteruser");
}

// Whether argument `index` may hold a secret, so that it is redacted even in raw query text.
bool secret_argument(const RequestSummary& request, size_t index) {
  const std::string_view command = request.command;
  if (command == "AUTH") return true;
  if (command == "HELLO" || command == "MIGRATE") return follows_auth_token(request, index);
  if (command == "ACL" && request.subcommand == "SETUSER")
    return index >= 1;  // rules: >pass, #hash
  if (command == "CONFIG" && request.subcommand == "SET") {
    return index % 2 == 1 && is_credential_parameter(request, index - 1);
  }
  return false;
}

bool plain_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '"' && c != '\'' && c != '\\';
  });
}

// An argument as redis-cli would show it: as is when it is one plain word, else double-quoted
// with escapes, so that spaces and binary bytes cannot blur where arguments end.
void append_quoted(std::string& out, std::string_view s) {
  if (plain_word(s)) {
    out += s;
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte >= ' ' && byte < 0x7f) {
          out += c;
        } else {
          out += "\\x";
          out += kHex[byte >> 4];
          out += kHex[byte & 15];
        }
    }
  }
  out += '"';
}

}  // namespace

bool known_command(std::string_view name) {
  return find_command(name) != nullptr;
}

bool has_subcommands(std::string_view name) {
  const CommandInfo* info = find_command(name);
  return info != nullptr && info->subcommands;
}

std::string_view operation_name(std::string_view command) {
  const CommandInfo* info = find_command(command);
  return info != nullptr ? info->name : kOtherOperation;
}

RequestEffect request_effect(const RequestSummary& request) {
  RequestEffect out;
  if (request.command.empty()) {  // "*0" or a blank line: Redis answers nothing
    out.replies = 0;
    return out;
  }
  const CommandInfo* info = find_command(request.command);
  out.effect = info != nullptr ? info->effect : Effect::None;
  switch (out.effect) {
    case Effect::Select:
      out.db = argument_integer(request, 0);
      break;
    case Effect::Hello:
      if (const auto version = argument_integer(request, 0); version == 2 || version == 3) {
        out.protocol = static_cast<int>(*version);
      }
      break;
    case Effect::Subscribe:  // one confirmation per channel; without any, one error
      out.replies = std::max<int64_t>(1, static_cast<int64_t>(request.arg_count));
      break;
    case Effect::Unsubscribe:
      out.replies =
          request.arg_count > 0 ? static_cast<int64_t>(request.arg_count) : kRepliesPerSubscription;
      break;
    default:
      break;
  }
  if (request.command == "CLIENT" && request.subcommand == "REPLY") {
    out.effect = client_reply_effect(request);
    // OFF and SKIP are not answered (SKIP silences the next command too).
    if (out.effect == Effect::ClientReplyOff || out.effect == Effect::ClientReplySkip) {
      out.replies = 0;
    }
  }
  return out;
}

std::string query_text(const RequestSummary& request, bool raw) {
  if (request.command.empty()) return {};
  std::string out = request.command;
  if (!request.subcommand.empty()) {
    out += ' ';
    out += request.subcommand;
  }
  for (size_t i = 0; i < request.args.size(); ++i) {
    out += ' ';
    if (!raw || secret_argument(request, i)) {
      out += '?';
      continue;
    }
    append_quoted(out, request.args[i].value);
    if (request.args[i].truncated) out += "...";
  }
  if (request.arg_count > request.args.size()) out += " ...";
  return out;
}

}  // namespace weft::protocols::redis
