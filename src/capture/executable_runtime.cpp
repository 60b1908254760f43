#include "capture/executable_runtime.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

namespace weft::capture {
namespace {

// A file descriptor closed on every path out.
struct File {
  int fd;
  explicit File(const std::string& path) : fd(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~File() {
    if (fd >= 0) close(fd);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  bool read_at(void* out, size_t size, uint64_t offset) const {
    return pread(fd, out, size, static_cast<off_t>(offset)) == static_cast<ssize_t>(size);
  }
  template <typename T>
  std::optional<T> read(uint64_t offset) const {
    T value;
    if (!read_at(&value, sizeof(T), offset)) return std::nullopt;
    return value;
  }
  // The NUL-terminated string at `offset`, up to `limit` bytes.
  std::string string_at(uint64_t offset, size_t limit = 256) const {
    std::string s(limit, '\0');
    ssize_t n = pread(fd, s.data(), limit, static_cast<off_t>(offset));
    s.resize(n > 0 ? static_cast<size_t>(n) : 0);
    s.resize(std::min(s.size(), s.find('\0')));
    return s;
  }
};

// Bounds on what a header table may ask us to read: a bad file must not make weft allocate
// gigabytes or loop for long.
constexpr size_t kMaxHeaders = 4096;
constexpr size_t kMaxNoteBytes = 64 * 1024;
constexpr size_t kMaxNamesBytes = 1 << 20;
constexpr size_t kMaxChain = 4096;

struct Sections {
  std::optional<Elf64_Shdr> gnu_hash, dynsym, dynstr, dynamic;
  bool go = false;
};

std::optional<Sections> read_sections(const File& f, const Elf64_Ehdr& eh) {
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > kMaxHeaders ||
      eh.e_shstrndx >= eh.e_shnum)
    return std::nullopt;
  std::vector<Elf64_Shdr> headers(eh.e_shnum);
  if (!f.read_at(headers.data(), headers.size() * sizeof(Elf64_Shdr), eh.e_shoff))
    return std::nullopt;
  const Elf64_Shdr& names_header = headers[eh.e_shstrndx];
  if (names_header.sh_size == 0 || names_header.sh_size > kMaxNamesBytes) return std::nullopt;
  std::string names(names_header.sh_size, '\0');
  if (!f.read_at(names.data(), names.size(), names_header.sh_offset)) return std::nullopt;
  Sections out;
  for (const Elf64_Shdr& s : headers) {
    if (s.sh_name >= names.size()) continue;
    std::string_view name(names.c_str() + s.sh_name);
    if (name == ".go.buildinfo" || name == ".note.go.buildid") out.go = true;
    if (name == ".gnu.hash") out.gnu_hash = s;
    if (name == ".dynsym") out.dynsym = s;
    if (name == ".dynstr") out.dynstr = s;
    if (name == ".dynamic") out.dynamic = s;
  }
  return out;
}

// Without section headers (sstrip), the build id is still a PT_NOTE owned by "Go".
bool has_go_note(const File& f, const Elf64_Ehdr& eh) {
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > kMaxHeaders)
    return false;
  std::vector<Elf64_Phdr> segments(eh.e_phnum);
  if (!f.read_at(segments.data(), segments.size() * sizeof(Elf64_Phdr), eh.e_phoff)) return false;
  for (const Elf64_Phdr& p : segments) {
    if (p.p_type != PT_NOTE || p.p_filesz > kMaxNoteBytes) continue;
    std::vector<uint8_t> notes(p.p_filesz);
    if (!f.read_at(notes.data(), notes.size(), p.p_offset)) continue;
    for (size_t at = 0; at + sizeof(Elf64_Nhdr) <= notes.size();) {
      Elf64_Nhdr n;
      std::memcpy(&n, notes.data() + at, sizeof(n));
      size_t name_at = at + sizeof(n);
      // The Go linker names its notes "Go\0\0" (namesz 4); accept the minimal "Go\0" too.
      bool go_owner = (n.n_namesz == 3 || n.n_namesz == 4) && name_at + 3 <= notes.size() &&
                      std::memcmp(notes.data() + name_at, "Go", 3) == 0;
      if (go_owner) return true;
      at = name_at + ((n.n_namesz + 3) & ~3u) + ((n.n_descsz + 3) & ~3u);
    }
  }
  return false;
}

uint32_t gnu_hash(std::string_view name) {
  uint32_t h = 5381;
  for (unsigned char c : name) h = h * 33 + c;
  return h;
}

// Whether the dynamic symbol table defines `name`, through the GNU hash table: a handful of
// small reads instead of the megabytes of a large program's .dynsym and .dynstr.
bool exports(const File& f, const Sections& s, std::string_view name) {
  if (!s.gnu_hash || !s.dynsym || !s.dynstr) return false;
  uint64_t base = s.gnu_hash->sh_offset;
  auto header = f.read<std::array<uint32_t, 4>>(base);
  if (!header) return false;
  auto [nbuckets, symoffset, bloom_size, bloom_shift] = *header;
  (void)bloom_shift;
  if (nbuckets == 0) return false;
  uint32_t h = gnu_hash(name);
  uint64_t buckets = base + 16 + uint64_t{bloom_size} * 8;
  uint64_t chains = buckets + uint64_t{nbuckets} * 4;
  auto first = f.read<uint32_t>(buckets + uint64_t{h % nbuckets} * 4);
  if (!first || *first < symoffset) return false;
  for (uint32_t index = *first, steps = 0; steps < kMaxChain; ++index, ++steps) {
    auto chain = f.read<uint32_t>(chains + uint64_t{index - symoffset} * 4);
    if (!chain) return false;
    if ((*chain | 1) == (h | 1)) {
      auto sym = f.read<Elf64_Sym>(s.dynsym->sh_offset + uint64_t{index} * sizeof(Elf64_Sym));
      if (sym && sym->st_shndx != SHN_UNDEF &&
          f.string_at(s.dynstr->sh_offset + sym->st_name) == name)
        return true;
    }
    if (*chain & 1) return false;  // the end of this bucket's chain
  }
  return false;
}

// The libraries the executable names in DT_NEEDED.
std::vector<std::string> needed(const File& f, const Sections& s) {
  std::vector<std::string> out;
  if (!s.dynamic || !s.dynstr) return out;
  size_t count = std::min<uint64_t>(s.dynamic->sh_size / sizeof(Elf64_Dyn), kMaxHeaders);
  std::vector<Elf64_Dyn> entries(count);
  if (!f.read_at(entries.data(), count * sizeof(Elf64_Dyn), s.dynamic->sh_offset)) return out;
  for (const Elf64_Dyn& d : entries) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_NEEDED) out.push_back(f.string_at(s.dynstr->sh_offset + d.d_un.d_val));
  }
  return out;
}

std::string event_loop(const File& f, const Sections& s) {
  struct Loop {
    const char* runtime;
    const char* symbol;
    const char* library;  // a DT_NEEDED name prefix
  };
  static constexpr Loop kLoops[] = {
      {"libuv", "uv_run", "libuv.so"},
      {"nginx", "ngx_process_events_and_timers", nullptr},
      {"libevent", "event_base_loop", "libevent"},
      {"libev", "ev_run", "libev.so"},
  };
  for (const Loop& loop : kLoops)
    if (exports(f, s, loop.symbol)) return loop.runtime;
  for (const std::string& lib : needed(f, s))
    for (const Loop& loop : kLoops)
      if (loop.library && lib.starts_with(loop.library)) return loop.runtime;
  return {};
}

}  // namespace

std::string executable_runtime(const std::string& path) {
  File f(path);
  if (f.fd < 0) return {};
  auto eh = f.read<Elf64_Ehdr>(0);
  if (!eh || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
    return {};
  auto sections = read_sections(f, *eh);
  if ((sections && sections->go) || has_go_note(f, *eh)) return "go";
  return sections ? event_loop(f, *sections) : std::string{};
}

}  // namespace weft::capture
