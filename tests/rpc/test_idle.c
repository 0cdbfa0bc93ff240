/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_idle.c - an idle connection costs the server no pool
 * buffer.  Connections that exchanged HELLOs and then send nothing leave
 * the server reactor's pool with as many buffers in use as one such
 * connection did (the receive ring's, and at most a few HELLO answers
 * still being sent), whatever their number: an idle connection's memory
 * is its structs (struct zc_conn, struct zc__sconn), which is what keeps
 * it under the 4 KB of server RSS of issue 14 (docs/BENCHMARKS.md,
 * "Thousands of connections").  No timing: the wait only bounds a failure.
 */
#include <unistd.h>

#include <criterion/criterion.h>

#include "raw.h"
#include "rpc_test.h"

struct settle_arg {
	struct zc_reactor *r;
	uint64_t bound;
};

static bool settled(void *arg)
{
	struct settle_arg *a = arg;

	return rt_pool_in_use(a->r) <= a->bound;
}

Test(idle, no_pool_buffer_per_idle_connection, .timeout = 60)
{
	/* N is far above any slack, within the default 1024 descriptors
	 * (both ends are in this process). */
	enum { N = 256, SLACK = 8 };
	struct rt_opts o = { .no_client = true };
	struct settle_arg a;
	struct rt_env e;
	uint64_t one;
	int fds[N];

	rt_start(&e, &o);
	fds[0] = raw_open(e.port);
	a.r = e.srv_r[0];
	/* With one idle connection: the ring's buffers, and its HELLO
	 * answer if still in flight (it only raises the bound). */
	one = rt_pool_in_use(a.r);
	for (unsigned i = 1; i < N; i++)
		fds[i] = raw_open(e.port);
	a.bound = one + SLACK;
	cr_assert(rt_wait_for(settled, &a, 10),
		  "%llu pool buffers in use with %u idle connections, %llu "
		  "with one",
		  (unsigned long long)rt_pool_in_use(a.r), N,
		  (unsigned long long)one);
	cr_log_info("server pool: %llu buffers in use with one idle "
		    "connection, %llu with %u",
		    (unsigned long long)one,
		    (unsigned long long)rt_pool_in_use(a.r), N);
	for (unsigned i = 0; i < N; i++)
		close(fds[i]);
	rt_stop(&e);
}
