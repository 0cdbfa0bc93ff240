/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_big.c - legitimate large requests are answered: one of
 * exactly max_message, and eight of 60 MiB at once.  Each is far larger
 * than the reactors' 64 MiB pool, so they pass only if partially received
 * messages leave the receive ring instead of pinning its buffers (before,
 * the pool ran dry and the whole server, this call included, wedged).
 * After each, small calls are served again and every buffer comes home.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

static struct rt_tally t;

/* A small call answered after the big ones: the server still serves. */
static void small_call_ok(struct rt_env *e)
{
	struct rt_tally s;

	memset(&s, 0, sizeof(s));
	cr_assert_eq(rt_echo_async(e->cli, &s, 100, 7, 0, NULL), 0);
	cr_assert(rt_wait(&s, 1, 10), "small call after the big ones");
	cr_assert_eq(atomic_load(&s.by_status[ZC_RPC_OK]), 1);
}

Test(big, one_request_of_max_message, .timeout = 120)
{
	struct rt_opts o = { .cc = { .conns = 1 } };
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	cr_assert_eq(rt_echo_async(e.cli, &t, ZC_RPC_MAX_MESSAGE_DEFAULT, 1, 0,
				   NULL), 0);
	cr_assert(rt_wait(&t, 1, 60), "64 MiB echo not answered");
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
	cr_assert_eq(atomic_load(&t.bad), 0);
	small_call_ok(&e);
	rt_stop(&e);
}

Test(big, eight_requests_of_60_mib_at_once, .timeout = 180)
{
	/* The limits are raised so that all eight are admitted at once:
	 * the test is about where their bytes live, not about budgets. */
	enum { N = 8, LEN = 60u << 20 };
	struct rt_opts o = {
		.sc = { .max_inflight_bytes = (size_t)N * LEN + (64u << 20),
			.max_inflight_bytes_conn = (size_t)N * LEN },
		.cc = { .conns = 2, .tx_budget = (size_t)N * LEN },
	};
	struct zc_rpc_server_stats ss;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(rt_echo_async(e.cli, &t, LEN, i, 0, NULL), 0);
	cr_assert(rt_wait(&t, N, 120), "answered %u of %u",
		  atomic_load(&t.done), N);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), N);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.rejected_overload, 0);
	small_call_ok(&e);
	rt_stop(&e);
}

static uint64_t server_sliced(const struct rt_env *e)
{
	struct zc_reactor_stats st;

	zc_reactor_stats(e->srv_r[0], &st);
	return st.tx_sliced;
}

/* Large echoes on one connection, while @small (if any) keeps making
 * 100-byte calls on another, one at a time, until the large ones end. */
static void large_echoes(struct rt_env *e, struct zc_rpc_client *small)
{
	enum { N = 8, LEN = 8u << 20 };
	unsigned calls = 0;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(rt_echo_async(e->cli, &t, LEN, i, 0, NULL), 0);
	while (small && atomic_load(&t.done) < N && calls++ < 100000) {
		struct rt_tally s;

		memset(&s, 0, sizeof(s));
		cr_assert_eq(rt_echo_async(small, &s, 100, calls, 0, NULL), 0);
		cr_assert(rt_wait(&s, 1, 10), "small call %u", calls);
		cr_assert_eq(atomic_load(&s.by_status[ZC_RPC_OK]), 1);
	}
	cr_assert(rt_wait(&t, N, 60), "answered %u of %u",
		  atomic_load(&t.done), N);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), N);
	cr_assert_eq(atomic_load(&t.bad), 0);
}

/*
 * Issue 15: the server cuts large answers into tx_slice_bytes requests
 * while a small caller shares its reactor, so the small answers are not
 * queued behind megabytes of inline copies; with nobody beside them the
 * large answers go whole (slicing bulk among bulk only costs throughput).
 */
Test(big, large_answers_sliced_only_beside_small_calls, .timeout = 120)
{
	struct rt_opts o = { .cc = { .conns = 1 } };
	struct zc_rpc_client_config cc = { .conns = 1 };
	struct zc_rpc_client *small;
	struct rt_env e;

	rt_start(&e, &o);
	large_echoes(&e, NULL);
	cr_assert_eq(server_sliced(&e), 0);
	small = rt_client(&e, &cc);
	large_echoes(&e, small);
	cr_assert_gt(server_sliced(&e), 0);
	cr_assert_eq(zc_rpc_client_destroy(small), 0);
	rt_stop(&e);
}
