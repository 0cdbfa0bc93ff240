/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_buf.c - the reference word, clones, in-flight
 * references and external memory (alloc/buf.c).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

static struct zc_pool *pool;

static void setup(void)
{
	pool = small_pool(ZC_FREE_OWNER, 64 * 4096);
}

static void teardown(void)
{
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

TestSuite(buf, .init = setup, .fini = teardown);

Test(buf, alloc_is_exclusive_and_page_aligned)
{
	struct zc_buf *b;

	cr_assert_eq(zc_buf_alloc(pool, &b), 0);
	cr_assert_eq(zc_buf_refs(b), 1);
	cr_assert_eq(zc_buf_inflight(b), 0);
	cr_assert(zc_buf_is_exclusive(b));
	cr_assert_eq(zc_buf_capacity(b), 4096);
	cr_assert_eq(zc_buf_pool(b), pool);
	cr_assert_eq((uintptr_t)zc_buf_data(b) % 4096, 0);
	cr_assert_eq(zc_buf_slab_index(b), 0);
	memset(zc_buf_data(b), 0xab, 4096);
	cr_assert_eq(stats_of(pool).in_use, 1);
	zc_buf_put(b);
	cr_assert_eq(stats_of(pool).in_use, 0);
	cr_assert_eq(stats_of(pool).released_owner, 1);
	cr_assert_eq(stats_of(pool).allocated, 1);
}

Test(buf, original_released_before_clone)
{
	struct zc_buf *b, *b2;
	struct zc_view clone;

	cr_assert_eq(zc_buf_alloc(pool, &b), 0);
	memcpy(zc_buf_data(b), "payload", 7);
	cr_assert_eq(zc_view_init(&clone, b, 0, 7), 0);
	cr_assert_not(zc_buf_is_exclusive(b));
	zc_buf_put(b);
	cr_assert_eq(zc_buf_refs(clone.buf), 1);
	cr_assert_eq(stats_of(pool).in_use, 1);
	cr_assert_eq(stats_of(pool).released_owner, 0);
	/* Not reused while the clone lives. */
	cr_assert_eq(zc_buf_alloc(pool, &b2), 0);
	cr_assert_neq(b2, clone.buf);
	memset(zc_buf_data(b2), 0, 4096);
	cr_assert_eq(memcmp(zc_view_data(&clone), "payload", 7), 0);
	zc_view_release(&clone);
	cr_assert_null(clone.buf);
	cr_assert_eq(stats_of(pool).released_owner, 1);
	zc_buf_put(b2);
	cr_assert_eq(stats_of(pool).in_use, 0);
}

Test(buf, inflight_keeps_buffer_alive_either_order)
{
	for (int order = 0; order < 2; order++) {
		struct zc_buf *b;

		cr_assert_eq(zc_buf_alloc(pool, &b), 0);
		zc_buf_inflight_get(b);
		cr_assert_eq(zc_buf_refs(b), 1);
		cr_assert_eq(zc_buf_inflight(b), 1);
		cr_assert_not(zc_buf_is_exclusive(b));
		if (order) {
			zc_buf_put(b);
			cr_assert_eq(zc_buf_inflight(b), 1);
			cr_assert_eq(zc_buf_refs(b), 0);
			cr_assert_eq(stats_of(pool).in_use, 1);
			zc_buf_inflight_put(b);
		} else {
			zc_buf_inflight_put(b);
			cr_assert(zc_buf_is_exclusive(b));
			cr_assert_eq(stats_of(pool).in_use, 1);
			zc_buf_put(b);
		}
		cr_assert_eq(stats_of(pool).in_use, 0);
		cr_assert_eq(stats_of(pool).released_owner, (uint64_t)order + 1);
	}
}

/*
 * External memory: the release callback fires exactly once, after the
 * last of six holders goes, for every order of dropping them: the
 * original reference, both halves of a split, a slice, an in-flight
 * reference and a chain whose pull-up copied the buffer only in part.
 */
#define NHOLDERS 6

struct holders {
	struct zc_buf *orig;
	struct zc_view head, tail, slice;
	struct zc_chain chain;
};

static char ext_mem[256];

static void make_holders(struct holders *h, struct ext_probe *probe)
{
	struct zc_view v, pv;
	struct zc_buf *pool_buf;
	uint64_t in_use;

	cr_assert_eq(zc_buf_wrap(pool, ext_mem, sizeof(ext_mem),
				 ext_probe_release, probe, &h->orig), 0);
	cr_assert_eq(zc_view_init(&h->head, h->orig, 0, 200), 0);
	cr_assert_eq(zc_view_split(&h->head, 50, &h->tail), 0);
	cr_assert_eq(zc_view_slice(&h->tail, 10, 20, &h->slice), 0);
	zc_buf_inflight_get(h->orig);

	/* chain = [8 pool bytes][ext 100..200]; pull up 40 -> the ext view
	 * is copied in part and keeps its reference. */
	zc_chain_init(&h->chain);
	cr_assert_eq(zc_buf_alloc(pool, &pool_buf), 0);
	cr_assert_eq(zc_view_adopt(&pv, pool_buf, 0, 8), 0);
	cr_assert_eq(zc_chain_append(&h->chain, &pv), 0);
	cr_assert_eq(zc_view_init(&v, h->orig, 100, 100), 0);
	cr_assert_eq(zc_chain_append(&h->chain, &v), 0);
	in_use = stats_of(pool).in_use;
	/* The pool view is copied whole: its reference, the only one, goes
	 * and the buffer returns while the pull-up's new one comes out. */
	cr_assert_eq(zc_chain_pullup(&h->chain, 40, pool), 0);
	cr_assert_eq(stats_of(pool).in_use, in_use);
	cr_assert_eq(zc_chain_nviews(&h->chain), 2);
	cr_assert_eq(zc_chain_view(&h->chain, 1)->buf, h->orig);
	cr_assert_eq(zc_chain_view(&h->chain, 1)->off, 132);
	cr_assert_eq(zc_buf_refs(h->orig), 5);
	cr_assert_eq(zc_buf_inflight(h->orig), 1);
}

static void drop_holder(struct holders *h, int which)
{
	switch (which) {
	case 0: zc_buf_put(h->orig); break;
	case 1: zc_view_release(&h->head); break;
	case 2: zc_view_release(&h->tail); break;
	case 3: zc_view_release(&h->slice); break;
	case 4: zc_buf_inflight_put(h->orig); break;
	case 5: zc_chain_release(&h->chain); break;
	}
}

static bool next_perm(int *a, int n)
{
	int i = n - 2, j = n - 1, t;

	while (i >= 0 && a[i] >= a[i + 1])
		i--;
	if (i < 0)
		return false;
	while (a[j] <= a[i])
		j--;
	t = a[i], a[i] = a[j], a[j] = t;
	for (i++, j = n - 1; i < j; i++, j--)
		t = a[i], a[i] = a[j], a[j] = t;
	return true;
}

Test(buf, ext_release_once_for_every_drop_order)
{
	int perm[NHOLDERS] = { 0, 1, 2, 3, 4, 5 };
	unsigned n = 0;

	do {
		struct ext_probe probe = { .pool = pool };
		struct holders h;

		make_holders(&h, &probe);
		for (int i = 0; i < NHOLDERS; i++) {
			cr_assert_eq(atomic_load(&probe.calls), 0,
				     "perm %u step %d: released early", n, i);
			drop_holder(&h, perm[i]);
		}
		cr_assert_eq(atomic_load(&probe.calls), 1, "perm %u", n);
		cr_assert_eq(atomic_load(&probe.off_owner), 0);
		n++;
	} while (next_perm(perm, NHOLDERS));
	cr_assert_eq(n, 720);
	cr_assert_eq(stats_of(pool).ext_wrapped, 720);
	cr_assert_eq(stats_of(pool).ext_released, 720);
	cr_assert_eq(stats_of(pool).in_use, 0);
}

static void inflight_put_cb(void *buf)
{
	zc_buf_inflight_put(buf);
}

Test(buf, ext_last_drop_remote_runs_callback_on_owner_drain)
{
	struct ext_probe probe = { .pool = pool };
	struct zc_view v;
	struct zc_buf *b;

	cr_assert_eq(zc_buf_wrap(pool, ext_mem, 64, ext_probe_release, &probe,
				 &b), 0);
	cr_assert_eq(zc_view_adopt(&v, b, 0, 64), 0);
	zc_buf_inflight_get(b);
	zc_view_release(&v);
	cr_assert_eq(atomic_load(&probe.calls), 0);
	on_thread(inflight_put_cb, b);
	cr_assert_eq(atomic_load(&probe.calls), 0);
	cr_assert_eq(stats_of(pool).deferred, 1);
	cr_assert_eq(stats_of(pool).drained, 0);
	cr_assert_eq(zc_pool_drain(pool), 1);
	cr_assert_eq(atomic_load(&probe.calls), 1);
	cr_assert_eq(atomic_load(&probe.off_owner), 0);
	cr_assert_eq(stats_of(pool).ext_released, 1);
	cr_assert_eq(stats_of(pool).deferred, 1);
	cr_assert_eq(stats_of(pool).drained, 1);
	cr_assert_eq(zc_pool_drain(pool), 0);
}

struct wrap_args {
	struct ext_probe *probe;
	struct zc_buf *buf;
};

static void wrap_remote(void *p)
{
	struct wrap_args *a = p;

	cr_assert_eq(zc_buf_wrap(pool, ext_mem, 8, ext_probe_release, a->probe,
				 &a->buf), 0);
}

Test(buf, ext_wrap_from_other_thread_released_on_owner)
{
	struct ext_probe probe = { .pool = pool };
	struct wrap_args a = { .probe = &probe };

	on_thread(wrap_remote, &a);
	cr_assert_eq(stats_of(pool).ext_wrapped, 1);
	zc_buf_put(a.buf);
	cr_assert_eq(atomic_load(&probe.calls), 1);
	cr_assert_eq(atomic_load(&probe.off_owner), 0);
	cr_assert_eq(stats_of(pool).released_owner, 1);
}

Test(buf, wrap_rejects_bad_input)
{
	struct ext_probe probe = { 0 };
	struct zc_buf *b = (struct zc_buf *)&probe;

	cr_assert_eq(zc_buf_wrap(pool, NULL, 8, ext_probe_release, &probe, &b),
		     -EINVAL);
	cr_assert_eq(zc_buf_wrap(pool, ext_mem, 0, ext_probe_release, &probe,
				 &b), -EINVAL);
	cr_assert_eq(zc_buf_wrap(pool, ext_mem, 8, NULL, &probe, &b), -EINVAL);
#if SIZE_MAX > UINT32_MAX
	cr_assert_eq(zc_buf_wrap(pool, ext_mem, (size_t)UINT32_MAX + 1,
				 ext_probe_release, &probe, &b), -EINVAL);
#endif
	cr_assert_eq(b, (struct zc_buf *)&probe, "out touched on error");
	cr_assert_eq(atomic_load(&probe.calls), 0);
	cr_assert_eq(stats_of(pool).ext_wrapped, 0);
}

Test(buf, slab_index_only_for_pool_buffers)
{
	struct ext_probe probe = { 0 };
	struct zc_pool *local = small_pool(ZC_FREE_LOCAL, 8 * 4096);
	struct zc_buf *b;

	cr_assert_eq(zc_buf_wrap(pool, ext_mem, 8, ext_probe_release, &probe,
				 &b), 0);
	cr_assert_eq(zc_buf_slab_index(b), -ENOENT);
	zc_buf_put(b);
	cr_assert_eq(zc_buf_alloc(local, &b), 0);
	cr_assert_eq(zc_buf_slab_index(b), -ENOENT);
	cr_assert_eq((uintptr_t)zc_buf_data(b) % 4096, 0);
	zc_buf_put(b);
	cr_assert_eq(zc_pool_destroy(local), 0);
}

Test(buf, free_mode_names_round_trip)
{
	enum zc_free_mode m = ZC_FREE_OWNER;

	for (int i = ZC_FREE_OWNER; i <= ZC_FREE_LOCKED; i++) {
		const char *name = zc_free_mode_name((enum zc_free_mode)i);

		cr_assert_not_null(name);
		cr_assert_eq(zc_free_mode_parse(name, &m), 0);
		cr_assert_eq((int)m, i);
	}
	cr_assert_str_eq(zc_free_mode_name(ZC_FREE_LOCKED), "locked");
	cr_assert_null(zc_free_mode_name((enum zc_free_mode)7));
	cr_assert_eq(zc_free_mode_parse("percpu", &m), -EINVAL);
	cr_assert_eq(zc_free_mode_parse(NULL, &m), -EINVAL);
}
