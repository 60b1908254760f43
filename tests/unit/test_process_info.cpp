// ProcessResolver against a fake /proc: one ProcessInfo per process image, whatever its
// threads are called.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "capture/process_info.h"

namespace weft::capture {
namespace {

namespace fs = std::filesystem;

class FakeProc {
 public:
  FakeProc() {
    char pattern[] = "/tmp/weft-proc-XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    root_ = made;
  }
  ~FakeProc() { fs::remove_all(root_); }
  std::string root() const { return root_.string(); }

  // A process running `exe` since `start` ticks, with OTEL_SERVICE_NAME=`service`.
  void process(uint32_t pid, const std::string& exe, uint64_t start, const std::string& service,
               const std::string& comm = "main") {
    fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir);
    exec(pid, exe);
    // The comm field may hold spaces and parentheses: fields count from its last ')'.
    write(dir / "stat", std::to_string(pid) + " (" + comm +
                            ") S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 " +
                            std::to_string(start) + " 1000 200 18446744073709551615\n");
    write(dir / "environ",
          std::string("PATH=/bin\0OTEL_SERVICE_NAME=", 28) + service + std::string("\0", 1));
    write(dir / "cmdline", exe + std::string("\0--flag\0", 8));
  }
  void exec(uint32_t pid, const std::string& exe) {
    fs::path link = root_ / std::to_string(pid) / "exe";
    fs::remove(link);
    fs::create_symlink(exe, link);
  }
  void set_service(uint32_t pid, const std::string& service) {
    write(root_ / std::to_string(pid) / "environ", "OTEL_SERVICE_NAME=" + service);
  }
  void exit(uint32_t pid) { fs::remove_all(root_ / std::to_string(pid)); }

 private:
  static void write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  fs::path root_;
};

TEST_CASE("process resolver: every thread of one process shares one ProcessInfo") {
  FakeProc proc;
  proc.process(100, "/usr/bin/python3", 5000, "shop", "python3");
  ProcessResolver resolver(proc.root());
  auto first = resolver.resolve(100, "python3");
  REQUIRE(first != nullptr);
  CHECK(first->exe == "/usr/bin/python3");
  CHECK(first->service_name == "shop");
  CHECK(first->command_line == "/usr/bin/python3 --flag");
  // Other threads name themselves; the process is the same image, so nothing is re-read: a
  // changed environ file would show if it were.
  proc.set_service(100, "changed");
  for (const char* thread : {"Thread-1", "uvicorn worker", "python3", "Thread-2"}) {
    auto again = resolver.resolve(100, thread);
    CHECK(again.get() == first.get());
  }
  CHECK(resolver.known(100).get() == first.get());
}

TEST_CASE("process resolver: an exec gives the process its new executable") {
  FakeProc proc;
  proc.process(200, "/bin/sh", 7000, "");
  ProcessResolver resolver(proc.root());
  auto before = resolver.resolve(200, "sh");
  CHECK(before->exe == "/bin/sh");
  proc.exec(200, "/usr/bin/nginx");
  proc.set_service(200, "web");
  auto after = resolver.resolve(200, "nginx");
  CHECK(after.get() != before.get());
  CHECK(after->exe == "/usr/bin/nginx");
  CHECK(after->service_name == "web");
  CHECK(resolver.resolve(200, "nginx worker").get() == after.get());
}

TEST_CASE("process resolver: a reused pid is a new process even with the same executable") {
  FakeProc proc;
  proc.process(300, "/usr/bin/node", 1000, "first");
  ProcessResolver resolver(proc.root());
  auto old = resolver.resolve(300, "node");
  proc.exit(300);
  proc.process(300, "/usr/bin/node", 9000, "second");
  auto fresh = resolver.resolve(300, "node-worker");
  CHECK(fresh.get() != old.get());
  CHECK(fresh->service_name == "second");
}

TEST_CASE("process resolver: a process that is gone keeps what weft knew of it") {
  FakeProc proc;
  proc.process(400, "/usr/bin/java", 1000, "orders");
  ProcessResolver resolver(proc.root());
  auto seen = resolver.resolve(400, "java");
  proc.exit(400);
  auto late = resolver.resolve(400, "http-nio-8080-exec-7");
  CHECK(late.get() == seen.get());
  CHECK(late->exe == "/usr/bin/java");
}

TEST_CASE("process resolver: exited processes are forgotten and reported once") {
  FakeProc proc;
  proc.process(600, "/usr/bin/curl", 1000, "");
  proc.process(601, "/usr/sbin/nginx", 1000, "");
  ProcessResolver resolver(proc.root());
  resolver.resolve(600, "curl");
  resolver.resolve(601, "nginx");
  CHECK(resolver.forget_exited().empty());
  proc.exit(600);
  CHECK(resolver.forget_exited() == std::vector<uint32_t>{600});
  CHECK(resolver.known(600) == nullptr);
  CHECK(resolver.known(601) != nullptr);
  CHECK(resolver.forget_exited().empty());
}

TEST_CASE("process resolver: an executable replaced on disk is still the same image") {
  FakeProc proc;
  proc.process(500, "/usr/sbin/nginx", 1000, "");
  ProcessResolver resolver(proc.root());
  auto running = resolver.resolve(500, "nginx");
  proc.exec(500, "/usr/sbin/nginx (deleted)");  // what the kernel shows after an upgrade
  auto later = resolver.resolve(500, "nginx worker");
  CHECK(later.get() == running.get());
  CHECK(later->exe == "/usr/sbin/nginx");
}

}  // namespace
}  // namespace weft::capture
