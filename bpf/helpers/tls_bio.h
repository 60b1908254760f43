/* Memory-BIO TLS (node's TLSWrap, Python's asyncio SSLObject): the library never touches the
 * socket. The application reads the socket and hands the ciphertext to the library's BIO, then
 * calls SSL_read; SSL_write leaves its record in a BIO that the application writes to the socket
 * after the call returned; both on the same thread. No syscall runs inside the call, so
 * tls_note_socket learns nothing. What ties a call to its socket instead is the ciphertext
 * itself: a TLS record's body is indistinguishable from random, so TLS_MATCH_BYTES equal bytes
 * (at least 16 of them random in any stream that starts at a record) name one record on the
 * machine. Nothing else ties a call: no "last descriptor of this thread".
 *  - receive: what BIO_read returns inside a call is compared with the bytes the thread's last
 *    receive returned, from that receive's first byte on (tls_bio_follow);
 *  - send: the last whole record a call's BIO_write produced is looked for, at a record
 *    boundary, in the thread's next send (tls_bio_note_io); the call's plaintext waits for it in
 *    the thread's pending record (copied at the call's return, sent with its own time).
 * Only threads whose library moved bytes with no syscall (call->memory_bio) keep receives. */
#ifndef WEFT_HELPERS_TLS_BIO_H
#define WEFT_HELPERS_TLS_BIO_H

#define TLS_RECORD_HEADER 5
#define TLS_MAX_FRAGMENT 16384		  /* plaintext bytes in one record (RFC 8446 5.1, RFC 5246 6.2.1) */
#define TLS_CONTENT_APPLICATION_DATA 0x17 /* also TLS 1.3's outer type of every protected record */
#define TLS_SEND_WALK_RECORDS 8		  /* records of one send looked at for a call's record */

/* A memory-BIO call's plaintext that waits for the send carrying its record: one per thread (a
 * thread writes its records to the socket before it calls SSL_write again; when it does not,
 * the older one is sent without a sequence number). Only memory-BIO threads have one. */
struct tls_pending {
	__u64 ssl;   /* 0: nothing waits */
	__u64 ts_ns; /* the call's return: when the plaintext moved */
	__u32 len;   /* plaintext bytes the call moved */
	__u32 captured;
	__u32 rec_len; /* the record's length, header included */
	__u8 read_failed;
	__u8 pad[3];
	__u64 head[TLS_MATCH_BYTES / 8]; /* its first bytes */
	__u64 scratch[TLS_MATCH_BYTES / 8];
	__u8 rec[sizeof(struct weft_data_event) + WEFT_MAX_CHUNK_BYTES]; /* the record, built in place */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_pending);
} weft_tls_pending SEC(".maps");

static __always_inline bool tls_header_shape(const __u8 *h)
{
	return h[0] >= 0x14 && h[0] <= 0x18 && h[1] == 3;
}

/* The first user segment of a syscall's buffer (a flat buffer, or the first iovec). */
static __always_inline bool first_segment(const struct syscall_buffer *b, __u32 len, __u64 *base, __u64 *seg)
{
	if (b->shape == SHAPE_FLAT) {
		*base = b->arg1;
		*seg = len;
		return true;
	}
	__u64 iov_ptr = b->arg1;
	if (b->shape == SHAPE_MSGHDR) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)b->arg1) || !msg.msg_iovlen)
			return false;
		iov_ptr = (__u64)msg.msg_iov;
	} else if (b->shape != SHAPE_IOVEC || !b->arg2) {
		return false;
	}
	struct iovec iov;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iov_ptr))
		return false;
	*base = (__u64)iov.iov_base;
	*seg = iov.iov_len < len ? iov.iov_len : len;
	return true;
}

/* A receive on a memory-BIO thread: kept for the BIO_reads of the calls that follow. */
static __always_inline void tls_bio_keep_receive(struct tls_call *call, struct sock *sk, __u64 cookie,
						 __s32 fd, int len, const struct weft_conn_state *st,
						 const struct syscall_buffer *b)
{
	struct tls_rx *rx = &call->rx;
	rx->len = 0;
	rx->bio = 0;
	rx->off = 0;
	rx->proven = 0;
	__u64 base = 0, seg = 0;
	if (len < TLS_MATCH_BYTES || !first_segment(b, len, &base, &seg) || seg < TLS_MATCH_BYTES)
		return; /* too short to prove anything */
	if (bpf_probe_read_user(rx->head, TLS_MATCH_BYTES, (void *)base))
		return;
	rx->cookie = cookie;
	rx->sk = (__u64)sk;
	rx->fd = fd;
	rx->seq = sock_first_seq(sk, WEFT_DIR_RECV, len);
	rx->len = len;
	rx->role = st ? st->role : WEFT_ROLE_UNKNOWN;
	rx->weft_peer = st ? st->weft_peer : 0;
}

/* The record a pending call wrote, looked for at the record boundaries of a send's first
 * segment (the send starts at a record: what the library wrote before went out whole). */
static __always_inline bool tls_bio_find_record(struct tls_pending *p, const struct syscall_buffer *b,
						__u32 len, __u32 *at)
{
	__u64 base = 0, seg = 0;
	if (!first_segment(b, len, &base, &seg))
		return false;
	__u32 off = 0;
	for (int i = 0; i < TLS_SEND_WALK_RECORDS; i++) {
		if (off + TLS_MATCH_BYTES > seg)
			return false; /* a record shorter than that is none of ours, nor is one cut off */
		if (bpf_probe_read_user(p->scratch, TLS_MATCH_BYTES, (void *)(base + off)))
			return false;
		const __u8 *h = (const __u8 *)p->scratch;
		if (!tls_header_shape(h))
			return false; /* not at a record boundary: nothing here can be told */
		__u32 rec = TLS_RECORD_HEADER + ((__u32)h[3] << 8 | h[4]);
		if (rec == p->rec_len && p->scratch[0] == p->head[0] && p->scratch[1] == p->head[1] &&
		    p->scratch[2] == p->head[2] && p->scratch[3] == p->head[3]) {
			*at = off;
			return true;
		}
		off += rec;
	}
	return false;
}

/* The pending plaintext, sent as the record of its call under session `s`. */
static __always_inline void tls_bio_emit(struct tls_pending *p, struct tls_session *s, __u64 pid_tgid,
					 __u32 seq, bool has_seq)
{
	struct data_meta m = {
	    /* verifier: a BTF pointer, as in tls_emit */
	    .sk = bpf_core_cast((void *)s->sk, struct sock),
	    .ts_ns = p->ts_ns,
	    .cookie = s->cookie,
	    .pid_tgid = pid_tgid,
	    .len = p->len,
	    .seq = has_seq ? seq : 0,
	    .fd = s->fd,
	    .dir = WEFT_DIR_SEND,
	    .role = s->role,
	    .flags = has_seq ? 0 : WEFT_DATA_NO_SEQUENCE,
	    .source = WEFT_SOURCE_TLS_LIBRARY,
	    .syscall = WEFT_SYS_TLS_WRITE,
	};
	m.pos = __sync_fetch_and_add(&s->send_pos, (__u64)p->len);
	struct weft_data_event *ev = (struct weft_data_event *)p->rec;
	__u32 n = p->captured;
	if (n > WEFT_MAX_CHUNK_BYTES) /* verifier: bounds the record size */
		n = WEFT_MAX_CHUNK_BYTES;
	fill_data_header(ev, &m, n);
	ev->flags |= WEFT_DATA_LAST_CHUNK;
	if (n < p->len) {
		ev->flags |= WEFT_DATA_TRUNCATED;
		count_loss(WEFT_LOSS_TRUNCATED);
	}
	if (p->read_failed) {
		ev->flags |= WEFT_DATA_READ_FAILED;
		count_loss(WEFT_LOSS_READ_FAILED);
	}
	count_tls(WEFT_TLS_CALLS);
	ring_output(ev, sizeof(*ev) + n);
}

/* The pending plaintext when no send carried its record: under the connection its object was
 * tied to before, without a sequence number; counted as unmapped when there is none. */
static __always_inline void tls_bio_flush(struct tls_pending *p, __u64 pid_tgid)
{
	struct tls_session_key key = {.ssl = p->ssl, .tgid = pid_tgid >> 32};
	p->ssl = 0;
	struct tls_session *s = bpf_map_lookup_elem(&weft_tls_sessions, &key);
	if (!s)
		count_tls(WEFT_TLS_UNMAPPED);
	else if (!s->weft_peer)
		tls_bio_emit(p, s, pid_tgid, 0, false);
}

/* A send on a memory-BIO thread: the pending call's record in it names its socket and the
 * sequence number of its first byte; any other send means the record left some other way. */
static __always_inline void tls_bio_send(struct task_struct *task, struct sock *sk, __u64 cookie, __s32 fd,
					 int len, const struct weft_conn_state *st,
					 const struct syscall_buffer *b)
{
	struct tls_pending *p = bpf_task_storage_get(&weft_tls_pending, task, 0, 0);
	if (!p || !p->ssl)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 at = 0;
	if (!tls_bio_find_record(p, b, len, &at))
		return tls_bio_flush(p, pid_tgid);
	struct tls_session_key key = {.ssl = p->ssl, .tgid = pid_tgid >> 32};
	p->ssl = 0;
	struct tls_session *s = bpf_map_lookup_elem(&weft_tls_sessions, &key);
	if (!s || s->cookie != cookie)
		s = tls_tie(&key, cookie, (__u64)sk, fd, st ? st->role : WEFT_ROLE_UNKNOWN,
			    st ? st->weft_peer : 0);
	if (s && !s->weft_peer)
		tls_bio_emit(p, s, pid_tgid, sock_first_seq(sk, WEFT_DIR_SEND, len) + at, true);
}

static __always_inline void tls_bio_note_io(struct task_struct *task, struct tls_call *call, struct sock *sk,
					    __u64 cookie, __s32 fd, __u8 dir, int len,
					    const struct weft_conn_state *st, const struct syscall_buffer *b)
{
	if (dir == WEFT_DIR_RECV)
		tls_bio_keep_receive(call, sk, cookie, fd, len, st, b);
	else
		tls_bio_send(task, sk, cookie, fd, len, st, b);
}

/* The call's socket, proven by its bytes; its sequence number when the call read a record
 * header from them in its own direction (the record whose plaintext SSL_read returns is the
 * last one it read: OpenSSL reads a record's header, then its body, and returns its data). */
static __always_inline void tls_bio_name(struct tls_call *call, const struct tls_rx *rx)
{
	if (call->io_seen)
		return; /* a call that moved socket bytes itself is named by them */
	if (!call->cookie) {
		call->cookie = rx->cookie;
		call->sk = rx->sk;
		call->fd = rx->fd;
		call->role = rx->role;
		call->weft_peer = rx->weft_peer;
	} else if (call->cookie != rx->cookie) {
		return;
	}
	call->seq_unknown = !(call->dir == WEFT_DIR_RECV && call->bio_hdr);
	call->seq = call->bio_hdr_seq;
}

/* The BIO released: its bytes were not the receive's after all (an equal record header). */
static __always_inline void tls_bio_release(struct tls_call *call)
{
	call->rx.bio = 0;
	call->rx.off = 0;
	call->bio_hdr = 0;
}

/* BIO_read(bio) returned n bytes at buf inside a call: the same bytes, at the running offset, as
 * the thread's last receive? A BIO is taken at the receive's first byte; from then on its
 * reads are that receive's bytes in order, compared while they lie in its first
 * TLS_MATCH_BYTES; once all of those were equal the socket is proven. */
static __always_inline void tls_bio_follow(struct tls_call *call, __u64 bio, __u64 buf, __u32 n)
{
	struct tls_rx *rx = &call->rx;
	if (!rx->len || (rx->bio && rx->bio != bio))
		return; /* nothing kept, or another BIO (the handshake's buffer, a PEM file) */
	__u32 o = rx->bio ? rx->off : 0;
	if (o + n > rx->len) {
		/* More bytes than the receive held: this BIO had others too. */
		if (rx->bio)
			tls_bio_release(call);
		return;
	}
	if (o < TLS_MATCH_BYTES) {
		__u32 k = n < TLS_MATCH_BYTES - o ? n : TLS_MATCH_BYTES - o;
		/* verifier: k in [1, TLS_MATCH_BYTES], checked on the register the call uses (clang
		 * would otherwise pass n, which it knows equals k on one path, unbounded) */
		barrier_var(k);
		if (k < 1 || k > TLS_MATCH_BYTES || bpf_probe_read_user(call->scratch, k, (void *)buf))
			return;
		for (__u32 i = 0; i < TLS_MATCH_BYTES; i++) {
			if (i >= k)
				break;
			if (call->scratch[i] != rx->head[(o + i) & (TLS_MATCH_BYTES - 1)]) {
				if (rx->bio)
					tls_bio_release(call);
				return;
			}
		}
	} else if (n == TLS_RECORD_HEADER &&
		   bpf_probe_read_user(call->scratch, TLS_RECORD_HEADER, (void *)buf)) {
		return;
	}
	rx->bio = bio;
	rx->off = o + n;
	if (rx->off >= TLS_MATCH_BYTES)
		rx->proven = 1;
	if (n == TLS_RECORD_HEADER && tls_header_shape(call->scratch)) {
		call->bio_hdr = 1;
		call->bio_hdr_seq = rx->seq + o;
	}
	if (rx->proven)
		tls_bio_name(call, rx);
}

#endif
