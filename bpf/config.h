/* Load-time settings written by userspace into .rodata before the programs load. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

const volatile __u32 cfg_self_tgid = 0;          /* weft's own pid: never traced */
const volatile __u32 cfg_chunk_bytes = 4096;     /* payload bytes per data record */
const volatile __u32 cfg_max_capture_bytes = 4096; /* payload bytes per syscall, all chunks */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024; /* wake the consumer once this much is queued */

#endif
