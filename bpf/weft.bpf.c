/* weft's kernel side: TCP data and lifecycle from tracepoints only (no kprobes, no fentry).
 * Programs are named <module>__<action>. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "weft_events.h"
#include "maps.h"
#include "config.h"
#include "helpers/sock.h"
#include "helpers/syscall_args.h"
#include "helpers/capture.h"
#include "helpers/tls.h"

char LICENSE[] SEC("license") = "GPL";

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define WEFT_MSG_PEEK 2

/* One load of a global per event: self_tgid is the host tgid self__learn found (0 until then,
 * which matches no process that moves socket bytes). */
static __always_inline bool is_self(__u64 pid_tgid)
{
	return (pid_tgid >> 32) == self_tgid;
}

/* Run once by userspace (BPF_PROG_TEST_RUN, on its own CPU and in its own context) before any
 * hook is attached: bpf_get_current_pid_tgid() names weft as the root pid namespace does,
 * whatever pid namespace weft runs in. Never attached. */
SEC("raw_tp")
int self__learn(void *ctx)
{
	self_tgid = bpf_get_current_pid_tgid() >> 32;
	return 0;
}

/* weft's own socket moved bytes: its peer on this node, if any, must not be reported. */
static __always_inline void remember_self_endpoint(const struct sock *sk)
{
	struct weft_endpoint e = {};
	__u8 seen = WEFT_SELF_SEEN;
	sock_local_endpoint(sk, &e);
	bpf_map_update_elem(&weft_self_endpoints, &e, &seen, BPF_NOEXIST); /* keeps LISTENER */
}

static __always_inline void forget_self_endpoint(const struct sock *sk)
{
	struct weft_endpoint e = {};
	sock_local_endpoint(sk, &e);
	__u8 *kind = bpf_map_lookup_elem(&weft_self_endpoints, &e);
	if (kind && *kind == WEFT_SELF_SEEN)
		bpf_map_delete_elem(&weft_self_endpoints, &e);
}

/* Whether the remote end of `sk` is one of weft's own sockets or listeners. Once per connection
 * (when its owner is learnt), not per event. */
static __always_inline __u8 peer_is_weft(const struct sock *sk)
{
	struct weft_endpoint e = {};
	sock_remote_endpoint(sk, &e);
	if (bpf_map_lookup_elem(&weft_self_endpoints, &e))
		return 1;
	/* From another network namespace, an address of weft's own namespace reaches weft (a
	 * scraper or collector in a container, weft on the host network); loopback cannot. */
	if (e.netns == cfg_self_netns || endpoint_is_loopback(&e))
		return 0;
	e.netns = cfg_self_netns;
	return bpf_map_lookup_elem(&weft_self_endpoints, &e) ? 1 : 0;
}

static __always_inline void fill_header(struct weft_event_header *h, __u16 kind, const struct sock *sk,
					__u64 cookie)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	h->ts_ns = bpf_ktime_get_ns();
	h->cookie = cookie;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->kind = kind;
	h->fd = -1;
	h->role = WEFT_ROLE_UNKNOWN;
	h->pad = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	sock_read_tuple(sk, &h->tuple);
}

/* The connection's state, created on first sight (connections weft saw no handshake for). */
static __always_inline struct weft_conn_state *conn_state(__u64 cookie)
{
	struct weft_conn_state *st = bpf_map_lookup_elem(&weft_conns, &cookie);
	if (st)
		return st;
	struct weft_conn_state fresh = {.fd = -1};
	if (bpf_map_update_elem(&weft_conns, &cookie, &fresh, BPF_NOEXIST) && !bpf_map_lookup_elem(&weft_conns, &cookie)) {
		count_loss(WEFT_LOSS_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&weft_conns, &cookie);
}

static __always_inline void emit_conn_event(const struct sock *sk, __u64 cookie, __u16 kind,
					    const struct weft_conn_state *st, __s32 result, __u8 flags);

/* A connection whose owner is not known yet gets it from the first process to move bytes on
 * it: a server connection (the accept syscall hooks are off by default; its accept is reported
 * now) or one weft first met through its data. */
static __always_inline void claim_owner(const struct sock *sk, __u64 cookie, struct weft_conn_state *st, __s32 fd,
					__u64 pid_tgid)
{
	st->pid = pid_tgid >> 32;
	st->tid = (__u32)pid_tgid;
	st->fd = fd;
	bpf_get_current_comm(st->comm, sizeof(st->comm));
	st->weft_peer = peer_is_weft(sk);
	if (st->role == WEFT_ROLE_SERVER)
		emit_conn_event(sk, cookie, WEFT_EVENT_ACCEPT, st, 0, WEFT_CONN_AT_FIRST_IO);
}

/* Every byte of the syscall lies in a stretch the parser skips by length. One that reaches
 * past it is copied whole: the next message may begin inside it. */
static __always_inline bool skipped(const struct weft_verdict *v, const struct data_meta *m)
{
	if (m->flags & WEFT_DATA_NO_POSITION)
		return false;
	return m->pos + m->len <= v->skip_until[m->dir & 1]; /* verifier: index in [0, 1] */
}

static __always_inline int on_data(struct sock *sk, int ret, __u8 dir)
{
	/* Each helper once per event: pid_tgid, cookie and task are passed on, not asked again. */
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret <= 0 || !sock_is_tcp_inet(sk))
		return 0;
	if (is_self(pid_tgid)) {
		if (dir == WEFT_DIR_SEND)
			remember_self_endpoint(sk);
		return 0;
	}

	struct data_meta m = {.sk = sk, .pid_tgid = pid_tgid, .len = ret, .dir = dir};
	m.cookie = bpf_get_socket_cookie(sk);
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_buffer b;
	current_syscall_buffer(task, dir, &b);
	m.fd = b.fd;
	m.syscall = b.syscall;

	struct weft_conn_state *st = conn_state(m.cookie);
	if (st && st->pid == 0 && b.fd >= 0)
		claim_owner(sk, m.cookie, st, b.fd, pid_tgid); /* before the header: keeps time order */
	/* Whatever the verdict: a connection whose plaintext is known still names its TLS calls. */
	tls_note_socket(task, sk, m.cookie, b.fd, dir, ret, st, &b);
	if (st) {
		if (st->weft_peer)
			return 0;
		/* Atomic: two threads may write the same socket from different CPUs. */
		m.pos = __sync_fetch_and_add(dir == WEFT_DIR_SEND ? &st->send_pos : &st->recv_pos, (__u64)ret);
		m.role = st->role;
	} else {
		m.flags = WEFT_DATA_NO_POSITION;
	}
	/* The one lookup verdicts cost; an ignored connection stops here, its positions moved on. */
	struct weft_verdict *verdict = bpf_map_lookup_elem(&weft_verdicts, &m.cookie);
	__u8 mode = verdict ? verdict->mode : WEFT_CAPTURE_PAYLOAD;
	if (mode == WEFT_CAPTURE_IGNORE)
		return 0;
	bool counts_only = mode == WEFT_CAPTURE_COUNTS;
	if (mode == WEFT_CAPTURE_PAYLOAD && verdict && skipped(verdict, &m)) {
		counts_only = true;
		m.flags |= WEFT_DATA_SKIPPED;
	}

	if (task->flags & WEFT_PF_KTHREAD) {
		/* Not the connection's process: no pid to attribute the bytes to. */
		m.pid_tgid = 0;
		m.flags |= WEFT_DATA_KERNEL_THREAD;
	}
	m.seq = sock_first_seq(sk, dir, ret);
	if (capture_direct(&m, &b, counts_only))
		return 0;

	__u32 zero = 0;
	struct weft_data_scratch *s = bpf_map_lookup_elem(&weft_scratch, &zero);
	if (!s)
		return 0;
	struct weft_data_event *ev = (struct weft_data_event *)s->bytes;
	fill_data_header(ev, &m, 0);
	capture_syscall(ev, &b, ret, m.pos, m.seq, counts_only);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(data__send, struct sock *sk, int ret, int flags)
{
	return on_data(sk, ret, WEFT_DIR_SEND);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(data__recv, struct sock *sk, int ret, int flags)
{
	/* A peek leaves the bytes queued: the read that consumes them is reported instead. */
	if (flags & WEFT_MSG_PEEK)
		return 0;
	return on_data(sk, ret, WEFT_DIR_RECV);
}

static __always_inline void emit_conn_event(const struct sock *sk, __u64 cookie, __u16 kind,
					    const struct weft_conn_state *st, __s32 result, __u8 flags)
{
	if (st && st->weft_peer)
		return;
	struct weft_conn_event ev = {};
	fill_header(&ev.hdr, kind, sk, cookie);
	ev.result = result;
	ev.flags = flags;
	if (st) {
		/* Lifecycle transitions often run in softirq context: report the owner, not
		 * whichever task the interrupt landed on. */
		ev.hdr.pid = st->pid;
		ev.hdr.tid = st->tid;
		ev.hdr.fd = st->fd;
		ev.hdr.role = st->role;
		__builtin_memcpy(ev.hdr.comm, st->comm, sizeof(ev.hdr.comm));
		ev.closed_by = st->closed_by;
		ev.bytes_sent = st->send_pos;
		ev.bytes_received = st->recv_pos;
		if (st->start_ns)
			ev.duration_ns = ev.hdr.ts_ns - st->start_ns;
	}
	ring_output(&ev, sizeof(ev));
}

static __always_inline void on_syn_sent(const struct sock *sk, __u64 cookie)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (is_self(pid_tgid)) {
		__u8 one = 1;
		bpf_map_update_elem(&weft_self_connecting, &cookie, &one, BPF_ANY);
		return;
	}
	struct weft_conn_state st = {
		.start_ns = bpf_ktime_get_ns(),
		.pid = pid_tgid >> 32,
		.tid = (__u32)pid_tgid,
		.fd = current_connect_fd(), /* connect() runs in the caller's context */
		.role = WEFT_ROLE_CLIENT,
		.weft_peer = peer_is_weft(sk), /* e.g. a scraper connecting to weft's metrics */
	};
	bpf_get_current_comm(st.comm, sizeof(st.comm));
	if (bpf_map_update_elem(&weft_conns, &cookie, &st, BPF_ANY))
		count_loss(WEFT_LOSS_MAP_FULL);
}

/* weft's own sockets are never in weft_conns: their endpoints are remembered once
 * established and forgotten at close. */
static __always_inline void on_untracked_state(const struct sock *sk, __u64 cookie, int oldstate, int newstate)
{
	if (oldstate == TCP_SYN_SENT && bpf_map_lookup_elem(&weft_self_connecting, &cookie)) {
		if (newstate == TCP_ESTABLISHED)
			remember_self_endpoint(sk);
		bpf_map_delete_elem(&weft_self_connecting, &cookie);
	}
	if (newstate == TCP_CLOSE) {
		forget_self_endpoint(sk);
		bpf_map_delete_elem(&weft_verdicts, &cookie);
	}
}

#include "tcp_programs.h"

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(conn__state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!sock_is_tcp_inet(sk))
		return 0;
	/* Also the moment the cookie is generated for accepted sockets, so the accept hook,
	 * which cannot call bpf_get_socket_cookie, finds it in sk->sk_cookie. */
	__u64 cookie = bpf_get_socket_cookie((void *)sk);

	if (newstate == TCP_SYN_SENT) {
		on_syn_sent(sk, cookie);
		return 0;
	}
	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		struct weft_conn_state st = {.start_ns = bpf_ktime_get_ns(), .fd = -1, .role = WEFT_ROLE_SERVER};
		if (bpf_map_update_elem(&weft_conns, &cookie, &st, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&weft_conns, &cookie))
			count_loss(WEFT_LOSS_MAP_FULL);
		tcp_note_state(sk, cookie, &st, oldstate, newstate);
		return 0;
	}

	struct weft_conn_state *st = bpf_map_lookup_elem(&weft_conns, &cookie);
	if (!st) {
		on_untracked_state(sk, cookie, oldstate, newstate);
		return 0; /* weft never saw data or a handshake on it: nothing to report */
	}
	tcp_note_state(sk, cookie, st, oldstate, newstate);
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
		emit_conn_event(sk, cookie, WEFT_EVENT_CONNECT, st, 0, 0);
		st->start_ns = bpf_ktime_get_ns();
		return 0;
	}
	if (newstate == TCP_FIN_WAIT1 && !st->closed_by)
		st->closed_by = 1;
	if (newstate == TCP_CLOSE_WAIT && !st->closed_by)
		st->closed_by = 2;
	if (newstate != TCP_CLOSE)
		return 0;
	if (oldstate == TCP_SYN_SENT) {
		int err = sk->sk_err;
		emit_conn_event(sk, cookie, WEFT_EVENT_CONNECT, st, err ? -err : -111 /* ECONNREFUSED */, 0);
	} else {
		emit_conn_event(sk, cookie, WEFT_EVENT_CLOSE, st, 0, 0);
	}
	bpf_map_delete_elem(&weft_conns, &cookie);
	bpf_map_delete_elem(&weft_verdicts, &cookie);
	return 0;
}

/* The accepted socket behind `fd` in the current task's descriptor table. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	/* verifier: a BTF pointer, so the shared sock helpers can load fields directly. */
	return sk ? bpf_core_cast(sk, struct sock) : NULL;
}

static __always_inline int on_accept(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (ret < 0 || ret > 1 << 20 || is_self(pid_tgid))
		return 0;
	struct sock *sk = sock_from_fd(ret);
	if (!sk || !sock_is_tcp_inet(sk))
		return 0;
	/* Plain tracepoints cannot call bpf_get_socket_cookie; conn__state generated it. */
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	if (!cookie) {
		count_loss(WEFT_LOSS_NO_COOKIE);
		return 0;
	}
	struct weft_conn_state *st = conn_state(cookie);
	if (st) {
		st->pid = pid_tgid >> 32;
		st->tid = (__u32)pid_tgid;
		st->fd = ret;
		st->role = WEFT_ROLE_SERVER;
		bpf_get_current_comm(st->comm, sizeof(st->comm));
		st->weft_peer = peer_is_weft(sk);
	}
	emit_conn_event(sk, cookie, WEFT_EVENT_ACCEPT, st, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int conn__accept4(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int conn__accept(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx->ret);
}

/* Processes, for the proc stage (which finds the TLS libraries they map): once per exec and
 * per process exit, nothing per syscall. A wakeup is an interrupt the kernel raises on this CPU
 * (20-25 us of the program's time on a VM): only an exec needs one, as its libraries must be
 * found before its first TLS call; an exit waits for the stage's next poll (50 ms at most). */
static __always_inline void emit_proc_event(__u32 pid, __u32 kind, __u64 wakeup)
{
	struct weft_proc_event ev = {.pid = pid, .kind = kind};
	if (bpf_ringbuf_output(&weft_proc_events, &ev, sizeof(ev), wakeup))
		count_tls(WEFT_TLS_PROC_EVENTS_LOST);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc__exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	if (tgid != self_tgid)
		emit_proc_event(tgid, WEFT_PROC_EXEC, BPF_RB_FORCE_WAKEUP); /* exits before it may wait unread */
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc__exit, struct task_struct *p)
{
	/* Every thread exits through here; the process is gone with its last one. */
	if (p->signal->live.counter == 0)
		emit_proc_event(p->tgid, WEFT_PROC_EXIT, BPF_RB_NO_WAKEUP);
	return 0;
}

#include "tls_programs.h"
#include "go_tls_programs.h"
