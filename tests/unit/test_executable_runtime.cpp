// Go programs are recognised from their ELF file, with or without section headers.
#include <doctest/doctest.h>
#include <elf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "capture/executable_runtime.h"

using weft::capture::executable_runtime;

namespace {

std::string temp_file(const std::vector<uint8_t>& bytes) {
  char path[] = "/tmp/weft-elf-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

template <typename T>
void put(std::vector<uint8_t>& out, size_t at, const T& value) {
  if (out.size() < at + sizeof(T)) out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

Elf64_Ehdr header() {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  return eh;
}

// An ELF file whose only sections are a name table and one section called `name`.
std::vector<uint8_t> with_section(const char* name) {
  std::string names = std::string("\0.shstrtab\0", 11) + name + '\0';
  Elf64_Ehdr eh = header();
  eh.e_shoff = 256;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 3;
  eh.e_shstrndx = 1;
  std::vector<uint8_t> out;
  put(out, 0, eh);
  Elf64_Shdr null{}, strtab{}, named{};
  strtab.sh_name = 1;
  strtab.sh_type = SHT_STRTAB;
  strtab.sh_offset = 128;
  strtab.sh_size = names.size();
  named.sh_name = 11;
  named.sh_type = SHT_PROGBITS;
  put(out, 256, null);
  put(out, 256 + sizeof(Elf64_Shdr), strtab);
  put(out, 256 + 2 * sizeof(Elf64_Shdr), named);
  std::memcpy(out.data() + 128, names.data(), names.size());
  return out;
}

// An ELF file without section headers whose one PT_NOTE holds a note owned by `owner`.
std::vector<uint8_t> with_note(const char* owner, uint32_t namesz) {
  Elf64_Ehdr eh = header();
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  std::vector<uint8_t> out;
  put(out, 0, eh);
  Elf64_Nhdr other{4, 8, 1};  // a GNU-style note first, so the walk must step over it
  Elf64_Nhdr go{namesz, 4, 4};
  size_t notes_at = 256;
  put(out, notes_at, other);
  out.resize(notes_at + sizeof(other) + 4 + 8);  // room for the name before it is written
  std::memcpy(out.data() + notes_at + sizeof(other), "GNU", 4);
  size_t second = out.size();
  put(out, second, go);
  out.resize(second + sizeof(go) + 4 + 4);
  std::memcpy(out.data() + second + sizeof(go), owner, std::strlen(owner) + 1);
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = notes_at;
  note.p_filesz = out.size() - notes_at;
  put(out, sizeof(Elf64_Ehdr), note);
  return out;
}

}  // namespace

TEST_CASE("executable runtime: Go programs by section, by note, and not others") {
  std::vector<std::string> files;
  auto check = [&](const std::vector<uint8_t>& bytes, bool go) {
    files.push_back(temp_file(bytes));
    CHECK(executable_runtime(files.back()) == (go ? "go" : ""));
  };
  check(with_section(".go.buildinfo"), true);
  check(with_section(".note.go.buildid"), true);
  check(with_section(".text"), false);
  check(with_note("Go", 4), true);
  check(with_note("Go", 3), true);
  check(with_note("GNU", 4), false);
  check(std::vector<uint8_t>{'#', '!', '/', 'b', 'i', 'n'}, false);
  check({}, false);
  // Headers that point past the end of the file or ask for absurd sizes.
  auto bad = with_section(".go.buildinfo");
  reinterpret_cast<Elf64_Ehdr*>(bad.data())->e_shnum = 60000;
  check(bad, false);
  for (const auto& f : files) std::remove(f.c_str());
  CHECK(executable_runtime("/nonexistent/weft") == "");
  CHECK(executable_runtime("/proc/self/exe") == "");  // this test binary: C++, no event loop
}

// Real executables that scripts/setup.sh installs.
TEST_CASE("executable runtime: Go, Node.js and nginx as installed") {
  auto installed = [](const char* path) { return access(path, R_OK) == 0; };
  if (installed("/usr/lib/go/bin/go")) CHECK(executable_runtime("/usr/lib/go/bin/go") == "go");
  if (installed("/usr/bin/node")) CHECK(executable_runtime("/usr/bin/node") == "libuv");
  if (installed("/usr/sbin/nginx")) CHECK(executable_runtime("/usr/sbin/nginx") == "nginx");
  CHECK(executable_runtime("/usr/bin/python3") == "");
  CHECK(executable_runtime("/bin/sh") == "");
}
