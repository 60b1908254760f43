/* Copying a bounded prefix of a syscall's user buffer into data records. */
#ifndef WEFT_HELPERS_CAPTURE_H
#define WEFT_HELPERS_CAPTURE_H

#include "../maps.h"
#include "../config.h"
#include "syscall_args.h"

/* Iterations of the copy loop: each one loads an iovec or copies one segment. Beyond this
 * the rest of the syscall is reported as truncated. */
#define CAPTURE_MAX_STEPS 128

struct capture_state {
	struct weft_data_event *ev; /* in the per-CPU scratch */
	__u64 iov_ptr;  /* next struct iovec to load, user memory */
	__u64 iov_left; /* iovecs not loaded yet */
	__u64 seg_ptr;  /* current segment, user memory */
	__u64 seg_left; /* bytes left in the current segment */
	__u64 base_pos; /* stream position of the syscall's first byte */
	__u32 base_seq;
	__u32 to_capture; /* bytes still to copy for this syscall */
	__u32 offset;     /* bytes of the syscall already emitted */
	__u32 fill;       /* bytes in the record being built */
	__u8 failed;
};

static __always_inline __u64 wakeup_flag(void)
{
	/* Waking the consumer per record costs more than the record; it polls on a short timer
	 * and is woken early only when a backlog builds. Past that point every record wakes it: the
	 * interrupt (3-4 us on a VM) slows the producer, and that back-pressure is what keeps a slow
	 * consumer (`weft events --json`) from losing records in a burst. Waking once per eighth of
	 * the ring instead made a backlogged record 8x cheaper and lost records (docs/performance.md). */
	return bpf_ringbuf_query(&weft_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										  : BPF_RB_NO_WAKEUP;
}

static __always_inline void ring_output(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&weft_events, rec, size, wakeup_flag()))
		count_loss(WEFT_LOSS_RINGBUF_FULL);
}

static __always_inline void emit_chunk(struct capture_state *c)
{
	struct weft_data_event *ev = c->ev;
	__u32 n = c->fill;
	if (n > WEFT_MAX_CHUNK_BYTES) /* verifier: bounds the record size */
		n = WEFT_MAX_CHUNK_BYTES;
	ev->captured = n;
	ev->chunk_offset = c->offset;
	ev->stream_pos = c->base_pos + c->offset;
	ev->tcp_seq = c->base_seq + c->offset;
	ring_output(ev, sizeof(*ev) + n);
	c->offset += n;
	c->fill = 0;
}

static long capture_step(__u64 index, struct capture_state *c)
{
	if (c->to_capture == 0)
		return 1;
	if (c->seg_left == 0) {
		struct iovec iov;
		if (c->iov_left == 0)
			return 1;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)c->iov_ptr)) {
			c->failed = 1;
			return 1;
		}
		c->iov_ptr += sizeof(iov);
		c->iov_left--;
		c->seg_ptr = (__u64)iov.iov_base;
		c->seg_left = iov.iov_len;
		return 0;
	}
	__u32 fill = c->fill;
	__u32 room = cfg_chunk_bytes - fill;
	__u32 n = c->to_capture;
	if (n > room)
		n = room;
	if (n > c->seg_left)
		n = c->seg_left;
	/* verifier: fill and n each at most one chunk, so fill + n stays inside data[2 chunks] */
	if (fill > WEFT_MAX_CHUNK_BYTES || n > WEFT_MAX_CHUNK_BYTES)
		return 1;
	if (bpf_probe_read_user(c->ev->data + fill, n, (void *)c->seg_ptr)) {
		c->failed = 1;
		return 1;
	}
	c->fill = fill + n;
	c->seg_ptr += n;
	c->seg_left -= n;
	c->to_capture -= n;
	/* The last record leaves after the loop, flagged as such. */
	if (c->fill >= cfg_chunk_bytes && c->to_capture > 0)
		emit_chunk(c);
	return 0;
}

/* Emits the records for one syscall that moved `len` bytes. The record header in
 * ev is already filled; this sets the per-chunk fields. `counts_only`: the connection's verdict
 * wants no payload (one record, flagged truncated, not counted against the capture limit). */
static __always_inline void capture_syscall(struct weft_data_event *ev, const struct syscall_buffer *b,
					    __u32 len, __u64 pos, __u32 seq, bool counts_only)
{
	struct capture_state c = {
		.ev = ev,
		.base_pos = pos,
		.base_seq = seq,
		.to_capture = len < cfg_max_capture_bytes ? len : cfg_max_capture_bytes,
	};
	if (counts_only) {
		c.to_capture = 0;
	} else if (b->shape == SHAPE_FLAT) {
		c.seg_ptr = b->arg1;
		c.seg_left = len; /* what moved, not what was asked for */
	} else if (b->shape == SHAPE_IOVEC) {
		c.iov_ptr = b->arg1;
		c.iov_left = b->arg2;
	} else if (b->shape == SHAPE_MSGHDR) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)b->arg1))
			c.failed = 1;
		c.iov_ptr = (__u64)msg.msg_iov;
		c.iov_left = msg.msg_iovlen;
	} else {
		c.to_capture = 0;
	}
	if (c.failed)
		c.to_capture = 0;
	if (c.to_capture < len)
		ev->flags |= WEFT_DATA_TRUNCATED;

	if (c.to_capture > 0)
		bpf_loop(CAPTURE_MAX_STEPS, capture_step, &c, 0);
	if (c.failed) {
		ev->flags |= WEFT_DATA_READ_FAILED;
		count_loss(WEFT_LOSS_READ_FAILED);
	}
	/* Steps ran out or a read failed: known before the last record leaves, so it carries the
	 * flag (earlier full chunks of the same syscall may not). */
	if (c.offset + c.fill < len)
		ev->flags |= WEFT_DATA_TRUNCATED;
	if ((ev->flags & WEFT_DATA_TRUNCATED) && !counts_only)
		count_loss(WEFT_LOSS_TRUNCATED);
	/* Always one last record, even with nothing captured (count-only syscall, failed read):
	 * the byte count is reported whatever happened to the payload. */
	ev->flags |= WEFT_DATA_LAST_CHUNK;
	emit_chunk(&c);
}

/* Kernel 6.16+: user bytes copied straight into a ring record. Weak: on older kernels it stays
 * NULL and every syscall takes the scratch path above. */
extern int bpf_probe_read_user_dynptr(struct bpf_dynptr *dptr, __u32 off, __u32 size,
				      const void *unsafe_ptr__ign) __weak __ksym;

/* Segments the direct path copies; a syscall whose captured bytes lie in more of them takes
 * the scratch path. Enough for nginx's writev (head, body) and every flat buffer. */
#define DIRECT_MAX_SEGMENTS 4

/* Everything a data record says that is known before its bytes are copied. */
struct data_meta {
	struct sock *sk;
	__u64 ts_ns;   /* when the bytes moved; 0: now */
	__u64 cookie;
	__u64 pid_tgid;
	__u64 pos;     /* stream position of the syscall's first byte */
	__u32 len;     /* bytes the syscall moved */
	__u32 seq;     /* TCP sequence number of its first byte */
	__u16 syscall; /* enum weft_syscall */
	__s32 fd;
	__u8 dir;
	__u8 role;
	__u8 flags; /* enum weft_data_flags known up front (NO_POSITION, KERNEL_THREAD) */
	__u8 source; /* enum weft_byte_source */
};


/* The user segments holding the first `n` bytes of the syscall, or how many bytes they cover
 * when fewer than n (the caller then takes the scratch path). */
static __always_inline __u32 direct_segments(const struct syscall_buffer *b, __u32 n,
					     struct iovec iov[DIRECT_MAX_SEGMENTS], __u32 *count)
{
	__u64 iov_ptr = b->arg1;
	__u64 iov_cnt = b->arg2;
	*count = 0;
	if (n == 0)
		return 0;
	if (b->shape == SHAPE_FLAT) {
		iov[0].iov_base = (void *)b->arg1;
		iov[0].iov_len = n;
		*count = 1;
		return n;
	}
	if (b->shape == SHAPE_MSGHDR) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)b->arg1))
			return 0;
		iov_ptr = (__u64)msg.msg_iov;
		iov_cnt = msg.msg_iovlen;
	} else if (b->shape != SHAPE_IOVEC) {
		return 0;
	}
	if (iov_cnt > DIRECT_MAX_SEGMENTS)
		iov_cnt = DIRECT_MAX_SEGMENTS;
	/* verifier: a size in [1, DIRECT_MAX_SEGMENTS] iovecs, so the read stays inside iov[] */
	if (iov_cnt == 0 || bpf_probe_read_user(iov, iov_cnt * sizeof(struct iovec), (void *)iov_ptr))
		return 0;
	__u32 covered = 0;
	for (int i = 0; i < DIRECT_MAX_SEGMENTS; i++) {
		if (i >= iov_cnt || covered >= n)
			break;
		covered += iov[i].iov_len < n - covered ? iov[i].iov_len : n - covered;
		*count = i + 1;
	}
	return covered;
}

static __always_inline void fill_data_header(struct weft_data_event *ev, const struct data_meta *m, __u32 n)
{
	ev->hdr.ts_ns = m->ts_ns ? m->ts_ns : bpf_ktime_get_ns();
	ev->hdr.cookie = m->cookie;
	ev->hdr.pid = m->pid_tgid >> 32;
	ev->hdr.tid = (__u32)m->pid_tgid;
	ev->hdr.fd = m->fd;
	ev->hdr.kind = WEFT_EVENT_DATA;
	ev->hdr.role = m->role;
	ev->hdr.pad = 0;
	bpf_get_current_comm(ev->hdr.comm, sizeof(ev->hdr.comm));
	sock_read_tuple(m->sk, &ev->hdr.tuple);
	ev->stream_pos = m->pos;
	ev->tcp_seq = m->seq;
	ev->syscall_len = m->len;
	ev->chunk_offset = 0;
	ev->captured = n;
	ev->syscall = m->syscall;
	ev->direction = m->dir;
	ev->source = m->source;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	ev->flags = m->flags;
}

/* The common syscall in one record, its bytes copied once, from user memory straight into the
 * ring. Returns false, having sent nothing, when the syscall needs the scratch path: more
 * than one chunk, more segments, a failed read (which that path reports), or an older kernel. */
static __always_inline bool capture_direct(const struct data_meta *m, const struct syscall_buffer *b,
					   bool counts_only)
{
	if (!bpf_ksym_exists(bpf_probe_read_user_dynptr))
		return false;
	__u32 n = counts_only ? 0 : (m->len < cfg_max_capture_bytes ? m->len : cfg_max_capture_bytes);
	if (n > cfg_chunk_bytes)
		return false;
	struct iovec iov[DIRECT_MAX_SEGMENTS] = {};
	__u32 segments = 0;
	if (direct_segments(b, n, iov, &segments) < n)
		return false;

	struct bpf_dynptr rec;
	if (bpf_ringbuf_reserve_dynptr(&weft_events, sizeof(struct weft_data_event) + n, 0, &rec)) {
		bpf_ringbuf_discard_dynptr(&rec, 0); /* verifier: a failed reservation is released too */
		count_loss(WEFT_LOSS_RINGBUF_FULL);
		return true;
	}
	struct weft_data_event *ev = bpf_dynptr_data(&rec, 0, sizeof(*ev));
	if (!ev) { /* verifier: never NULL for a record this size */
		bpf_ringbuf_discard_dynptr(&rec, 0);
		return true;
	}
	fill_data_header(ev, m, n);
	ev->flags |= WEFT_DATA_LAST_CHUNK | (n < m->len ? WEFT_DATA_TRUNCATED : 0);
	__u32 off = sizeof(*ev);
	__u32 left = n;
	for (int i = 0; i < DIRECT_MAX_SEGMENTS; i++) {
		if (i >= segments || left == 0)
			break;
		__u32 take = iov[i].iov_len < left ? iov[i].iov_len : left;
		if (bpf_probe_read_user_dynptr(&rec, off, take, iov[i].iov_base)) {
			bpf_ringbuf_discard_dynptr(&rec, 0);
			return false;
		}
		off += take;
		left -= take;
	}
	if (n < m->len && !counts_only)
		count_loss(WEFT_LOSS_TRUNCATED);
	bpf_ringbuf_submit_dynptr(&rec, wakeup_flag());
	return true;
}

#endif
