/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_exhaust.c - receive back-pressure: a tiny provided
 * buffer ring and pool with slow consumers holding buffers (ENOBUFS ends
 * the multishot receives), and a receive budget that stops reading.
 * Either way nothing may be lost or reordered: every byte is verified.
 */
#include <criterion/criterion.h>

#include "harness.h"

static void check_clean(const struct hs_cfg *cfg, const struct hs_result *res)
{
	cr_assert_not(res->timed_out, "closed %u", res->closed);
	cr_assert_eq(res->closed, 2 * cfg->conns);
	cr_assert_eq(res->close_errs, 0);
	cr_assert_eq(res->bytes_bad, 0);
	cr_assert_eq(res->bytes_rx, (uint64_t)cfg->total * cfg->conns);
	cr_assert_eq(res->dones, res->sends);
}

Test(stack_exhaust, ring_and_pool_exhausted)
{
	struct hs_cfg cfg = {
		.rc = { .rxbuf_size = 4096, .rx_ring_entries = 8,
			.pool_bytes = 256 * 1024, .slab_bytes = 64 * 1024 },
		.conns = 4,
		.total = ZC_TEST_SANITIZED ? (1u << 20) : (4u << 20),
		.max_msg = 256 * 1024,
		.consumer_thread = true,
		.consumer_delay_us = 20,
		.wrap = true, /* the sender does not need the small pool */
	};
	struct hs_result res;

	hs_run(&cfg, &res);

	cr_assert_null(res.failed, "harness: %s", res.failed);
	check_clean(&cfg, &res);
	cr_log_info("server: rx_cqes %llu enobufs %llu arms %llu pool_empty %llu",
		    (unsigned long long)res.st[0].rx_cqes,
		    (unsigned long long)res.st[0].rx_enobufs,
		    (unsigned long long)res.st[0].rx_arms,
		    (unsigned long long)res.st[0].pool.pool_empty);
	/* The ring ran dry and receives were re-armed after refills. */
	cr_assert_gt(res.st[0].rx_enobufs, 0);
	cr_assert_gt(res.st[0].rx_arms, cfg.conns);
}

Test(stack_exhaust, receive_budget_stops_reading)
{
	struct hs_cfg cfg = {
		.rc = { .rxbuf_size = 16384, .rx_budget = 64 * 1024 },
		.conns = 3,
		.total = ZC_TEST_SANITIZED ? (2u << 20) : (8u << 20),
		.max_msg = 1u << 20,
		.consumer_thread = true,
		.consumer_delay_us = 50,
		.wrap = true,
	};
	struct hs_result res;

	hs_run(&cfg, &res);

	cr_assert_null(res.failed, "harness: %s", res.failed);
	check_clean(&cfg, &res);
	cr_log_info("server: budget stops %llu arms %llu",
		    (unsigned long long)res.st[0].rx_budget_stops,
		    (unsigned long long)res.st[0].rx_arms);
	cr_assert_gt(res.st[0].rx_budget_stops, 0);
}
