/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_stress.c - thousands of concurrent calls on two
 * connections, answered out of order; a large answer interleaved with
 * small calls (the small ones must complete before the large one).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

#define M_HOLD	(ZC_RPC_METHOD_USER + 10)	/* answers in reverse batches */
#define M_BIG	(ZC_RPC_METHOD_USER + 11)	/* answers BIG_LEN bytes */
#define HOLD_BATCH 64
#define NCALLS (HOLD_BATCH * 80)
#define BIG_LEN (32u << 20)

/* Inline handler: the server has one reactor, so no lock is needed. */
struct held {
	struct zc_rpc_call *call;
	struct zc_chain req;
};
static struct held held[HOLD_BATCH];
static unsigned nheld;

static void hold_handler(struct zc_rpc_call *call, struct zc_chain *req,
			 void *arg)
{
	held[nheld].call = call;
	held[nheld].req = *req;
	if (++nheld < HOLD_BATCH)
		return;
	/* Answer the batch last-in first-out: replies leave in another
	 * order than the requests came, matched by id on the client. */
	while (nheld) {
		nheld--;
		cr_assert_eq(zc_rpc_reply(held[nheld].call, &held[nheld].req),
			     0);
	}
}

static void big_release(void *arg, void *data)
{
	free(data);
}

static void big_handler(struct zc_rpc_call *call, struct zc_chain *req,
			void *arg)
{
	struct zc_chain resp;
	struct zc_buf *b;
	struct zc_view v;
	uint8_t *p = malloc(BIG_LEN);

	zc_chain_release(req);
	cr_assert_not_null(p);
	for (size_t i = 0; i < BIG_LEN; i += 4096)
		p[i] = (uint8_t)(i >> 12);
	cr_assert_eq(zc_buf_wrap(zc_reactor_pool(zc_rpc_call_reactor(call)),
				 p, BIG_LEN, big_release, NULL, &b), 0);
	cr_assert_eq(zc_view_adopt(&v, b, 0, BIG_LEN), 0);
	zc_chain_init(&resp);
	cr_assert_eq(zc_chain_append(&resp, &v), 0);
	cr_assert_eq(zc_rpc_reply(call, &resp), 0);
}

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_HOLD, "hold", ZC_RPC_INLINE,
					    0, hold_handler, NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_BIG, "big", ZC_RPC_INLINE,
					    0, big_handler, NULL), 0);
}

static struct rt_tally t;

static atomic_bool go;

static void block_reactor(void *arg)
{
	while (!atomic_load(&go))
		usleep(100);
}


Test(stress, thousands_out_of_order, .timeout = 120)
{
	struct rt_opts o = { .cc = { .conns = 2 }, .setup = setup };
	struct zc_rpc_client_stats cs;
	struct rt_env e;
	unsigned inversions = 0;

	memset(&t, 0, sizeof(t));
	nheld = 0;
	rt_start(&e, &o);
	for (unsigned i = 0; i < NCALLS; i++) {
		size_t len = 1 + (i * 37) % 300;

		cr_assert_eq(rt_call_async(e.cli, M_HOLD, &t, len, i, len, 0,
					   i % 4096, NULL), 0);
	}
	cr_assert(rt_wait(&t, NCALLS, 60), "%u of %u", atomic_load(&t.done),
		  NCALLS);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), NCALLS);
	cr_assert_eq(atomic_load(&t.bad), 0);
	/* Out of order really happened: count adjacent inversions among the
	 * first 4096 tags (each tag's last completion). */
	for (unsigned i = 1; i < 4096; i++)
		inversions += atomic_load(&t.order[i]) <
			      atomic_load(&t.order[i - 1]);
	cr_assert_gt(inversions, 1000, "inversions %u", inversions);
	zc_rpc_client_stats(e.cli, &cs);
	cr_assert_eq(cs.connects, 2);
	cr_assert_eq(cs.calls, NCALLS);
	cr_assert_eq(cs.inflight, 0);
	cr_assert_eq(cs.tx_pending_bytes, 0);
	rt_stop(&e);
}

Test(stress, large_answer_interleaves, .timeout = 120)
{
	struct rt_opts o = { .cc = { .conns = 1 }, .setup = setup };
	struct rt_env e;
	unsigned big_pos, small_after = 0;
	struct zc_chain req, resp;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	/* Warm the single connection so both calls go out on it at once. */
	rt_chain(rt_pool, &req, 1, 1);
	zc_chain_init(&resp);
	cr_assert_eq(zc_rpc_call_sync(e.cli, ZC_RPC_METHOD_ECHO, &req, NULL,
				      &resp), ZC_RPC_OK);
	zc_chain_release(&resp);

	/* Hold the client reactor while issuing, so the big call and the
	 * small ones leave together, big first. */
	atomic_store(&go, false);
	cr_assert_eq(zc_reactor_post(e.cli_r, block_reactor, NULL), 0);
	cr_assert_eq(rt_call_async(e.cli, M_BIG, &t, 8, 0, SIZE_MAX, 0, 0,
				   NULL), 0);
	for (unsigned i = 1; i <= 50; i++)
		cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 100,
					   i, 100, 0, i, NULL), 0);
	atomic_store(&go, true);
	cr_assert(rt_wait(&t, 51, 60));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 51);
	cr_assert_eq(atomic_load(&t.bytes), BIG_LEN + 50 * 100);
	/* Every small call was issued after the big one, on the same
	 * connection, and completes before it. */
	big_pos = atomic_load(&t.order[0]);
	for (unsigned i = 1; i <= 50; i++)
		small_after += atomic_load(&t.order[i]) > big_pos;
	cr_assert_eq(small_after, 0, "%u small calls waited for the big one",
		     small_after);
	cr_assert_eq(big_pos, 50);
	rt_stop(&e);
}

Test(stress, small_budgets_make_progress, .timeout = 120)
{
	/* Receive budget 256 KiB per connection on every reactor, answer
	 * budget 128 KiB: 64 concurrent 64 KiB echoes (4 MiB) must all get
	 * through the pauses, with every credit given back. */
	struct rt_opts o = { .rc = { .rx_budget = 256 << 10 },
			     .sc = { .tx_budget = 128 << 10 },
			     .cc = { .conns = 1 } };
	struct zc_reactor_stats rs;
	struct zc_rpc_server_stats ss;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	atomic_store(&go, false);
	cr_assert_eq(zc_reactor_post(e.cli_r, block_reactor, NULL), 0);
	for (unsigned i = 0; i < 64; i++)
		cr_assert_eq(rt_echo_async(e.cli, &t, 64 << 10, i, 0, NULL), 0);
	atomic_store(&go, true);
	cr_assert(rt_wait(&t, 64, 60), "%u of 64", atomic_load(&t.done));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 64);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_reactor_stats(e.srv_r[0], &rs);
	zc_rpc_server_stats(e.srv, &ss);
	cr_log_info("server: rx_budget_stops %lu tx_budget_stops %lu",
		    (unsigned long)rs.rx_budget_stops,
		    (unsigned long)ss.tx_budget_stops);
	cr_assert_eq(ss.inflight_bytes, 0);
	rt_stop(&e);
}
