// Finding a TLS library's functions inside an ELF file that is not that library (OpenSSL or
// BoringSSL linked statically into an executable, e.g. node): by the file's symbol tables, read
// with libelf. Uprobes go at the functions' file offsets.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace weft::proc {

struct ElfFunctions {
  enum class Outcome {
    Scanned,    // the symbol tables were read; `offsets` has what they define
    NoSymbols,  // neither .dynsym nor .symtab: a stripped static executable, nothing can be found
    NotElf,     // not a regular file, or not an ELF executable or shared object
    Unreadable  // it could not be opened (gone, or its process's root is)
  };
  Outcome outcome = Outcome::Unreadable;
  // Function name -> file offset of its first instruction, for the wanted names the file
  // defines (imports from another file are not definitions).
  std::map<std::string, uint64_t> offsets;
  // Some were found only in the full table (.symtab): defined but not exported.
  bool from_symtab = false;
};

// Looks up `wanted` among the functions `path` defines: .dynsym first (what it exports), then
// .symtab (everything, unless stripped). Only the section headers and the symbol tables are
// read (the file is mapped, not read whole).
ElfFunctions elf_functions(const std::string& path, std::span<const char* const> wanted);

}  // namespace weft::proc
