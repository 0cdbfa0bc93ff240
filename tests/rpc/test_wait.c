/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_wait.c - a failed call says why (zc_rpc_call_error():
 * status, connect errno, reason, peer), and wait-for-ready: a call made
 * while nothing listens waits, up to its deadline, for the server to come.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

static struct zc_reactor *r;
static uint16_t port;		/* a loopback port nothing listens on */
static char target[32];

/* A port just released: nothing listens there until the test does. */
static void start(void)
{
	struct zc_reactor_config rc = { .rx_budget = 256 * 1024 };

	port = rt_free_port();
	snprintf(target, sizeof(target), "127.0.0.1:%u", port);
	cr_assert_eq(zc_reactor_spawn(&rc, &r), 0);
}

static void stop(void)
{
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

TestSuite(wait, .init = start, .fini = stop);

static struct zc_rpc_client *client(bool wait_for_ready)
{
	struct zc_rpc_client *cli;

	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .target = target, .conns = 1,
		.backoff_min_ms = 5, .backoff_max_ms = 20,
		.wait_for_ready = wait_for_ready }, &cli), 0);
	return cli;
}

static int call(struct zc_rpc_client *cli, uint64_t timeout_us, bool wfr)
{
	struct zc_rpc_call_opts o = { .timeout_us = timeout_us,
				      .wait_for_ready = wfr };
	struct zc_chain req, resp;
	int st;

	zc_chain_init(&req);
	zc_chain_init(&resp);
	cr_assert_eq(zc_chain_copyin(&req, zc_reactor_pool(r), "x", 1), 0);
	st = zc_rpc_call_sync(cli, ZC_RPC_METHOD_ECHO, &req, &o, &resp);
	cr_assert_geq(st, 0);
	zc_chain_release(&resp);
	return st;
}

/* Nothing listens: the call fails at once, and says it was refused, by
 * which address. */
Test(wait, refused_connect_says_why)
{
	struct zc_rpc_client *cli = client(false);
	const struct zc_rpc_error *e;
	struct zc_rpc_client_stats st;

	/* The first call may still find the first connect under way. */
	for (int i = 0; i < 200; i++) {
		zc_rpc_client_stats(cli, &st);
		if (st.connect_failures)
			break;
		usleep(5000);
	}
	cr_assert_eq(call(cli, 5000000, false), ZC_RPC_UNAVAILABLE);
	e = zc_rpc_call_error();
	cr_assert_not_null(e);
	cr_assert_eq(e->status, ZC_RPC_UNAVAILABLE);
	cr_assert_eq(e->err, -ECONNREFUSED);
	cr_assert_str_eq(e->reason, "no connection");
	cr_assert_str_eq(e->peer, target);
	zc_rpc_client_destroy(cli);
}

/* Waiting for ready without a server: the deadline ends the call, still
 * saying what the connects got. */
Test(wait, deadline_while_connecting_says_why)
{
	struct zc_rpc_client *cli = client(false);
	const struct zc_rpc_error *e;

	cr_assert_eq(call(cli, 100000, true), ZC_RPC_DEADLINE_EXCEEDED);
	e = zc_rpc_call_error();
	cr_assert_not_null(e);
	cr_assert_str_eq(e->reason, "deadline exceeded while connecting");
	cr_assert_eq(e->err, -ECONNREFUSED);
	zc_rpc_client_destroy(cli);
}

struct late {
	struct zc_rpc_server *srv;
	int err;
};

/* Start the server a while after the call was made. */
static void *late_server(void *arg)
{
	struct late *l = arg;

	usleep(100000);
	l->err = zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &r, .nreactors = 1 }, &l->srv);
	if (!l->err)
		l->err = zc_rpc_server_listen_str(l->srv, target);
	return NULL;
}

/* The client waits for ready (its config): the call made before the
 * server exists is answered once it does. */
static void served_late(bool per_client)
{
	struct zc_rpc_client *cli = client(per_client);
	struct late l = { 0 };
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, late_server, &l), 0);
	cr_assert_eq(call(cli, 10000000, !per_client), ZC_RPC_OK);
	cr_assert_str_eq(zc_rpc_call_error()->reason, "ok");
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(l.err, 0);
	zc_rpc_client_destroy(cli);
	zc_rpc_server_destroy(l.srv);
}

Test(wait, per_call_wait_for_ready)
{
	served_late(false);
}

Test(wait, per_client_wait_for_ready)
{
	served_late(true);
}

/* Inside the done callback the error is the completion's own. */
struct cb_out {
	struct zc_rpc_error e;
	atomic_bool done;
};

static void done_cb(void *arg, int status, struct zc_chain *resp)
{
	struct cb_out *out = arg;
	const struct zc_rpc_error *e = zc_rpc_call_error();

	out->e = e ? *e : (struct zc_rpc_error){ .status = -1 };
	atomic_store(&out->done, true);
}

static bool cb_done(void *arg)
{
	return atomic_load(&((struct cb_out *)arg)->done);
}

Test(wait, error_inside_callback)
{
	struct zc_rpc_client *cli = client(false);
	struct zc_rpc_call_opts o = { .timeout_us = 100000,
				      .wait_for_ready = true };
	struct cb_out got = { .e.status = -2 };
	struct zc_chain req;

	zc_chain_init(&req);
	cr_assert_eq(zc_rpc_call(cli, ZC_RPC_METHOD_ECHO, &req, &o, done_cb,
				 &got, NULL), 0);
	cr_assert(rt_wait_for(cb_done, &got, 10));
	cr_assert_eq(got.e.status, ZC_RPC_DEADLINE_EXCEEDED);
	cr_assert_str_eq(got.e.reason, "deadline exceeded while connecting");
	zc_rpc_client_destroy(cli);
}
