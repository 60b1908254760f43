#include "proc/elf_symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace weft::proc {
namespace {

struct OpenFile {
  int fd;
  ~OpenFile() {
    if (fd >= 0) close(fd);
  }
};

struct ElfHandle {
  Elf* elf;
  ~ElfHandle() {
    if (elf) elf_end(elf);
  }
};

bool libelf_ready() {
  static const bool ready = elf_version(EV_CURRENT) != EV_NONE;
  return ready;
}

// Where a defined symbol's first byte sits in the file: its address relative to the section
// that holds it (a uprobe is placed by file offset, not by address).
bool file_offset(Elf* elf, const GElf_Sym& sym, uint64_t* out) {
  Elf_Scn* scn = elf_getscn(elf, sym.st_shndx);
  GElf_Shdr sh{};
  if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS) return false;
  if (sym.st_value < sh.sh_addr || sym.st_value >= sh.sh_addr + sh.sh_size) return false;
  *out = sym.st_value - sh.sh_addr + sh.sh_offset;
  return true;
}

void scan_table(Elf* elf, Elf_Scn* scn, const GElf_Shdr& sh, std::span<const char* const> wanted,
                std::map<std::string, uint64_t>& offsets) {
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (!data || sh.sh_entsize == 0) return;
  size_t count = sh.sh_size / sh.sh_entsize;
  for (size_t i = 0; i < count && offsets.size() < wanted.size(); ++i) {
    GElf_Sym sym{};
    if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
    // Definitions only: an undefined symbol is an import from a shared library (hooked there).
    if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
        sym.st_shndx >= SHN_LORESERVE)
      continue;
    const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
    if (!name) continue;
    for (const char* w : wanted) {
      uint64_t offset = 0;
      if (std::strcmp(name, w) == 0 && !offsets.contains(w) && file_offset(elf, sym, &offset))
        offsets.emplace(w, offset);
    }
  }
}

}  // namespace

ElfFunctions elf_functions(const std::string& path, std::span<const char* const> wanted) {
  ElfFunctions out;
  if (!libelf_ready()) return out;
  // Regular files only: opening a device a process maps (a watchdog, a tty) can have effects.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return out;
  out.outcome = ElfFunctions::Outcome::NotElf;
  if (!S_ISREG(st.st_mode)) return out;
  OpenFile file{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
  if (file.fd < 0) {
    out.outcome = ElfFunctions::Outcome::Unreadable;
    return out;
  }
  ElfHandle handle{elf_begin(file.fd, ELF_C_READ_MMAP, nullptr)};
  GElf_Ehdr ehdr{};
  if (!handle.elf || elf_kind(handle.elf) != ELF_K_ELF || !gelf_getehdr(handle.elf, &ehdr) ||
      (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN))
    return out;
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* symtab = nullptr;
  for (Elf_Scn* scn = elf_nextscn(handle.elf, nullptr); scn; scn = elf_nextscn(handle.elf, scn)) {
    GElf_Shdr sh{};
    if (!gelf_getshdr(scn, &sh)) continue;
    if (sh.sh_type == SHT_DYNSYM) dynsym = scn;
    if (sh.sh_type == SHT_SYMTAB) symtab = scn;
  }
  if (!dynsym && !symtab) {
    out.outcome = ElfFunctions::Outcome::NoSymbols;
    return out;
  }
  out.outcome = ElfFunctions::Outcome::Scanned;
  size_t exported = 0;
  for (Elf_Scn* scn : {dynsym, symtab}) {
    GElf_Shdr sh{};
    if (scn && gelf_getshdr(scn, &sh)) scan_table(handle.elf, scn, sh, wanted, out.offsets);
    if (scn == dynsym) exported = out.offsets.size();
  }
  out.from_symtab = out.offsets.size() > exported;
  return out;
}

}  // namespace weft::proc
