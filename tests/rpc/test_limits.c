/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_limits.c - deadlines (client timer, expiry in the worker
 * queue), cancel on the wire, per-method and per-connection overload, and
 * answers too large for the client.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "park.h"

#define M_PARK	(ZC_RPC_METHOD_USER + 20)
#define M_BLOCK	(ZC_RPC_METHOD_USER + 21)
#define M_PARK2	(ZC_RPC_METHOD_USER + 22)	/* max_inflight 2 */

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_PARK, "park", ZC_RPC_INLINE,
					    0, park_handler, NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_BLOCK, "block",
					    ZC_RPC_WORKER, 0, park_block,
					    NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_PARK2, "park2",
					    ZC_RPC_INLINE, 2, park_handler,
					    NULL), 0);
}

static struct rt_tally t;

static bool cancelled_seen(void *arg)
{
	return zc_rpc_call_cancelled(arg);
}

/* rt_wait_for() predicate: the server has exactly @n calls in flight. */
struct inflight_is {
	struct zc_rpc_server *srv;
	uint64_t n;
};

static bool server_inflight_is(void *arg)
{
	const struct inflight_is *w = arg;
	struct zc_rpc_server_stats ss;

	zc_rpc_server_stats(w->srv, &ss);
	return ss.inflight == w->n;
}

static bool server_expired_one(void *arg)
{
	struct zc_rpc_server_stats ss;

	zc_rpc_server_stats(arg, &ss);
	return ss.expired_queued == 1;
}

Test(limits, deadline_and_cancel_reach_handler, .timeout = 60)
{
	struct rt_opts o = { .sc = { .workers = 1 }, .setup = setup };
	struct zc_rpc_server_stats ss;
	struct zc_rpc_pending *p;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	/* Deadline: the client gives up, tells the server, which lets the
	 * handler see it. */
	cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, 1, SIZE_MAX, 20000,
				   0, NULL), 0);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_DEADLINE_EXCEEDED]), 1);
	cr_assert(rt_wait_for(park_has, (void *)1, 10));
	cr_assert(rt_wait_for(cancelled_seen, park_get(0), 10));
	zc_rpc_reply_error(park_get(0), ZC_RPC_INTERNAL, "late");

	/* Explicit cancel. */
	cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, 1, SIZE_MAX, 0, 1,
				   &p), 0);
	cr_assert(rt_wait_for(park_has, (void *)2, 10));
	cr_assert_not(zc_rpc_call_cancelled(park_get(1)));
	zc_rpc_cancel(p);
	zc_rpc_cancel(p);	/* harmless twice */
	cr_assert(rt_wait(&t, 2, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_CANCELLED]), 1);
	cr_assert(rt_wait_for(cancelled_seen, park_get(1), 10));
	struct zc_chain empty;
	zc_chain_init(&empty);
	cr_assert_eq(zc_rpc_reply(park_get(1), &empty), 0);
	zc_rpc_cancel(p);	/* after completion: nothing */
	zc_rpc_pending_put(p);

	/* Expiry in the worker queue: the one worker is blocked, the queued
	 * call's deadline passes, it is dropped without running. */
	cr_assert_eq(rt_call_async(e.cli, M_BLOCK, &t, 10, 7, 10, 0, 2, NULL),
		     0);
	while (atomic_load(&park.runs) < 3)
		usleep(1000);
	cr_assert_eq(rt_call_async(e.cli, M_BLOCK, &t, 10, 8, 10, 30000, 3,
				   NULL), 0);
	cr_assert(rt_wait(&t, 3, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_DEADLINE_EXCEEDED]), 2);
	/*
	 * The server answers the queued call at its own deadline (which lags
	 * the client's timer by the transit), while the worker is still
	 * blocked: it does not wait for the worker to reach it (PROTOCOL.md
	 * section 6).  Whether the client's cancel got there first or not,
	 * the call is counted expired and never runs.
	 */
	cr_assert(rt_wait_for(server_expired_one, e.srv, 5));
	cr_assert_eq(atomic_load(&park.runs), 3);
	atomic_store(&park.open, true);
	cr_assert(rt_wait(&t, 4, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
	/* The server answers the expired call itself; wait for that. */
	rt_wait_for(server_inflight_is, &(struct inflight_is){ e.srv, 0 }, 5);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.expired_queued, 1);
	cr_assert_eq(atomic_load(&park.runs), 3, "expired call ran");
	/* Two cancels found their call; the expired one's may too, if it
	 * overtook the blocked worker.  Every cancelled answer is dropped. */
	cr_assert(ss.cancels == 2 || ss.cancels == 3, "cancels %lu",
		  (unsigned long)ss.cancels);
	cr_assert_eq(ss.dropped_answers, ss.cancels);
	cr_assert_eq(ss.inflight, 0);
	rt_stop(&e);
}

Test(limits, overload_is_immediate_and_retryable, .timeout = 60)
{
	struct rt_opts o = { .sc = { .max_inflight_conn = 4, .workers = 1 },
			     .cc = { .conns = 1 }, .setup = setup };
	struct zc_rpc_server_stats ss;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	/* Method limit 2: the third is refused at once. */
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(rt_call_async(e.cli, M_PARK2, &t, 10, i, SIZE_MAX,
					   0, i, NULL), 0);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OVERLOADED]), 1);
	cr_assert(rt_wait_for(park_has, (void *)2, 10));
	/* Connection limit 4: two more park, the next is refused. */
	for (unsigned i = 3; i < 6; i++)
		cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, i, SIZE_MAX,
					   0, i, NULL), 0);
	cr_assert(rt_wait(&t, 2, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OVERLOADED]), 2);
	cr_assert(rt_wait_for(park_has, (void *)4, 10));
	for (unsigned i = 0; i < 4; i++) {
		struct zc_chain c;

		zc_chain_init(&c);
		cr_assert_eq(zc_rpc_reply(park_get(i), &c), 0);
	}
	cr_assert(rt_wait(&t, 6, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 4);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.rejected_overload, 2);
	/* Room again: a retry succeeds. */
	cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 10, 9, 10,
				   0, 9, NULL), 0);
	cr_assert(rt_wait(&t, 7, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 5);
	rt_stop(&e);
}

Test(limits, too_large_fails_only_that_call, .timeout = 60)
{
	struct rt_opts o = { .sc = { .max_message = 100000, .workers = 1 },
			     .cc = { .conns = 1, .max_message = 50000 },
			     .setup = setup };
	struct zc_rpc_client_stats cs;
	struct zc_rpc_server_stats ss;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	/* Request over the server's limit: refused by the client itself
	 * (it learnt the limit from HELLO).  Answer over the client's limit:
	 * refused by the server's reply.  Both leave the connection up. */
	cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 100001, 1,
				   SIZE_MAX, 0, 0, NULL), 0);
	cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 60000, 2,
				   SIZE_MAX, 0, 1, NULL), 0);
	cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 50000, 3,
				   50000, 0, 2, NULL), 0);
	cr_assert(rt_wait(&t, 3, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_TOO_LARGE]), 2);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_client_stats(e.cli, &cs);
	cr_assert_eq(cs.connects, 1);
	cr_assert_eq(cs.protocol_errors, 0);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_protocol_error, 0);
	rt_stop(&e);
}

static atomic_bool go;

static void block_reactor(void *arg)
{
	while (!atomic_load(&go))
		usleep(100);
}

Test(limits, send_budget_pushes_back, .timeout = 60)
{
	struct rt_opts o = { .sc = { .workers = 1 },
			     .cc = { .conns = 1, .tx_budget = 1 << 20 },
			     .setup = setup };
	struct zc_rpc_client_stats cs;
	struct rt_env e;
	unsigned ok = 0, again = 0;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	/* Hold the client reactor so nothing drains meanwhile: the budget
	 * then takes exactly 4 x 256 KiB and refuses the other 60. */
	atomic_store(&go, false);
	cr_assert_eq(zc_reactor_post(e.cli_r, block_reactor, NULL), 0);
	for (unsigned i = 0; i < 64; i++) {
		int ret = rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 256 << 10,
					i, 256 << 10, 0, i, NULL);

		cr_assert(ret == 0 || ret == -EAGAIN, "ret %d", ret);
		ok += !ret;
		again += ret == -EAGAIN;
	}
	atomic_store(&go, true);
	cr_assert_eq(ok, 4);
	cr_assert_eq(again, 60);
	cr_assert(rt_wait(&t, ok, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), ok);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_client_stats(e.cli, &cs);
	cr_assert_eq(cs.tx_budget_refusals, again);
	for (int i = 0; i < 1000 && cs.tx_pending_bytes; i++) {
		usleep(1000);
		zc_rpc_client_stats(e.cli, &cs);
	}
	cr_assert_eq(cs.tx_pending_bytes, 0);
	rt_stop(&e);
}

static bool rx_budget_hit(void *arg)
{
	struct zc_rpc_server_stats ss;

	zc_rpc_server_stats(arg, &ss);
	return ss.rx_budget_stops > 0;
}

Test(limits, server_receive_budget_stops_reading, .timeout = 60)
{
	/* 256 KiB of requests in flight, server-wide: the fifth 60 KiB call
	 * waits unparsed (nothing fails) until one of the four finishes.
	 * The per-connection budget is lifted to the server's so that it is
	 * the server-wide one that stops them. */
	struct rt_opts o = { .rc = { .rx_budget = 128 << 10 },
			     .sc = { .max_inflight_bytes = 256 << 10,
				     .max_inflight_bytes_conn = 256 << 10,
				     .max_message = 64 << 10, .workers = 1 },
			     .cc = { .conns = 2 }, .setup = setup };
	struct zc_rpc_server_stats ss;
	unsigned answered = 0;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	for (unsigned i = 0; i < 16; i++)
		cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 60 << 10, i,
					   SIZE_MAX, 0, i, NULL), 0);
	cr_assert(rt_wait_for(park_has, (void *)4, 10));
	cr_assert(rt_wait_for(rx_budget_hit, e.srv, 10));
	cr_assert_not(park_has((void *)5), "budget let a fifth call in");
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_leq(ss.inflight_bytes, 256 << 10);
	while (answered < 16) {
		struct zc_chain c;

		cr_assert(rt_wait_for(park_has, (void *)(uintptr_t)(answered + 1),
				      10), "answered %u", answered);
		zc_chain_init(&c);
		cr_assert_eq(zc_rpc_reply(park_get(answered), &c), 0);
		answered++;
	}
	cr_assert(rt_wait(&t, 16, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 16);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.rejected_overload, 0);
	cr_assert_eq(ss.inflight_bytes, 0);
	rt_stop(&e);
}

Test(limits, client_waits_for_room_per_connection, .timeout = 60)
{
	/* Two calls in flight per connection at most: the third waits in
	 * the client (not sent, not failed) until one is answered. */
	struct rt_opts o = { .sc = { .workers = 1 },
			     .cc = { .conns = 1, .max_inflight_conn = 2 },
			     .setup = setup };
	struct zc_rpc_server_stats ss;
	struct rt_env e;
	struct zc_chain c;

	memset(&t, 0, sizeof(t));
	park_reset();
	rt_start(&e, &o);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(rt_call_async(e.cli, M_PARK, &t, 10, i, SIZE_MAX,
					   0, i, NULL), 0);
	cr_assert(rt_wait_for(park_has, (void *)2, 10));
	/* The server has seen exactly two requests. */
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.requests, 2);
	cr_assert_not(park_has((void *)3));
	zc_chain_init(&c);
	cr_assert_eq(zc_rpc_reply(park_get(0), &c), 0);
	cr_assert(rt_wait_for(park_has, (void *)3, 10));
	cr_assert_eq(zc_rpc_reply(park_get(1), &c), 0);
	cr_assert_eq(zc_rpc_reply(park_get(2), &c), 0);
	cr_assert(rt_wait(&t, 3, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 3);
	rt_stop(&e);
}
