/* Load-time settings written by userspace into .rodata before the programs load. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

const volatile __u32 cfg_self_netns = 0;         /* inode of weft's network namespace */
const volatile __u32 cfg_chunk_bytes = 4096;     /* payload bytes per data record */
const volatile __u32 cfg_max_capture_bytes = 4096; /* payload bytes per syscall, all chunks */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024; /* wake the consumer once this much is queued */

/* weft's own thread group id as the kernel (the root pid namespace) numbers it: never traced.
 * Not a load-time constant: inside a pid namespace getpid() is another number, so self__learn
 * writes it, run once by userspace in its own context before any hook is attached. */
__u32 self_tgid = 0;

#endif
