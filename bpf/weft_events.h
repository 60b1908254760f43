/* Event records shared by the BPF programs and userspace: defined once, here.
 * Every record starts with struct weft_event_header; `kind` says which record follows.
 * All integers are host order, all timestamps CLOCK_MONOTONIC nanoseconds. */
#ifndef WEFT_EVENTS_H
#define WEFT_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bump when any record below changes layout; recorded files carry it. */
#define WEFT_EVENT_ABI_VERSION 2

/* Largest payload one data record can carry; the configured chunk size must not exceed it.
 * Per-CPU map values are limited to 32 KiB and the scratch area holds two chunks. */
#define WEFT_MAX_CHUNK_BYTES 8192
#define WEFT_COMM_LEN 16

enum weft_event_kind {
	WEFT_EVENT_DATA = 1,     /* bytes moved by one syscall (or one chunk of it) */
	WEFT_EVENT_CONNECT = 2,  /* an outgoing connect finished (result says how) */
	WEFT_EVENT_ACCEPT = 3,   /* accept()/accept4() returned a TCP socket */
	WEFT_EVENT_CLOSE = 4,    /* the connection reached TCP_CLOSE */
	WEFT_EVENT_EXISTING = 5, /* a connection open before weft started (from userspace scan) */
	WEFT_EVENT_TCP = 6,      /* what the kernel's TCP did to a connection (struct weft_tcp_event) */
};

enum weft_direction {
	WEFT_DIR_SEND = 0, /* this process wrote the bytes */
	WEFT_DIR_RECV = 1, /* this process read the bytes */
};

enum weft_role {
	WEFT_ROLE_UNKNOWN = 0,
	WEFT_ROLE_CLIENT = 1, /* this side called connect() */
	WEFT_ROLE_SERVER = 2, /* this side accepted the connection */
};

/* The syscall that moved the bytes, as far as the data hook can tell. */
enum weft_syscall {
	WEFT_SYS_UNKNOWN = 0, /* not a syscall weft knows (io_uring, kernel sockets): counted only */
	WEFT_SYS_READ,
	WEFT_SYS_WRITE,
	WEFT_SYS_READV,
	WEFT_SYS_WRITEV,
	WEFT_SYS_SENDTO, /* also send() */
	WEFT_SYS_RECVFROM, /* also recv() */
	WEFT_SYS_SENDMSG,
	WEFT_SYS_RECVMSG,
	WEFT_SYS_SENDMMSG, /* counted only */
	WEFT_SYS_RECVMMSG, /* counted only */
	WEFT_SYS_SENDFILE, /* counted only: no user buffer */
	WEFT_SYS_SPLICE,   /* counted only: no user buffer */
	/* Not syscalls: a TLS library call that returned plaintext (SSL_write/_ex, SSL_read/_ex,
	 * gnutls_record_send/recv).
	 * fd is the socket's, learnt from the syscalls the call made or an earlier call of the
	 * same TLS object. */
	WEFT_SYS_TLS_WRITE,
	WEFT_SYS_TLS_READ,
	WEFT_SYS_COUNT,
};

enum weft_data_flags {
	WEFT_DATA_TRUNCATED = 1 << 0,    /* the syscall moved more bytes than were captured */
	WEFT_DATA_NO_POSITION = 1 << 1,  /* connection state unavailable: stream_pos is meaningless */
	WEFT_DATA_READ_FAILED = 1 << 2,  /* reading the user buffer failed: captured bytes are zero */
	WEFT_DATA_LAST_CHUNK = 1 << 3,   /* the syscall's last record: no more captured bytes follow */
	/* Moved by a kernel thread (NFS, in-kernel TLS, ...), not by a process's syscall: fd is -1,
	 * pid and tid are 0 (comm names the thread) and no byte is captured. A new bit in an
	 * existing field: the layout, and so WEFT_EVENT_ABI_VERSION, is unchanged. */
	WEFT_DATA_KERNEL_THREAD = 1 << 4,
	/* TLS plaintext from a call that made no socket syscall (bytes the library had buffered):
	 * tcp_seq is 0, not a sequence number. Also a new bit in an existing field. */
	WEFT_DATA_NO_SEQUENCE = 1 << 5,
	/* Payload not copied because a skip verdict covers every byte of the syscall (a body the
	 * parser skips by its length); no byte is captured, and it is no loss. */
	WEFT_DATA_SKIPPED = 1 << 6,
};

/* Whose bytes a data record carries. Each source has its own stream positions; where a
 * connection has both, the library's plaintext wins and the socket's ciphertext is dropped. */
enum weft_byte_source {
	WEFT_SOURCE_SOCKET = 0,      /* the socket syscalls (tp_btf sock_send/recv_length) */
	WEFT_SOURCE_TLS_LIBRARY = 1, /* a TLS library's plaintext (uprobes on OpenSSL, GnuTLS) */
};

/* What happened to TLS library calls (per-CPU array `weft_tls_counts`). Kept out of
 * weft_losses, whose layout recordings store. */
enum weft_tls_count {
	WEFT_TLS_CALLS = 0,          /* calls whose plaintext was reported under its connection */
	WEFT_TLS_UNMAPPED = 1,       /* plaintext returned by a call that made no socket syscall, on
				      * a TLS object weft has not tied to a socket yet: not reported */
	WEFT_TLS_NESTED = 2,         /* a call started while another was in flight on the thread: the
				      * outer one is not reported */
	WEFT_TLS_NO_THREAD_STATE = 3, /* per-thread state could not be allocated: call not reported */
	WEFT_TLS_READ_FAILED = 4,    /* the _ex length (size_t*) was unreadable: call not reported */
	WEFT_TLS_PROC_EVENTS_LOST = 5, /* process start/exit records the ring had no room for */
	/* Go crypto/tls ((*Conn).Read/Write): calls not reported, by why. */
	WEFT_TLS_GO_UNTRACEABLE = 6, /* a Go executable weft cannot read (no DWARF, ...; doctor says) */
	WEFT_TLS_GO_NOT_TCP = 7,     /* the tls.Conn's conn is not a *net.TCPConn (a pipe, a wrapper) */
	WEFT_TLS_GO_NO_SOCKET = 8,   /* its descriptor is no TCP socket, or one without a cookie */
	WEFT_TLS_GO_MID_STREAM = 9,  /* a tls.Conn first seen after it moved application data (open
				      * before weft, or a call in flight when the hooks attached): its
				      * positions would be wrong, so none of its calls is reported */
	WEFT_TLS_COUNT_MAX = 10,
};

/* Where crypto/tls and net keep what weft reads in one Go executable (value of the BPF map
 * weft_go_tls_layouts, indexed by the executable's slot, which the uprobes' attach cookie
 * carries). Offsets in bytes come from the executable's DWARF; addresses are as linked (the
 * probed address gives a PIE's load bias). */
#define WEFT_GO_TLS_MAX_BINARIES 1024 /* Go executables weft can hook at once */

struct weft_go_tls_layout {
	__u64 tcp_conn_itab; /* the itab (*net.TCPConn, net.Conn): a net.Conn that is a TCP socket */
	__u64 read_entry;    /* crypto/tls.(*Conn).Read */
	__u64 write_entry;   /* crypto/tls.(*Conn).Write */
	__u16 conn;           /* tls.Conn.conn: the net.Conn interface (itab, data) */
	__u16 handshake_done; /* tls.Conn.isHandshakeComplete (handshakeStatus before Go 1.21) */
	__u16 raw_input_len;  /* length of tls.Conn.rawInput.buf: ciphertext read, not decrypted */
	__u16 raw_input_off;  /* tls.Conn.rawInput.off */
	__u16 input_len;      /* length of tls.Conn.input.s: plaintext decrypted, not returned */
	__u16 input_i;        /* tls.Conn.input.i */
	__u16 tcp_conn_fd;    /* net.TCPConn.conn.fd: the *net.netFD */
	__u16 netfd_sysfd;    /* net.netFD.pfd.Sysfd: the descriptor */
	__u16 vers;           /* tls.Conn.vers: the negotiated TLS version */
	__u16 in_seq;         /* tls.Conn.in.seq: records read under the current keys (big endian) */
	__u16 out_seq;        /* tls.Conn.out.seq: records written under the current keys */
	__u16 pad16;
	__u32 usable;         /* 0: the offsets are unknown; calls are counted, never reported */
	__u32 pad;
};

/* A process started or ended (ring buffer `weft_proc_events`, read by the proc stage). */
enum weft_proc_event_kind {
	WEFT_PROC_EXEC = 1, /* execve() succeeded: the process maps a new executable */
	WEFT_PROC_EXIT = 2, /* the last thread of the process exited */
};

struct weft_proc_event {
	__u32 pid; /* thread group id, as the root pid namespace numbers it */
	__u32 kind; /* enum weft_proc_event_kind */
};

enum weft_conn_flags {
	/* ACCEPT seen when the accepting process first moved bytes, not when accept() returned
	 * (the accept syscall hooks are off; see docs/probes.md). */
	WEFT_CONN_AT_FIRST_IO = 1 << 0,
};

/* Why an event was lost or cut short; indexes of the per-CPU `weft_losses` array. */
enum weft_loss {
	WEFT_LOSS_RINGBUF_FULL = 0, /* record dropped: ring buffer had no room */
	WEFT_LOSS_TRUNCATED = 1,    /* data record whose payload was capped (not lost, flagged) */
	WEFT_LOSS_MAP_FULL = 2,     /* connection-state map full: positions unknown for a connection */
	WEFT_LOSS_READ_FAILED = 3,  /* user buffer unreadable (paged out): payload missing */
	WEFT_LOSS_NO_COOKIE = 4,    /* accepted socket without a cookie: accept not reported */
	WEFT_LOSS_COUNT = 5,
};

struct weft_tuple {
	__u8 saddr[16]; /* local address; IPv4 as v4-mapped IPv6 (::ffff:a.b.c.d) */
	__u8 daddr[16]; /* remote address, same encoding */
	__u16 sport;    /* local port */
	__u16 dport;    /* remote port */
	__u16 family;   /* AF_INET or AF_INET6: the socket's own family */
	__u16 pad;
};

struct weft_event_header {
	__u64 ts_ns;  /* CLOCK_MONOTONIC */
	__u64 cookie; /* socket cookie: the connection key */
	__u32 pid;    /* thread group id */
	__u32 tid;
	__s32 fd;     /* -1 when unknown (event not raised in the owning syscall) */
	__u16 kind;   /* enum weft_event_kind */
	__u8 role;    /* enum weft_role as known when the event was raised */
	__u8 pad;
	char comm[WEFT_COMM_LEN];
	struct weft_tuple tuple;
};

struct weft_data_event {
	struct weft_event_header hdr;
	__u64 stream_pos;   /* position of data[0] in this direction's byte stream */
	__u32 tcp_seq;      /* TCP sequence number of data[0] */
	__u32 syscall_len;  /* bytes the whole syscall moved */
	__u32 chunk_offset; /* offset of data[0] within the syscall's bytes */
	__u32 captured;     /* bytes in data[] */
	__u16 syscall;      /* enum weft_syscall */
	__u8 direction;     /* enum weft_direction */
	__u8 flags;         /* enum weft_data_flags */
	__u8 source;        /* enum weft_byte_source */
	__u8 pad[3];
	__u8 data[];
};

struct weft_conn_event {
	struct weft_event_header hdr;
	__s32 result;         /* CONNECT: 0 or -errno; others 0 */
	__u8 closed_by;       /* CLOSE: 1 this side closed first, 2 the peer did, 0 unknown */
	__u8 flags;           /* enum weft_conn_flags */
	__u8 pad[2];
	__u64 duration_ns;    /* CONNECT: SYN sent to result; CLOSE: lifetime when known */
	__u64 bytes_sent;     /* CLOSE: stream totals seen by weft */
	__u64 bytes_received;
};

/* What a TCP record (WEFT_EVENT_TCP) reports; docs/network.md. */
enum weft_tcp_what {
	WEFT_TCP_RETRANSMIT = 1,     /* tcp_retransmit_skb sent a segment again (a SYN in SYN_SENT) */
	WEFT_TCP_RESET_SENT = 2,     /* this side sent a RST on the connection */
	WEFT_TCP_RESET_RECEIVED = 3, /* the peer's RST was accepted */
	WEFT_TCP_ESTABLISHED = 4,    /* handshake done: first RTT sample, handshake retransmissions */
	WEFT_TCP_CLOSED = 5,         /* the connection reached TCP_CLOSE: the socket's final counters */
	/* A server socket's receive queue got bytes after the application had read (sk_data_ready):
	 * seq = copied_seq (next byte the application reads), end_seq = rcv_nxt. Once per batch of
	 * arrivals between two reads, not per segment. */
	WEFT_TCP_DATA_QUEUED = 6,
	/* An ACK arrived on a server socket that leaves nothing in flight (tcp_probe): seq =
	 * snd_una before it, end_seq = the acknowledged sequence number (snd_nxt). The one ACK
	 * that first covered a response's last byte when seq < that byte's end <= end_seq. */
	WEFT_TCP_ACKED = 7,
	/* The peer advertised a zero receive window (tcp_probe) while bytes were in flight: seq =
	 * snd_una before the ACK, end_seq = the ACK's sequence number (the next byte it awaits). */
	WEFT_TCP_ZERO_WINDOW = 8,
};

/* The socket's own counters (struct tcp_sock) at the moment of a TCP record. */
struct weft_tcp_counters {
	__u32 srtt_us;       /* smoothed RTT (srtt_us >> 3); 0 before the first sample */
	__u32 rttvar_us;     /* mean deviation (mdev_us >> 2) */
	__u32 min_rtt_us;    /* lowest RTT seen (windowed minimum); ~0U before the first sample */
	__u32 total_retrans; /* segments retransmitted so far, handshake included (kernel's count) */
	__u64 bytes_acked;   /* bytes the peer acknowledged (RFC 4898 tcpEStatsAppHCThruOctetsAcked) */
	__u64 bytes_received; /* bytes received in order (tcpEStatsAppHCThruOctetsReceived) */
};

struct weft_tcp_event {
	struct weft_event_header hdr;
	struct weft_tcp_counters counters; /* zero for a socket that is no full TCP socket */
	__u32 seq;     /* RETRANSMIT: first sequence number of the segment; DATA_QUEUED: copied_seq;
			* ACKED, ZERO_WINDOW: snd_una before the ACK */
	__u32 end_seq; /* RETRANSMIT: sequence number after it (SYN and FIN count one); DATA_QUEUED:
			* rcv_nxt; ACKED, ZERO_WINDOW: the ACK's sequence number */
	__s32 detail;  /* RETRANSMIT: the send's error (0 sent); RESET_SENT: enum sk_rst_reason */
	__u16 segs;    /* RETRANSMIT: segments the retransmitted buffer holds (TSO/GSO) */
	__u8 what;     /* enum weft_tcp_what */
	__u8 state;    /* TCP state of the socket when it happened (TCP_ESTABLISHED = 1, ...) */
};

/* Per-connection state kept in the kernel, keyed by socket cookie. Userspace writes it too,
 * for connections that were open before weft started. */
struct weft_conn_state {
	__u64 send_pos;
	__u64 recv_pos;
	__u64 start_ns; /* SYN sent (client) or handshake done (server) */
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u8 role;
	__u8 closed_by;
	__u8 weft_peer; /* the other end is weft itself (exporter, metrics scrape): not reported */
	__u8 pad;
	char comm[WEFT_COMM_LEN];
};

/* A local endpoint of one of weft's own sockets (key of weft_self_endpoints), in the network
 * namespace it lives in. A listener on 0.0.0.0 or :: is registered once per address of its
 * namespace (userspace lists them), never as an all-zero address. */
struct weft_endpoint {
	__u8 addr[16]; /* IPv4 as v4-mapped IPv6, as in weft_tuple */
	__u16 port;
	__u16 pad;
	__u32 netns; /* inode number of the socket's network namespace */
};

/* What the kernel copies for one connection, as the pipeline decided (struct weft_verdict's
 * mode). Positions advance whatever it says, so a connection can be taken up again where it
 * stands. */
enum weft_capture_mode {
	WEFT_CAPTURE_PAYLOAD = 0, /* data records with their bytes (up to the capture limit) */
	WEFT_CAPTURE_COUNTS = 1,  /* data records without bytes: who moved how much, when */
	WEFT_CAPTURE_IGNORE = 2,  /* no data records at all; lifecycle events still come */
};

/* Value of weft_verdicts, keyed by socket cookie; no entry means PAYLOAD with nothing skipped. */
struct weft_verdict {
	__u8 mode; /* enum weft_capture_mode */
	__u8 pad[7];
	/* Per direction (enum weft_direction): a syscall whose bytes all lie before this stream
	 * position is reported without payload, as under COUNTS. The parser skips those bytes by
	 * length (an HTTP body), so copying them would buy nothing. 0: nothing skipped. */
	__u64 skip_until[2];
};

enum weft_self_endpoint_kind {
	WEFT_SELF_SEEN = 1,     /* a socket weft sent on: forgotten when it closes */
	WEFT_SELF_LISTENER = 2, /* a listening address userspace registered: kept */
};

#endif
