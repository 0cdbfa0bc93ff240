/* SPDX-License-Identifier: MIT */
/*
 * tests/alloc/test_defer.c - remote releases, the defer list, drain, kick
 * and shutdown (alloc/defer.c).  Run under TSan too (label concurrency).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* ------------------------------------------------------------------------
 * Many threads releasing to one owner that drains in a loop.
 */
#define NWORKERS 4
#define RING	 64
#define NPER	 100000u

struct worker {
	pthread_t thread;
	struct zc_buf *slot[RING];
	_Atomic unsigned head; /* written by the owner */
	_Atomic unsigned tail; /* written by the worker */
	unsigned long sum;
};

static atomic_ulong kick_calls;

static void count_kick(void *arg)
{
	(void)arg;
	atomic_fetch_add(&kick_calls, 1);
}

static void *worker_main(void *p)
{
	struct worker *w = p;

	for (unsigned got = 0; got < NPER; got++) {
		unsigned t = atomic_load_explicit(&w->tail, memory_order_relaxed);
		struct zc_buf *b;
		unsigned char *d;

		while (atomic_load_explicit(&w->head, memory_order_acquire) == t)
			sched_yield();
		b = w->slot[t % RING];
		atomic_store_explicit(&w->tail, t + 1, memory_order_release);
		/* The consumer reads what the owner wrote, then scribbles:
		 * TSan checks the drop and drain order these accesses. */
		d = zc_buf_data(b);
		w->sum += d[0] + d[4095];
		d[1] = 0x5a;
		zc_buf_put(b);
	}
	return NULL;
}

static void check_conserved(struct zc_pool *pool)
{
	struct zc_pool_stats s = stats_of(pool);

	cr_assert_eq(s.allocated, s.released_owner + s.drained + s.in_use,
		     "allocated %lu != owner %lu + drained %lu + held %lu",
		     (unsigned long)s.allocated, (unsigned long)s.released_owner,
		     (unsigned long)s.drained, (unsigned long)s.in_use);
}

Test(defer, many_threads_release_to_one_owner, .timeout = 60)
{
	static struct worker w[NWORKERS];
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = 128 * 4096, .slab_bytes = 16 * 4096,
		.defer_max = 16, .kick = count_kick,
	};
	struct zc_pool *pool;
	unsigned issued[NWORKERS] = { 0 }, left = NWORKERS * NPER;
	unsigned long own = 0, expect_sum = 0, got_sum = 0, loops = 0;

	atomic_store(&kick_calls, 0);
	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < NWORKERS; i++)
		cr_assert_eq(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);

	while (left) {
		for (int i = 0; i < NWORKERS; i++) {
			unsigned h = atomic_load_explicit(&w[i].head, memory_order_relaxed);

			while (issued[i] < NPER &&
			       h - atomic_load_explicit(&w[i].tail, memory_order_acquire) < RING) {
				struct zc_buf *b;
				unsigned char *d;

				if (zc_buf_alloc(pool, &b) == -ENOBUFS)
					break;
				d = zc_buf_data(b);
				d[0] = (unsigned char)h;
				d[4095] = (unsigned char)(h >> 8);
				expect_sum += d[0] + d[4095];
				/* Every 8th buffer also goes back on the owner. */
				if (h % 8 == 0) {
					struct zc_buf *o;

					if (zc_buf_alloc(pool, &o) == 0) {
						zc_buf_put(o);
						own++;
					}
				}
				w[i].slot[h % RING] = b;
				h++;
				atomic_store_explicit(&w[i].head, h, memory_order_release);
				issued[i]++;
				left--;
			}
		}
		zc_pool_drain(pool);
		check_conserved(pool);
		loops++;
		sched_yield();
	}
	for (int i = 0; i < NWORKERS; i++) {
		cr_assert_eq(pthread_join(w[i].thread, NULL), 0);
		got_sum += w[i].sum;
	}
	zc_pool_drain(pool);
	{
		struct zc_pool_stats s = stats_of(pool);

		check_conserved(pool);
		cr_assert_eq(s.in_use, 0);
		cr_assert_eq(s.allocated, NWORKERS * NPER + own);
		cr_assert_eq(s.released_owner, own);
		cr_assert_eq(s.drained, NWORKERS * NPER);
		cr_assert_eq(s.deferred, s.drained);
		cr_assert_eq(s.kicks, atomic_load(&kick_calls));
		cr_assert_leq(s.bytes_mapped, cfg.max_bytes);
		cr_log_info("loops=%lu kicks=%lu pool_empty=%lu", loops,
			    (unsigned long)s.kicks, (unsigned long)s.pool_empty);
	}
	cr_assert_eq(got_sum, expect_sum, "consumers saw the owner's bytes");
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* ------------------------------------------------------------------------
 * External memory wrapped and dropped on other threads.
 */
#define NEXT 50000u

struct ext_worker {
	pthread_t thread;
	struct zc_pool *pool;
	struct ext_probe *probe;
	_Atomic bool *stop;
};

static char ext_mem[64];

static void *ext_worker_main(void *p)
{
	struct ext_worker *w = p;

	for (unsigned i = 0; i < NEXT; i++) {
		struct zc_buf *b;
		struct zc_view v;

		cr_assert_eq(zc_buf_wrap(w->pool, ext_mem, sizeof(ext_mem),
					 ext_probe_release, w->probe, &b), 0);
		cr_assert_eq(zc_view_init(&v, b, 0, 8), 0);
		zc_buf_inflight_get(b);
		zc_buf_put(b);
		zc_view_release(&v);
		zc_buf_inflight_put(b);
	}
	return NULL;
}

Test(defer, ext_callbacks_run_on_owner_once_each, .timeout = 60)
{
	struct ext_worker w[NWORKERS];
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, 8 * 4096);
	struct ext_probe probe = { .pool = pool };
	unsigned long drained = 0;

	for (int i = 0; i < NWORKERS; i++) {
		w[i] = (struct ext_worker){ .pool = pool, .probe = &probe };
		cr_assert_eq(pthread_create(&w[i].thread, NULL, ext_worker_main,
					    &w[i]), 0);
	}
	while (atomic_load(&probe.calls) < NWORKERS * NEXT) {
		drained += zc_pool_drain(pool);
		sched_yield();
	}
	for (int i = 0; i < NWORKERS; i++)
		cr_assert_eq(pthread_join(w[i].thread, NULL), 0);
	cr_assert_eq(zc_pool_drain(pool), 0);
	cr_assert_eq(drained, NWORKERS * NEXT);
	cr_assert_eq(atomic_load(&probe.calls), NWORKERS * NEXT);
	cr_assert_eq(atomic_load(&probe.off_owner), 0);
	cr_assert_eq(stats_of(pool).ext_wrapped, NWORKERS * NEXT);
	cr_assert_eq(stats_of(pool).ext_released, NWORKERS * NEXT);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* ------------------------------------------------------------------------
 * Kick: exactly one per crossing of the cap.
 */
struct put_range {
	struct zc_buf **b;
	unsigned n;
};

static void put_range_cb(void *p)
{
	struct put_range *r = p;

	for (unsigned i = 0; i < r->n; i++)
		zc_buf_put(r->b[i]);
}

static void remote_put(struct zc_buf **b, unsigned n)
{
	struct put_range r = { b, n };

	on_thread(put_range_cb, &r);
}

static void alloc_n(struct zc_pool *pool, struct zc_buf **b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(zc_buf_alloc(pool, &b[i]), 0);
}

/* A push kicks when it makes the list non-empty (so a sleeping owner
 * hears of its first deferred buffer) and when it makes it reach the cap. */
Test(defer, kicks_at_first_push_and_at_cap)
{
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = 64 * 4096, .defer_max = 8,
	};
	struct zc_pool *pool;
	struct zc_buf *b[32];

	atomic_store(&kick_calls, 0);
	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	zc_pool_set_kick(pool, count_kick, NULL);
	alloc_n(pool, b, 32);

	remote_put(b, 1);
	cr_assert_eq(atomic_load(&kick_calls), 1);
	remote_put(b + 1, 6);
	cr_assert_eq(atomic_load(&kick_calls), 1);
	cr_assert_eq(stats_of(pool).deferred, 7);
	remote_put(b + 7, 1);
	cr_assert_eq(atomic_load(&kick_calls), 2);
	remote_put(b + 8, 5);
	cr_assert_eq(atomic_load(&kick_calls), 2);
	cr_assert_eq(stats_of(pool).kicks, 2);
	cr_assert_eq(stats_of(pool).deferred, 13);
	cr_assert_eq(zc_pool_drain(pool), 13);
	cr_assert_eq(stats_of(pool).deferred, 13);
	cr_assert_eq(stats_of(pool).drained, 13);
	remote_put(b + 13, 7);
	cr_assert_eq(atomic_load(&kick_calls), 3);
	remote_put(b + 20, 1);
	cr_assert_eq(atomic_load(&kick_calls), 4);
	cr_assert_eq(stats_of(pool).kicks, 4);
	/* Owner releases never defer and never kick. */
	remote_put(b + 21, 0);
	for (unsigned i = 21; i < 32; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(stats_of(pool).released_owner, 11);
	cr_assert_eq(stats_of(pool).deferred, 21);
	cr_assert_eq(zc_pool_drain(pool), 8);
	cr_assert_eq(atomic_load(&kick_calls), 4);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* Concurrent pushers: still exactly two kicks per round (the first push
 * and the crossing), however the pushes interleave. */
#define NPUSH 50

struct pusher {
	pthread_t thread;
	struct zc_buf *b[NPUSH];
	pthread_barrier_t *go;
};

static void *pusher_main(void *p)
{
	struct pusher *u = p;

	pthread_barrier_wait(u->go);
	for (int i = 0; i < NPUSH; i++)
		zc_buf_put(u->b[i]);
	return NULL;
}

Test(defer, concurrent_pushers_kick_twice_per_round)
{
	struct zc_pool_config cfg = {
		.buf_size = 4096, .max_bytes = NWORKERS * NPUSH * 4096,
		.defer_max = 8, .kick = count_kick,
	};
	const unsigned rounds = 50;
	struct pusher u[NWORKERS];
	pthread_barrier_t go;
	struct zc_pool *pool;

	atomic_store(&kick_calls, 0);
	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	for (unsigned r = 1; r <= rounds; r++) {
		pthread_barrier_init(&go, NULL, NWORKERS);
		for (int i = 0; i < NWORKERS; i++) {
			u[i].go = &go;
			alloc_n(pool, u[i].b, NPUSH);
			cr_assert_eq(pthread_create(&u[i].thread, NULL,
						    pusher_main, &u[i]), 0);
		}
		for (int i = 0; i < NWORKERS; i++)
			cr_assert_eq(pthread_join(u[i].thread, NULL), 0);
		pthread_barrier_destroy(&go);
		cr_assert_eq(atomic_load(&kick_calls), 2 * r, "round %u", r);
		cr_assert_eq(zc_pool_drain(pool), NWORKERS * NPUSH);
	}
	cr_assert_eq(stats_of(pool).kicks, 2 * rounds);
	cr_assert_eq(stats_of(pool).deferred, rounds * NWORKERS * NPUSH);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* ------------------------------------------------------------------------
 * Owner shutdown with deferred frees still pending.
 */
struct ext_drop {
	struct zc_buf *pool_bufs[10];
	struct zc_buf *ext[5];
};

static void drop_all_cb(void *p)
{
	struct ext_drop *d = p;

	for (int i = 0; i < 10; i++)
		zc_buf_put(d->pool_bufs[i]);
	for (int i = 0; i < 5; i++)
		zc_buf_put(d->ext[i]);
}

Test(defer, destroy_drains_pending_frees)
{
	static char mem[5][32];
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, 16 * 4096);
	struct ext_probe probe = { .pool = pool };
	struct ext_drop d;

	alloc_n(pool, d.pool_bufs, 10);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(zc_buf_wrap(pool, mem[i], 32, ext_probe_release,
					 &probe, &d.ext[i]), 0);
	on_thread(drop_all_cb, &d);
	cr_assert_eq(stats_of(pool).deferred, 15);
	cr_assert_eq(stats_of(pool).in_use, 10);
	cr_assert_eq(atomic_load(&probe.calls), 0);
	cr_assert_eq(zc_pool_destroy(pool), 0);
	cr_assert_eq(atomic_load(&probe.calls), 5);
	cr_assert_eq(atomic_load(&probe.off_owner), 0);
}

/*
 * An empty free list makes zc_buf_alloc() take the defer list back, but
 * external callbacks still run only from zc_pool_drain() (or a put on the
 * owner), never from inside an allocation.
 */
struct mixed_drop {
	struct zc_buf *b[2];
	struct zc_buf *ext;
};

static void mixed_drop_cb(void *p)
{
	struct mixed_drop *d = p;

	zc_buf_put(d->ext);
	zc_buf_put(d->b[0]);
	zc_buf_put(d->b[1]);
}

Test(defer, alloc_reclaims_but_never_runs_callbacks)
{
	static char mem[32];
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, 2 * 4096);
	struct ext_probe probe = { .pool = pool };
	struct mixed_drop d;
	struct zc_buf *x;

	alloc_n(pool, d.b, 2);
	cr_assert_eq(zc_buf_wrap(pool, mem, 32, ext_probe_release, &probe,
				 &d.ext), 0);
	on_thread(mixed_drop_cb, &d);
	cr_assert_eq(stats_of(pool).deferred, 3);
	cr_assert_eq(zc_buf_alloc(pool, &x), 0);
	/* The two pool buffers came back; the external one stays queued. */
	cr_assert_eq(stats_of(pool).drained, 2);
	cr_assert_eq(stats_of(pool).deferred, 3);
	cr_assert_eq(stats_of(pool).pool_empty, 0);
	cr_assert_eq(atomic_load(&probe.calls), 0);
	cr_assert_eq(zc_pool_destroy(pool), -EBUSY);
	cr_assert_eq(atomic_load(&probe.calls), 1, "destroy drained first");
	cr_assert_eq(stats_of(pool).drained, 3);
	cr_assert_eq(stats_of(pool).ext_released, 1);
	zc_buf_put(x);
	cr_assert_eq(zc_pool_drain(pool), 0);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/*
 * A drain adopts each defer list whole, stacking it behind the free list
 * while that is not empty.  Every buffer comes back exactly once, and the
 * pool does not grow.
 */
static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a;
	uintptr_t y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

Test(defer, drained_lists_are_adopted_whole)
{
	enum { NBUF = 64, ROUNDS = 10, PER_ROUND = 5 };
	struct zc_pool *pool = small_pool(ZC_FREE_OWNER, NBUF * 4096);
	struct zc_buf *b[NBUF], *again[NBUF], *x;
	uint64_t mapped;
	unsigned n = 0;

	alloc_n(pool, b, NBUF);
	mapped = stats_of(pool).bytes_mapped;
	/* Keep the free list non-empty so every drain must file its list. */
	zc_buf_put(b[0]);
	for (unsigned r = 0; r < ROUNDS; r++) {
		remote_put(&b[1 + r * PER_ROUND], PER_ROUND);
		cr_assert_eq(zc_pool_drain(pool), PER_ROUND);
	}
	cr_assert_eq(stats_of(pool).drained, ROUNDS * PER_ROUND);
	cr_assert_eq(stats_of(pool).in_use, NBUF - 1 - ROUNDS * PER_ROUND);
	while (zc_buf_alloc(pool, &x) == 0)
		again[n++] = x;
	cr_assert_eq(n, 1 + ROUNDS * PER_ROUND);
	cr_assert_eq(stats_of(pool).bytes_mapped, mapped, "no growth");
	cr_assert_eq(stats_of(pool).in_use, NBUF);
	qsort(again, n, sizeof(again[0]), cmp_ptr);
	for (unsigned i = 1; i < n; i++)
		cr_assert_neq(again[i], again[i - 1], "handed out twice");
	for (unsigned i = 0; i < n; i++)
		zc_buf_put(again[i]);
	for (unsigned i = 1 + ROUNDS * PER_ROUND; i < NBUF; i++)
		zc_buf_put(b[i]);
	cr_assert_eq(zc_pool_destroy(pool), 0);
}

/* ------------------------------------------------------------------------
 * More releases pending than the head word's 16-bit depth can count: the
 * stats still say exactly how many were deferred, before and after the
 * drain, and the drain takes every one back.
 */
#define PAST_SATURATION (0xffffu + 4000u)

Test(defer, deferred_count_exact_past_saturation, .timeout = 60)
{
	struct zc_pool_config cfg = {
		.buf_size = 4096,
		.max_bytes = (size_t)PAST_SATURATION * 4096,
		.slab_bytes = 64u << 20,
	};
	struct zc_buf **b = calloc(PAST_SATURATION, sizeof(*b));
	struct zc_pool *pool;

	cr_assert_not_null(b);
	cr_assert_eq(zc_pool_create(&cfg, &pool), 0);
	alloc_n(pool, b, PAST_SATURATION);
	remote_put(b, PAST_SATURATION);
	cr_assert_eq(stats_of(pool).deferred, PAST_SATURATION);
	cr_assert_eq(zc_pool_drain(pool), PAST_SATURATION);
	cr_assert_eq(stats_of(pool).deferred, PAST_SATURATION);
	cr_assert_eq(stats_of(pool).drained, PAST_SATURATION);
	/* A second saturated round counts from a clean slate. */
	alloc_n(pool, b, PAST_SATURATION);
	remote_put(b, PAST_SATURATION);
	cr_assert_eq(stats_of(pool).deferred, 2u * PAST_SATURATION);
	cr_assert_eq(zc_pool_drain(pool), PAST_SATURATION);
	cr_assert_eq(stats_of(pool).deferred, 2u * PAST_SATURATION);
	cr_assert_eq(zc_pool_destroy(pool), 0);
	free(b);
}
