/* Maps shared by all weft programs. */
#ifndef WEFT_MAPS_H
#define WEFT_MAPS_H

#include "weft_events.h"

/* Per-connection state (struct weft_conn_state, in weft_events.h) keyed by socket cookie.
 * A plain hash, not LRU, so that running out of room is counted instead of silently evicting
 * a live connection. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, struct weft_conn_state);
} weft_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by userspace before load */
} weft_events SEC(".maps");

/* Process starts and exits (struct weft_proc_event) for the proc stage's own thread: kept apart
 * from weft_events so that a flood of data never delays or drops them, nor they the data. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} weft_proc_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_LOSS_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} weft_losses SEC(".maps");

/* A data record is built here, not on the 512-byte BPF stack, then copied to the ring.
 * Room for two chunks of payload: the verifier can then prove fill + n stays inside when
 * it only knows each of them is at most one chunk. */
struct weft_data_scratch {
	__u8 bytes[sizeof(struct weft_data_event) + 2 * WEFT_MAX_CHUNK_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weft_data_scratch);
} weft_scratch SEC(".maps");

/* Local endpoints of weft's own sockets (value: enum weft_self_endpoint_kind). A connection
 * whose remote end is one of them is weft talking to itself (a collector receiving weft's
 * exports, a scraper reading its metrics) and is never reported. LRU: a forgotten entry only
 * costs one such connection being traced. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct weft_endpoint);
	__type(value, __u8);
} weft_self_endpoints SEC(".maps");

/* Cookies of weft's own connections while they connect: their local port is only assigned
 * after SYN_SENT, so the endpoint is remembered when they become established, before any
 * byte can reach the peer. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} weft_self_connecting SEC(".maps");

/* Capture verdicts written by userspace (struct weft_verdict), keyed by socket cookie; no
 * entry means WEFT_CAPTURE_PAYLOAD with nothing skipped. Sized like weft_conns by userspace (a verdict is only ever
 * set for a live connection). Entries are deleted when the connection reaches TCP_CLOSE; LRU so
 * that one set just after its connection closed cannot stay forever: evicting a verdict only
 * brings the payload back, which the pipeline handles as before. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized by userspace before load */
	__type(key, __u64);
	__type(value, struct weft_verdict);
} weft_verdicts SEC(".maps");

static __always_inline void count_loss(__u32 cause)
{
	__u64 *n = bpf_map_lookup_elem(&weft_losses, &cause);
	if (n)
		*n += 1; /* per-CPU slot: no atomic needed */
}

#endif
