/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_drain.c - graceful drain with GOAWAY (calls in flight
 * finish, new ones are refused as retryable), drain past its deadline
 * (calls cancelled, handlers see it), and reconnect after the server
 * restarts on the same port.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "park.h"

#define M_PARK	(ZC_RPC_METHOD_USER + 30)

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_PARK, "park", ZC_RPC_INLINE,
					    0, park_handler, NULL), 0);
}

static struct rt_tally t;

static bool got_goaway(void *arg)
{
	struct zc_rpc_client_stats cs;

	zc_rpc_client_stats(arg, &cs);
	return cs.goaways >= 1;
}

Test(drain, goaway_finishes_inflight, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 1 }, .setup = setup };
	struct zc_rpc_server_stats ss;
	struct rt_drain d;
	struct rt_env e;
	pthread_t th;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, i, SIZE_MAX,
					   0, i, NULL), 0);
	cr_assert(rt_wait_for(park_has, (void *)3, 10));
	d = (struct rt_drain){ .s = e.srv, .timeout_ms = 10000 };
	cr_assert_eq(pthread_create(&th, NULL, rt_drain_main, &d), 0);
	cr_assert(rt_wait_for(got_goaway, e.cli, 10));
	/* New calls: the old connection takes none, the listener is gone,
	 * so they fail retryable (not processed). */
	cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 10, 5,
				   SIZE_MAX, 0, 5, NULL), 0);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_UNAVAILABLE]), 1);
	/* The calls in flight are still answered. */
	for (unsigned i = 0; i < 3; i++) {
		struct zc_chain c;

		zc_chain_init(&c);
		cr_assert_not(zc_rpc_call_cancelled(park_get(i)));
		cr_assert_eq(zc_rpc_reply(park_get(i), &c), 0);
	}
	pthread_join(th, NULL);
	cr_assert_eq(d.ret, 0);
	cr_assert(rt_wait(&t, 4, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 3);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.inflight, 0);
	cr_assert_eq(ss.conns_protocol_error, 0);
	rt_stop(&e);
}

Test(drain, deadline_cancels_the_rest, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 1 }, .setup = setup };
	struct rt_env e;
	struct zc_chain c;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, 1, SIZE_MAX, 0, 0,
				   NULL), 0);
	cr_assert(rt_wait_for(park_has, (void *)1, 10));
	cr_assert_eq(zc_rpc_server_drain(e.srv, 50), -ETIMEDOUT);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_CANCELLED]), 1);
	cr_assert(zc_rpc_call_cancelled(park_get(0)));
	/* The handler still answers; the answer goes nowhere. */
	zc_chain_init(&c);
	cr_assert_eq(zc_rpc_reply(park_get(0), &c), 0);
	rt_stop(&e);
}

static bool echo_ok(void *arg)
{
	struct zc_chain req, resp;
	int st;

	rt_chain(rt_pool, &req, 100, 3);
	zc_chain_init(&resp);
	st = zc_rpc_call_sync(arg, ZC_RPC_METHOD_ECHO, &req, NULL, &resp);
	if (st == ZC_RPC_OK)
		cr_assert(rt_check(&resp, 100, 3));
	else
		cr_assert(zc_rpc_status_retryable(st), "status %s",
			  zc_rpc_status_name(st));
	zc_chain_release(&resp);
	return st == ZC_RPC_OK;
}

static bool connect_failed(void *arg)
{
	struct zc_rpc_client_stats cs;

	zc_rpc_client_stats(arg, &cs);
	return cs.connect_failures > 0;
}

Test(drain, reconnect_after_restart, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 2, .backoff_min_ms = 5,
				     .backoff_max_ms = 50 },
			     .setup = setup };
	struct zc_rpc_client_stats cs;
	struct rt_env e;

	rt_start(&e, &o);
	cr_assert(echo_ok(e.cli));
	rt_server_stop(&e);
	/* Down: calls fail fast and retryable, reconnects back off. */
	cr_assert_not(echo_ok(e.cli));
	cr_assert(rt_wait_for(connect_failed, e.cli, 10));
	rt_server_start(&e, &o);
	cr_assert(rt_wait_for(echo_ok, e.cli, 10));
	zc_rpc_client_stats(e.cli, &cs);
	cr_assert_geq(cs.connects, 3);
	rt_stop(&e);
}
