/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_call.c - loopback calls: echo sync and async in every
 * send mode, INLINE and WORKER handlers, every size class (empty, small,
 * one frame, many frames), unknown method, stats.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

#define M_SUM	 (ZC_RPC_METHOD_USER + 1)	/* inline: 8-byte sum */
#define M_WSUM	 (ZC_RPC_METHOD_USER + 2)	/* worker: 8-byte sum */
#define M_WECHO	 (ZC_RPC_METHOD_USER + 3)	/* worker: echo */

static atomic_uint worker_off_reactor;

static void free_release(void *arg, void *data)
{
	free(data);
}

/* Answer the byte sum of the request, read through its views. */
static void sum_handler(struct zc_rpc_call *call, struct zc_chain *req,
			void *arg)
{
	uint64_t sum = 0;
	struct zc_chain resp;
	uint64_t *out = malloc(sizeof(*out));
	struct zc_buf *b;
	struct zc_view v;

	if (arg && zc_reactor_current() == NULL)
		atomic_fetch_add(&worker_off_reactor, 1);
	for (unsigned i = 0; i < zc_chain_nviews(req); i++) {
		const struct zc_view *rv = zc_chain_view(req, i);
		const uint8_t *p = zc_view_data(rv);

		for (uint32_t k = 0; k < rv->len; k++)
			sum += p[k];
	}
	/* Released here: on a worker, the buffers go home deferred. */
	zc_chain_release(req);
	*out = sum;
	zc_chain_init(&resp);
	if (!out || zc_buf_wrap(zc_reactor_pool(zc_rpc_call_reactor(call)),
				out, sizeof(*out), free_release,
				NULL, &b)) {
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "oom");
		return;
	}
	if (zc_view_adopt(&v, b, 0, sizeof(*out)) || zc_chain_append(&resp, &v)) {
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "oom");
		return;
	}
	cr_assert_eq(zc_rpc_reply(call, &resp), 0);
}

static void wecho_handler(struct zc_rpc_call *call, struct zc_chain *req,
			  void *arg)
{
	if (zc_reactor_current() == NULL)
		atomic_fetch_add(&worker_off_reactor, 1);
	(void)zc_rpc_reply(call, req);
}

static void setup_methods(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_SUM, "sum", ZC_RPC_INLINE, 0,
					    sum_handler, NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_WSUM, "wsum", ZC_RPC_WORKER,
					    0, sum_handler, (void *)1), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_WECHO, "wecho",
					    ZC_RPC_WORKER, 0, wecho_handler,
					    NULL), 0);
	cr_assert_eq(zc_rpc_server_register(s, M_SUM, "dup", ZC_RPC_INLINE, 0,
					    sum_handler, NULL), -EEXIST);
	cr_assert_eq(zc_rpc_server_register(s, 5, "reserved", ZC_RPC_INLINE,
					    0, sum_handler, NULL), -EINVAL);
}

static void run_modes(enum zc_send_mode mode)
{
	static const size_t sizes[] = { 0, 1, 64, 2048, 2049, 65536,
					200000, 1 << 20 };
	struct rt_opts o = { .rc = { .send_mode = mode },
			     .sc = { .workers = 2 },
			     .setup = setup_methods };
	struct rt_env e;
	struct rt_tally t;
	unsigned n = 0;

	memset(&t, 0, sizeof(t));
	atomic_store(&worker_off_reactor, 0);
	rt_start(&e, &o);

	/* Blocking wrapper: echo and sum. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct zc_chain req, resp;
		uint64_t want = 0, got = 0;
		int st;

		rt_chain(rt_pool, &req, sizes[i], (uint32_t)i);
		zc_chain_init(&resp);
		st = zc_rpc_call_sync(e.cli, ZC_RPC_METHOD_ECHO, &req, NULL,
				      &resp);
		cr_assert_eq(st, ZC_RPC_OK, "echo %zu: %s", sizes[i],
			     zc_rpc_status_name(st));
		cr_assert(rt_check(&resp, sizes[i], (uint32_t)i),
			  "echo %zu content", sizes[i]);
		zc_chain_release(&resp);
		for (int w = 0; w < 2; w++) {
			rt_chain(rt_pool, &req, sizes[i], (uint32_t)i);
			want = 0;
			for (unsigned k = 0; k < sizes[i]; k++)
				want += ((uint8_t *)zc_view_data(
					zc_chain_view(&req, 0)))[k];
			st = zc_rpc_call_sync(e.cli, w ? M_WSUM : M_SUM, &req,
					      NULL, &resp);
			cr_assert_eq(st, ZC_RPC_OK, "sum %d size %zu: %s", w,
				     sizes[i], zc_rpc_status_name(st));
			cr_assert_eq(zc_chain_copyout(&resp, 0, &got,
						      sizeof(got)), 8);
			cr_assert_eq(got, want, "sum %zu", sizes[i]);
			zc_chain_release(&resp);
		}
	}
	/* Async, many in flight, both handler modes. */
	for (unsigned i = 0; i < 400; i++) {
		uint32_t m = i % 2 ? ZC_RPC_METHOD_ECHO : M_WECHO;
		size_t len = (i * 7919) % 5000;

		cr_assert_eq(rt_call_async(e.cli, m, &t, len, i, len, 0, i,
					   NULL), 0);
		n++;
	}
	cr_assert(rt_wait(&t, n, 30), "async: %u of %u", atomic_load(&t.done), n);
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), n);
	cr_assert_eq(atomic_load(&t.bad), 0);
	cr_assert_geq(atomic_load(&worker_off_reactor), 200);
	/* wsum released its request views on a worker thread: those receive
	 * buffers went home through the reactor pool's deferred list. */
	struct zc_reactor_stats rs;
	zc_reactor_stats(e.srv_r[0], &rs);
	cr_assert_gt(rs.pool.deferred, 0);

	/* Unknown method: an answer, not a dead connection. */
	struct zc_chain req, resp;
	rt_chain(rt_pool, &req, 10, 1);
	zc_chain_init(&resp);
	cr_assert_eq(zc_rpc_call_sync(e.cli, 999, &req, NULL, &resp),
		     ZC_RPC_UNKNOWN_METHOD);
	rt_chain(rt_pool, &req, 10, 1);
	cr_assert_eq(zc_rpc_call_sync(e.cli, ZC_RPC_METHOD_ECHO, &req, NULL,
				      &resp), ZC_RPC_OK);
	zc_chain_release(&resp);

	struct zc_rpc_server_stats ss;
	struct zc_rpc_method_stats ms;
	struct zc_rpc_client_stats cs;

	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.rejected_unknown, 1);
	cr_assert_eq(ss.conns_protocol_error, 0);
	cr_assert_eq(zc_rpc_server_method_stats(e.srv, ZC_RPC_METHOD_ECHO,
						&ms), 0);
	cr_assert_str_eq(ms.name, "echo");
	cr_assert_eq(ms.calls, 8 + 200 + 1);
	cr_assert_eq(ms.by_status[ZC_RPC_OK], ms.calls);
	cr_assert_eq(zc_rpc_server_method_stats(e.srv, 12345, &ms), -ENOENT);
	zc_rpc_client_stats(e.cli, &cs);
	cr_assert_eq(cs.by_status[ZC_RPC_OK], 8 * 3 + 400 + 1);
	cr_assert_eq(cs.inflight, 0);
	rt_stop(&e);
}

Test(call, copy_mode, .timeout = 60)
{
	run_modes(ZC_SEND_COPY);
}

Test(call, zc_mode, .timeout = 60)
{
	run_modes(ZC_SEND_ZC);
}

Test(call, auto_mode, .timeout = 60)
{
	run_modes(ZC_SEND_AUTO);
}

Test(call, status_names)
{
	cr_assert_str_eq(zc_rpc_status_name(ZC_RPC_OK), "ok");
	cr_assert_str_eq(zc_rpc_status_name(ZC_RPC_DEADLINE_EXCEEDED),
			 "deadline_exceeded");
	cr_assert_str_eq(zc_rpc_status_name(ZC_RPC_PROTOCOL_ERROR),
			 "protocol_error");
	cr_assert_str_eq(zc_rpc_status_name(99), "internal");
	cr_assert(zc_rpc_status_retryable(ZC_RPC_OVERLOADED));
	cr_assert(zc_rpc_status_retryable(ZC_RPC_UNAVAILABLE));
	cr_assert_not(zc_rpc_status_retryable(ZC_RPC_INTERNAL));
}

Test(call, two_server_reactors, .timeout = 60)
{
	/* One port, one listener per reactor (SO_REUSEPORT): connections
	 * land on either, answers from workers find their own reactor. */
	struct rt_opts o = { .server_reactors = 2, .sc = { .workers = 2 },
			     .cc = { .conns = 4 }, .setup = setup_methods };
	struct zc_rpc_server_stats ss;
	struct rt_tally t;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	for (unsigned i = 0; i < 1000; i++) {
		uint32_t m = i % 2 ? ZC_RPC_METHOD_ECHO : M_WECHO;

		cr_assert_eq(rt_call_async(e.cli, m, &t, 300, i, 300, 0, i,
					   NULL), 0);
	}
	cr_assert(rt_wait(&t, 1000, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1000);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_accepted, 4);
	cr_assert_eq(ss.inflight, 0);
	rt_stop(&e);
}

/* oneshot_accept: every listener of the server (the first reactor's own
 * socket and the second's dup of it, or one SO_REUSEPORT socket each)
 * arms one single-shot accept per connection, and the calls are served
 * as with multishot accept. */
static void oneshot_server(bool reuseport)
{
	struct rt_opts o = { .server_reactors = 2,
			     .sc = { .oneshot_accept = true,
				     .reuseport = reuseport },
			     .cc = { .conns = 8 } };
	struct zc_rpc_server_stats ss;
	struct zc_reactor_stats rs;
	uint64_t arms = 0, accepted = 0;
	struct rt_tally t;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	for (unsigned i = 0; i < 200; i++)
		cr_assert_eq(rt_call_async(e.cli, ZC_RPC_METHOD_ECHO, &t, 64,
					   i, 64, 0, i, NULL), 0);
	cr_assert(rt_wait(&t, 200, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 200);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_accepted, 8);
	for (unsigned i = 0; i < e.nsrv; i++) {
		zc_reactor_stats(e.srv_r[i], &rs);
		arms += rs.accept_arms;
		accepted += rs.accepted;
	}
	cr_assert_eq(accepted, 8);
	/* One armed per listener at listen, one more per connection. */
	cr_assert_eq(arms, 8 + e.nsrv);
	rt_stop(&e);
}

Test(call, oneshot_accept_shared_socket, .timeout = 60)
{
	oneshot_server(false);
}

Test(call, oneshot_accept_reuseport, .timeout = 60)
{
	oneshot_server(true);
}
