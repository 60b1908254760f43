#include "proc/go_tls.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

namespace weft::proc {
namespace {

// Capstone's instruction tables are ~3 MB of relocated data, resident from the moment the library
// loads (3.2 MB of weft's idle resident size, measured). weft needs them only when it finds a
// Go executable, so the library is opened then, once, and never by a node without Go.
struct CapstoneApi {
  decltype(&cs_open) open;
  decltype(&cs_malloc) malloc;
  decltype(&cs_disasm_iter) disasm_iter;
  decltype(&cs_free) free;
  decltype(&cs_close) close;
};

std::string& capstone_load_error() {
  static std::string error;
  return error;
}

const CapstoneApi* load_capstone() {
  void* lib = dlopen("libcapstone.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    capstone_load_error() = why ? why : "dlopen failed";
    return nullptr;
  }
  static CapstoneApi api;
  api.open = reinterpret_cast<decltype(&cs_open)>(dlsym(lib, "cs_open"));
  api.malloc = reinterpret_cast<decltype(&cs_malloc)>(dlsym(lib, "cs_malloc"));
  api.disasm_iter = reinterpret_cast<decltype(&cs_disasm_iter)>(dlsym(lib, "cs_disasm_iter"));
  api.free = reinterpret_cast<decltype(&cs_free)>(dlsym(lib, "cs_free"));
  api.close = reinterpret_cast<decltype(&cs_close)>(dlsym(lib, "cs_close"));
  if (!api.open || !api.malloc || !api.disasm_iter || !api.free || !api.close) {
    capstone_load_error() = "a cs_* function is missing";
    return nullptr;
  }
  return &api;
}

// Null when the library cannot be loaded (capstone_error() says why).
const CapstoneApi* capstone() {
  static const CapstoneApi* api = load_capstone();
  return api;
}

std::string capstone_error() {
  capstone();
  return capstone_load_error();
}

constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr const char* kReadSymbol = "crypto/tls.(*Conn).Read";
constexpr const char* kWriteSymbol = "crypto/tls.(*Conn).Write";
// The linker's name for the static itab; "go." before Go 1.20 renamed its symbols "go:".
constexpr std::array<std::string_view, 2> kTcpConnItabSymbols = {"go:itab.*net.TCPConn,net.Conn",
                                                                 "go.itab.*net.TCPConn,net.Conn"};

// An ELF file opened with libelf, closed on every path out.
struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfFile(const std::string& path) {
    elf_version(EV_CURRENT);
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  }
  ~ElfFile() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  Elf_Scn* section(std::string_view name, GElf_Shdr* out) const {
    size_t names = 0;
    if (elf_getshdrstrndx(elf, &names) != 0) return nullptr;
    for (Elf_Scn* s = elf_nextscn(elf, nullptr); s; s = elf_nextscn(elf, s)) {
      GElf_Shdr h;
      if (!gelf_getshdr(s, &h)) continue;
      const char* n = elf_strptr(elf, names, h.sh_name);
      if (n && name == n) {
        *out = h;
        return s;
      }
    }
    return nullptr;
  }
  // The section holding link-time address `addr` (with room for `size` bytes).
  Elf_Scn* section_at(uint64_t addr, uint64_t size, GElf_Shdr* out) const {
    for (Elf_Scn* s = elf_nextscn(elf, nullptr); s; s = elf_nextscn(elf, s)) {
      GElf_Shdr h;
      if (!gelf_getshdr(s, &h) || !(h.sh_flags & SHF_ALLOC)) continue;
      if (addr >= h.sh_addr && addr + size <= h.sh_addr + h.sh_size) {
        *out = h;
        return s;
      }
    }
    return nullptr;
  }
  // `size` bytes at link-time address `addr`, from the file; empty when not in the file.
  std::span<const uint8_t> bytes_at(uint64_t addr, uint64_t size) const {
    GElf_Shdr h;
    Elf_Scn* s = section_at(addr, size, &h);
    if (!s || h.sh_type == SHT_NOBITS) return {};
    Elf_Data* d = elf_getdata(s, nullptr);
    if (!d || !d->d_buf || addr - h.sh_addr + size > d->d_size) return {};
    return {static_cast<const uint8_t*>(d->d_buf) + (addr - h.sh_addr), size};
  }
  uint64_t file_offset(uint64_t addr) const {
    GElf_Shdr h;
    return section_at(addr, 1, &h) ? addr - h.sh_addr + h.sh_offset : 0;
  }
};

struct Symbols {
  std::optional<GElf_Sym> read, write, itab, build_version;
};

Symbols find_symbols(const ElfFile& f, bool* has_symtab) {
  Symbols out;
  GElf_Shdr h;
  Elf_Scn* s = f.section(".symtab", &h);
  *has_symtab = s != nullptr;
  if (!s) return out;
  Elf_Data* d = elf_getdata(s, nullptr);
  size_t count = h.sh_entsize ? h.sh_size / h.sh_entsize : 0;
  for (size_t i = 0; d && i < count; ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(d, static_cast<int>(i), &sym)) continue;
    const char* n = elf_strptr(f.elf, h.sh_link, sym.st_name);
    if (!n || n[0] == '\0') continue;
    std::string_view name(n);
    if (name == kReadSymbol) out.read = sym;
    if (name == kWriteSymbol) out.write = sym;
    if (name == kTcpConnItabSymbols[0] || name == kTcpConnItabSymbols[1]) out.itab = sym;
    if (name == "runtime.buildVersion") out.build_version = sym;
  }
  return out;
}

// Before Go 1.18 the version is a Go string (pointer, length) at runtime.buildVersion.
std::string version_from_symbol(const ElfFile& f, const GElf_Sym& sym) {
  auto header = f.bytes_at(sym.st_value, 16);
  if (header.empty()) return {};
  uint64_t ptr, len;
  std::memcpy(&ptr, header.data(), 8);
  std::memcpy(&len, header.data() + 8, 8);
  if (len == 0 || len > 64) return {};
  auto text = f.bytes_at(ptr, len);
  return std::string(text.begin(), text.end());
}

std::optional<GoTlsFunction> function_at(const ElfFile& f, const GElf_Sym& sym,
                                         std::string* problem) {
  GoTlsFunction fn;
  fn.address = sym.st_value;
  fn.entry = f.file_offset(sym.st_value);
  auto code = f.bytes_at(sym.st_value, sym.st_size);
  if (!capstone()) {
    *problem = "cannot disassemble crypto/tls functions: libcapstone.so.4 does not load (" +
               capstone_error() + ")";
    return std::nullopt;
  }
  auto rets = code.empty() ? std::nullopt : x86_return_offsets(code);
  if (!fn.entry || !rets || rets->empty()) {
    *problem =
        "cannot find the RET instructions of a crypto/tls function (its code does not "
        "disassemble)";
    return std::nullopt;
  }
  for (uint64_t r : *rets) fn.returns.push_back(fn.entry + r);
  return fn;
}

// The struct members weft reads, by the DWARF names Go gives them.
struct Wanted {
  const char* type;
  const char* member;
  const char* alternative;  // the member's older name, if any
};
constexpr Wanted kWanted[] = {
    {"crypto/tls.Conn", "conn", nullptr},
    {"crypto/tls.Conn", "isHandshakeComplete", "handshakeStatus"},
    {"crypto/tls.Conn", "rawInput", nullptr},
    {"crypto/tls.Conn", "input", nullptr},
    {"crypto/tls.Conn", "vers", nullptr},
    {"crypto/tls.Conn", "in", nullptr},
    {"crypto/tls.Conn", "out", nullptr},
    {"crypto/tls.halfConn", "seq", nullptr},
    {"bytes.Buffer", "buf", nullptr},
    {"bytes.Buffer", "off", nullptr},
    {"bytes.Reader", "s", nullptr},
    {"bytes.Reader", "i", nullptr},
    {"net.TCPConn", "conn", nullptr},
    {"net.conn", "fd", nullptr},
    {"net.netFD", "pfd", nullptr},
    {"internal/poll.FD", "Sysfd", nullptr},
};

using Offsets = std::map<std::pair<std::string, std::string>, uint64_t>;

void collect_members(Dwarf_Die* type, std::string_view type_name, Offsets& out) {
  Dwarf_Die m;
  if (dwarf_child(type, &m) != 0) return;
  do {
    if (dwarf_tag(&m) != DW_TAG_member) continue;
    const char* name = dwarf_diename(&m);
    Dwarf_Attribute attr;
    Dwarf_Word offset;
    if (!name || !dwarf_attr(&m, DW_AT_data_member_location, &attr) ||
        dwarf_formudata(&attr, &offset) != 0)
      continue;
    out[{std::string(type_name), name}] = offset;
  } while (dwarf_siblingof(&m, &m) == 0);
}

// Member offsets of the structs in kWanted. Go emits every type at the top level of a
// compilation unit, so only those are visited.
Offsets struct_offsets(Dwarf* dw) {
  std::set<std::string_view> types;
  for (const Wanted& w : kWanted) types.insert(w.type);
  Offsets out;
  std::set<std::string> seen;
  Dwarf_Off off = 0, next = 0;
  size_t header = 0;
  while (seen.size() < types.size() &&
         dwarf_nextcu(dw, off, &next, &header, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu, die;
    if (dwarf_offdie(dw, off + header, &cu) && dwarf_child(&cu, &die) == 0) {
      do {
        if (dwarf_tag(&die) != DW_TAG_structure_type) continue;
        const char* name = dwarf_diename(&die);
        if (!name || !types.contains(name) || seen.contains(name)) continue;
        seen.insert(name);
        collect_members(&die, name, out);
      } while (dwarf_siblingof(&die, &die) == 0);
    }
    off = next;
  }
  return out;
}

// The layout from DWARF; `problem` names the first thing missing.
weft_go_tls_layout layout_from_dwarf(const ElfFile& f, std::string* problem) {
  weft_go_tls_layout l{};
  Dwarf* dw = dwarf_begin_elf(f.elf, DWARF_C_READ, nullptr);
  if (!dw) {
    *problem =
        "no DWARF (built with -ldflags=-w or stripped): the offsets of crypto/tls.Conn "
        "and net's structs are unknown";
    return l;
  }
  Offsets o = struct_offsets(dw);
  dwarf_end(dw);
  auto at = [&](const Wanted& w) -> std::optional<uint64_t> {
    for (const char* m : {w.member, w.alternative}) {
      if (!m) continue;
      auto it = o.find({w.type, m});
      if (it != o.end()) return it->second;
    }
    return std::nullopt;
  };
  std::array<uint64_t, std::size(kWanted)> v{};
  for (size_t i = 0; i < std::size(kWanted); ++i) {
    auto found = at(kWanted[i]);
    if (!found) {
      *problem = std::string("DWARF has no ") + kWanted[i].type + "." + kWanted[i].member;
      return l;
    }
    v[i] = *found;
  }
  auto [conn, handshake, raw_input, input, vers, in, out, seq, buf, off, s, i, tcp_conn, conn_fd,
        pfd, sysfd] = v;
  auto u16 = [](uint64_t x) { return static_cast<uint16_t>(x); };
  l.conn = u16(conn);
  l.handshake_done = u16(handshake);
  l.raw_input_len = u16(raw_input + buf + 8);  // a slice: pointer, length, capacity
  l.raw_input_off = u16(raw_input + off);
  l.input_len = u16(input + s + 8);
  l.input_i = u16(input + i);
  l.tcp_conn_fd = u16(tcp_conn + conn_fd);
  l.netfd_sysfd = u16(pfd + sysfd);
  l.vers = u16(vers);
  l.in_seq = u16(in + seq);
  l.out_seq = u16(out + seq);
  for (uint64_t x : v)
    if (x > 0xfff0) {
      *problem = "implausible struct offsets in DWARF";
      return l;
    }
  return l;
}

void fill_tls(const ElfFile& f, const Symbols& syms, GoBinary& out) {
  auto read = function_at(f, *syms.read, &out.problem);
  auto write = read ? function_at(f, *syms.write, &out.problem) : std::nullopt;
  if (!read || !write) return;
  out.read = *read;
  out.write = *write;
  auto number = go_version_number(out.version);
  if (number && *number < std::pair{1, 17}) {
    out.problem = out.version + " passes arguments on the stack (register ABI from go1.17)";
    return;
  }
  GElf_Ehdr eh;
  if (!gelf_getehdr(f.elf, &eh) || eh.e_machine != EM_X86_64) {
    out.problem = "not an x86-64 executable";
    return;
  }
  weft_go_tls_layout l = layout_from_dwarf(f, &out.problem);
  if (!out.problem.empty()) return;
  if (!syms.itab) {
    out.problem = "no itab (*net.TCPConn, net.Conn): it never uses crypto/tls over TCP";
    return;
  }
  l.tcp_conn_itab = syms.itab->st_value;
  l.read_entry = out.read.address;
  l.write_entry = out.write.address;
  l.usable = 1;
  out.layout = l;
}

// Removing uprobes waits for the kernel; see destroy_in_parallel in tls_libraries.cpp. Each Go
// executable has two uprobe_multi links, so they are simply released one after the other.
void destroy(std::vector<bpf_link*>& links) {
  for (bpf_link* l : links) bpf_link__destroy(l);
  links.clear();
}

}  // namespace

std::optional<std::vector<uint64_t>> x86_return_offsets(std::span<const uint8_t> code) {
  const CapstoneApi* cs = capstone();
  csh handle;
  if (!cs || cs->open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return std::nullopt;
  cs_insn* insn = cs->malloc(handle);
  const uint8_t* at = code.data();
  size_t left = code.size();
  uint64_t address = 0;
  std::vector<uint64_t> out;
  while (left > 0 && cs->disasm_iter(handle, &at, &left, &address, insn))
    if (insn->id == X86_INS_RET) out.push_back(insn->address);
  cs->free(insn, 1);
  cs->close(&handle);
  if (left > 0) return std::nullopt;  // stopped on bytes that are no instruction
  return out;
}

std::string go_buildinfo_version(std::span<const uint8_t> s) {
  // Header: magic (14), pointer size (1), flags (1), then 16 bytes; flag 2: strings inline.
  constexpr size_t kHeader = 32;
  if (s.size() <= kHeader ||
      std::string_view(reinterpret_cast<const char*>(s.data()), kBuildInfoMagic.size()) !=
          kBuildInfoMagic ||
      !(s[15] & 2))
    return {};
  uint64_t len = 0;
  size_t at = kHeader;
  for (int shift = 0; at < s.size() && shift < 64; shift += 7) {  // unsigned varint
    uint8_t b = s[at++];
    len |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) break;
  }
  if (len == 0 || len > 64 || at + len > s.size()) return {};
  return std::string(reinterpret_cast<const char*>(s.data()) + at, len);
}

std::optional<std::pair<int, int>> go_version_number(std::string_view v) {
  int major = 0, minor = 0;
  if (std::sscanf(std::string(v).c_str(), "go%d.%d", &major, &minor) != 2) return std::nullopt;
  return std::pair{major, minor};
}

GoBinary inspect_go_binary(const std::string& path) {
  GoBinary out;
  ElfFile f(path);
  if (!f.elf || elf_kind(f.elf) != ELF_K_ELF) return out;
  GElf_Shdr h;
  Elf_Scn* info = f.section(".go.buildinfo", &h);
  if (!info) return out;
  out.is_go = true;
  if (Elf_Data* d = elf_getdata(info, nullptr); d && d->d_buf)
    out.version = go_buildinfo_version(
        {static_cast<const uint8_t*>(d->d_buf), static_cast<size_t>(d->d_size)});
  bool has_symtab = false;
  Symbols syms = find_symbols(f, &has_symtab);
  if (out.version.empty() && syms.build_version)
    out.version = version_from_symbol(f, *syms.build_version);
  if (!has_symtab) {
    // Stripped: whether it uses crypto/tls is still written in its function name table.
    GElf_Shdr p;
    Elf_Scn* pcln = f.section(".gopclntab", &p);
    Elf_Data* d = pcln ? elf_getdata(pcln, nullptr) : nullptr;
    std::string_view names = d && d->d_buf
                                 ? std::string_view(static_cast<const char*>(d->d_buf), d->d_size)
                                 : std::string_view();
    out.uses_tls = names.find(kWriteSymbol) != std::string_view::npos;
    out.problem = "no symbol table (stripped, or built with -ldflags=-s)";
    return out;
  }
  out.uses_tls = syms.read && syms.write;
  if (out.uses_tls) fill_tls(f, syms, out);
  return out;
}

GoTlsBinaries::~GoTlsBinaries() {
  std::vector<std::thread> threads;
  // Two links per executable; executables' links are released side by side.
  for (auto& [key, b] : binaries_)
    if (!b.links.empty()) threads.emplace_back([&links = b.links] { destroy(links); });
  for (std::thread& t : threads) t.join();
}

void GoTlsBinaries::check_process(pid_t pid) {
  std::string exe = "/proc/" + std::to_string(pid) + "/exe";
  struct stat st {};
  if (stat(exe.c_str(), &st) != 0) return;  // a kernel thread, or gone
  FileKey key{st.st_dev, st.st_ino};
  std::lock_guard lock(mu_);
  auto known = by_pid_.find(pid);
  if (known != by_pid_.end() && known->second == key) return;
  if (known != by_pid_.end()) binaries_[known->second].pids.erase(pid);  // exec'd another
  auto [it, fresh] = binaries_.try_emplace(key);
  if (fresh) attach(it->second, exe);
  it->second.pids.insert(pid);
  by_pid_[pid] = key;
}

void GoTlsBinaries::forget_process(pid_t pid) {
  std::lock_guard lock(mu_);
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return;
  binaries_[it->second].pids.erase(pid);
  by_pid_.erase(it);
}

std::vector<GoTlsBinaryStatus> GoTlsBinaries::status() const {
  std::lock_guard lock(mu_);
  std::vector<GoTlsBinaryStatus> out;
  for (const auto& [key, b] : binaries_) {
    if (!b.listed) continue;
    out.push_back(b.status);
    out.back().processes = b.pids.size();
  }
  return out;
}

void GoTlsBinaries::attach(Binary& b, const std::string& exe) {
  char target[4096];
  ssize_t n = readlink(exe.c_str(), target, sizeof(target) - 1);
  b.status.path = n > 0 ? std::string(target, static_cast<size_t>(n)) : exe;
  GoBinary go = inspect_go_binary(exe);
  if (!go.is_go || !go.uses_tls) return;
  b.listed = true;
  b.status.version = go.version.empty() ? "go?" : go.version;
  if (next_slot_ >= WEFT_GO_TLS_MAX_BINARIES) {
    b.status.detail = "not hooked: more Go executables than weft has room for";
    return;
  }
  uint32_t slot = next_slot_++;
  if (bpf_map_update_elem(layouts_fd_, &slot, &go.layout, BPF_ANY) != 0) {
    b.status.detail = std::string("not hooked: ") + std::strerror(errno);
    return;
  }
  if (!attach_probes(b, exe, go, slot)) return;
  b.status.hooked = go.problem.empty();
  b.status.detail = b.status.hooked
                        ? "Read and Write, " +
                              std::to_string(go.read.returns.size() + go.write.returns.size()) +
                              " RET instructions"
                        : go.problem + "; its calls are counted (go_untraceable), not reported";
}

bool GoTlsBinaries::attach_probes(Binary& b, const std::string& exe, const GoBinary& go,
                                  uint32_t slot) {
  if (go.read.entry == 0 || go.write.entry == 0) {  // nothing to count calls with
    b.status.detail = "not hooked: " + go.problem;
    return false;
  }
  std::vector<unsigned long> entries = {go.read.entry, go.write.entry};
  std::vector<__u64> cookies = {__u64{slot} << 1 | WEFT_DIR_RECV, __u64{slot} << 1 | WEFT_DIR_SEND};
  LIBBPF_OPTS(bpf_uprobe_multi_opts, enter_opts, .offsets = entries.data(),
              .cookies = cookies.data(), .cnt = entries.size());
  // -1: every process that runs this file, now or later.
  bpf_link* enter =
      bpf_program__attach_uprobe_multi(programs_.enter, -1, exe.c_str(), nullptr, &enter_opts);
  if (!enter) {
    b.status.detail = std::string("not hooked: entry probes: ") + std::strerror(errno);
    return false;
  }
  b.links.push_back(enter);
  if (!go.problem.empty()) return true;  // the entry probes only count the calls
  std::vector<unsigned long> rets(go.read.returns.begin(), go.read.returns.end());
  rets.insert(rets.end(), go.write.returns.begin(), go.write.returns.end());
  LIBBPF_OPTS(bpf_uprobe_multi_opts, ret_opts, .offsets = rets.data(), .cnt = rets.size());
  bpf_link* ret =
      bpf_program__attach_uprobe_multi(programs_.ret, -1, exe.c_str(), nullptr, &ret_opts);
  if (!ret) {
    b.status.detail = std::string("not hooked: RET probes: ") + std::strerror(errno);
    destroy(b.links);
    return false;
  }
  b.links.push_back(ret);
  return true;
}

}  // namespace weft::proc
