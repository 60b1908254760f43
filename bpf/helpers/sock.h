/* Reading what weft needs from struct sock.
 * `sk` must be a BTF pointer (a tp_btf argument, or bpf_core_cast of a raw pointer): fields
 * are then plain CO-RE-relocated loads, far cheaper than one bpf_probe_read_kernel each. */
#ifndef WEFT_HELPERS_SOCK_H
#define WEFT_HELPERS_SOCK_H

#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10
#define WEFT_IPPROTO_TCP 6
#define WEFT_SOCK_STREAM 1
#define WEFT_RCV_SHUTDOWN 1

static __always_inline bool sock_is_tcp_inet(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	if (family != WEFT_AF_INET && family != WEFT_AF_INET6)
		return false;
	return sk->sk_protocol == WEFT_IPPROTO_TCP && sk->sk_type == WEFT_SOCK_STREAM;
}

static __always_inline void v4_mapped(__u8 out[16], __u32 addr_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr_be, 4);
}

static __always_inline void sock_read_tuple(const struct sock *sk, struct weft_tuple *t)
{
	/* verifier: inet_sock fields lie beyond struct sock, so the pointer is re-typed first. */
	const struct inet_sock *inet = bpf_core_cast(sk, struct inet_sock);
	t->family = sk->__sk_common.skc_family;
	/* inet_sport, not skc_num: the latter is zeroed when the port is released at close. */
	t->sport = bpf_ntohs(inet->inet_sport);
	t->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	t->pad = 0;
	if (t->family == WEFT_AF_INET) {
		v4_mapped(t->saddr, sk->__sk_common.skc_rcv_saddr);
		v4_mapped(t->daddr, sk->__sk_common.skc_daddr);
	} else {
		__builtin_memcpy(t->saddr, &sk->__sk_common.skc_v6_rcv_saddr, sizeof(t->saddr));
		__builtin_memcpy(t->daddr, &sk->__sk_common.skc_v6_daddr, sizeof(t->daddr));
	}
}

/* Inode number of the socket's network namespace (as in /proc/<pid>/ns/net). */
static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

/* 127.0.0.0/8 (v4-mapped) or ::1: an address that never leaves its network namespace. */
static __always_inline bool endpoint_is_loopback(const struct weft_endpoint *e)
{
	if (e->addr[10] == 0xff && e->addr[11] == 0xff)
		return e->addr[12] == 127;
	__u64 hi, lo;
	__builtin_memcpy(&hi, e->addr, 8);
	__builtin_memcpy(&lo, e->addr + 8, 8);
	return hi == 0 && lo == bpf_cpu_to_be64(1);
}

static __always_inline void sock_local_endpoint(const struct sock *sk, struct weft_endpoint *e)
{
	const struct inet_sock *inet = bpf_core_cast(sk, struct inet_sock);
	e->port = bpf_ntohs(inet->inet_sport);
	e->pad = 0;
	e->netns = sock_netns(sk);
	if (sk->__sk_common.skc_family == WEFT_AF_INET)
		v4_mapped(e->addr, sk->__sk_common.skc_rcv_saddr);
	else
		__builtin_memcpy(e->addr, &sk->__sk_common.skc_v6_rcv_saddr, sizeof(e->addr));
}

static __always_inline void sock_remote_endpoint(const struct sock *sk, struct weft_endpoint *e)
{
	e->port = bpf_ntohs(sk->__sk_common.skc_dport);
	e->pad = 0;
	e->netns = sock_netns(sk);
	if (sk->__sk_common.skc_family == WEFT_AF_INET)
		v4_mapped(e->addr, sk->__sk_common.skc_daddr);
	else
		__builtin_memcpy(e->addr, &sk->__sk_common.skc_v6_daddr, sizeof(e->addr));
}

/* Sequence number of the first of `len` bytes just queued (send) or just consumed (recv):
 * the socket hooks fire after tcp_sendmsg/tcp_recvmsg moved write_seq/copied_seq past them. */
static __always_inline __u32 sock_first_seq(const struct sock *sk, __u8 dir, __u32 len)
{
	const struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
	if (dir == WEFT_DIR_SEND)
		return tp->write_seq - len;
	__u32 end = tp->copied_seq;
	/* A read that reached the peer's FIN also moved copied_seq past the FIN itself. */
	if ((sk->sk_shutdown & WEFT_RCV_SHUTDOWN) && end == tp->rcv_nxt)
		end -= 1;
	return end - len;
}

#endif
