/* Finding the user buffer of the syscall that is moving socket bytes.
 * The socket hooks run inside that syscall, so its arguments are in the task's saved user
 * registers. x86-64 only: syscall numbers and argument registers are per architecture. */
#ifndef WEFT_HELPERS_SYSCALL_ARGS_H
#define WEFT_HELPERS_SYSCALL_ARGS_H

/* How the syscall passes its bytes. */
enum buffer_shape {
	SHAPE_NONE,   /* no user buffer we can read: count bytes only */
	SHAPE_FLAT,   /* (fd, buf, len) */
	SHAPE_IOVEC,  /* (fd, iov, iovcnt) */
	SHAPE_MSGHDR, /* (fd, msghdr, flags) */
};

struct syscall_buffer {
	__u16 syscall; /* enum weft_syscall */
	__u8 shape;    /* enum buffer_shape */
	__s32 fd;
	__u64 arg1; /* buf, iov or msghdr pointer */
	__u64 arg2; /* len or iovcnt */
};

static __always_inline void classify_syscall(long nr, __u8 dir, struct syscall_buffer *b)
{
	b->shape = SHAPE_NONE;
	b->syscall = WEFT_SYS_UNKNOWN;
	switch (nr) {
	case 0: b->syscall = WEFT_SYS_READ; b->shape = SHAPE_FLAT; break;
	case 1: b->syscall = WEFT_SYS_WRITE; b->shape = SHAPE_FLAT; break;
	case 19: b->syscall = WEFT_SYS_READV; b->shape = SHAPE_IOVEC; break;
	case 20: b->syscall = WEFT_SYS_WRITEV; b->shape = SHAPE_IOVEC; break;
	case 44: b->syscall = WEFT_SYS_SENDTO; b->shape = SHAPE_FLAT; break;
	case 45: b->syscall = WEFT_SYS_RECVFROM; b->shape = SHAPE_FLAT; break;
	case 46: b->syscall = WEFT_SYS_SENDMSG; b->shape = SHAPE_MSGHDR; break;
	case 47: b->syscall = WEFT_SYS_RECVMSG; b->shape = SHAPE_MSGHDR; break;
	case 307: b->syscall = WEFT_SYS_SENDMMSG; break;
	case 299: b->syscall = WEFT_SYS_RECVMMSG; break;
	case 40: b->syscall = WEFT_SYS_SENDFILE; break;
	case 275: b->syscall = WEFT_SYS_SPLICE; break;
	}
	/* A read-shaped syscall under a send hook (or the reverse) means the socket is being
	 * driven from somewhere else, e.g. splice internals: do not trust the registers. */
	bool reading = b->syscall == WEFT_SYS_READ || b->syscall == WEFT_SYS_READV ||
		       b->syscall == WEFT_SYS_RECVFROM || b->syscall == WEFT_SYS_RECVMSG;
	bool writing = b->syscall == WEFT_SYS_WRITE || b->syscall == WEFT_SYS_WRITEV ||
		       b->syscall == WEFT_SYS_SENDTO || b->syscall == WEFT_SYS_SENDMSG;
	if ((dir == WEFT_DIR_SEND && reading) || (dir == WEFT_DIR_RECV && writing)) {
		b->syscall = WEFT_SYS_UNKNOWN;
		b->shape = SHAPE_NONE;
	}
}

#define WEFT_PF_IO_WORKER 0x00000010 /* include/linux/sched.h: not in vmlinux.h (a macro) */
#define WEFT_PF_KTHREAD 0x00200000

/* The current task moves bytes outside any syscall of its own: a kernel thread (NFS, in-kernel
 * TLS) or an io_uring worker. Their saved registers are zeroed at creation and would read as
 * read(fd=0). */
static __always_inline bool task_outside_syscall(const struct task_struct *task)
{
	return task->flags & (WEFT_PF_KTHREAD | WEFT_PF_IO_WORKER);
}

static __always_inline void current_syscall_buffer(struct task_struct *task, __u8 dir,
						   struct syscall_buffer *b)
{
	if (task_outside_syscall(task)) {
		b->syscall = WEFT_SYS_UNKNOWN;
		b->shape = SHAPE_NONE;
		b->fd = -1;
		b->arg1 = b->arg2 = 0;
		return;
	}
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	classify_syscall(regs->orig_ax, dir, b);
	b->fd = b->syscall == WEFT_SYS_UNKNOWN ? -1 : (__s32)regs->di;
	/* splice(fd_in, off_in, fd_out, ...): the socket we send on is fd_out. */
	if (b->syscall == WEFT_SYS_SPLICE && dir == WEFT_DIR_SEND)
		b->fd = (__s32)regs->dx;
	b->arg1 = regs->si;
	b->arg2 = regs->dx;
}

/* The fd of a connect() in progress, or -1 when the current syscall is not connect. */
static __always_inline __s32 current_connect_fd(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task_outside_syscall(task))
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return regs->orig_ax == 42 ? (__s32)regs->di : -1;
}

#endif
