// The proc stage's TLS part that needs no kernel: which mapped files are TLS libraries.
#include <doctest/doctest.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

#include "proc/elf_symbols.h"
#include "proc/tls_libraries.h"

namespace weft::proc {
namespace {

TEST_CASE("tls libraries: OpenSSL 3 and 1.1 by file name, not NSS's libssl3.so") {
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libssl.so.3") == TlsLibraryKind::OpenSsl3);
  CHECK(tls_library_kind("libssl.so.1.1") == TlsLibraryKind::OpenSsl11);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libssl3.so") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libcrypto.so.3") ==
        TlsLibraryKind::OpenSslCrypto);
  CHECK(tls_library_kind("libcrypto.so.1.1") == TlsLibraryKind::OpenSslCrypto);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libcrypto.so.3.bak") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/opt/libssl.so.3.bak") == TlsLibraryKind::None);
}

TEST_CASE(
    "tls libraries: GnuTLS as linked and as the file the link resolves to, not its companions") {
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libgnutls.so.30") == TlsLibraryKind::GnuTls);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libgnutls.so.30.34.3") ==
        TlsLibraryKind::GnuTls);
  CHECK(tls_library_kind("libgnutls.so.28") == TlsLibraryKind::GnuTls);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libgnutls-openssl.so.27.0.2") ==
        TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libgnutlsxx.so.30") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/x86_64-linux-gnu/libgnutls-dane.so.0") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/libgnutls.so") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/libgnutls.so.30.") == TlsLibraryKind::None);
  CHECK(tls_library_kind("/usr/lib/libgnutls.so.30.bak") == TlsLibraryKind::None);
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
      "7f1a2d600000-7f1a2d620000 r--p 00000000 08:01 4242 /usr/lib/libgnutls.so.30.34.3\n"
      "7f1a2d620000-7f1a2d700000 r-xp 00020000 08:01 4242 /usr/lib/libgnutls.so.30.34.3\n"
      "7f1a2d800000-7f1a2d820000 r-xp 00000000 08:01 4243 /usr/lib/libgnutls-openssl.so.27.0.2\n"
      "7ffd5a1e6000-7ffd5a207000 rw-p 00000000 00:00 0 [stack]";
  auto found = tls_libraries_in_maps(maps);
  REQUIRE(found.size() == 3);
  CHECK(found[0] == "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  CHECK(found[1] == "/opt/app/lib/libssl.so.1.1");
  CHECK(found[2] == "/usr/lib/libgnutls.so.30.34.3");
  CHECK(tls_libraries_in_maps("").empty());
}

TEST_CASE("tls libraries: executable mappings to look into, by device and inode, once each") {
  const char* maps =
      "55d0c8a00000-55d0c8a2c000 r--p 00000000 08:01 1311 /usr/bin/node\n"
      "55d0c8a2c000-55d0c9a2c000 r-xp 0002c000 08:01 1311 /usr/bin/node\n"
      "7f1a2c000000-7f1a2c021000 rw-p 00000000 00:00 0 \n"
      "7f1a2d100000-7f1a2d120000 r-xp 00000000 08:01 2000 /usr/lib/libc.so.6\n"
      "7f1a2d1ef000-7f1a2d24a000 r-xp 0001f000 08:01 2621 /usr/lib/libssl.so.3\n"
      "7f1a2d300000-7f1a2d320000 r-xp 00000000 08:01 4242 /usr/lib/libgnutls.so.30.34.3\n"
      "7f1a2d320000-7f1a2d330000 r-xp 00000000 08:01 4243 /usr/lib/libgnutls-openssl.so.27\n"
      "7f1a2d400000-7f1a2d420000 r-xp 00000000 08:01 7777 /old/app (deleted)\n"
      "7f1a2d500000-7f1a2d520000 r--p 00000000 08:01 7778 /usr/share/locale/data\n"
      "7f1a2d600000-7f1a2d620000 r-xp 00000000 fd:1a 123456789 /opt/app dir/bin/svc\n"
      "7ffd5a1e6000-7ffd5a207000 r-xp 00000000 00:00 0 [vdso]";
  auto files = executable_files_in_maps(maps);
  REQUIRE(files.size() == 3);
  CHECK(files[0] == MappedFile{"/usr/bin/node", makedev(8, 1), 1311});
  CHECK(files[1] == MappedFile{"/usr/lib/libc.so.6", makedev(8, 1), 2000});
  CHECK(files[2] == MappedFile{"/opt/app dir/bin/svc", makedev(0xfd, 0x1a), 123456789});
}

const char* const kWanted[] = {"SSL_read", "SSL_write", "SSL_free"};

TEST_CASE("elf symbols: the functions a shared libssl defines, at their file offsets") {
  const char* libssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  if (access(libssl, R_OK) != 0) return;  // Debian 12 has it; elsewhere nothing to read
  ElfFunctions found = elf_functions(libssl, kWanted);
  CHECK(found.outcome == ElfFunctions::Outcome::Scanned);
  CHECK_FALSE(found.from_symtab);  // a shared library exports them
  REQUIRE(found.offsets.size() == 3);
  // A function's first bytes at its offset: endbr64 (Debian builds with CET) or push.
  std::ifstream in(libssl, std::ios::binary);
  for (const auto& [name, offset] : found.offsets) {
    unsigned char head[4] = {};
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(head), sizeof(head));
    bool endbr64 = head[0] == 0xf3 && head[1] == 0x0f && head[2] == 0x1e && head[3] == 0xfa;
    CHECK_MESSAGE((endbr64 || (head[0] >= 0x41 && head[0] <= 0x57)), name);
  }
}

TEST_CASE("elf symbols: imports are not definitions; other files and no files") {
  // This test binary calls into libssl (through libcurl) but defines no SSL_ function.
  ElfFunctions self = elf_functions("/proc/self/exe", kWanted);
  CHECK(self.outcome == ElfFunctions::Outcome::Scanned);
  CHECK(self.offsets.empty());
  CHECK(elf_functions("/proc/self/maps", kWanted).outcome == ElfFunctions::Outcome::NotElf);
  // A device is never opened (a mapped watchdog or tty would act on it).
  CHECK(elf_functions("/dev/null", kWanted).outcome == ElfFunctions::Outcome::NotElf);
  CHECK(elf_functions("/nonexistent/weft", kWanted).outcome == ElfFunctions::Outcome::Unreadable);
}

}  // namespace
}  // namespace weft::proc
