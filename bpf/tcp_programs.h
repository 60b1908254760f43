/* What the kernel's TCP did to a connection: retransmissions, resets, RTT and the socket's own
 * counters (struct weft_tcp_event, docs/network.md). Only tracepoints that fire when TCP does
 * something rare (a retransmission, a reset, a handshake or a close): nothing per byte, and the
 * data hooks are untouched. Included by weft.bpf.c before conn__state, which calls
 * tcp_note_state(). */
#ifndef WEFT_TCP_PROGRAMS_H
#define WEFT_TCP_PROGRAMS_H

#define WEFT_TCP_STATE_TIME_WAIT 6
#define WEFT_TCP_STATE_NEW_SYN_RECV 12

/* Per server connection: the application's read position (copied_seq) when its receive queue
 * was last reported (WEFT_TCP_DATA_QUEUED). LRU: a forgotten entry only reports one arrival
 * twice. Not deleted at close (a cookie is never reused, and a delete on every close cost
 * conn__state ~100 ns whether or not this hook is attached): eviction reclaims it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} weft_tcp_rx SEC(".maps");

/* A time-wait or request socket shares struct sock_common only: no tcp_sock to read. */
static __always_inline bool tcp_full_socket(const struct sock *sk)
{
	__u8 state = sk->__sk_common.skc_state;
	return state != WEFT_TCP_STATE_TIME_WAIT && state != WEFT_TCP_STATE_NEW_SYN_RECV;
}

static __always_inline void tcp_read_counters(const struct sock *sk, struct weft_tcp_counters *c)
{
	/* verifier: tcp_sock fields lie beyond struct sock, so the pointer is re-typed first. */
	const struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
	c->srtt_us = tp->srtt_us >> 3; /* the kernel keeps it scaled by 8 */
	c->rttvar_us = tp->mdev_us >> 2; /* ... and the mean deviation by 4 */
	c->min_rtt_us = tp->rtt_min.s[0].v; /* the windowed minimum's best sample */
	c->total_retrans = tp->total_retrans;
	c->bytes_acked = tp->bytes_acked;
	c->bytes_received = tp->bytes_received;
}

/* The connection's state when weft reports on it. weft's own sockets have no entry, its peers'
 * (a scraper, a collector) are flagged; a socket weft never saw a handshake or a byte of has
 * no entry either: nothing would tie its facts to a process. */
static __always_inline const struct weft_conn_state *tcp_tracked(__u64 cookie)
{
	const struct weft_conn_state *st = bpf_map_lookup_elem(&weft_conns, &cookie);
	return st && !st->weft_peer ? st : NULL;
}

static __always_inline void tcp_emit(const struct sock *sk, __u64 cookie, const struct weft_conn_state *st,
				     struct weft_tcp_event *ev)
{
	/* Timers and softirqs raise most of these: the owner comes from the map, not from the
	 * interrupted task, so fill_header's pid and comm helpers would be wasted. */
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.cookie = cookie;
	ev->hdr.kind = WEFT_EVENT_TCP;
	sock_read_tuple(sk, &ev->hdr.tuple);
	ev->hdr.pid = st->pid;
	ev->hdr.tid = st->tid;
	ev->hdr.fd = st->fd;
	ev->hdr.role = st->role;
	__builtin_memcpy(ev->hdr.comm, st->comm, sizeof(ev->hdr.comm));
	ev->state = sk->__sk_common.skc_state;
	if (tcp_full_socket(sk))
		tcp_read_counters(sk, &ev->counters);
	ring_output(ev, sizeof(*ev));
}

/* conn__state's part for TCP facts, before it forgets the connection at close: every close
 * reports the socket's final counters; a handshake only when it needed retransmissions (SYN or
 * SYN-ACK: total_retrans, which the kernel starts from the request's count on a server).
 * Without any, the client's connect time is its first RTT sample and says as much: one record
 * per connection saved (~0.7 us here, docs/performance.md). */
static __always_inline void tcp_note_state(const struct sock *sk, __u64 cookie, const struct weft_conn_state *st,
					   int oldstate, int newstate)
{
	struct weft_tcp_event ev = {};
	if (st->weft_peer)
		return;
	if (newstate == TCP_CLOSE) {
		ev.what = WEFT_TCP_CLOSED;
	} else if (newstate == TCP_ESTABLISHED && (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)) {
		const struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
		if (tp->total_retrans == 0)
			return;
		ev.what = WEFT_TCP_ESTABLISHED;
	} else {
		return;
	}
	tcp_emit(sk, cookie, st, &ev);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp__retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	/* A retransmission that did not leave (no memory, local congestion) is no packet on the
	 * wire, and the kernel's RetransSegs does not count it either. */
	if (err)
		return 0;
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	const struct weft_conn_state *st = tcp_tracked(cookie);
	if (!st)
		return 0;
	struct tcp_skb_cb cb;
	/* verifier: skb->cb is a char array; its TCP view is read as a copy. */
	if (bpf_probe_read_kernel(&cb, sizeof(cb), skb->cb))
		return 0;
	struct weft_tcp_event ev = {.what = WEFT_TCP_RETRANSMIT, .seq = cb.seq, .end_seq = cb.end_seq};
	ev.segs = cb.tcp_gso_segs ? cb.tcp_gso_segs : 1;
	tcp_emit(sk, cookie, st, &ev);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp__send_reset, const struct sock *sk, const struct sk_buff *skb, const enum sk_rst_reason reason)
{
	if (!sk) /* a reset answering a segment no socket owns */
		return 0;
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct weft_tcp_event ev = {.what = WEFT_TCP_RESET_SENT, .detail = reason};
	const struct weft_conn_state *st = tcp_tracked(cookie);
	if (st) {
		tcp_emit(sk, cookie, st, &ev);
		return 0;
	}
	/* An abortive close (SO_LINGER 0, unread data, an ABORTONDATA segment) moves the socket
	 * to CLOSE, where conn__state forgets it, before the reset goes: reported without an owner
	 * (pid 0), and userspace gives it to the connection of that cookie if it knows one. */
	if (sk->__sk_common.skc_state == TCP_CLOSE) {
		struct weft_conn_state no_owner = {};
		tcp_emit(sk, cookie, &no_owner, &ev);
	}
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp__receive_reset, struct sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	const struct weft_conn_state *st = tcp_tracked(cookie);
	if (!st)
		return 0;
	struct weft_tcp_event ev = {.what = WEFT_TCP_RESET_RECEIVED};
	tcp_emit(sk, cookie, st, &ev);
	return 0;
}

/* Bytes arrived on a socket (sock_def_readable, so TCP once per segment that makes data
 * readable). Only server connections report, and only the first arrival after the application
 * read: the request's bytes then waited in the queue from this moment to the read that takes
 * them (docs/network.md, receive-queue wait). */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(tcp__data_ready, const struct sock *sk)
{
	if (!sock_is_tcp_inet(sk))
		return 0;
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	const struct weft_conn_state *st = tcp_tracked(cookie);
	if (!st || st->role != WEFT_ROLE_SERVER)
		return 0;
	const struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
	__u32 copied = tp->copied_seq;
	__u32 *reported = bpf_map_lookup_elem(&weft_tcp_rx, &cookie);
	if (reported && *reported == copied)
		return 0; /* the application has not read since the last report: same wait */
	bpf_map_update_elem(&weft_tcp_rx, &cookie, &copied, BPF_ANY);
	struct weft_tcp_event ev = {.what = WEFT_TCP_DATA_QUEUED, .seq = copied, .end_seq = tp->rcv_nxt};
	tcp_emit(sk, cookie, st, &ev);
	return 0;
}

#define WEFT_TCPHDR_ACK 0x10

/* ACK facts from tcp_probe, which fires at the start of tcp_rcv_established for every segment
 * arriving on an established socket of the machine: before any map lookup it returns unless
 * the socket has bytes in flight and the segment is an ACK that either leaves nothing in
 * flight (about once per response) or closes the send window (the peer's buffer is full).
 * - ACKED (server connections): every byte the server had sent (its response) is acknowledged
 *   now: the time from a response's last write to its last byte's ACK (docs/network.md).
 * - ZERO_WINDOW (any tracked connection): the peer advertised a zero receive window while the
 *   window was open; a zero window with nothing in flight (after an ACK of everything) is not
 *   seen here. */
SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp__acked, const struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
	__u32 una = tp->snd_una, nxt = tp->snd_nxt;
	if (una == nxt)
		return 0; /* nothing in flight */
	struct tcp_skb_cb cb;
	/* verifier: skb->cb is a char array; its TCP view is read as a copy. */
	if (bpf_probe_read_kernel(&cb, sizeof(cb), skb->cb))
		return 0;
	if (!(cb.tcp_flags & WEFT_TCPHDR_ACK))
		return 0;
	/* tcp_rcv_established reads the header at skb->data: so does this. */
	const struct tcphdr *th = bpf_core_cast(skb->data, struct tcphdr);
	bool zero_window = th->window == 0 && tp->snd_wnd != 0; /* snd_wnd: before this ACK */
	bool drained = cb.ack_seq == nxt;
	if (!zero_window && !drained)
		return 0;
	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	const struct weft_conn_state *st = tcp_tracked(cookie);
	if (!st)
		return 0;
	struct weft_tcp_event ev = {.seq = una, .end_seq = cb.ack_seq};
	if (zero_window) {
		ev.what = WEFT_TCP_ZERO_WINDOW;
		tcp_emit(sk, cookie, st, &ev);
	}
	if (drained && st->role == WEFT_ROLE_SERVER) {
		ev.what = WEFT_TCP_ACKED;
		tcp_emit(sk, cookie, st, &ev);
	}
	return 0;
}

#endif
