/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_embed.c - a single-threaded embedder: one thread creates
 * a reactor, drives it with zc_reactor_run_once() and does everything
 * else from that same thread, a server and a client on that reactor
 * included, and tears them down from there with connections open.  A
 * blocking call that waits for its own loop would hang: the API must
 * answer at once (-EDEADLK, -EBUSY) and finish through later run_once
 * calls.  Each loop is bounded in iterations and time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

/* Loop iterations of up to 1 ms each: a 5 s bound on every wait. */
#define SPINS 5000

struct embed {
	struct zc_reactor *r;
	struct zc_rpc_server *srv;
	struct zc_rpc_client *cli;
	unsigned ok, bad;
	bool drained;
	int drain_result;
};

static void done_cb(void *arg, int status, struct zc_chain *resp)
{
	struct embed *em = arg;

	if (status == ZC_RPC_OK && rt_check(resp, 1000, 42))
		em->ok++;
	else
		em->bad++;
	zc_chain_release(resp);
}

static void drained_cb(void *arg, int result)
{
	struct embed *em = arg;

	em->drained = true;
	em->drain_result = result;
}

static void run_until(struct embed *em, bool (*cond)(struct embed *))
{
	for (int i = 0; i < SPINS && !cond(em); i++)
		cr_assert_geq(zc_reactor_run_once(em->r, 1000), 0);
	cr_assert(cond(em), "the loop did not get there in %d runs", SPINS);
}

static bool calls_done(struct embed *em)
{
	return em->ok + em->bad == 10;
}

static bool drain_done(struct embed *em)
{
	return em->drained;
}

/* Start reactor, server, client, all on this thread; 10 echo calls. */
static void embed_start(struct embed *em)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	memset(em, 0, sizeof(*em));
	cr_assert_eq(zc_reactor_create(&(struct zc_reactor_config){ 0 },
				       &em->r), 0);
	cr_assert_eq(zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &em->r, .nreactors = 1 }, &em->srv), 0);
	cr_assert_eq(zc_rpc_server_listen(em->srv, (struct sockaddr *)&sin,
					  sizeof(sin)), 0);
	sin.sin_port = htons(zc_rpc_server_port(em->srv));
	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = em->r, .addr = (struct sockaddr *)&sin,
		.addrlen = sizeof(sin), .conns = 2 }, &em->cli), 0);
	for (int i = 0; i < 10; i++) {
		struct zc_chain req;

		rt_chain(zc_reactor_pool(em->r), &req, 1000, 42);
		cr_assert_eq(zc_rpc_call(em->cli, ZC_RPC_METHOD_ECHO, &req,
					 NULL, done_cb, em, NULL), 0);
	}
	run_until(em, calls_done);
	cr_assert_eq(em->ok, 10);
}

/* Destroy client, server and reactor from the loop thread, running the
 * loop between -EBUSY answers. */
static void embed_stop(struct embed *em)
{
	int ret = -EBUSY, i;

	for (i = 0; i < SPINS && (ret = zc_rpc_client_destroy(em->cli)); i++) {
		cr_assert_eq(ret, -EBUSY);
		cr_assert_geq(zc_reactor_run_once(em->r, 1000), 0);
	}
	cr_assert_eq(ret, 0, "client destroy: %d after %d runs", ret, i);
	for (i = 0; i < SPINS && (ret = zc_rpc_server_destroy(em->srv)); i++) {
		cr_assert_eq(ret, -EBUSY);
		cr_assert_geq(zc_reactor_run_once(em->r, 1000), 0);
	}
	cr_assert_eq(ret, 0, "server destroy: %d after %d runs", ret, i);
	for (i = 0; i < SPINS && (ret = zc_reactor_destroy(em->r)); i++)
		cr_assert_eq(ret, -EBUSY);
	cr_assert_eq(ret, 0);
}

/* Drain from the loop thread: the blocking form refuses at once, the
 * non-blocking one sends GOAWAY and completes through run_once. */
Test(embed, drain_then_destroy_from_the_loop, .timeout = 60)
{
	struct zc_rpc_client_stats cs;
	struct embed em;

	embed_start(&em);
	cr_assert_eq(zc_rpc_server_drain(em.srv, 1000), -EDEADLK);
	cr_assert_eq(zc_rpc_server_drain_start(em.srv, 1000, drained_cb, &em),
		     0);
	cr_assert_eq(zc_rpc_server_drain_start(em.srv, 1000, drained_cb, &em),
		     -EALREADY);
	run_until(&em, drain_done);
	cr_assert_eq(em.drain_result, 0);
	zc_rpc_client_stats(em.cli, &cs);
	cr_assert_geq(cs.goaways, 1);
	embed_stop(&em);
}

/* Destroy with connections open and nothing drained. */
Test(embed, destroy_with_connections_open, .timeout = 60)
{
	struct zc_rpc_server_stats ss;
	struct embed em;

	embed_start(&em);
	zc_rpc_server_stats(em.srv, &ss);
	cr_assert_eq(ss.conns_open, 2);
	embed_stop(&em);
}
