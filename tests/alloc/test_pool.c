/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_pool.c - pool configuration, slabs, byte cap,
 * destroy, owner binding and the three free modes (alloc/pool.c).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

Test(pool, create_validates_config)
{
	static const size_t bad_sizes[] = { 1000, 4097, 2048, 512 * 1024, 8192 + 1 };
	struct zc_pool_config cfg = { 0 };
	struct zc_pool *pool = NULL;

	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		cfg.buf_size = bad_sizes[i];
		cr_assert_eq(zc_pool_create(&cfg, &pool), -EINVAL);
	}
	cfg.buf_size = 8192;
	cfg.max_bytes = 4096;
	cr_assert_eq(zc_pool_create(&cfg, &pool), -EINVAL);
	cfg.max_bytes = 0;
	cfg.free_mode = (enum zc_free_mode)3;
	cr_assert_eq(zc_pool_create(&cfg, &pool), -EINVAL);
	cr_assert_null(pool);

	cr_assert_eq(zc_pool_create(NULL, &pool), 0);
	cr_assert_eq(zc_pool_buf_size(pool), 64 * 1024);
	cr_assert(zc_pool_is_owner(pool));
	cr_assert_eq(stats_of(pool).bytes_mapped, 0, "mapped lazily");
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(pool, exhaustion_and_recovery)
{
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, 8 * 4096);
	struct zc_buf *b[8], *x = NULL, *y;

	for (int i = 0; i < 8; i++)
		cr_assert_eq(zc_buf_alloc(pool, &b[i]), 0);
	cr_assert_eq(zc_buf_alloc(pool, &x), -ENOBUFS);
	cr_assert_null(x);
	cr_assert_eq(zc_buf_alloc(pool, &x), -ENOBUFS);
	cr_assert_eq(stats_of(pool).pool_empty, 2);
	cr_assert_eq(stats_of(pool).bytes_mapped, 8 * 4096);
	cr_assert_eq(stats_of(pool).in_use, 8);
	zc_buf_put(b[3]);
	cr_assert_eq(zc_buf_alloc(pool, &y), 0);
	cr_assert_eq(y, b[3], "freed buffer is reused first");
	cr_assert_eq(stats_of(pool).allocated, 9);
	cr_assert_eq(stats_of(pool).pool_empty, 2);
	b[3] = y;
	for (int i = 0; i < 8; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(stats_of(pool).in_use, 0);
	cr_assert_eq(stats_of(pool).released_owner, 9);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

struct slab_log {
	unsigned n;
	unsigned index[8];
	uintptr_t base[8];
	size_t len[8];
	int fail_at; /* slab index to refuse, or -1 */
};

static int slab_cb(void *arg, unsigned index, void *base, size_t len)
{
	struct slab_log *l = arg;

	if ((int)index == l->fail_at)
		return -EIO;
	cr_assert_lt(l->n, 8);
	l->index[l->n] = index;
	l->base[l->n] = (uintptr_t)base;
	l->len[l->n] = len;
	l->n++;
	return 0;
}

Test(pool, slabs_and_byte_cap)
{
	struct slab_log log = { .fail_at = -1 };
	struct zc_pool_config cfg = {
		.buf_size = 4096,
		.max_bytes = 10 * 4096 + 100, /* not a whole slab, nor buffer */
		.slab_bytes = 4 * 4096 + 5,   /* rounded down to 4 buffers */
		.on_slab = slab_cb,
		.on_slab_arg = &log,
	};
	static const size_t want_len[] = { 4 * 4096, 4 * 4096, 2 * 4096 };
	struct zc_pool *pool;
	struct zc_buf *b[10], *x;

	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(zc_buf_alloc(pool, &b[i]), 0);
		cr_assert_eq(zc_buf_slab_index(b[i]), i / 4);
		cr_assert_eq(log.n, (unsigned)(i / 4 + 1), "one call per slab");
	}
	cr_assert_eq(zc_buf_alloc(pool, &x), -ENOBUFS);
	cr_assert_eq(log.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(log.index[i], i);
		cr_assert_eq(log.base[i] % 4096, 0, "page-aligned base");
		cr_assert_eq(log.len[i], want_len[i]);
		/* Buffers of a slab are cut from its contiguous base. */
		cr_assert_eq((uintptr_t)zc_buf_data(b[i * 4]), log.base[i]);
		if (i < 2)
			cr_assert_eq((uintptr_t)zc_buf_data(b[i * 4 + 3]),
				     log.base[i] + 3 * 4096);
	}
	cr_assert_eq(stats_of(pool).bytes_mapped, 10 * 4096);
	cr_assert_leq(stats_of(pool).bytes_mapped, cfg.max_bytes);
	for (int i = 0; i < 10; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(pool, slab_callback_error_fails_the_allocation)
{
	struct slab_log log = { .fail_at = 1 };
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = 16 * 4096, .slab_bytes = 2 * 4096,
		.on_slab = slab_cb, .on_slab_arg = &log,
	};
	struct zc_pool *pool;
	struct zc_buf *b[2], *x = NULL;

	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	cr_assert_eq(zc_buf_alloc(pool, &b[0]), 0);
	cr_assert_eq(zc_buf_alloc(pool, &b[1]), 0);
	cr_assert_eq(zc_buf_alloc(pool, &x), -EIO);
	cr_assert_eq(zc_buf_alloc(pool, &x), -EIO);
	cr_assert_null(x);
	cr_assert_eq(stats_of(pool).bytes_mapped, 2 * 4096);
	cr_assert_eq(stats_of(pool).allocated, 2);
	log.fail_at = -1;
	cr_assert_eq(zc_buf_alloc(pool, &x), 0);
	cr_assert_eq(zc_buf_slab_index(x), 1);
	zc_buf_put(x);
	zc_buf_put(b[0]);
	zc_buf_put(b[1]);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

static void inflight_put_cb(void *buf)
{
	zc_buf_inflight_put(buf);
}

Test(pool, destroy_busy_while_referenced)
{
	static char mem[16];
	struct ext_probe probe = { 0 };
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, 8 * 4096);
	struct zc_buf *b, *e;
	struct zc_view v;

	probe.pool = pool;
	/* A view held elsewhere. */
	cr_assert_eq(zc_buf_alloc(pool, &b), 0);
	cr_assert_eq(zc_view_adopt(&v, b, 0, 10), 0);
	cr_assert_eq(zc_pool_destroy(pool), -EBUSY);
	on_thread(release_view_cb, &v);
	cr_assert_eq(stats_of(pool).in_use, 1, "pending on the defer list");

	/* An in-flight send. */
	cr_assert_eq(zc_buf_alloc(pool, &b), 0);
	zc_buf_inflight_get(b);
	zc_buf_put(b);
	cr_assert_eq(zc_pool_destroy(pool), -EBUSY);
	cr_assert_eq(stats_of(pool).drained, 1, "destroy drained first");
	on_thread(inflight_put_cb, b);

	/* External memory not yet released; the pool stays usable. */
	cr_assert_eq(zc_buf_wrap(pool, mem, sizeof(mem), ext_probe_release,
				 &probe, &e), 0);
	cr_assert_eq(zc_pool_destroy(pool), -EBUSY);
	cr_assert_eq(zc_buf_alloc(pool, &b), 0);
	zc_buf_put(b);
	zc_buf_put(e);
	cr_assert_eq(atomic_load(&probe.calls), 1);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

static struct zc_pool *bound_pool;
static bool owner_on_thread;

static void bind_here(void *arg)
{
	struct zc_buf *b;

	(void)arg;
	zc_pool_bind(bound_pool);
	owner_on_thread = zc_pool_is_owner(bound_pool);
	cr_assert_eq(zc_buf_alloc(bound_pool, &b), 0);
	zc_buf_put(b);
}

Test(pool, bind_moves_ownership)
{
	struct zc_pool *other = small_pool(ZC_FREE_OWNER, 8 * 4096);

	bound_pool = small_pool(ZC_FREE_OWNER, 8 * 4096);
	on_thread(bind_here, NULL);
	cr_assert(owner_on_thread);
	cr_assert_not(zc_pool_is_owner(bound_pool));
	cr_assert(zc_pool_is_owner(other), "one thread may own several pools");
	cr_assert_eq(stats_of(bound_pool).released_owner, 1);
	zc_pool_bind(bound_pool);
	cr_assert(zc_pool_is_owner(bound_pool));
	cr_assert_eq(zc_pool_destroy(bound_pool), 0);
	cr_assert_eq(zc_pool_destroy(other), 0);
}

/*
 * The three free modes through one scenario: 6 buffers, 3 dropped on the
 * owner and 3 on another thread.  Every buffer comes back exactly once,
 * only the counter that records how differs.
 */
struct put_all {
	struct zc_buf **b;
	int n;
};

static void put_all_cb(void *p)
{
	struct put_all *a = p;

	for (int i = 0; i < a->n; i++)
		zc_buf_put(a->b[i]);
}

static void run_mode(enum zc_free_mode mode, struct zc_pool_stats *s)
{
	struct zc_pool *pool = small_pool(mode, 8 * 4096);
	struct zc_buf *b[8], *x;
	struct put_all remote = { b + 3, 3 };

	for (int i = 0; i < 8; i++)
		cr_assert_eq(zc_buf_alloc(pool, &b[i]), 0);
	cr_assert_eq(zc_buf_alloc(pool, &x), -ENOBUFS, "%s", zc_free_mode_name(mode));
	cr_assert_eq(stats_of(pool).in_use, 8);
	cr_assert_eq(stats_of(pool).bytes_mapped, 8 * 4096);
	zc_buf_put(b[6]);
	zc_buf_put(b[7]);
	for (int i = 0; i < 3; i++)
		zc_buf_put(b[i]);
	on_thread(put_all_cb, &remote);
	zc_pool_drain(pool);
	zc_pool_stats(pool, s);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

Test(pool, free_modes_conserve_buffers)
{
	struct zc_pool_stats o, l, k;

	run_mode(ZC_FREE_OWNER, &o);
	run_mode(ZC_FREE_LOCAL, &l);
	run_mode(ZC_FREE_LOCKED, &k);

	cr_assert_eq(o.allocated, 8);
	cr_assert_eq(o.released_owner, 5);
	cr_assert_eq(o.deferred, 3);
	cr_assert_eq(o.drained, 3);
	cr_assert_eq(o.pool_empty, 1);
	cr_assert_eq(o.released_local + o.released_locked, 0);
	cr_assert_eq(o.in_use, 0);
	cr_assert_eq(o.bytes_mapped, 8 * 4096, "slabs stay mapped");

	cr_assert_eq(l.allocated, 8);
	cr_assert_eq(l.released_owner, 5);
	cr_assert_eq(l.released_local, 3);
	cr_assert_eq(l.deferred + l.drained + l.released_locked, 0);
	cr_assert_eq(l.pool_empty, 1);
	cr_assert_eq(l.in_use, 0);
	cr_assert_eq(l.bytes_mapped, 0, "LOCAL memory goes back to malloc");

	cr_assert_eq(k.allocated, 8);
	cr_assert_eq(k.released_locked, 8);
	cr_assert_eq(k.released_owner + k.released_local, 0);
	cr_assert_eq(k.deferred + k.drained, 0);
	cr_assert_eq(k.pool_empty, 1);
	cr_assert_eq(k.in_use, 0);
	cr_assert_eq(k.bytes_mapped, 8 * 4096);
}

Test(pool, modes_reuse_after_remote_release)
{
	for (int m = ZC_FREE_OWNER; m <= ZC_FREE_LOCKED; m++) {
		struct zc_pool *pool = small_pool((enum zc_free_mode)m, 2 * 4096);
		struct zc_buf *b[2], *x;
		struct put_all remote = { b, 2 };

		cr_assert_eq(zc_buf_alloc(pool, &b[0]), 0);
		cr_assert_eq(zc_buf_alloc(pool, &b[1]), 0);
		cr_assert_eq(zc_buf_alloc(pool, &x), -ENOBUFS);
		on_thread(put_all_cb, &remote);
		/* OWNER: an empty free list drains before giving up. */
		cr_assert_eq(zc_buf_alloc(pool, &b[0]), 0, "mode %d", m);
		cr_assert_eq(zc_buf_alloc(pool, &b[1]), 0, "mode %d", m);
		zc_buf_put(b[0]);
		zc_buf_put(b[1]);
		cr_assert_eq(stats_of(pool).allocated, 4);
		cr_assert_eq(zc_pool_destroy(pool), 0);
	}
}

/* ------------------------------------------------------------------------
 * Owner-only calls answer a clear error elsewhere, in every free mode,
 * and change nothing.
 */
struct off_owner {
	struct zc_pool *pool;
	struct zc_buf *b;
	int alloc_rc, destroy_rc;
	unsigned drained;
};

static void off_owner_calls(void *arg)
{
	struct off_owner *o = arg;

	o->alloc_rc = zc_buf_alloc(o->pool, &o->b);
	o->drained = zc_pool_drain(o->pool);
	o->destroy_rc = zc_pool_destroy(o->pool);
}

Test(pool, owner_only_calls_refuse_other_threads)
{
	for (int mode = ZC_FREE_OWNER; mode <= ZC_FREE_LOCKED; mode++) {
		struct zc_pool_config cfg = { .free_mode = mode };
		struct off_owner o = { 0 };
		struct zc_buf *b;

		cr_assert_eq(zc_pool_create(&cfg, &o.pool), 0);
		cr_assert_eq(zc_buf_alloc(o.pool, &b), 0);
		on_thread(off_owner_calls, &o);
		cr_assert_eq(o.alloc_rc, -EPERM, "mode %d", mode);
		cr_assert_null(o.b);
		cr_assert_eq(o.drained, 0);
		cr_assert_eq(o.destroy_rc, -EPERM);
		zc_buf_put(b);
		cr_assert_eq(zc_pool_destroy(o.pool), 0);
	}
}
