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
 *    boundary, in the thread's sends (tls_bio_send); the call's plaintext, copied at its return,
 *    waits for it in a pending slot of the thread and is sent, dated, when its ciphertext is.
 * Only threads whose library moved bytes with no syscall (call->memory_bio) keep receives. */
#ifndef WEFT_HELPERS_TLS_BIO_H
#define WEFT_HELPERS_TLS_BIO_H

#define TLS_RECORD_HEADER 5
#define TLS_MAX_FRAGMENT 16384		  /* plaintext bytes in one record (RFC 8446 5.1, RFC 5246 6.2.1) */
#define TLS_CONTENT_APPLICATION_DATA 0x17 /* also TLS 1.3's outer type of every protected record */
#define TLS_SEND_WALK_RECORDS 8		  /* records of one send looked at for a call's record */

/* Memory-BIO calls' plaintext waiting for the sends that carry their records, per thread (only
 * memory-BIO threads have them). A few slots: a thread may encrypt for several connections
 * before it writes their sockets (and in any order). When all are taken, the oldest is sent
 * without a sequence number, under its object's earlier tie. */
#define TLS_PENDING_SLOTS 4
#define TLS_PENDING_CAPTURE 4096 /* plaintext bytes kept per call (beyond: flagged truncated) */

struct tls_pending {
	__u64 ssl;   /* 0: free */
	__u64 since; /* when it began to wait (oldest goes first when all are taken) */
	__u32 len;   /* plaintext bytes the call moved */
	__u32 captured;
	__u32 rec_len; /* the record's length, header included */
	__u8 read_failed;
	__u8 pad[3];
	__u64 head[TLS_MATCH_BYTES / 8];				/* its first bytes */
	__u8 rec[sizeof(struct weft_data_event) + TLS_PENDING_CAPTURE]; /* the record, built in place */
};

struct tls_pending_slots {
	__u64 scratch[TLS_MATCH_BYTES / 8]; /* a send's record, read for comparison (off the stack) */
	struct tls_pending slot[TLS_PENDING_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_pending_slots);
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

#define TLS_NONCE_BYTES 8 /* TLS 1.2 AEAD explicit nonce: skipped, it may be predictable */

/* The proof bytes of a receive: inside the body of its first protected (application data, TLS
 * 1.3's every record after the ServerHello) record long enough, found by walking the record
 * headers from its first byte. */
static __always_inline bool tls_bio_find_proof(struct tls_call *call, __u64 base, __u32 seg)
{
	struct tls_rx *rx = &call->rx;
	__u32 off = 0;
	for (int i = 0; i < TLS_SEND_WALK_RECORDS; i++) {
		if (off + TLS_RECORD_HEADER > seg ||
		    bpf_probe_read_user(call->scratch, TLS_RECORD_HEADER, (void *)(base + off)))
			return false;
		const __u8 *h = call->scratch;
		if (!tls_header_shape(h))
			return false; /* not at a record boundary: nothing here can be told */
		__u32 body = (__u32)h[3] << 8 | h[4];
		__u32 at = off + TLS_RECORD_HEADER + TLS_NONCE_BYTES;
		if (h[0] == TLS_CONTENT_APPLICATION_DATA && body >= TLS_NONCE_BYTES + TLS_PROOF_BYTES) {
			if (at + TLS_PROOF_BYTES > seg ||
			    bpf_probe_read_user(rx->proof, TLS_PROOF_BYTES, (void *)(base + at)))
				return false;
			rx->proof_at = at;
			return true;
		}
		off += TLS_RECORD_HEADER + body;
	}
	return false;
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
	if (bpf_probe_read_user(rx->head, TLS_MATCH_BYTES, (void *)base) ||
	    !tls_bio_find_proof(call, base, seg))
		return;
	rx->cookie = cookie;
	rx->sk = (__u64)sk;
	rx->fd = fd;
	rx->seq = sock_first_seq(sk, WEFT_DIR_RECV, len);
	rx->len = len;
	rx->role = st ? st->role : WEFT_ROLE_UNKNOWN;
	rx->weft_peer = st ? st->weft_peer : 0;
}

/* The slot whose record this is (the first TLS_MATCH_BYTES bytes of a record, and its length). */
static __always_inline int tls_bio_slot_of(struct tls_pending_slots *ps, __u32 rec)
{
	for (int i = 0; i < TLS_PENDING_SLOTS; i++) {
		struct tls_pending *p = &ps->slot[i];
		if (p->ssl && rec == p->rec_len && ps->scratch[0] == p->head[0] &&
		    ps->scratch[1] == p->head[1] && ps->scratch[2] == p->head[2] &&
		    ps->scratch[3] == p->head[3])
			return i;
	}
	return -1;
}

/* The pending plaintext, sent as the record of its call under session `s`. */
static __always_inline void tls_bio_emit(struct tls_pending *p, struct tls_session *s, __u64 pid_tgid,
					 __u32 seq, bool has_seq)
{
	struct data_meta m = {
	    /* verifier: a BTF pointer, as in tls_emit */
	    .sk = bpf_core_cast((void *)s->sk, struct sock),
	    .ts_ns = 0, /* now: when its ciphertext went out (or was given up on) */
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
	if (n > TLS_PENDING_CAPTURE) /* verifier: bounds the record size */
		n = TLS_PENDING_CAPTURE;
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

/* A pending plaintext given up on (its slot is needed and no send carried its record yet):
 * under the connection its object was tied to before, without a sequence number; counted as
 * unmapped when there is none. */
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

/* One send's record walk (a bpf_loop: the verifier looks at one step, not at every record times
 * every slot). */
struct tls_send_walk {
	struct tls_pending_slots *ps;
	__u64 base;
	__u64 seg;
	__u64 sk;
	__u64 cookie;
	__u64 pid_tgid;
	__u32 first_seq;
	__u32 off;
	__s32 fd;
	__u8 role;
	__u8 weft_peer;
};

static long tls_bio_send_step(__u64 index, struct tls_send_walk *w)
{
	struct tls_pending_slots *ps = w->ps;
	__u32 off = w->off;
	if (off + TLS_MATCH_BYTES > w->seg)
		return 1; /* a record shorter than that is none of ours, nor is one cut off */
	if (bpf_probe_read_user(ps->scratch, TLS_MATCH_BYTES, (void *)(w->base + off)))
		return 1;
	const __u8 *h = (const __u8 *)ps->scratch;
	if (!tls_header_shape(h))
		return 1; /* not at a record boundary: nothing here can be told */
	__u32 rec = TLS_RECORD_HEADER + ((__u32)h[3] << 8 | h[4]);
	w->off = off + rec;
	int i = tls_bio_slot_of(ps, rec);
	if (i < 0 || i >= TLS_PENDING_SLOTS) /* verifier: the index stays in slot[] */
		return 0;
	struct tls_pending *p = &ps->slot[i];
	struct tls_session_key key = {.ssl = p->ssl, .tgid = w->pid_tgid >> 32};
	p->ssl = 0;
	struct tls_session *s = bpf_map_lookup_elem(&weft_tls_sessions, &key);
	if (!s || s->cookie != w->cookie)
		s = tls_tie(&key, w->cookie, w->sk, w->fd, w->role, w->weft_peer);
	if (s && !s->weft_peer)
		tls_bio_emit(p, s, w->pid_tgid, w->first_seq + off, true);
	return 0;
}

/* The pending call whose record lies in a send names its socket and the sequence number of its
 * first byte. The send's records are walked from its first byte (what the library wrote before
 * went out whole), each compared with every waiting record. */
static __always_inline void tls_bio_send(struct task_struct *task, struct sock *sk, __u64 cookie, __s32 fd,
					 int len, const struct weft_conn_state *st,
					 const struct syscall_buffer *b)
{
	struct tls_pending_slots *ps = bpf_task_storage_get(&weft_tls_pending, task, 0, 0);
	if (!ps || !(ps->slot[0].ssl | ps->slot[1].ssl | ps->slot[2].ssl | ps->slot[3].ssl))
		return;
	struct tls_send_walk w = {
	    .ps = ps,
	    .sk = (__u64)sk,
	    .cookie = cookie,
	    .pid_tgid = bpf_get_current_pid_tgid(),
	    .first_seq = sock_first_seq(sk, WEFT_DIR_SEND, len),
	    .fd = fd,
	    .role = st ? st->role : WEFT_ROLE_UNKNOWN,
	    .weft_peer = st ? st->weft_peer : 0,
	};
	if (first_segment(b, len, &w.base, &w.seg))
		bpf_loop(TLS_SEND_WALK_RECORDS, tls_bio_send_step, &w, 0);
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
	call->rx.proven = 0;
	call->bio_hdr = 0;
}

/* BIO_read(bio) returned n bytes at buf inside a call: the same bytes, at the running offset, as
 * the thread's last receive? A BIO is taken at the receive's first byte (its first bytes
 * equal); from then on its reads are that receive's bytes in order, compared while they lie in
 * its first TLS_MATCH_BYTES; the socket is proven when the proof bytes (random: inside a
 * protected record) are equal where they lie. Until then a BIO that differs is let go. */
static __always_inline void tls_bio_follow(struct tls_call *call, __u64 bio, __u64 buf, __u32 n)
{
	struct tls_rx *rx = &call->rx;
	if (!rx->len || (rx->bio && rx->bio != bio))
		return; /* nothing kept, or another BIO (the handshake's buffer, a PEM file) */
	__u32 o = rx->bio ? rx->off : 0;
	if (o + n > rx->len) {
		/* More bytes than the receive held: this BIO had others too. Nothing more of this
		 * receive can be told (a proof never passes to another BIO). */
		if (rx->bio) {
			tls_bio_release(call);
			rx->len = 0;
		}
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
	}
	if (!rx->proven && o <= rx->proof_at && o + n >= rx->proof_at + TLS_PROOF_BYTES) {
		/* The chunk covers the proof bytes: compared where they lie in it. */
		__u64 got[TLS_PROOF_BYTES / 8];
		if (bpf_probe_read_user(got, sizeof(got), (void *)(buf + (rx->proof_at - o))))
			return;
		if (got[0] != rx->proof[0] || got[1] != rx->proof[1]) {
			if (rx->bio)
				tls_bio_release(call);
			return;
		}
		rx->proven = 1;
	}
	rx->bio = bio;
	rx->off = o + n;
	if (n == TLS_RECORD_HEADER && !bpf_probe_read_user(call->scratch, TLS_RECORD_HEADER, (void *)buf) &&
	    tls_header_shape(call->scratch)) {
		call->bio_hdr = 1;
		call->bio_hdr_seq = rx->seq + o;
	}
	if (rx->proven)
		tls_bio_name(call, rx);
}

#endif
