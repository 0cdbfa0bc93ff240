/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_fair.c - the receive ring is shared fairly: with the
 * per-batch receive limit (rx_batch_bytes), bulk senders take at most
 * their share of the provided-buffer ring per batch, so the ring is never
 * emptied (no receive ends in ENOBUFS) while every byte still arrives in
 * order.  Without the limit the kernel fills every buffer it is given
 * from one bulk socket in one go (issue 15: a neighbour's receive then
 * waits for the next refill).  And the send side: sends are sliced
 * only where a light connection would wait for them.
 */
#include <errno.h>

#include <criterion/criterion.h>

#include "harness.h"

static void bulk_into_small_ring(unsigned conns)
{
	struct hs_cfg cfg = {
		/* A 64 KiB ring: a loopback burst overfills it at once.  The
		 * default limit, a quarter of the ring, lets two bulk
		 * senders take at most about half of it per batch. */
		.rc = { .rxbuf_size = 4096, .rx_ring_entries = 16 },
		.conns = conns,
		.total = ZC_TEST_SANITIZED ? (2u << 20) : (8u << 20),
		.max_msg = 1u << 20,
		.wrap = true, /* the sender does not need the small pool */
	};
	struct hs_result res;

	hs_run(&cfg, &res);

	cr_assert_null(res.failed, "harness: %s", res.failed);
	cr_assert_not(res.timed_out, "closed %u", res.closed);
	cr_assert_eq(res.closed, 2 * cfg.conns);
	cr_assert_eq(res.close_errs, 0);
	cr_assert_eq(res.bytes_bad, 0);
	cr_assert_eq(res.bytes_rx, (uint64_t)cfg.total * cfg.conns);
	cr_log_info("server: batch limits %llu arms %llu enobufs %llu",
		    (unsigned long long)res.st[0].rx_batch_limits,
		    (unsigned long long)res.st[0].rx_arms,
		    (unsigned long long)res.st[0].rx_enobufs);
	/* The limit ended receives, and the ring never ran dry. */
	cr_assert_gt(res.st[0].rx_batch_limits, 0);
	cr_assert_eq(res.st[0].rx_enobufs, 0);
}

Test(stack_fair, one_bulk_sender_never_empties_the_ring)
{
	bulk_into_small_ring(1);
}

Test(stack_fair, two_bulk_senders_never_empty_the_ring)
{
	bulk_into_small_ring(2);
}

/* Client -> server bulk on one connection with a 64 KiB slice; returns
 * the client's stats. */
static struct zc_reactor_stats slice_run(void)
{
	struct hs_cfg cfg = {
		.rc = { .tx_slice_bytes = 64u << 10 },
		.conns = 1,
		.total = ZC_TEST_SANITIZED ? (4u << 20) : (16u << 20),
		.max_msg = 4u << 20,
		.wrap = true,
	};
	struct hs_result res;

	hs_run(&cfg, &res);

	cr_assert_null(res.failed, "harness: %s", res.failed);
	cr_assert_not(res.timed_out, "closed %u", res.closed);
	cr_assert_eq(res.bytes_bad, 0);
	cr_assert_eq(res.bytes_rx, (uint64_t)cfg.total);
	cr_assert_eq(res.st[1].tx_bytes, (uint64_t)cfg.total);
	cr_log_info("client: %llu send requests, %llu sliced",
		    (unsigned long long)(res.st[1].tx_plain + res.st[1].tx_zc),
		    (unsigned long long)res.st[1].tx_sliced);
	return res.st[1];
}

/* A connection alone on its loop has nobody whose latency slicing would
 * protect: it sends whole requests.  (Bulk beside bulk does too, unless
 * one of them runs light for a batch; light beside heavy slices, which
 * rpc.big's large_answers_sliced_only_beside_small_calls checks.) */
Test(stack_fair, lone_connection_sends_whole)
{
	cr_assert_eq(slice_run().tx_sliced, 0);
}

Test(stack_fair, slice_above_a_gib_is_refused)
{
	struct zc_reactor_config rc = { .tx_slice_bytes = (1u << 30) + 1 };
	struct zc_reactor *r = NULL;

	cr_assert_eq(zc_reactor_create(&rc, &r), -EINVAL);
}
