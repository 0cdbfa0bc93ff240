/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_trim.c - zc_pool_trim(): slabs given back after a peak
 * (alloc/trim.c), the release callback, the floor and the high-water mark,
 * referenced and deferred buffers, and slab indices reused afterwards.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

enum { BUF = 4096, PER_SLAB = 4, NBUFS = 32, NSLABS = NBUFS / PER_SLAB };

/* Which slabs the pool mapped and released, by index. */
struct slab_track {
	unsigned mapped, released;
	uintptr_t base[NSLABS];
	uint8_t live[NSLABS];
	unsigned bad;	/* a release of a slab not mapped, or a wrong base */
};

static int track_map(void *arg, unsigned index, void *base, size_t len)
{
	struct slab_track *t = arg;

	(void)len;
	if (index >= NSLABS || t->live[index])
		t->bad++;
	else {
		t->live[index] = 1;
		t->base[index] = (uintptr_t)base;
	}
	t->mapped++;
	return 0;
}

static void track_release(void *arg, unsigned index, void *base, size_t len)
{
	struct slab_track *t = arg;

	(void)len;
	if (index >= NSLABS || !t->live[index] ||
	    t->base[index] != (uintptr_t)base)
		t->bad++;
	else
		t->live[index] = 0;
	t->released++;
}

static struct zc_pool *tracked_pool(enum zc_free_mode mode,
				    struct slab_track *t)
{
	struct zc_pool_config cfg = {
		.buf_size = BUF, .max_bytes = NBUFS * BUF,
		.slab_bytes = PER_SLAB * BUF, .free_mode = mode,
		.on_slab = track_map, .on_slab_release = track_release,
		.on_slab_arg = t,
	};
	struct zc_pool *pool = NULL;

	memset(t, 0, sizeof(*t));
	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	return pool;
}

static void alloc_all(struct zc_pool *pool, struct zc_buf **b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(zc_buf_alloc(pool, &b[i]), 0, "buffer %u", i);
		/* Each buffer is writable memory of a mapped slab. */
		memset(zc_buf_data(b[i]), (int)i, BUF);
	}
}

static void peak_then_trim(enum zc_free_mode mode)
{
	struct slab_track t;
	struct zc_pool *pool = tracked_pool(mode, &t);
	struct zc_buf *b[NBUFS];

	alloc_all(pool, b, NBUFS);
	for (unsigned i = 0; i < NBUFS; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(stats_of(pool).bytes_mapped, NBUFS * BUF);
	/* The period that just ended used every buffer: nothing goes. */
	cr_assert_eq(zc_pool_trim(pool, 0), 0);
	cr_assert_eq(stats_of(pool).bytes_mapped, NBUFS * BUF);
	/* Nothing was used since: everything goes. */
	cr_assert_eq(zc_pool_trim(pool, 0), NSLABS);
	cr_assert_eq(stats_of(pool).bytes_mapped, 0);
	cr_assert_eq(stats_of(pool).slabs_trimmed, NSLABS);
	cr_assert_eq(t.released, NSLABS);
	cr_assert_eq(t.bad, 0);

	/* The free list kept no header of the unmapped slabs: a new peak
	 * maps again, reusing the indices, and every buffer is writable. */
	alloc_all(pool, b, NBUFS);
	cr_assert_eq(t.mapped, 2 * NSLABS);
	cr_assert_eq(t.bad, 0);
	for (unsigned i = 0; i < NBUFS; i++) {
		int s = zc_buf_slab_index(b[i]);

		cr_assert(s >= 0 && s < NSLABS && t.live[s]);
		zc_buf_put(b[i]);
	}
	cr_assert_eq(zc_pool_destroy(pool), 0);
	cr_assert_eq(t.released, NSLABS, "destroy does not call it");
}

Test(trim, peak_then_trim_gives_bytes_back)
{
	peak_then_trim(ZC_FREE_OWNER);
}

Test(trim, locked_mode_trims_too)
{
	peak_then_trim(ZC_FREE_LOCKED);
}

Test(trim, keeps_referenced_slabs_and_the_floor)
{
	struct slab_track t;
	struct zc_pool *pool = tracked_pool(ZC_FREE_OWNER, &t);
	struct zc_buf *b[NBUFS];
	unsigned held = PER_SLAB + 1; /* in slab 1 */
	int held_slab;

	alloc_all(pool, b, NBUFS);
	held_slab = zc_buf_slab_index(b[held]);
	/* A second reference, then the first dropped: still referenced. */
	zc_buf_get(b[held]);
	for (unsigned i = 0; i < NBUFS; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_trim(pool, 0), 0);
	/* A floor of two slabs: the one the reference pins counts in it. */
	cr_assert_eq(zc_pool_trim(pool, 2 * PER_SLAB * BUF), NSLABS - 2);
	cr_assert_eq(stats_of(pool).bytes_mapped, 2 * PER_SLAB * BUF);
	cr_assert(t.live[held_slab], "the referenced slab stays");
	cr_assert_eq(t.bad, 0);
	/* Its data is still ours. */
	memset(zc_buf_data(b[held]), 0x5a, BUF);
	zc_buf_put(b[held]);
	/* Once free it may go, down to the floor. */
	cr_assert_eq(zc_pool_trim(pool, PER_SLAB * BUF), 1);
	cr_assert_eq(stats_of(pool).bytes_mapped, PER_SLAB * BUF);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(trim, pinned_slab_drains_then_goes)
{
	struct slab_track t;
	struct zc_pool *pool = tracked_pool(ZC_FREE_OWNER, &t);
	struct zc_buf *b[NBUFS], *x[2 * (PER_SLAB - 1)], *y;
	unsigned held[2] = { 3 * PER_SLAB, 5 * PER_SLAB }; /* slabs 3, 5 */

	alloc_all(pool, b, NBUFS);
	for (unsigned i = 0; i < NBUFS; i++)
		if (i != held[0] && i != held[1])
			zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_trim(pool, 0), 0);
	/* Floor of one slab, two slabs pinned: every free slab goes; the
	 * lower pinned one makes the floor, the other drains. */
	cr_assert_eq(zc_pool_trim(pool, PER_SLAB * BUF), NSLABS - 2);
	cr_assert(t.live[3] && t.live[5]);
	/* The draining slab's free buffers are handed out last, yet before
	 * a new slab is mapped. */
	for (unsigned i = 0; i < 2 * (PER_SLAB - 1); i++) {
		cr_assert_eq(zc_buf_alloc(pool, &x[i]), 0);
		cr_assert_eq(zc_buf_slab_index(x[i]), i < PER_SLAB - 1 ? 3 : 5,
			     "buffer %u", i);
	}
	cr_assert_eq(t.mapped, NSLABS, "no slab mapped");
	cr_assert_eq(zc_buf_alloc(pool, &y), 0);
	cr_assert_eq(t.mapped, NSLABS + 1, "then a new slab");
	zc_buf_put(y);
	for (unsigned i = 0; i < 2 * (PER_SLAB - 1); i++)
		zc_buf_put(x[i]);
	/* Once its last buffer is back, the next trim gives it back. */
	zc_buf_put(b[held[1]]);
	cr_assert_eq(zc_pool_trim(pool, PER_SLAB * BUF), 0, "the peak's");
	cr_assert_eq(zc_pool_trim(pool, PER_SLAB * BUF), 2);
	cr_assert(t.live[3] && !t.live[5]);
	cr_assert_eq(stats_of(pool).bytes_mapped, PER_SLAB * BUF);
	cr_assert_eq(t.bad, 0);
	zc_buf_put(b[held[0]]);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(trim, steady_use_is_kept)
{
	struct slab_track t;
	struct zc_pool *pool = tracked_pool(ZC_FREE_OWNER, &t);
	struct zc_buf *b[NBUFS];

	alloc_all(pool, b, NBUFS);
	for (unsigned i = 0; i < NBUFS; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_trim(pool, 0), 0);
	/* A period that again used half of the buffers keeps half. */
	alloc_all(pool, b, NBUFS / 2);
	for (unsigned i = 0; i < NBUFS / 2; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_trim(pool, 0), NSLABS / 2);
	cr_assert_eq(stats_of(pool).bytes_mapped, NBUFS / 2 * BUF);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

static void put_all_cb(void *arg)
{
	struct zc_buf **b = arg;

	for (unsigned i = 0; i < NBUFS; i++)
		zc_buf_put(b[i]);
}

Test(trim, deferred_buffers_are_taken_back_first)
{
	struct slab_track t;
	struct zc_pool *pool = tracked_pool(ZC_FREE_OWNER, &t);
	struct zc_buf *b[NBUFS];

	alloc_all(pool, b, NBUFS);
	on_thread(put_all_cb, b); /* all on the defer list, not drained */
	cr_assert(zc_pool_pending(pool));
	cr_assert_eq(zc_pool_trim(pool, 0), 0);
	cr_assert_eq(zc_pool_trim(pool, 0), NSLABS);
	cr_assert_eq(stats_of(pool).bytes_mapped, 0);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

struct trim_call {
	struct zc_pool *pool;
	int ret;
};

static void trim_off_owner_cb(void *arg)
{
	struct trim_call *c = arg;

	c->ret = zc_pool_trim(c->pool, 0);
}

Test(trim, owner_only_and_local_mode)
{
	struct trim_call a;
	struct zc_pool *local = small_pool(ZC_FREE_LOCAL, 8 * BUF);
	struct zc_buf *x;

	a.pool = small_pool(ZC_FREE_OWNER, 8 * BUF);
	a.ret = 0;
	on_thread(trim_off_owner_cb, &a);
	cr_assert_eq(a.ret, -EPERM);
	cr_assert_eq(zc_pool_destroy(a.pool), 0);

	cr_assert_eq(zc_buf_alloc(local, &x), 0);
	zc_buf_put(x);
	cr_assert_eq(zc_pool_trim(local, 0), 0, "no slabs");
	cr_assert_eq(zc_pool_destroy(local), 0);
}
