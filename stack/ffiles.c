/* SPDX-License-Identifier: MIT */
/*
 * stack/ffiles.c - registered file slots for connection sockets.
 *
 * Every request naming a plain fd makes io_uring look the fd up in the
 * process's descriptor table and take a reference on the file (fget):
 * cold cache lines at 10,000 descriptors, 1-2% of each side's CPU at 1,000
 * active of 10,000 connections (issue 14).  A connection on a slot of the
 * ring's registered file table names the slot instead (IOSQE_FIXED_FILE):
 * an index into the ring's own table, no shared reference count.  (The
 * first read of the cold struct file, in sock_from_file(), stays:
 * docs/BENCHMARKS.md, "Registered file slots".)
 *
 * Slot lifetime, all on the reactor thread:
 *
 *   join   take a slot from the free list, note the fd in ff_fds[slot]
 *          and queue IORING_OP_FILES_UPDATE (slot := fd) with
 *          IOSQE_CQE_SKIP_SUCCESS: no completion unless it fails.  The
 *          connection names the slot from its next request on.
 *   use    zc__sqe_conn_file() after each prep that names the socket.
 *   leave  (close, or leaving for another reactor) queue FILES_UPDATE
 *          (slot := -1), also without a completion on success, and put
 *          the slot back on the free list at once.
 *
 * Why this order is enough: the SQEs of a submit are issued in queue
 * order, and FILES_UPDATE completes inline at issue (io_files_update() in
 * io_uring/rsrc.c runs under the submit lock and returns IOU_OK: it never
 * answers -EAGAIN, never goes to io-wq, needs no file; we never link it
 * nor set IOSQE_ASYNC).  A request's fixed file is looked up when it is
 * issued (io_assign_file()), so every request queued after a join finds
 * the slot installed, and every install queued after a leave (the slot's
 * next owner) comes after its clearing.  Across submits too: io_uring
 * consumes the SQ in order, and an early flush of a full SQ (zc__sqe())
 * submits a prefix.  The kernel reads the fd at issue from ff_fds[], which
 * the reactor owns (a connection may be freed before the submit).  If a
 * slot is taken, left and taken again within one batch, the first install
 * reads the newer fd, is cleared, and installed again: the end state is the
 * same, and nothing used the slot in between, since a connection leaves
 * only with no request in flight (close_fd() and the move wait for
 * ops_inflight to drop to zero, which takes a completion, hence a submit).
 *
 * An install can only fail if the kernel cannot allocate its node
 * (-ENOMEM): then the failure is counted and logged, and the connection's
 * requests fail with -EBADF, which closes it with that error.
 *
 * The close rule: a slot holds its own reference on the socket's file, so
 * close(fd) alone would leave the socket open (no FIN, no RST).  close_fd()
 * queues the clearing before it calls close(): the socket is released by
 * whichever drops the last reference, close() or the clearing at this
 * batch's submit (run_once() and the loop submit before they sleep), with
 * SO_LINGER (abort) already set on it either way, so the peer sees the
 * same FIN or RST as without slots, at the latest at the end of the batch.
 * Requests still holding the file delay it just as they do for a plain fd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "internal.h"

/* Default table size cap: 8 bytes of kernel memory per slot. */
#define ZC__FFILES_MAX 65536u

/* What a clearing writes into a slot (read by the kernel at issue). */
static const int zc__ffile_none = -1;

static unsigned default_size(void)
{
	struct rlimit rl;

	/* The kernel refuses a table larger than RLIMIT_NOFILE (-EMFILE):
	 * more slots than descriptors would never be used anyway. */
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > ZC__FFILES_MAX)
		return ZC__FFILES_MAX;
	return (unsigned)rl.rlim_cur;
}

/* Logged once per process: a kernel or limit that refuses slots refuses
 * them to every reactor. */
static void log_off(int err, unsigned n)
{
	static atomic_bool logged;

	if (atomic_exchange(&logged, true))
		return;
	zc__logp(ZC_LOG_WARN, NULL, "no registered files",
		 "registered file table of %u slots refused (%s): "
		 "connections use plain fds", n, strerror(-err));
}

void zc__ffiles_init(struct zc_reactor *r)
{
	unsigned i, n = r->cfg.fixed_files ? r->cfg.fixed_files :
					     default_size();
	int ret;

	if ((r->cfg.flags & ZC_REACTOR_NO_FIXED_FILES) || !n)
		return;
	r->ff_free = malloc((size_t)n * sizeof(*r->ff_free));
	r->ff_fds = malloc((size_t)n * sizeof(*r->ff_fds));
	if (!r->ff_free || !r->ff_fds) {
		zc__ffiles_fini(r);
		log_off(-ENOMEM, n);
		return;
	}
	ret = io_uring_register_files_sparse(&r->ring, n);
	if (ret) {
		log_off(ret, n);
		zc__ffiles_fini(r);
		return;
	}
	/* Popped from the end: slot 0 first. */
	for (i = 0; i < n; i++)
		r->ff_free[i] = n - 1 - i;
	r->ff_nfree = n;
	ZC__STAT_ADD(r, fixed_slots, n);
}

void zc__ffiles_fini(struct zc_reactor *r)
{
	/* The table itself goes with the ring. */
	free(r->ff_free);
	free(r->ff_fds);
	r->ff_free = NULL;
	r->ff_fds = NULL;
	r->ff_nfree = 0;
}

void zc__ffile_join(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;
	struct io_uring_sqe *sqe;

	assert(c->slot < 0);
	if (!r->ff_free)
		return;
	if (!r->ff_nfree) {
		ZC__STAT_INC(r, fixed_fallbacks);
		return;
	}
	c->slot = (int)r->ff_free[--r->ff_nfree];
	r->ff_fds[c->slot] = c->fd;
	sqe = zc__sqe(r);
	io_uring_prep_files_update(sqe, &r->ff_fds[c->slot], 1,
				   (unsigned)c->slot);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, zc__ud(r, ZC__OP_FFILE));
	ZC__STAT_INC(r, fixed_files);
}

void zc__ffile_leave(struct zc_conn *c)
{
	struct zc_reactor *r = c->r;
	struct io_uring_sqe *sqe;

	if (c->slot < 0)
		return;
	sqe = zc__sqe(r);
	io_uring_prep_files_update(sqe, (int *)&zc__ffile_none, 1,
				   (unsigned)c->slot);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, zc__ud(r, ZC__OP_FFILE));
	/* An install of this slot not yet issued (joined and left in one
	 * batch) now reads -1, not a closed fd (-EBADF) or the fd's next
	 * owner. */
	r->ff_fds[c->slot] = -1;
	r->ff_free[r->ff_nfree++] = (unsigned)c->slot;
	c->slot = -1;
	ZC__STAT_ADD(r, fixed_files, (uint64_t)-1);
}

/* Only failures complete (IOSQE_CQE_SKIP_SUCCESS). */
void zc__handle_ffile(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	if (cqe->res == 1)
		return;
	static atomic_bool logged;

	ZC__STAT_INC(r, fixed_errors);
	/* Once per process, like the table's refusal: the kernel out of
	 * memory says so for every slot it cannot set. */
	if (atomic_exchange(&logged, true))
		return;
	zc__logp(ZC_LOG_WARN, NULL, "registered file update failed",
		 "a registered file slot could not be set (%s): its "
		 "connection fails with EBADF (counted in fixed_errors)",
		 strerror(cqe->res < 0 ? -cqe->res : EIO));
}
