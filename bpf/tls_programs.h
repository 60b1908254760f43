/* TLS plaintext from uprobes on OpenSSL (libssl.so.3, libssl.so.1.1, or linked into a file) and
 * GnuTLS (libgnutls.so.30), attached by userspace once per library file. GnuTLS's data calls
 * have OpenSSL's argument layout (object, buffer, size): the same programs serve both. Entry probes remember the call per thread; return probes emit the
 * plaintext under the connection the call's own socket syscalls named (helpers/tls.h), or the
 * one an earlier call of the same object named. Included at the end of weft.bpf.c. */
#ifndef WEFT_TLS_PROGRAMS_H
#define WEFT_TLS_PROGRAMS_H

#include "helpers/tls.h"

static __always_inline int tls_enter(__u64 ssl, __u64 buf, __u64 len_out, __u8 dir)
{
	if (is_self(bpf_get_current_pid_tgid()))
		return 0;
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call) {
		count_tls(WEFT_TLS_NO_THREAD_STATE);
		return 0;
	}
	if (call->ssl) {
		/* A wrapper entering its inner function (gnutls_record_send tail-jumps to
		 * gnutls_record_send2; BoringSSL's SSL_write_ex calls SSL_write): the same object,
		 * buffer and direction before any socket I/O is one call, not a nested one. The inner
		 * function returns first, so its way of saying how many bytes moved is the one read. */
		if (call->ssl == ssl && call->buf == buf && call->dir == dir && !call->cookie) {
			call->len_out = len_out;
			return 0;
		}
		count_tls(WEFT_TLS_NESTED);
	}
	call->ssl = ssl;
	call->buf = buf;
	call->len_out = len_out;
	call->dir = dir;
	call->cookie = 0;
	call->sk = 0;
	call->seq = 0;
	call->fd = -1;
	call->role = WEFT_ROLE_UNKNOWN;
	call->weft_peer = 0;
	call->seq_unknown = 0;
	call->io_seen = 0;
	call->bio_seen = 0;
	call->bio_hdr = 0;
	call->tx_len = 0;
	call->bio_read_bio = 0;
	return 0;
}

/* Plaintext bytes the call moved: the return value of SSL_read/SSL_write, *len_out of the
 * _ex variants (which return 1 on success). 0 when nothing moved (WANT_READ, errors). */
static __always_inline __u32 tls_moved(const struct tls_call *call, int ret)
{
	if (call->dir == TLS_DIR_HANDSHAKE)
		return 0;
	if (!call->len_out)
		return ret > 0 ? (__u32)ret : 0;
	if (ret != 1)
		return 0;
	__u64 n = 0;
	if (bpf_probe_read_user(&n, sizeof(n), (void *)call->len_out)) {
		count_tls(WEFT_TLS_READ_FAILED);
		return 0;
	}
	return n > 0x7fffffff ? 0x7fffffff : (__u32)n;
}

/* The object's connection: what this call's syscalls named (a new or reused object is tied
 * again), else what an earlier call named. */
static __always_inline struct tls_session *tls_session_of(const struct tls_call *call, __u32 tgid)
{
	struct tls_session_key key = {.ssl = call->ssl, .tgid = tgid};
	struct tls_session *s = bpf_map_lookup_elem(&weft_tls_sessions, &key);
	if (!call->cookie || (s && s->cookie == call->cookie))
		return s;
	return tls_tie(&key, call->cookie, call->sk, call->fd, call->role, call->weft_peer);
}

static __always_inline void tls_emit(const struct tls_call *call, struct tls_session *s, __u64 pid_tgid, __u32 len)
{
	struct data_meta m = {
		/* verifier: a BTF pointer, so the shared tuple helper can load fields directly (a
		 * socket closed since is read through the fault-tolerant path, never crashes). */
		.sk = bpf_core_cast((void *)s->sk, struct sock),
		.ts_ns = call->start_ns,
		.cookie = s->cookie,
		.pid_tgid = pid_tgid,
		.len = len,
		.fd = s->fd,
		.dir = call->dir,
		.role = s->role,
		.source = WEFT_SOURCE_TLS_LIBRARY,
		.syscall = call->dir == WEFT_DIR_SEND ? WEFT_SYS_TLS_WRITE : WEFT_SYS_TLS_READ,
	};
	if (call->cookie && !call->seq_unknown)
		m.seq = call->seq;
	else
		m.flags = WEFT_DATA_NO_SEQUENCE;
	/* Atomic: two threads may use one object (with the application's own locking). */
	m.pos = __sync_fetch_and_add(call->dir == WEFT_DIR_SEND ? &s->send_pos : &s->recv_pos, (__u64)len);
	struct syscall_buffer b = {.shape = SHAPE_FLAT, .fd = s->fd, .arg1 = call->buf, .arg2 = len};
	if (capture_direct(&m, &b, false))
		return;
	__u32 zero = 0;
	struct weft_data_scratch *scratch = bpf_map_lookup_elem(&weft_scratch, &zero);
	if (!scratch)
		return;
	struct weft_data_event *ev = (struct weft_data_event *)scratch->bytes;
	fill_data_header(ev, &m, 0);
	capture_syscall(ev, &b, len, m.pos, m.seq, false);
}

/* A memory-BIO SSL_write whose record can be looked for in the thread's next send: one whole
 * record written (a larger plaintext spans several; the record carrying its first byte is not
 * the last one written, so none is looked for). */
static __always_inline bool tls_bio_defers(const struct tls_call *call, __u32 len)
{
	return call->dir == WEFT_DIR_SEND && !call->io_seen && call->tx_len &&
	       len <= TLS_MAX_FRAGMENT && call->tx_len - TLS_RECORD_HEADER >= len;
}

/* A free slot, else the oldest one, given up on. */
static __always_inline struct tls_pending *tls_bio_free_slot(struct tls_pending_slots *ps, __u64 pid_tgid)
{
	int oldest = 0;
	for (int i = 0; i < TLS_PENDING_SLOTS; i++) {
		if (!ps->slot[i].ssl)
			return &ps->slot[i];
		if (ps->slot[i].since < ps->slot[oldest].since)
			oldest = i;
	}
	struct tls_pending *p = &ps->slot[oldest & (TLS_PENDING_SLOTS - 1)]; /* verifier: in slot[] */
	tls_bio_flush(p, pid_tgid);
	return p;
}

/* The plaintext waits in a pending slot of the thread for the send that carries its record. */
static __always_inline void tls_bio_defer(struct tls_call *call, __u32 len, __u64 pid_tgid)
{
	struct tls_pending_slots *ps =
		bpf_task_storage_get(&weft_tls_pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ps) {
		count_tls(WEFT_TLS_NO_THREAD_STATE);
		return;
	}
	struct tls_pending *p = tls_bio_free_slot(ps, pid_tgid);
	__u32 n = len < cfg_max_capture_bytes ? len : cfg_max_capture_bytes;
	if (n > TLS_PENDING_CAPTURE) /* verifier: the copy stays inside rec[] */
		n = TLS_PENDING_CAPTURE;
	p->read_failed = 0;
	if (n && bpf_probe_read_user(p->rec + sizeof(struct weft_data_event), n, (void *)call->buf)) {
		p->read_failed = 1;
		n = 0;
	}
	p->ssl = call->ssl;
	p->since = bpf_ktime_get_ns();
	p->len = len;
	p->captured = n;
	p->rec_len = call->tx_len;
	__builtin_memcpy(p->head, call->tx_head, sizeof(p->head));
}

static __always_inline int tls_exit(int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->ssl)
		return 0;
	__u32 len = tls_moved(call, ret);
	bool defer = len > 0 && tls_bio_defers(call, len);
	/* The library moved bytes through a BIO with no syscall: from now on this thread's receives
	 * are kept (helpers/tls_bio.h); threads that never do this pay nothing for it. (A socket
	 * BIO's read that found nothing, EAGAIN, returned no bytes: it marks nothing.) */
	if ((call->bio_seen || defer) && !call->io_seen)
		call->memory_bio = 1;
	struct tls_session *s = tls_session_of(call, pid_tgid >> 32);
	if (defer) {
		tls_bio_defer(call, len, pid_tgid);
	} else if (len > 0) {
		if (!s)
			count_tls(WEFT_TLS_UNMAPPED);
		else if (!s->weft_peer) {
			count_tls(WEFT_TLS_CALLS);
			tls_emit(call, s, pid_tgid, len);
		}
	}
	call->ssl = 0;
	return 0;
}

/* SSL_do_handshake: a call that moves no plaintext, hooked so that a memory-BIO user whose
 * handshake runs outside SSL_read/SSL_write (Python's asyncio) has its thread marked before its
 * first request arrives, and its object tied if the handshake's bytes prove its socket. */
SEC("uprobe")
int BPF_UPROBE(tls__handshake_enter, void *ssl)
{
	return tls_enter((__u64)ssl, 0, 0, TLS_DIR_HANDSHAKE);
}

SEC("uprobe")
int BPF_UPROBE(tls__write_enter, void *ssl, const void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, WEFT_DIR_SEND);
}

SEC("uprobe")
int BPF_UPROBE(tls__write_ex_enter, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)written, WEFT_DIR_SEND);
}

SEC("uprobe")
int BPF_UPROBE(tls__read_enter, void *ssl, void *buf, int num)
{
	return tls_enter((__u64)ssl, (__u64)buf, 0, WEFT_DIR_RECV);
}

SEC("uprobe")
int BPF_UPROBE(tls__read_ex_enter, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, WEFT_DIR_RECV);
}

/* One return program for all: the entry probe said which call it was. OpenSSL's return int:
 * only eax is the result. GnuTLS's return ssize_t, but a call moves at most one record (16 KiB
 * of plaintext) and its errors are small negatives, so eax holds the whole value. */
SEC("uretprobe")
int BPF_URETPROBE(tls__exit, int ret)
{
	return tls_exit(ret);
}

/* BIO_read and BIO_write (libcrypto, or linked in): OpenSSL's record layer calls them for every
 * record, whatever the BIO. They run for every BIO of the process (files, PEM buffers), so they
 * return at once unless a TLS call is in flight on the thread. */
SEC("uprobe")
int BPF_UPROBE(tls__bio_read_enter, void *bio, void *data, int dlen)
{
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->ssl)
		return 0;
	call->bio_read_bio = (__u64)bio;
	call->bio_read_buf = (__u64)data;
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(tls__bio_read_exit, int ret)
{
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->ssl || !call->bio_read_bio)
		return 0;
	__u64 bio = call->bio_read_bio;
	call->bio_read_bio = 0;
	if (ret > 0 && !call->io_seen) {
		call->bio_seen = 1;
		tls_bio_follow(call, bio, call->bio_read_buf, (__u32)ret);
	}
	return 0;
}

/* The call's last whole application-data record (the outer type of every TLS 1.3 record
 * after the handshake): the one to look for in the thread's next send. A memory BIO takes
 * every byte it is given, so the record is known at the entry. */
SEC("uprobe")
int BPF_UPROBE(tls__bio_write_enter, void *bio, const void *data, int dlen)
{
	struct tls_call *call = bpf_task_storage_get(&weft_tls_calls, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->ssl)
		return 0;
	if (call->dir != WEFT_DIR_SEND || dlen < TLS_MATCH_BYTES || dlen > TLS_RECORD_HEADER + TLS_MAX_FRAGMENT + 2048 ||
	    bpf_probe_read_user(call->scratch, TLS_MATCH_BYTES, data))
		return 0;
	const __u8 *h = call->scratch;
	if (h[0] != TLS_CONTENT_APPLICATION_DATA || h[1] != 3 ||
	    TLS_RECORD_HEADER + ((__u32)h[3] << 8 | h[4]) != (__u32)dlen)
		return 0;
	__builtin_memcpy(call->tx_head, call->scratch, sizeof(call->tx_head));
	call->tx_len = dlen;
	return 0;
}

/* SSL_free, SSL_shutdown (after which an object may be cleared and reused for another
 * connection) and gnutls_deinit: the pointer may be handed out again, so its connection is
 * forgotten. */
SEC("uprobe")
int BPF_UPROBE(tls__forget, void *ssl)
{
	/* A record still waiting for its send is given up on first: a pointer handed out again
	 * must not be re-tied by an old record's bytes. */
	struct tls_pending_slots *ps = bpf_task_storage_get(&weft_tls_pending, bpf_get_current_task_btf(), 0, 0);
	if (ps)
		for (int i = 0; i < TLS_PENDING_SLOTS; i++)
			if (ps->slot[i].ssl == (__u64)ssl)
				tls_bio_flush(&ps->slot[i], bpf_get_current_pid_tgid());
	struct tls_session_key key = {.ssl = (__u64)ssl, .tgid = bpf_get_current_pid_tgid() >> 32};
	bpf_map_delete_elem(&weft_tls_sessions, &key);
	return 0;
}

#endif
