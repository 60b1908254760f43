// `weft doctor`: what this machine gives weft, hook by hook, and what is lost without each.
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "capture/tracefs.h"
#include "cli/commands.h"

namespace weft::cli {
namespace {

bool has_capability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return data[cap / 32].effective & (1u << (cap % 32));
}

std::string read_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

void row(const char* name, const std::string& value) { std::printf("%-12s %s\n", name, value.c_str()); }

}  // namespace

int run_doctor(const capture::CaptureConfig& config) {
  utsname uts{};
  uname(&uts);
  std::printf("weft %s doctor\n", WEFT_VERSION);
  row("kernel", std::string(uts.release) + " (" + uts.machine + ")");
  bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  row("BTF", btf ? "/sys/kernel/btf/vmlinux present" : "MISSING: /sys/kernel/btf/vmlinux (CO-RE cannot relocate)");
  std::string caps;
  for (auto [cap, name] : {std::pair{CAP_BPF, "CAP_BPF"}, {CAP_PERFMON, "CAP_PERFMON"},
                           {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {CAP_NET_ADMIN, "CAP_NET_ADMIN"}})
    caps += std::string(" ") + name + (has_capability(cap) ? "=yes" : "=no");
  row("privileges", (geteuid() == 0 ? "root;" : "not root;") + caps);
  std::string tracefs_error;
  bool tracefs = capture::ensure_tracefs(&tracefs_error);
  row("tracefs", tracefs ? capture::tracefs_root() + " mounted" : tracefs_error);
  std::string lockdown = read_line("/sys/kernel/security/lockdown");
  if (!lockdown.empty()) row("lockdown", lockdown);
  std::string stats = read_line("/proc/sys/kernel/bpf_stats_enabled");
  row("bpf_stats", stats == "1" ? "enabled (bpftool prog show reports run time)"
                                : "disabled (sysctl kernel.bpf_stats_enabled=1 to measure program cost)");

  std::string error;
  auto capture = capture::KernelCapture::open(config, &error);
  std::printf("hooks:\n");
  if (!capture) {
    for (const auto& spec : capture::hook_table())
      std::printf("  %-11s %-8s %-40s %s\n", "not loaded", spec.required ? "required" : "optional",
                  std::string(spec.attach).c_str(), std::string(spec.provides).c_str());
    std::printf("weft doctor: %s\n", error.c_str());
    return kExitFailure;
  }
  int degraded = 0;
  for (const auto& status : capture->hooks()) {
    const auto& spec = *status.spec;
    bool attached = status.state == capture::HookState::Attached;
    degraded += !attached;
    std::printf("  %-11s %-8s %-40s %s\n", capture::to_string(status.state),
                spec.required ? "required" : "optional", std::string(spec.attach).c_str(),
                attached ? std::string(spec.provides).c_str()
                         : ("LOST: " + std::string(spec.lost_without) + " (" + status.detail + ")").c_str());
  }
  if (degraded)
    std::printf("weft doctor: required hooks attached; %d optional hook(s) degraded\n", degraded);
  else
    std::printf("weft doctor: all hooks attached\n");
  return 0;
}

}  // namespace weft::cli
