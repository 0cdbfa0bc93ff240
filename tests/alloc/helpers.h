/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/helpers.h - small shared helpers for the alloc tests.
 */
#ifndef ZC_TESTS_ALLOC_HELPERS_H
#define ZC_TESTS_ALLOC_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>

#include <criterion/criterion.h>
#include <zcrpc/alloc.h>

/* Counts external release callbacks and checks they run on the owner. */
struct ext_probe {
	atomic_uint calls;
	atomic_uint off_owner; /* callbacks that ran on another thread */
	struct zc_pool *pool;
};

static inline void ext_probe_release(void *arg, void *data)
{
	struct ext_probe *p = arg;

	(void)data;
	if (p->pool && !zc_pool_is_owner(p->pool))
		atomic_fetch_add(&p->off_owner, 1);
	atomic_fetch_add(&p->calls, 1);
}

/* Run fn(arg) on a fresh thread and wait for it. */
struct on_thread_call {
	void (*fn)(void *);
	void *arg;
};

static inline void *on_thread_main(void *p)
{
	struct on_thread_call *c = p;

	c->fn(c->arg);
	return NULL;
}

static inline void on_thread(void (*fn)(void *), void *arg)
{
	struct on_thread_call c = { fn, arg };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, on_thread_main, &c), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}

static inline void put_buf_cb(void *buf)
{
	zc_buf_put(buf);
}

static inline void release_view_cb(void *view)
{
	zc_view_release(view);
}

static inline struct zc_pool *small_pool(enum zc_free_mode mode,
					 size_t max_bytes)
{
	struct zc_pool_config cfg = {
		.buf_size = 4096,
		.max_bytes = max_bytes,
		.slab_bytes = 4 * 4096,
		.free_mode = mode,
	};
	struct zc_pool *pool = NULL;

	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	return pool;
}

static inline struct zc_pool_stats stats_of(const struct zc_pool *pool)
{
	struct zc_pool_stats s;

	zc_pool_stats(pool, &s);
	return s;
}

#endif
