/* Tying a TLS library call to its connection, without kprobes: while a call is in flight on a
 * thread, the socket hooks firing inside it on that thread (the library's own read/write)
 * learn the socket. */
#ifndef WEFT_HELPERS_TLS_H
#define WEFT_HELPERS_TLS_H

#include "../maps.h"
#include "sock.h"

/* Bytes compared to find a memory BIO's record in a send: a protected TLS record's body is
 * indistinguishable from random, so equal bytes of it name one record on the machine. */
#define TLS_MATCH_BYTES 32
/* Bytes of a protected record's body that prove a receive: what an AEAD cipher output is (past
 * TLS 1.2's 8-byte explicit nonce, which OpenSSL fills with the record number). Handshake
 * records in the clear are not random enough: a server's certificate, or the key name that
 * opens its session tickets, are the same on every connection. */
#define TLS_PROOF_BYTES 16

/* tls_call.dir of SSL_do_handshake: no plaintext, and no socket direction names it. */
#define TLS_DIR_HANDSHAKE 0xff

/* The last receive of a memory-BIO thread (node, Python's asyncio: the application reads the
 * socket and hands the ciphertext to the library's BIO outside the TLS call), kept to be
 * compared with what BIO_read returns inside the next calls (helpers/tls_bio.h). */
struct tls_rx {
	__u64 cookie;
	__u64 sk;
	__u64 bio; /* the BIO whose reads follow this receive from its first byte; 0: none yet */
	__u32 seq; /* TCP sequence number of its first byte */
	__u32 len; /* bytes it moved; 0: nothing to compare with */
	__u32 off; /* offset of `bio`'s next byte in it */
	__s32 fd;
	__u8 role;
	__u8 weft_peer;
	__u8 proven; /* `bio` returned the proof bytes at their offset: its bytes are this socket's */
	__u8 pad;
	__u32 proof_at; /* offset of the proof bytes: inside its first protected record's body */
	__u32 pad2;
	__u64 proof[TLS_PROOF_BYTES / 8];
	__u8 head[TLS_MATCH_BYTES]; /* its first bytes: which BIO follows it (not a proof) */
};

/* The TLS call in flight on a thread, if any. Task storage: found without hashing, and freed
 * with the thread, so a thread that dies inside a call leaves nothing behind. */
struct tls_call {
	__u64 ssl;	/* the library's TLS object (SSL*, gnutls_session_t); 0 when no call is in flight */
	__u64 buf;	/* the caller's plaintext buffer */
	__u64 len_out;	/* size_t* of SSL_read_ex/SSL_write_ex, 0 for SSL_read/SSL_write */
	__u64 sk;	/* learnt: the socket the call moved bytes on */
	__u64 cookie;	/* learnt: its cookie; 0 until a socket hook fired inside the call */
	__u64 start_ns; /* the record's time when not its emission (Go's writes); 0: now */
	__u32 seq;	/* learnt: TCP sequence number of the first byte the call moved */
	__s32 fd;
	__u8 dir; /* enum weft_direction of the plaintext */
	__u8 role;
	__u8 weft_peer;
	__u8 seq_unknown; /* the socket is known (memory BIO) but not the sequence number of the call's record
			   */
	/* Memory BIOs (helpers/tls_bio.h). */
	__u8 io_seen;	 /* a socket syscall (either direction) ran inside the call */
	__u8 bio_seen;	 /* a BIO_read inside the call returned bytes with no syscall */
	__u8 memory_bio; /* kept across calls: this thread's library moved bytes with no syscall */
	__u8 bio_hdr;	 /* the call read a record header from a receive's bytes: at bio_hdr_seq */
	__u32 bio_hdr_seq;
	__u32 tx_len;	    /* tx_head is the call's last whole record written (BIO_write); 0: none */
	__u64 bio_read_bio; /* BIO_read in flight: its BIO and buffer (entry to return) */
	__u64 bio_read_buf;
	__u64 tx_head[TLS_MATCH_BYTES / 8];
	__u8 scratch[TLS_MATCH_BYTES]; /* bytes read for a comparison (off the stack) */
	struct tls_rx rx;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} weft_tls_calls SEC(".maps");

/* A TLS object of a process, tied to its connection: for later calls that make no syscall
 * (SSL_read returning plaintext the library already holds), and the plaintext stream
 * positions. */
struct tls_session_key {
	__u64 ssl;
	__u32 tgid; /* pointers are per process */
	__u32 pad;
};

struct tls_session {
	__u64 cookie;
	__u64 sk;
	__u64 send_pos; /* plaintext positions: the library's stream, not the socket's */
	__u64 recv_pos;
	__s32 fd;
	__u8 role;
	__u8 weft_peer;
	__u8 pad[2];
};

/* LRU: SSL_free forgets an object, but a process that exits (or is killed) without freeing
 * leaves its objects behind; the oldest go first. An evicted live object's later buffered
 * reads are counted as unmapped, never attached elsewhere. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* resized like weft_conns by userspace */
	__type(key, struct tls_session_key);
	__type(value, struct tls_session);
} weft_tls_sessions SEC(".maps");

/* Ties a TLS object to the connection a call named: its plaintext positions start at 0. */
static __always_inline struct tls_session *tls_tie(const struct tls_session_key *key, __u64 cookie, __u64 sk,
						   __s32 fd, __u8 role, __u8 weft_peer)
{
	struct tls_session fresh = {
	    .cookie = cookie, .sk = sk, .fd = fd, .role = role, .weft_peer = weft_peer};
	bpf_map_update_elem(&weft_tls_sessions, key, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&weft_tls_sessions, key);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_TLS_COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} weft_tls_counts SEC(".maps");

static __always_inline void count_tls(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&weft_tls_counts, &what);
	if (n)
		*n += 1; /* per-CPU slot: no atomic needed */
}

#include "tls_bio.h"

/* Called by the socket data hooks for every event: the one per-thread lookup TLS costs them.
 * The first syscall in the call's own direction names the connection (a read inside SSL_write
 * or a write inside SSL_read is protocol housekeeping, e.g. a key update). On a memory-BIO
 * thread every receive is kept, and every send may carry a record a call wrote. */
static __always_inline void tls_note_socket(struct task_struct *task, struct sock *sk, __u64 cookie, __s32 fd,
					    __u8 dir, int len, const struct weft_conn_state *st,
					    const struct syscall_buffer *b)
{
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, task, 0, 0);
	if (!call)
		return;
	if (call->memory_bio)
		tls_bio_note_io(task, call, sk, cookie, fd, dir, len, st, b);
	if (!call->ssl)
		return;
	call->io_seen = 1;
	if (call->cookie || call->dir != dir)
		return;
	call->cookie = cookie;
	call->sk = (__u64)sk;
	call->fd = fd;
	call->seq = sock_first_seq(sk, dir, len);
	if (st) {
		call->role = st->role;
		call->weft_peer = st->weft_peer;
	}
}

#endif
