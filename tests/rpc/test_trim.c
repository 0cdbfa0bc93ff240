/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_trim.c - a server's memory comes back after a burst: the
 * server reactor's pool, grown by many concurrent calls, is trimmed back
 * to about its floor (the receive ring's worth) once the burst is over,
 * and the server still answers afterwards (stack/trim.c, alloc/trim.c).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

static struct rt_tally t;

static size_t mapped(struct zc_reactor *r)
{
	struct zc_pool_stats ps;

	zc_pool_stats(zc_reactor_pool(r), &ps);
	return (size_t)ps.bytes_mapped;
}

struct back_arg {
	struct zc_reactor *r;
	size_t bound;
};

static bool back_near_floor(void *arg)
{
	struct back_arg *a = arg;

	return mapped(a->r) <= a->bound;
}

struct burst_arg {
	struct zc_reactor *r;
	struct rt_tally *t;
	unsigned want;
	size_t peak;
};

/* The burst is answered; meanwhile, the most the pool mapped. */
static bool burst_done(void *arg)
{
	struct burst_arg *b = arg;
	size_t now = mapped(b->r);

	if (now > b->peak)
		b->peak = now;
	return atomic_load(&b->t->done) >= b->want;
}

/* One echo call; while the client's tx_budget is full (-EAGAIN: the
 * requests before it are still being sent), wait for room, up to 30 s. */
static void send_backing_off(struct zc_rpc_client *cli, size_t len,
			     uint32_t seed)
{
	int ret;

	for (int i = 0; (ret = rt_echo_async(cli, &t, len, seed, 0, NULL)) ==
			-EAGAIN && i < 30000; i++)
		usleep(1000);
	cr_assert_eq(ret, 0, "echo call: %d", ret);
}

Test(trim, pool_given_back_after_a_burst, .timeout = 120)
{
	/* Enough calls at once that the server's pool maps most of its
	 * 64 MiB: received bytes and answers staged in pool buffers. */
	enum { N = 64, LEN = 1u << 20 };
	struct rt_opts o = {
		.sc = { .max_inflight_bytes = (size_t)N * LEN + (64u << 20),
			.max_inflight_bytes_conn = (size_t)N * LEN },
		.cc = { .conns = 8, .tx_budget = (size_t)N * LEN },
	};
	struct zc_reactor_stats st;
	struct burst_arg pk;
	struct back_arg a;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	for (unsigned round = 0; round < 4; round++)
		for (unsigned i = 0; i < N; i++)
			send_backing_off(e.cli, LEN, i);
	/* The peak is sampled while the burst runs: trims give back
	 * during a long (sanitized) burst too. */
	pk.r = e.srv_r[0];
	pk.t = &t;
	pk.want = 4 * N;
	pk.peak = 0;
	cr_assert(rt_wait_for(burst_done, &pk, 60), "answered %u of %u",
		  atomic_load(&t.done), 4 * N);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 4 * N);
	cr_log_info("server pool: %zu B mapped at the peak", pk.peak);
	/* The burst grew the pool beyond what trimming keeps. */
	a.r = e.srv_r[0];
	a.bound = ZC_RX_RING_BYTES_DEFAULT + (2u << 20); /* floor + a slab */
	cr_assert_gt(pk.peak, a.bound, "the burst did not grow the pool");
	/* Light traffic then, one call at a time, each call about one
	 * receive buffer: it turns over the buffers of the receive ring,
	 * which the burst left spread over many slabs that trims mark as
	 * draining: 2000 calls at most, in rounds of 100 a tenth of a
	 * second apart, so that they span several trim periods. */
	for (unsigned i = 0; i < 2000 && !back_near_floor(&a); i++) {
		memset(&t, 0, sizeof(t));
		cr_assert_eq(rt_echo_async(e.cli, &t, 60000, i, 0, NULL), 0);
		cr_assert(rt_wait(&t, 1, 10));
		cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
		if (i % 100 == 99)
			usleep(100 * 1000);
	}
	/* Then idle: what is left goes within a few trim periods. */
	cr_assert(rt_wait_for(back_near_floor, &a, 5),
		  "still %zu B mapped after the burst and the light traffic "
		  "(%llu buffers in use)",
		  mapped(a.r), (unsigned long long)rt_pool_in_use(a.r));

	/* A new burst maps slabs again, at the indices the trims emptied
	 * (registered again for zero-copy sends): every byte comes back. */
	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < N / 4; i++)
		send_backing_off(e.cli, LEN, i);
	cr_assert(rt_wait(&t, N / 4, 60));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), N / 4);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_reactor_stats(e.srv_r[0], &st);
	cr_log_info("server: %llu slabs trimmed, %llu fixed zero-copy sends",
		    (unsigned long long)st.pool.slabs_trimmed,
		    (unsigned long long)st.tx_zc_fixed);
	rt_stop(&e);
}
