/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_latency.c - latency histograms (rpc/hist.c): bucket
 * bounds and percentiles of known samples, shards summed; then over
 * loopback, per method on the server and per client, read from another
 * thread while calls run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "hist.h"
#include "rpc_test.h"

/* Within the 1/16 the buckets promise, never below the true value. */
static void near(uint64_t got, uint64_t want)
{
	cr_assert_geq(got, want, "%llu < %llu", (unsigned long long)got,
		      (unsigned long long)want);
	cr_assert_leq(got, want + want / 16, "%llu >> %llu",
		      (unsigned long long)got, (unsigned long long)want);
}

Test(latency, percentiles_of_known_samples)
{
	struct zc__hist *h = calloc(2, sizeof(*h));
	struct zc_rpc_latency l;

	cr_assert_not_null(h);
	zc__hist_read(h, 2, &l);
	cr_assert_eq(l.count, 0);
	cr_assert_eq(l.p999_ns, 0);
	/* 1..1000 us, odd ones in one shard, even ones in the other. */
	for (uint64_t i = 1; i <= 1000; i++)
		zc__hist_add(&h[i & 1], i * 1000);
	zc__hist_read(h, 2, &l);
	cr_assert_eq(l.count, 1000);
	near(l.p50_ns, 500000);
	near(l.p90_ns, 900000);
	near(l.p99_ns, 990000);
	near(l.p999_ns, 999000);
	cr_assert_eq(l.max_ns, 1000000);
	free(h);
}

Test(latency, small_exact_and_huge_clamped)
{
	struct zc__hist *h = calloc(1, sizeof(*h));
	struct zc_rpc_latency l;

	cr_assert_not_null(h);
	for (int i = 0; i < 10; i++)
		zc__hist_add(h, 7);
	zc__hist_read(h, 1, &l);
	cr_assert_eq(l.p50_ns, 7);
	cr_assert_eq(l.p999_ns, 7);
	cr_assert_eq(l.max_ns, 7);
	zc__hist_add(h, 1ull << 45);	/* past the top bucket */
	zc__hist_read(h, 1, &l);
	cr_assert_eq(l.count, 11);
	cr_assert_eq(l.max_ns, 1ull << 45);
	cr_assert_geq(l.p999_ns, 1ull << 39);
	cr_assert_leq(l.p999_ns, l.max_ns);
	free(h);
}

/* ---- over loopback ----------------------------------------------------- */

#define M_SLOW (ZC_RPC_METHOD_USER + 1)	/* worker: 2 ms, then echo */
#define NCALLS 40

static void slow(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	usleep(2000);
	cr_assert_eq(zc_rpc_reply(call, req), 0);
}

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_SLOW, "slow", ZC_RPC_WORKER,
					    0, slow, NULL), 0);
}

struct reader {
	struct rt_env *e;
	atomic_bool stop;
	unsigned reads;
};

/* Reads while the calls run (the TSan job checks it is race-free). */
static void *read_loop(void *arg)
{
	struct reader *rd = arg;
	struct zc_rpc_latency a, b;

	while (!atomic_load(&rd->stop) && rd->reads < 100000) {
		cr_assert_eq(zc_rpc_server_method_latency(rd->e->srv, M_SLOW,
							  &a), 0);
		zc_rpc_client_latency(rd->e->cli, &b);
		cr_assert_leq(a.p50_ns, a.p999_ns);
		cr_assert_leq(b.p50_ns, b.p999_ns);
		rd->reads++;
		usleep(100);
	}
	return NULL;
}

Test(latency, per_method_and_per_client)
{
	struct rt_opts o = { .sc = { .workers = 1 }, .setup = setup };
	struct zc_rpc_latency sl, el, cl;
	struct reader rd = { 0 };
	struct rt_env e;
	pthread_t th;
	static struct rt_tally t;

	rt_start(&e, &o);
	rd.e = &e;
	cr_assert_eq(pthread_create(&th, NULL, read_loop, &rd), 0);
	for (unsigned i = 0; i < NCALLS; i++)
		cr_assert_eq(rt_call_async(e.cli, M_SLOW, &t, 16, i, 16, 0, i,
					   NULL), 0);
	cr_assert(rt_wait(&t, NCALLS, 30));
	atomic_store(&rd.stop, true);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), NCALLS);

	cr_assert_eq(zc_rpc_server_method_latency(e.srv, M_SLOW, &sl), 0);
	cr_assert_eq(sl.count, NCALLS);
	/* Every handler slept 2 ms: a bound, not a measurement. */
	cr_assert_geq(sl.p50_ns, 2000000);
	cr_assert_leq(sl.p50_ns, sl.p90_ns);
	cr_assert_leq(sl.p90_ns, sl.p99_ns);
	cr_assert_leq(sl.p99_ns, sl.p999_ns);
	cr_assert_leq(sl.p999_ns, sl.max_ns);
	cr_assert_eq(zc_rpc_server_method_latency(e.srv, ZC_RPC_METHOD_ECHO,
						  &el), 0);
	cr_assert_eq(el.count, 0);
	cr_assert_eq(zc_rpc_server_method_latency(e.srv, M_SLOW + 1, &el),
		     -ENOENT);

	/* The client's interval holds the server's, call by call. */
	zc_rpc_client_latency(e.cli, &cl);
	cr_assert_eq(cl.count, NCALLS);
	cr_assert_geq(cl.max_ns, sl.max_ns);
	cr_assert_geq(cl.p50_ns, 2000000);
	rt_stop(&e);
}
