/* SPDX-License-Identifier: MIT */
/*
 * stack/prefault.c - large message memory populated off the loop.
 */
#include <sys/mman.h>

#include "internal.h"

/*
 * Pool callback, owner thread: a large region was mapped for a message
 * (zc_buf_alloc_large()).  Its first touch costs a page fault and a
 * page of zeroing per 4 KiB (0.4 ms per MiB here), which the copies that
 * fill it would pay on this loop, batch after batch, while every other
 * connection waits.  An asynchronous MADV_POPULATE_WRITE, forced onto an
 * io-wq worker, pays it on another thread instead; the copies racing it
 * fault only the pages it has not reached.  Its result does not matter:
 * a kernel without the advice answers -EINVAL, a region unmapped before
 * the worker ran answers -ENOMEM, and the copies fault as before.
 */
void zc__on_large_map(void *arg, void *base, size_t len)
{
	struct zc_reactor *r = arg;
	struct io_uring_sqe *sqe;

	if (len < ZC__PREFAULT_MIN || r->torn_down)
		return;
	sqe = zc__sqe(r);
	io_uring_prep_madvise(sqe, base, (len + 4095) & ~(size_t)4095,
			      MADV_POPULATE_WRITE);
	sqe->flags |= IOSQE_ASYNC;
	io_uring_sqe_set_data64(sqe, zc__ud(r, ZC__OP_IGNORE));
	ZC__STAT_INC(r, prefaults);
}
