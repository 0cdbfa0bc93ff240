/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_corrupt.c - the seeds' test: the sender scribbles over
 * each payload the moment the stack gives its memory back (the release
 * callback of wrapped memory), and the receiver verifies every byte.
 *
 * With the tracker holding an in-flight reference until the kernel's
 * notification, no byte is ever corrupted, in any send mode.  The control
 * run releases at the first completion instead (the reactor's test-only
 * ZC_REACTOR_UNSAFE_EARLY_RELEASE): while the receiver is slow, the sender's
 * socket still holds our pages when the first completion arrives, so the
 * scribbled bytes are what goes out, and the check must see them.
 */
#include <criterion/criterion.h>

#include "harness.h"

static void run(enum zc_send_mode mode, unsigned flags, struct hs_result *res)
{
	struct hs_cfg cfg = {
		.rc = { .send_mode = mode, .flags = flags,
			.rx_budget = 1u << 20, .sndq_max = 16u << 20 },
		.conns = 2,
		.total = ZC_TEST_SANITIZED ? (12u << 20) : (32u << 20),
		.max_msg = 4u << 20,
		.consumer_thread = true,
		.consumer_delay_us = 200,
		.wrap = true,
		.scribble = true,
	};

	hs_run(&cfg, res);

	cr_assert_null(res->failed, "harness: %s", res->failed);
	cr_assert_not(res->timed_out);
	cr_assert_eq(res->closed, 2 * cfg.conns);
	cr_assert_eq(res->bytes_rx, (uint64_t)cfg.total * cfg.conns);
	cr_log_info("%s%s: %llu corrupted bytes, client tx_zc %llu notifs %llu",
		    zc_send_mode_name(mode), flags ? " early-release" : "",
		    (unsigned long long)res->bytes_bad,
		    (unsigned long long)res->st[1].tx_zc,
		    (unsigned long long)res->st[1].notifs);
}

static void clean(enum zc_send_mode mode)
{
	struct hs_result res;

	run(mode, 0, &res);
	cr_assert_eq(res.bytes_bad, 0, "%llu corrupted bytes",
		     (unsigned long long)res.bytes_bad);
	cr_assert_eq(res.close_errs, 0);
	cr_assert_eq(res.dones, res.sends);
}

Test(stack_corrupt, copy_clean) { clean(ZC_SEND_COPY); }
Test(stack_corrupt, zc_clean) { clean(ZC_SEND_ZC); }
Test(stack_corrupt, auto_clean) { clean(ZC_SEND_AUTO); }

/* The control: the check is able to fail. */
Test(stack_corrupt, early_release_is_caught)
{
	struct hs_result res;

	run(ZC_SEND_ZC, ZC_REACTOR_UNSAFE_EARLY_RELEASE, &res);
	cr_assert_gt(res.st[1].tx_zc, 0);
	cr_assert_gt(res.bytes_bad, 0,
		     "releasing at the first completion went unnoticed");
}
