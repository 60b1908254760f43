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

static __always_inline void ring_output(void *rec, __u64 size)
{
	/* Waking the consumer per record costs more than the record; it polls on a short timer
	 * and is woken early only when a backlog builds. */
	__u64 flags = bpf_ringbuf_query(&weft_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&weft_events, rec, size, flags))
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

#endif
