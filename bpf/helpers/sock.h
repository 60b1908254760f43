/* Reading what weft needs from struct sock with CO-RE. */
#ifndef WEFT_HELPERS_SOCK_H
#define WEFT_HELPERS_SOCK_H

#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10
#define WEFT_IPPROTO_TCP 6
#define WEFT_SOCK_STREAM 1

static __always_inline bool sock_is_tcp_inet(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != WEFT_AF_INET && family != WEFT_AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_protocol) == WEFT_IPPROTO_TCP &&
	       BPF_CORE_READ(sk, sk_type) == WEFT_SOCK_STREAM;
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
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: the latter is zeroed when the port is released at close. */
	t->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->pad = 0;
	if (t->family == WEFT_AF_INET) {
		v4_mapped(t->saddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		v4_mapped(t->daddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		/* bpf_core_read with an explicit size: BPF_CORE_READ_INTO would copy one array element. */
		bpf_core_read(t->saddr, sizeof(t->saddr), &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->daddr, sizeof(t->daddr), &sk->__sk_common.skc_v6_daddr);
	}
}

/* Sequence number of the first of `len` bytes just queued (send) or just consumed (recv):
 * the socket hooks fire after tcp_sendmsg/tcp_recvmsg moved write_seq/copied_seq past them. */
static __always_inline __u32 sock_first_seq(const struct sock *sk, __u8 dir, __u32 len)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u32 end = dir == WEFT_DIR_SEND ? BPF_CORE_READ(tp, write_seq) : BPF_CORE_READ(tp, copied_seq);
	return end - len;
}

#endif
