/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_stage.c - frame headers and small payloads of every
 * connection of one owner share its staging buffer (rpc/tx.c): small
 * calls over many connections cost the server and the client a pool
 * buffer per stage filled, not one per flush of each connection.  Before
 * the stage was shared, every answer to a lone call took a pool buffer of
 * its own, so both pools counted at least one allocation per call.
 * Answers stay byte-identical.  No timing: the waits only bound a failure.
 */
#include <criterion/criterion.h>

#include "rpc_test.h"

static uint64_t allocated(struct zc_reactor *r)
{
	struct zc_pool_stats ps;

	zc_pool_stats(zc_reactor_pool(r), &ps);
	return ps.allocated;
}

Test(stage, small_calls_share_stage_buffers, .timeout = 60)
{
	/* Waves of one small call per connection: each connection flushes
	 * one frame at a time, the case a stage per connection paid for. */
	enum { CONNS = 64, WAVES = 40, LEN = 48 };
	struct rt_opts o = { .cc = { .conns = CONNS } };
	static struct rt_tally t;
	uint64_t srv0, cli0, srv, cli;
	unsigned calls = CONNS * WAVES;
	struct rt_env e;

	rt_start(&e, &o);
	/* Every connection up and warm before counting. */
	for (unsigned i = 0; i < CONNS; i++)
		cr_assert_eq(rt_echo_async(e.cli, &t, LEN, i, 0, NULL), 0);
	cr_assert(rt_wait(&t, CONNS, 20));
	srv0 = allocated(e.srv_r[0]);
	cli0 = allocated(e.cli_r);
	for (unsigned w = 0; w < WAVES; w++) {
		for (unsigned i = 0; i < CONNS; i++)
			cr_assert_eq(rt_echo_async(e.cli, &t, LEN, w * CONNS + i,
						   0, NULL), 0);
		cr_assert(rt_wait(&t, CONNS * (w + 2), 20),
			  "wave %u: %u answered", w, atomic_load(&t.done));
	}
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), calls + CONNS);
	cr_assert_eq(atomic_load(&t.bad), 0);
	srv = allocated(e.srv_r[0]) - srv0;
	cli = allocated(e.cli_r) - cli0;
	cr_log_info("pool buffers taken for %u calls: server %llu, client "
		    "%llu", calls, (unsigned long long)srv,
		    (unsigned long long)cli);
	/* A stage holds hundreds of these frames, the receive ring's
	 * buffers hundreds of requests; a tenth of a buffer per call is
	 * far above either. */
	cr_assert_lt(srv, calls / 10, "server: %llu pool buffers for %u calls",
		     (unsigned long long)srv, calls);
	cr_assert_lt(cli, calls / 10, "client: %llu pool buffers for %u calls",
		     (unsigned long long)cli, calls);
	rt_stop(&e);
}
