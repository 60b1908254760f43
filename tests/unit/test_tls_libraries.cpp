// The proc stage's TLS part that needs no kernel: which mapped files are TLS libraries.
#include <doctest/doctest.h>

#include "proc/tls_libraries.h"

namespace weft::proc {
namespace {

TEST_CASE("tls libraries: OpenSSL 3 and 1.1 by file name, not NSS's libssl3.so") {
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libssl.so.3") == TlsLibraryKind::OpenSsl3);
  CHECK(tls_library_kind("libssl.so.1.1") == TlsLibraryKind::OpenSsl11);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libssl3.so") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libcrypto.so.3") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/opt/libssl.so.3.bak") == TlsLibraryKind::None);
}

TEST_CASE("tls libraries: found once each in /proc/PID/maps, replaced files left out") {
  const char* maps =
      "55d0c8a00000-55d0c8a2c000 r--p 00000000 08:01 1311 /usr/sbin/nginx\n"
      "7f1a2c000000-7f1a2c021000 rw-p 00000000 00:00 0 \n"
      "7f1a2d1d0000-7f1a2d1ef000 r--p 00000000 08:01 2621 /usr/lib/x86_64-linux-gnu/libssl.so.3\n"
      "7f1a2d1ef000-7f1a2d24a000 r-xp 0001f000 08:01 2621 /usr/lib/x86_64-linux-gnu/libssl.so.3\n"
      "7f1a2d300000-7f1a2d320000 r-xp 00000000 08:01 9999 /opt/app/lib/libssl.so.1.1\n"
      "7f1a2d400000-7f1a2d420000 r-xp 00000000 08:01 7777 /old/libssl.so.3 (deleted)\n"
      "7f1a2d500000-7f1a2d520000 r-xp 00000000 08:01 7778 /usr/lib/libssl3.so\n"
      "7ffd5a1e6000-7ffd5a207000 rw-p 00000000 00:00 0 [stack]";
  auto found = tls_libraries_in_maps(maps);
  REQUIRE(found.size() == 2);
  CHECK(found[0] == "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  CHECK(found[1] == "/opt/app/lib/libssl.so.1.1");
  CHECK(tls_libraries_in_maps("").empty());
}

}  // namespace
}  // namespace weft::proc
