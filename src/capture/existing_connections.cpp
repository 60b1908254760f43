#include "capture/existing_connections.h"

#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <unordered_map>

#include "weft_events.h"

namespace weft::capture {
namespace {

constexpr int kTcpEstablished = 1;
constexpr int kTcpListen = 10;

void fill_endpoint(int family, const __be32 addr[4], __be16 port, Endpoint& out) {
  if (family == AF_INET) {
    out.addr.fill(0);
    out.addr[10] = out.addr[11] = 0xff;
    std::memcpy(out.addr.data() + 12, addr, 4);
  } else {
    std::memcpy(out.addr.data(), addr, 16);
  }
  out.port = ntohs(port);
}

// All TCP sockets of one family in the given states.
bool dump_tcp(int family, uint32_t states, std::vector<DiagSocket>& out, std::string* error) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *error = std::string("sock_diag socket: ") + std::strerror(errno);
    return false;
  }
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } request{};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.req.sdiag_family = static_cast<uint8_t>(family);
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = states;
  if (send(fd, &request, sizeof(request), 0) < 0) {
    *error = std::string("sock_diag request: ") + std::strerror(errno);
    close(fd);
    return false;
  }
  alignas(nlmsghdr) char buffer[32768];
  bool done = false;
  bool ok = true;
  while (!done) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      *error =
          std::string("sock_diag reply: ") + (n == 0 ? "connection closed" : std::strerror(errno));
      ok = false;
      break;
    }
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        *error = std::string("sock_diag returned an error: ") + std::strerror(-err->error);
        done = true;
        ok = false;
        break;
      }
      auto* msg = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      DiagSocket s{};
      s.family = msg->idiag_family;
      s.state = msg->idiag_state;
      s.cookie = static_cast<uint64_t>(msg->id.idiag_cookie[1]) << 32 | msg->id.idiag_cookie[0];
      s.inode = msg->idiag_inode;
      fill_endpoint(s.family, msg->id.idiag_src, msg->id.idiag_sport, s.local);
      fill_endpoint(s.family, msg->id.idiag_dst, msg->id.idiag_dport, s.remote);
      out.push_back(s);
    }
  }
  close(fd);
  return ok;
}

struct Holder {
  uint32_t pid;
  int32_t fd;
};

// Socket inode -> the first process (lowest pid) and fd holding it.
std::unordered_map<uint32_t, Holder> socket_holders(uint32_t exclude_pid,
                                                    const std::string& proc_root,
                                                    std::string* error) {
  std::unordered_map<uint32_t, Holder> holders;
  DIR* proc = opendir(proc_root.c_str());
  if (!proc) {
    *error = "cannot list " + proc_root +
             " to find which process holds each connection: " + std::strerror(errno);
    return holders;
  }
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    unsigned long pid = std::strtoul(entry->d_name, &end, 10);
    if (*end != '\0' || pid == 0 || pid == exclude_pid) continue;
    std::string fd_dir = proc_root + "/" + std::string(entry->d_name) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;  // the process exited, or a kernel thread
    while (dirent* fd_entry = readdir(fds)) {
      char target[64];
      std::string link = fd_dir + "/" + fd_entry->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      unsigned inode = 0;
      if (std::sscanf(target, "socket:[%u]", &inode) != 1) continue;
      auto [it, fresh] = holders.try_emplace(inode, Holder{static_cast<uint32_t>(pid), std::atoi(fd_entry->d_name)});
      if (!fresh && pid < it->second.pid) it->second = Holder{static_cast<uint32_t>(pid), std::atoi(fd_entry->d_name)};
    }
    closedir(fds);
  }
  closedir(proc);
  return holders;
}

std::string read_comm(const std::string& proc_root, uint32_t pid) {
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm.substr(0, WEFT_COMM_LEN - 1);
}

}  // namespace

ScanResult scan_existing_connections(uint32_t exclude_pid, uint64_t now_mono_ns,
                                     const ScanSources& sources) {
  ScanResult result;
  std::vector<DiagSocket> sockets;
  for (int family : {AF_INET, AF_INET6}) {
    std::string error;
    bool ok = sources.dump
                  ? sources.dump(family, 1u << kTcpEstablished | 1u << kTcpListen, sockets, &error)
                  : dump_tcp(family, 1u << kTcpEstablished | 1u << kTcpListen, sockets, &error);
    if (!ok)
      result.errors.push_back(
          (family == AF_INET ? "listing IPv4 sockets: " : "listing IPv6 sockets: ") + error);
  }
  std::set<uint16_t> listening_ports;
  for (const auto& s : sockets)
    if (s.state == kTcpListen) listening_ports.insert(s.local.port);

  std::string holders_error;
  auto holders = socket_holders(exclude_pid, sources.proc_root, &holders_error);
  if (!holders_error.empty()) result.errors.push_back(holders_error);
  std::vector<Event>& events = result.events;
  for (const auto& s : sockets) {
    if (s.state != kTcpEstablished) continue;
    auto holder = holders.find(s.inode);
    if (holder == holders.end()) continue;  // weft's own, or no longer held by anyone
    Event e;
    e.kind = EventKind::Existing;
    e.mono_ns = now_mono_ns;
    e.cookie = s.cookie;
    e.pid = e.tid = holder->second.pid;
    e.fd = holder->second.fd;
    e.comm = read_comm(sources.proc_root, e.pid);
    e.role = listening_ports.contains(s.local.port) ? Role::Server : Role::Client;
    e.family = static_cast<uint16_t>(s.family);
    e.local = s.local;
    e.remote = s.remote;
    events.push_back(std::move(e));
  }
  return result;
}

size_t report_scan_errors(const std::vector<std::string>& errors, std::FILE* out) {
  std::set<std::string> seen;
  for (const std::string& error : errors) {
    if (!seen.insert(error).second) continue;
    std::fprintf(out, "weft: connections open before weft started will not be traced: %s\n",
                 error.c_str());
  }
  return seen.size();
}

}  // namespace weft::capture
