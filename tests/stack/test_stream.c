/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_stream.c - stream integrity over loopback: random
 * message sizes from 1 B to 4 MiB, both ways, several connections at once,
 * every send mode, consumers verifying and releasing on another thread,
 * with receives sharing ring buffers (where the kernel can) or not.
 */
#include <criterion/criterion.h>

#include "harness.h"

static void run_free(enum zc_send_mode mode, bool wrap, enum zc_free_mode fm,
		     unsigned flags)
{
	struct hs_cfg cfg = {
		.rc = { .send_mode = mode, .rx_budget = 8u << 20,
			.free_mode = fm, .flags = flags },
		.conns = 4,
		.total = ZC_TEST_SANITIZED ? (6u << 20) : (24u << 20),
		.max_msg = 4u << 20,
		.server_sends = true,
		.consumer_thread = true,
		.wrap = wrap,
	};
	struct hs_result res;
	uint64_t expect = (uint64_t)cfg.total * cfg.conns * 2;

	hs_run(&cfg, &res);

	cr_assert_null(res.failed, "harness: %s", res.failed);
	cr_assert_not(res.timed_out, "closed %u of %u", res.closed,
		      2 * cfg.conns);
	cr_assert_eq(res.closed, 2 * cfg.conns);
	cr_assert_eq(res.close_errs, 0);
	cr_assert_eq(res.bytes_bad, 0, "%llu corrupted bytes",
		     (unsigned long long)res.bytes_bad);
	cr_assert_eq(res.bytes_rx, expect);
	cr_assert_eq(res.dones, res.sends);
	cr_assert_eq(res.done_errs, 0);
	/* Counters conserved: what one reactor sent, the other received. */
	cr_assert_eq(res.st[0].tx_bytes, res.st[1].rx_bytes);
	cr_assert_eq(res.st[1].tx_bytes, res.st[0].rx_bytes);
	cr_assert_eq(res.st[0].rx_bytes + res.st[1].rx_bytes, expect);
	for (int i = 0; i < 2; i++) {
		const struct zc_reactor_stats *s = &res.st[i];

		cr_log_info("%s %s: tx_plain %llu tx_zc %llu fixed %llu notifs "
			    "%llu copied %llu to_copy %llu short %llu enobufs "
			    "%llu shared %llu deferred %llu kicks %llu",
			    zc_send_mode_name(mode), i ? "client" : "server",
			    (unsigned long long)s->tx_plain,
			    (unsigned long long)s->tx_zc,
			    (unsigned long long)s->tx_zc_fixed,
			    (unsigned long long)s->notifs,
			    (unsigned long long)s->notifs_copied,
			    (unsigned long long)s->zc_to_copy,
			    (unsigned long long)s->tx_short,
			    (unsigned long long)s->rx_enobufs,
			    (unsigned long long)s->rx_buf_shared,
			    (unsigned long long)s->pool.deferred,
			    (unsigned long long)s->pool.kicks);
		/* Every zero-copy request got its notification. */
		cr_assert_eq(s->notifs, s->tx_zc);
		cr_assert_eq(s->conns_open, 0);
		cr_assert_eq(s->closed, cfg.conns);
		if (flags & ZC_REACTOR_NO_INC_BUFS)
			cr_assert_eq(s->rx_buf_shared, 0);
		if (mode == ZC_SEND_COPY)
			cr_assert_eq(s->tx_zc, 0);
		if (mode == ZC_SEND_ZC) {
			cr_assert_gt(s->tx_zc, 0);
			cr_assert_eq(s->zc_to_copy, 0);
		}
		if (mode == ZC_SEND_AUTO) {
			/* Loopback copies zero-copy pages: the kernel says so
			 * and AUTO falls back to plain send. */
			cr_assert_gt(s->tx_zc, 0);
			if (s->notifs_copied)
				cr_assert_gt(s->zc_to_copy, 0);
		}
		/* Released on the consumer thread: back through the defer
		 * list (the last ones are drained by the teardown, whose
		 * zc_reactor_destroy() == 0 proves all came home). */
		if (fm == ZC_FREE_OWNER) {
			cr_assert_gt(s->pool.deferred, 0);
			cr_assert_geq(s->pool.deferred, s->pool.drained);
		} else if (fm == ZC_FREE_LOCAL) {
			cr_assert_gt(s->pool.released_local, 0);
		} else {
			cr_assert_gt(s->pool.released_locked, 0);
		}
	}
}

static void run_mode(enum zc_send_mode mode, bool wrap)
{
	run_free(mode, wrap, ZC_FREE_OWNER, 0);
}

Test(stack_stream, copy) { run_mode(ZC_SEND_COPY, false); }
Test(stack_stream, zc) { run_mode(ZC_SEND_ZC, false); }
Test(stack_stream, autoswitch) { run_mode(ZC_SEND_AUTO, false); }
Test(stack_stream, zc_wrapped) { run_mode(ZC_SEND_ZC, true); }

/* The baselines zcperf compares against: same stream, other free paths. */
Test(stack_stream, free_local) { run_free(ZC_SEND_AUTO, false, ZC_FREE_LOCAL, 0); }
Test(stack_stream, free_locked) { run_free(ZC_SEND_AUTO, false, ZC_FREE_LOCKED, 0); }

/* One receive per ring buffer: the path of kernels before 6.12. */
Test(stack_stream, whole_buffers)
{
	run_free(ZC_SEND_AUTO, false, ZC_FREE_OWNER, ZC_REACTOR_NO_INC_BUFS);
}
