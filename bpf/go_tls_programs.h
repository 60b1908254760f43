/* TLS plaintext from Go's crypto/tls: uprobes on (*Conn).Read and (*Conn).Write of each Go
 * executable, attached by userspace (src/proc/go_tls.cpp) once per file as two uprobe_multi
 * links: the entry of both functions, and every RET instruction of both (never uretprobes: the
 * return trampoline breaks the Go runtime's stack walks and copies).
 *
 * Not the OpenSSL way (helpers/tls.h): a goroutine that parks inside Read (EAGAIN, netpoller)
 * resumes on any OS thread, so neither per-thread state nor the socket syscalls made "on the
 * same thread" say which connection a call is for. Instead the call is keyed by its goroutine
 * (g, R14 in Go's register ABI), and its socket is read from the *tls.Conn itself:
 * c.conn (a net.Conn that must be a *net.TCPConn) -> conn.fd (*netFD) -> pfd.Sysfd -> the
 * process's descriptor table -> struct sock, with offsets from the executable's DWARF.
 * Included at the end of weft.bpf.c, after tls_programs.h (whose emit path it shares). */
#ifndef WEFT_GO_TLS_PROGRAMS_H
#define WEFT_GO_TLS_PROGRAMS_H

#include "helpers/tls.h"

#define WEFT_S_IFMT 0170000
#define WEFT_S_IFSOCK 0140000

/* One per Go executable weft hooked, indexed by its slot; written by userspace before the
 * executable's probes are attached. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEFT_GO_TLS_MAX_BINARIES);
	__type(key, __u32);
	__type(value, struct weft_go_tls_layout);
} weft_go_tls_layouts SEC(".maps");

struct go_tls_call_key {
	__u64 g; /* the goroutine: R14 holds it in every Go >= 1.17 function on amd64 */
	__u32 tgid;
	__u32 pad;
};

/* A Read or Write in flight, from its entry to the RET it leaves by. */
struct go_tls_call {
	__u64 conn; /* the *tls.Conn: positions are per TLS object (weft_tls_sessions) */
	__u64 buf;  /* b's data pointer */
	__u64 cookie;
	__u64 sk;
	__u64 start_ns; /* a write's entry: see go_tls__enter */
	__u32 seq; /* valid when seq_known */
	__s32 fd;
	__u8 dir;
	__u8 role;
	__u8 weft_peer;
	__u8 seq_known;
	__u8 from_start; /* nothing of the TLS stream went by before this call (go_from_start) */
	__u8 pad[7];
	__u32 moved;          /* filled at the return: n */
	struct tls_call emit; /* filled at the return: what the shared emit path reads */
};

/* tls.Conns whose calls are not reported (go_from_start said no), with their cookie: a pointer
 * the garbage collector hands out again for another connection is judged afresh. LRU: nothing
 * says when a tls.Conn is freed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tls_session_key);
	__type(value, __u64);
} weft_go_tls_mid_stream SEC(".maps");

/* LRU: a goroutine that never returns from a call (its process killed) leaves an entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_tls_call_key);
	__type(value, struct go_tls_call);
} weft_go_tls_calls SEC(".maps");

static __always_inline bool go_read_user(void *dst, __u32 size, __u64 addr)
{
	if (!bpf_probe_read_user(dst, size, (const void *)addr))
		return true;
	count_tls(WEFT_TLS_READ_FAILED);
	return false;
}

/* The TCP socket behind descriptor `fd` of the current process (every thread of a Go process
 * shares its descriptor table); NULL when it is not one. */
static __always_inline struct sock *go_tcp_socket_of_fd(__s64 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd < 0 || !fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	/* verifier: the table is indexed by a variable, so it is read, not dereferenced. */
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & WEFT_S_IFMT) != WEFT_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk)
		return NULL;
	/* verifier: a BTF pointer, so the shared sock helpers can load fields directly. */
	sk = bpf_core_cast(sk, struct sock);
	return sock_is_tcp_inet(sk) ? sk : NULL;
}

/* The TCP sequence number of the first ciphertext byte the call consumes, into call->seq;
 * false when there is none to name: the handshake is not done (its records come first), or a
 * read starts on plaintext decrypted earlier. Ciphertext read earlier and not decrypted yet
 * (rawInput) is the tail of what the socket delivered, so its first byte is that far back. */
static __always_inline bool go_call_seq(const struct weft_go_tls_layout *l, __u64 conn, struct sock *sk,
					struct go_tls_call *call)
{
	__u32 done = 0;
	if (!go_read_user(&done, sizeof(done), conn + l->handshake_done) || !done)
		return false;
	call->seq = sock_first_seq(sk, call->dir, 0);
	if (call->dir == WEFT_DIR_SEND)
		return true;
	__s64 raw[2] = {}, in[2] = {}; /* {length, read offset} */
	if (!go_read_user(&raw[0], 8, conn + l->raw_input_len) || !go_read_user(&raw[1], 8, conn + l->raw_input_off) ||
	    !go_read_user(&in[0], 8, conn + l->input_len) || !go_read_user(&in[1], 8, conn + l->input_i))
		return false;
	if (in[0] > in[1] || raw[1] > raw[0])
		return false;
	call->seq -= (__u32)(raw[0] - raw[1]);
	return true;
}

/* Whether no application data went by this tls.Conn in the call's direction before this call:
 * then plaintext positions can start at 0 here. True before the handshake is done; after it,
 * the direction's TLS record sequence number must still be where application data starts (0
 * under TLS 1.3's traffic keys, 1 under TLS 1.2's, whose first record is Finished). Else the
 * connection is older than weft's hooks, or a call was in flight when they attached: the
 * plaintext weft would report would sit at wrong positions and pair with wrong messages. A TLS
 * 1.3 server that wrote session tickets before its first Write is judged "not from the start"
 * (nothing reported rather than a guess). */
static __always_inline bool go_from_start(const struct weft_go_tls_layout *l, __u64 conn, __u8 dir)
{
	__u32 done = 0;
	if (!go_read_user(&done, sizeof(done), conn + l->handshake_done))
		return false;
	if (!done)
		return true;
	__u16 vers = 0;
	__u64 seq_be = 0;
	if (!go_read_user(&vers, sizeof(vers), conn + l->vers) ||
	    !go_read_user(&seq_be, sizeof(seq_be), conn + (dir == WEFT_DIR_SEND ? l->out_seq : l->in_seq)))
		return false;
	return bpf_be64_to_cpu(seq_be) == (vers == 0x0304 ? 0 : 1);
}

/* Fills the connection part of `call` from the *tls.Conn; false (counted) when its conn is not
 * a TCP socket weft can name. `bias`: the executable's load bias (0 unless PIE). */
static __always_inline bool go_conn_socket(const struct weft_go_tls_layout *l, __u64 conn, __u64 bias,
					   struct go_tls_call *call)
{
	__u64 iface[2] = {}; /* net.Conn: itab, data */
	if (!go_read_user(iface, sizeof(iface), conn + l->conn))
		return false;
	if (!iface[0] || iface[0] != l->tcp_conn_itab + bias) {
		count_tls(WEFT_TLS_GO_NOT_TCP);
		return false;
	}
	__u64 netfd = 0;
	__s64 fd = -1;
	if (!go_read_user(&netfd, sizeof(netfd), iface[1] + l->tcp_conn_fd) ||
	    !go_read_user(&fd, sizeof(fd), netfd + l->netfd_sysfd))
		return false;
	struct sock *sk = go_tcp_socket_of_fd(fd);
	/* Uprobes cannot call bpf_get_socket_cookie; conn__state generated the cookie when the
	 * connection was established (or the existing-connection scan did). */
	__u64 cookie = sk ? sk->__sk_common.skc_cookie.counter : 0;
	if (!cookie) {
		count_tls(WEFT_TLS_GO_NO_SOCKET);
		return false;
	}
	call->cookie = cookie;
	call->sk = (__u64)sk;
	call->fd = (__s32)fd;
	call->seq_known = go_call_seq(l, conn, sk, call);
	call->from_start = go_from_start(l, conn, call->dir);
	struct weft_conn_state *st = bpf_map_lookup_elem(&weft_conns, &cookie);
	call->role = st ? st->role : WEFT_ROLE_UNKNOWN;
	call->weft_peer = st ? st->weft_peer : 0;
	return true;
}

/* Attach cookie: slot << 1 | direction (enum weft_direction). */
SEC("uprobe.multi")
int go_tls__enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (is_self(pid_tgid))
		return 0;
	__u64 attach = bpf_get_attach_cookie(ctx);
	__u32 slot = attach >> 1;
	const struct weft_go_tls_layout *l = bpf_map_lookup_elem(&weft_go_tls_layouts, &slot);
	if (!l)
		return 0;
	if (!l->usable) {
		count_tls(WEFT_TLS_GO_UNTRACEABLE);
		return 0;
	}
	/* Register ABI: receiver in RAX, b's pointer in RBX (its length in RCX). */
	struct go_tls_call call = {.conn = PT_REGS_RC(ctx), .buf = ctx->bx, .dir = attach & 1};
	/* The uprobe runs with the instruction pointer at the probed entry. */
	__u64 bias = PT_REGS_IP(ctx) - (call.dir == WEFT_DIR_SEND ? l->write_entry : l->read_entry);
	if (!go_conn_socket(l, call.conn, bias, &call))
		return 0;
	/* A write is dated by its entry: it returns after its bytes left, possibly after another
	 * goroutine (on another thread) read the peer's answer to them, and the parsers pair a
	 * request and its response in time order. A read is dated by its return, when its bytes
	 * are there. */
	if (call.dir == WEFT_DIR_SEND)
		call.start_ns = bpf_ktime_get_ns();
	/* A goroutine whose stack grows re-enters the function from its start: same key, same
	 * values. */
	struct go_tls_call_key key = {.g = ctx->r14, .tgid = pid_tgid >> 32};
	bpf_map_update_elem(&weft_go_tls_calls, &key, &call, BPF_ANY);
	return 0;
}

/* The *tls.Conn's session: its plaintext positions. A new one (first call, or a pointer the
 * garbage collector handed out again for another connection) starts at 0 only when nothing went
 * by before this call; else the tls.Conn is remembered as not reported. */
static __always_inline struct tls_session *go_session_of(const struct go_tls_call *call, __u32 tgid)
{
	struct tls_session_key key = {.ssl = call->conn, .tgid = tgid};
	struct tls_session *s = bpf_map_lookup_elem(&weft_tls_sessions, &key);
	if (s && s->cookie == call->cookie)
		return s;
	__u64 *skipped = bpf_map_lookup_elem(&weft_go_tls_mid_stream, &key);
	if (skipped && *skipped == call->cookie)
		return NULL;
	if (!call->from_start) {
		bpf_map_update_elem(&weft_go_tls_mid_stream, &key, &call->cookie, BPF_ANY);
		bpf_map_delete_elem(&weft_tls_sessions, &key);
		return NULL;
	}
	return tls_tie(&key, call->cookie, call->sk, call->fd, call->role, call->weft_peer);
}

/* At every RET of Read and Write: n in RAX (err, an interface, in RBX/RCX: bytes moved before an
 * error are still reported). */
SEC("uprobe.multi")
int go_tls__return(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_tls_call_key key = {.g = ctx->r14, .tgid = pid_tgid >> 32};
	struct go_tls_call *call = bpf_map_lookup_elem(&weft_go_tls_calls, &key);
	if (!call)
		return 0;
	__s64 n = PT_REGS_RC(ctx);
	struct tls_session *s = n > 0 ? go_session_of(call, pid_tgid >> 32) : NULL;
	if (n > 0 && !s)
		count_tls(WEFT_TLS_GO_MID_STREAM);
	if (s && !s->weft_peer) {
		count_tls(WEFT_TLS_CALLS);
		/* The shared emit path names the sequence number only when the call's cookie is set. */
		struct tls_call *emit = &call->emit;
		emit->ssl = call->conn;
		emit->buf = call->buf;
		emit->cookie = call->seq_known ? call->cookie : 0;
		emit->seq = call->seq;
		emit->dir = call->dir;
		emit->start_ns = call->start_ns;
		/* verifier: the length is reloaded from the map value, so the copy loop sees any u32;
		 * with the range [1, 2^31) it knew from the clamp, its states never converged (1M). */
		call->moved = n > 0x7fffffff ? 0x7fffffff : (__u32)n;
		tls_emit(emit, s, pid_tgid, *(volatile __u32 *)&call->moved);
	}
	/* The value is not reused after this: an LRU entry stays readable until the program ends. */
	bpf_map_delete_elem(&weft_go_tls_calls, &key);
	return 0;
}

#endif
