/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_pin.c - what the server charges to rx_pin_max
 * (rpc/server_mem.c, rpc/reasm.c): each receive-ring buffer a message's
 * views hold counts once, and an echoed request is charged once, as its
 * answer.  Issue 14: a 1 MiB echo held about 1.1 MiB of ring but was
 * charged about 4 MiB (every fragment's buffers again where the previous
 * fragment had counted them, and the request and its answer both), so
 * echoes were copied out of the ring long before the cap was really
 * reached.  The cap itself still holds: past it messages are copied.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

enum { MIB = 1u << 20, CALLS = 8 };

static struct rt_tally t;

/* @n echoes of @len, one at a time; returns the server's rx_copied. */
static uint64_t echoes(struct rt_env *e, unsigned n, size_t len)
{
	struct zc_rpc_server_stats ss;

	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(rt_echo_async(e->cli, &t, len, i, 0, NULL), 0);
		cr_assert(rt_wait(&t, i + 1, 30), "echo %u not answered", i);
	}
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), n);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_server_stats(e->srv, &ss);
	return ss.rx_copied;
}

/*
 * A 1 MiB echo in 64 KiB frames holds at most 18 ring buffers of 64 KiB
 * (1.1 MiB), and the answer of the echo before it, still being released,
 * as much again: 3 MiB fits both.  Before, the request alone was charged
 * about 2 MiB and its answer 2 MiB more, and every answer was copied.
 */
Test(pin, echo_charged_once_per_ring_buffer, .timeout = 120)
{
	struct rt_opts o = { .sc = { .rx_pin_max = 3 * MIB },
			     .cc = { .conns = 1 } };
	struct rt_env e;

	rt_start(&e, &o);
	cr_assert_eq(echoes(&e, CALLS, MIB), 0,
		     "1 MiB echoes copied out of the ring under a 3 MiB cap");
	rt_stop(&e);
}

/* The cap still bounds what views may hold: under 256 KiB every 1 MiB
 * request is copied out as it arrives, and still answered whole; and
 * rx_copied counts every byte copied (before, the fragments after the
 * switch to copy mode, and the views it copied, were left out). */
Test(pin, requests_past_the_cap_are_copied, .timeout = 120)
{
	struct rt_opts o = { .sc = { .rx_pin_max = MIB / 4 },
			     .cc = { .conns = 1 } };
	struct rt_env e;

	rt_start(&e, &o);
	cr_assert_eq(echoes(&e, CALLS, MIB), (uint64_t)CALLS * MIB,
		      "requests kept as views past rx_pin_max");
	rt_stop(&e);
}
