/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_large.c - zc_buf_alloc_large() (alloc/large.c): regions
 * reused warm after their last reference, whatever kind it was; the cache's
 * cap, regions retired past it and unmapped a slice at a time by
 * zc_pool_reclaim(); the trim that retires what a period did not take;
 * allocations and releases off the owner.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

#define MiB ((size_t)1 << 20)

static struct zc_pool *large_pool(size_t cache_bytes, enum zc_free_mode mode)
{
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = 64 * 4096,
		.large_cache_bytes = cache_bytes, .free_mode = mode,
	};
	struct zc_pool *pool = NULL;

	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	return pool;
}

static struct zc_pool_stats stats(const struct zc_pool *pool)
{
	struct zc_pool_stats st;

	zc_pool_stats(pool, &st);
	return st;
}

static struct zc_buf *alloc_large(struct zc_pool *pool, size_t len)
{
	struct zc_buf *b = NULL;

	cr_assert_eq(zc_buf_alloc_large(pool, len, &b), 0);
	cr_assert_eq(zc_buf_capacity(b), len);
	cr_assert(zc_buf_is_external(b));
	cr_assert(zc_buf_is_exclusive(b));
	memset(zc_buf_data(b), 0x5a, len);	/* writable, all of it */
	return b;
}

Test(large, released_region_is_reused_in_its_class)
{
	struct zc_pool *pool = large_pool(8 * MiB, ZC_FREE_OWNER);
	struct zc_buf *b = alloc_large(pool, MiB);
	void *data = zc_buf_data(b);

	cr_assert_eq(stats(pool).large_bytes, MiB);
	zc_buf_put(b);
	cr_assert_eq(stats(pool).large_cached, MiB);
	cr_assert_eq(zc_pool_large_cached(pool), MiB);
	/* 700 KiB rounds up to the same 1 MiB class: the same memory. */
	b = alloc_large(pool, 700 * 1024);
	cr_assert_eq(zc_buf_data(b), data);
	cr_assert_eq(stats(pool).large_reused, 1);
	cr_assert_eq(stats(pool).large_cached, 0);
	/* Another class maps a region of its own. */
	struct zc_buf *c = alloc_large(pool, 2 * MiB);
	cr_assert_eq(stats(pool).large_bytes, 3 * MiB);
	zc_buf_put(b);
	zc_buf_put(c);
	cr_assert_eq(stats(pool).large_cached, 3 * MiB);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(large, small_requests_are_not_regions)
{
	struct zc_pool *pool = large_pool(8 * MiB, ZC_FREE_OWNER);
	struct zc_buf *b = alloc_large(pool, 100);

	cr_assert_eq(stats(pool).large_bytes, 0);
	zc_buf_put(b);
	cr_assert_eq(stats(pool).large_cached, 0);
	cr_assert_eq(stats(pool).ext_released, 1);
	cr_assert_eq(zc_buf_alloc_large(pool, 0, &b), -EINVAL);
	cr_assert_eq(zc_buf_alloc_large(pool, (size_t)UINT32_MAX + 1, &b),
		     -EINVAL);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* A view and an in-flight send each keep the region out of the cache. */
Test(large, cached_only_after_the_last_reference)
{
	struct zc_pool *pool = large_pool(8 * MiB, ZC_FREE_OWNER);
	struct zc_buf *b = alloc_large(pool, MiB);
	struct zc_view v;

	cr_assert_eq(zc_view_init(&v, b, 4096, 4096), 0);
	zc_buf_inflight_get(b);
	zc_buf_put(b);
	zc_view_release(&v);
	cr_assert_eq(stats(pool).large_cached, 0);
	cr_assert_eq(zc_pool_destroy(pool), -EBUSY);
	zc_buf_inflight_put(b);
	cr_assert_eq(stats(pool).large_cached, MiB);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(large, past_the_cap_regions_are_retired_then_reclaimed_in_slices)
{
	struct zc_pool *pool = large_pool(MiB, ZC_FREE_OWNER);
	struct zc_buf *a = alloc_large(pool, MiB), *b = alloc_large(pool, MiB);

	zc_buf_put(a);
	zc_buf_put(b);	/* the cache holds one MiB already */
	cr_assert_eq(stats(pool).large_cached, MiB);
	cr_assert_eq(stats(pool).large_bytes, 2 * MiB);
	cr_assert_eq(zc_pool_reclaim(pool, 0), MiB);
	cr_assert_eq(zc_pool_reclaim(pool, 256 * 1024), 768 * 1024);
	cr_assert_eq(stats(pool).large_bytes, 2 * MiB - 256 * 1024);
	cr_assert_eq(zc_pool_reclaim(pool, SIZE_MAX), 0);
	cr_assert_eq(stats(pool).large_bytes, MiB);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* A region cached in a period survives that period's trim; one no
 * allocation took for a whole period is retired by the next. */
Test(large, trim_retires_what_a_period_did_not_take)
{
	struct zc_pool *pool = large_pool(8 * MiB, ZC_FREE_LOCAL);
	struct zc_buf *a = alloc_large(pool, MiB), *b = alloc_large(pool, MiB);

	zc_buf_put(a);
	zc_buf_put(b);
	cr_assert_geq(zc_pool_trim(pool, 0), 0);
	cr_assert_eq(stats(pool).large_cached, 2 * MiB);
	a = alloc_large(pool, MiB);	/* one taken this period */
	zc_buf_put(a);			/* and cached again */
	cr_assert_geq(zc_pool_trim(pool, 0), 0);
	cr_assert_eq(stats(pool).large_cached, MiB);
	cr_assert_eq(zc_pool_reclaim(pool, SIZE_MAX), 0);
	cr_assert_eq(stats(pool).large_bytes, MiB);
	cr_assert_geq(zc_pool_trim(pool, 0), 0);
	cr_assert_eq(stats(pool).large_cached, 0);
	zc_pool_reclaim(pool, SIZE_MAX);
	cr_assert_eq(stats(pool).large_bytes, 0);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

struct off_owner {
	struct zc_pool *pool;
	struct zc_buf *buf;
	int ret;
	size_t reclaimed;
};

static void alloc_off_owner(void *arg)
{
	struct off_owner *o = arg;

	o->ret = zc_buf_alloc_large(o->pool, MiB, &o->buf);
	if (!o->ret)
		memset(zc_buf_data(o->buf), 1, MiB);
	o->reclaimed = zc_pool_reclaim(o->pool, SIZE_MAX);
}

/* Off the owner an allocation maps a fresh region (the cache is the
 * owner's); its release, deferred to the owner, still caches it. */
Test(large, off_owner_alloc_and_release)
{
	struct zc_pool *pool = large_pool(MiB, ZC_FREE_OWNER);
	struct zc_buf *cached = alloc_large(pool, MiB);
	struct off_owner o = { .pool = pool };

	zc_buf_put(cached);
	on_thread(alloc_off_owner, &o);
	cr_assert_eq(o.ret, 0);
	cr_assert_neq(zc_buf_data(o.buf), NULL);
	cr_assert_eq(o.reclaimed, 0);
	cr_assert_eq(stats(pool).large_cached, MiB);	/* not taken */
	cr_assert_eq(stats(pool).large_bytes, 2 * MiB);
	on_thread(put_buf_cb, o.buf);
	cr_assert_eq(stats(pool).large_cached, MiB);	/* not yet home */
	zc_pool_drain(pool);
	/* Home, past the cap: retired; the reclaim off the owner did
	 * nothing, the owner's does. */
	cr_assert_eq(zc_pool_reclaim(pool, SIZE_MAX), 0);
	cr_assert_eq(stats(pool).large_bytes, MiB);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* Destroy unmaps cached and retired regions alike (ASan: no leak). */
Test(large, destroy_gives_everything_back)
{
	struct zc_pool *pool = large_pool(MiB, ZC_FREE_LOCKED);
	struct zc_buf *a = alloc_large(pool, MiB), *b = alloc_large(pool, 4 * MiB);

	zc_buf_put(a);
	zc_buf_put(b);
	cr_assert_eq(zc_pool_reclaim(pool, 0), 4 * MiB);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

struct map_probe {
	unsigned calls;
	size_t last_len;
};

static void probe_large_map(void *arg, void *base, size_t len)
{
	struct map_probe *p = arg;

	(void)base;
	p->calls++;
	p->last_len = len;
}

/* Only regions the owner maps are announced, with the bytes asked for:
 * the stack populates them off its loop. */
Test(large, fresh_regions_are_announced_on_the_owner)
{
	struct map_probe probe = { 0 };
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = 64 * 4096,
		.large_cache_bytes = 8 * MiB,
		.on_large_map = probe_large_map, .on_slab_arg = &probe,
	};
	struct zc_pool *pool = NULL;
	struct off_owner o;

	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	o = (struct off_owner){ .pool = pool };
	zc_buf_put(alloc_large(pool, 3 * MiB / 2));
	cr_assert_eq(probe.calls, 1);
	cr_assert_eq(probe.last_len, 3 * MiB / 2);
	zc_buf_put(alloc_large(pool, 2 * MiB));	/* warm: same class */
	cr_assert_eq(probe.calls, 1);
	zc_buf_put(alloc_large(pool, 1000));		/* not a region */
	cr_assert_eq(probe.calls, 1);
	on_thread(alloc_off_owner, &o);
	cr_assert_eq(o.ret, 0);
	cr_assert_eq(probe.calls, 1);
	on_thread(put_buf_cb, o.buf);
	zc_pool_drain(pool);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}
