/* SPDX-License-Identifier: MIT */
/*
 * timer.c - zc_timer: one-shot timers on the reactor's own ring.
 *
 * A timer is an IORING_OP_TIMEOUT with IORING_TIMEOUT_ABS and no
 * completion count, so it ends only by expiring (-ETIME).  A reactor asleep
 * in io_uring_enter() wakes for it like for any completion: no thread and
 * no cross-thread wake-up are involved, which is the point (zcperf's
 * open-loop schedule used a pacer thread, and every hand-off to the
 * reactor cost a wake-up of another thread).
 */
#include <errno.h>
#include <stddef.h>

#include "internal.h"

/* The public struct carries the kernel's timespec without naming it. */
_Static_assert(sizeof(((struct zc_timer *)0)->ts) ==
		       sizeof(struct __kernel_timespec),
	       "zc_timer.ts is not a __kernel_timespec");

int zc_timer_arm(struct zc_reactor *r, struct zc_timer *t, uint64_t when_ns)
{
	struct io_uring_sqe *sqe;

	if (!t->fn)
		return -EINVAL;
	if (t->armed)
		return -EBUSY;
	if (r->torn_down)
		return -ESHUTDOWN;
	t->ts.tv_sec = (int64_t)(when_ns / 1000000000u);
	t->ts.tv_nsec = (int64_t)(when_ns % 1000000000u);
	sqe = zc__sqe(r);
	/* CLOCK_MONOTONIC is the default clock of an absolute timeout. */
	io_uring_prep_timeout(sqe, (struct __kernel_timespec *)&t->ts, 0,
			      IORING_TIMEOUT_ABS);
	io_uring_sqe_set_data64(sqe, zc__ud(t, ZC__OP_TIMER));
	t->armed = true;
	return 0;
}

bool zc_timer_armed(const struct zc_timer *t)
{
	return t->armed;
}

void zc__handle_timer(const struct io_uring_cqe *cqe)
{
	struct zc_timer *t = zc__ud_obj(cqe->user_data);

	/* Cleared first: fn may arm it again. */
	t->armed = false;
	t->fn(t, cqe->res == -ETIME ? 0 : cqe->res);
}
