// The proc stage's Go part that needs no kernel: finding RET instructions, the Go version, and
// what weft says about a Go executable it cannot read.
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "proc/go_tls.h"

namespace weft::proc {
namespace {

TEST_CASE("go tls: RET instructions are found by decoding, not by looking for 0xC3 bytes") {
  const std::vector<uint8_t> code = {
      0xB8, 0xC3, 0x00, 0x00, 0x00,              // mov eax, 0xc3
      0xC3,                                      // ret (offset 5)
      0x48, 0x8B, 0x05, 0xC3, 0x00, 0x00, 0x00,  // mov rax, [rip + 0xc3]
      0xC2, 0x08, 0x00,                          // ret 8 (offset 13)
      0xE8, 0xC3, 0xC3, 0xC3, 0x00,              // call rel32 (a displacement of C3 bytes)
      0xC3,                                      // ret (offset 21)
      0xCC, 0xCC,                                // int3 padding
  };
  auto rets = x86_return_offsets(code);
  REQUIRE(rets);
  CHECK(*rets == std::vector<uint64_t>{5, 13, 21});
}

TEST_CASE("go tls: code that does not decode to its end gives no RET offsets at all") {
  // 0x06 (push es) does not exist in 64-bit mode: a probe placed after it could be anywhere.
  const std::vector<uint8_t> code = {0xC3, 0x06, 0xC3};
  CHECK_FALSE(x86_return_offsets(code));
}

TEST_CASE("go tls: the Go version from an inline .go.buildinfo (Go 1.18 and later)") {
  std::string s = "\xff Go buildinf:";
  s += '\x08';  // pointer size
  s += '\x02';  // flags: strings inline
  s += std::string(16, '\0');
  s += '\x08';
  s += "go1.23.5";
  s += std::string(8, '\0');
  std::vector<uint8_t> bytes(s.begin(), s.end());
  CHECK(go_buildinfo_version(bytes) == "go1.23.5");
  bytes[15] = 0;  // the pointer format of older releases: not read from here
  CHECK(go_buildinfo_version(bytes).empty());
  bytes[0] = 'x';
  CHECK(go_buildinfo_version(bytes).empty());
}

TEST_CASE("go tls: version numbers, and the register ABI's release") {
  CHECK(go_version_number("go1.23.5") == std::pair{1, 23});
  CHECK(go_version_number("go1.16") == std::pair{1, 16});
  CHECK_FALSE(go_version_number("devel +abc"));
}

TEST_CASE("go tls: a file that is not Go is left alone") {
  GoBinary b = inspect_go_binary("/bin/true");
  CHECK_FALSE(b.is_go);
  CHECK_FALSE(b.uses_tls);
}

TEST_CASE("go tls: a stripped Go executable using crypto/tls is named, with why") {
  // Debian's go command links crypto/tls and is stripped.
  const char* go = "/usr/lib/go-1.23/bin/go";
  if (access(go, R_OK) != 0) return;
  GoBinary b = inspect_go_binary(go);
  CHECK(b.is_go);
  CHECK(b.version.starts_with("go1.23"));
  CHECK(b.uses_tls);
  CHECK(b.problem.find("stripped") != std::string::npos);
  CHECK(b.layout.usable == 0);
}

}  // namespace
}  // namespace weft::proc
