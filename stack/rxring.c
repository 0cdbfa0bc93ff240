/* SPDX-License-Identifier: MIT */
/*
 * stack/rxring.c - the provided-buffer ring that multishot receives fill,
 * stocked from the reactor's pool, and the registration of pool slabs as
 * fixed buffers for send_zc_fixed.
 *
 * Ownership: while buffer i sits in the ring, br_bufs[i] holds the
 * reactor's only reference on it, so the kernel may write it.  A receive
 * completion naming bid i hands that reference to the connection, which
 * turns it into the view given to on_data().
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define ZC__BGID 0

/* Free the ring's bookkeeping and unmap it (no buffer is held in it). */
static void rxring_unmap(struct zc_reactor *r)
{
	free(r->br_bufs);
	free(r->br_off);
	free(r->br_free);
	r->br_bufs = NULL;
	r->br_off = NULL;
	r->br_free = NULL;
	munmap(r->br, r->br_map_len);
	r->br = NULL;
}

/* The registration's flags: a field that liburing before 2.4 calls pad. */
static void buf_reg_set_flags(struct io_uring_buf_reg *reg, uint16_t flags)
{
#ifdef IOU_PBUF_RING_MMAP
	reg->flags = flags;
#else
	reg->pad = flags;
#endif
}

int zc__rxring_init(struct zc_reactor *r)
{
	struct io_uring_buf_reg reg = { 0 };
	unsigned i, n = r->cfg.rx_ring_entries;
	long page = sysconf(_SC_PAGESIZE);
	int ret;

	r->br_entries = n;
	r->br_map_len = (n * sizeof(struct io_uring_buf) + page - 1) &
			~(size_t)(page - 1);
	r->br = mmap(NULL, r->br_map_len, PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (r->br == MAP_FAILED) {
		r->br = NULL;
		return -ENOMEM;
	}
	r->br_bufs = calloc(n, sizeof(*r->br_bufs));
	r->br_off = calloc(n, sizeof(*r->br_off));
	r->br_free = calloc(n, sizeof(*r->br_free));
	if (!r->br_bufs || !r->br_off || !r->br_free) {
		ret = -ENOMEM;
		goto err_free;
	}
	reg.ring_addr = (unsigned long)r->br;
	reg.ring_entries = n;
	reg.bgid = ZC__BGID;
	ret = -EINVAL;
	if (!(r->cfg.flags & ZC_REACTOR_NO_INC_BUFS)) {
		/* Small receives pack into one buffer instead of taking a
		 * whole one each; kernels before 6.12 answer -EINVAL. */
		buf_reg_set_flags(&reg, IOU_PBUF_RING_INC);
		ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
		if (!ret)
			r->features |= ZC__F_RXRING_INC;
	}
	if (ret == -EINVAL) {
		buf_reg_set_flags(&reg, 0);
		ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
	}
	if (ret) {
		/* Provided-buffer rings are the receive path: no fallback. */
		ret = ret == -EINVAL ? -EOPNOTSUPP : ret;
		goto err_free;
	}
	io_uring_buf_ring_init(r->br);
	for (i = 0; i < n; i++)
		r->br_free[i] = (uint16_t)(n - 1 - i);
	r->br_nfree = n;
	zc__rxring_refill(r);
	return 0;

err_free:
	rxring_unmap(r);
	return ret;
}

void zc__rxring_refill(struct zc_reactor *r)
{
	unsigned added = 0;
	size_t size = r->cfg.rxbuf_size;

	/*
	 * Buffers that come home go first to TLS openings that wait for
	 * them: the ciphertext they hold came from the ring, and only an
	 * opening gives it back.  Refilled first, an idle ring could hold
	 * every free buffer while those connections, which read nothing
	 * meanwhile, wait for ever.
	 */
	if (r->tls_rx_waiting)
		return;
	while (r->br_nfree) {
		uint16_t bid = r->br_free[r->br_nfree - 1];
		struct zc_buf *b;

		/* Nor may a ring that holds a buffer take the openings'
		 * reserve: with every connection waiting to open, none
		 * reads, and what the ring holds never comes home
		 * (ZC__TLS_OPEN_RESERVE).  Kept whether or not TLS runs
		 * here: the ring is filled before the first connection, and
		 * what it holds cannot be taken back.  Only a pool capped
		 * near the ring's size notices (the default cap is 4 rings). */
		if (r->br_nfree < r->br_entries &&
		    zc_pool_headroom(r->pool) < ZC__TLS_OPEN_RESERVE * size)
			break;
		if (zc_buf_alloc(r->pool, &b))
			break;
		r->br_nfree--;
		r->br_bufs[bid] = b;
		io_uring_buf_ring_add(r->br, zc_buf_data(b), (unsigned)size,
				      bid, io_uring_buf_ring_mask(r->br_entries),
				      (int)added++);
	}
	if (added) {
		/* Publishes the entries to the kernel (release store). */
		io_uring_buf_ring_advance(r->br, (int)added);
		ZC__STAT_ADD(r, rx_ring_refills, added);
	}
}

struct zc_buf *zc__rxring_recv(struct zc_reactor *r, unsigned bid,
			       unsigned len, bool more, uint32_t *off)
{
	struct zc_buf *b;

	assert(bid < r->br_entries && r->br_bufs[bid]);
	b = r->br_bufs[bid];
	*off = r->br_off[bid];
	assert(*off + len <= r->cfg.rxbuf_size);
	if (!len && (r->features & ZC__F_RXRING_INC))
		return NULL;
	if (more) {
		/* Still the kernel's to fill past these bytes. */
		r->br_off[bid] += len;
		zc_buf_get(b);
		ZC__STAT_INC(r, rx_buf_shared);
		return b;
	}
	r->br_off[bid] = 0;
	r->br_bufs[bid] = NULL;
	r->br_free[r->br_nfree++] = (uint16_t)bid;
	return b;
}

bool zc__rxring_has_bufs(const struct zc_reactor *r)
{
	return r->br_nfree < r->br_entries;
}

/* Every receive has ended: take the ring's buffers back. */
void zc__rxring_fini(struct zc_reactor *r)
{
	unsigned i;

	if (!r->br)
		return;
	io_uring_unregister_buf_ring(&r->ring, ZC__BGID);
	for (i = 0; i < r->br_entries; i++)
		if (r->br_bufs[i])
			zc_buf_put(r->br_bufs[i]);
	rxring_unmap(r);
}

/* -------------------------------------------------------------------------
 * Fixed buffers: one sparse table slot per possible slab.
 */

int zc__fixed_init(struct zc_reactor *r)
{
	size_t slab = r->cfg.slab_bytes ? r->cfg.slab_bytes : (2u << 20);
	unsigned n;
	int ret;

	if (slab < r->cfg.rxbuf_size)
		slab = r->cfg.rxbuf_size;
	slab -= slab % r->cfg.rxbuf_size;
	n = (unsigned)(r->cfg.pool_bytes / slab + 1);
	if (n > 16384)
		return -E2BIG;
	r->fixed_ok = calloc(n, 1);
	if (!r->fixed_ok)
		return -ENOMEM;
	ret = io_uring_register_buffers_sparse(&r->ring, n);
	if (ret) {
		free(r->fixed_ok);
		r->fixed_ok = NULL;
		return ret;
	}
	r->fixed_n = n;
	r->features |= ZC__F_FIXED_BUFS;
	return 0;
}

/* Pool callback, owner thread: a new slab is mapped.  A slab that cannot
 * be registered is simply sent from without the fixed flag.  Either way
 * the pool grew, so the reactor trims it again once idle (stack/trim.c). */
int zc__on_slab(void *arg, unsigned index, void *base, size_t len)
{
	struct zc_reactor *r = arg;
	struct iovec iov = { .iov_base = base, .iov_len = len };

	r->trim_armed = true;
	r->trim_wake = true;
	if (index < r->fixed_n &&
	    io_uring_register_buffers_update_tag(&r->ring, index, &iov, NULL,
						 1) == 1)
		r->fixed_ok[index] = 1;
	return 0;
}

/* Pool callback, owner thread: slab @index is about to be unmapped (none
 * of its buffers is referenced, so no send names it).  Its table slot is
 * emptied first, so the kernel drops its pin of the pages; the slot is
 * filled again by zc__on_slab() when the pool reuses the index. */
void zc__on_slab_release(void *arg, unsigned index, void *base, size_t len)
{
	struct zc_reactor *r = arg;
	struct iovec iov = { .iov_base = NULL, .iov_len = 0 };

	(void)base;
	(void)len;
	if (index >= r->fixed_n || !r->fixed_ok[index])
		return;
	r->fixed_ok[index] = 0;
	/* A failed update leaves the pages pinned by the kernel, no longer
	 * reachable by us: safe to unmap, only not given back. */
	(void)io_uring_register_buffers_update_tag(&r->ring, index, &iov, NULL,
						   1);
}
