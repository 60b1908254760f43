// What an executable's runtime does with threads, read from its ELF file once per process.
#pragma once

#include <string>

namespace weft::capture {

// "go" for a Go program (a `.go.buildinfo` section or a "Go" build-id note: the linker writes
// both and `strip` keeps them); for an event-loop runtime, the loop it links: "libuv" (Node.js
// exports `uv_run`, or the executable needs libuv.so), "nginx" (`ngx_process_events_and_timers`),
// "libevent" (`event_base_loop` or libevent*.so), "libev" (`ev_run` or libev.so); otherwise
// empty. Unreadable or non-ELF files: empty. Reads a few kilobytes, never a symbol table whole.
std::string executable_runtime(const std::string& path);

}  // namespace weft::capture
