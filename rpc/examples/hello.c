/* SPDX-License-Identifier: MIT */
/*
 * rpc/examples/hello.c - the README's embedding example as a whole
 * program: one reactor, a server with one method, a client that calls it,
 * every result checked, everything torn down.  CI builds it in the tree
 * and, out of the tree, against the installed package (tests/consumer).
 *
 *   hello            serve and call on 127.0.0.1, a port the kernel picks
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <zcrpc/zcrpc.h>

#define HELLO_METHOD ZC_RPC_METHOD_USER

/* A handler gets the request as views of the receive buffers (nothing is
 * copied) and answers exactly once, from any thread, with a chain: here
 * the request's own views (an echo). */
static void hello(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	(void)arg;
	if (zc_rpc_reply(call, req))	/* only -E2BIG: answered TOO_LARGE */
		fprintf(stderr, "hello: answer too large\n");
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "hello: %s: %s\n", what, strerror(-err));
	return 1;
}

/* One call of HELLO_METHOD with @text; checks the answer is @text. */
static int call_once(struct zc_rpc_client *cli, struct zc_reactor *r,
		     const char *text)
{
	struct zc_rpc_call_opts opts = { .timeout_us = 5000000 };
	struct zc_chain req, resp;
	char got[64];
	size_t n;
	int st;

	zc_chain_init(&req);
	zc_chain_init(&resp);
	st = zc_chain_copyin(&req, zc_reactor_pool(r), text, strlen(text));
	if (st)
		return fail("request", st);
	st = zc_rpc_call_sync(cli, HELLO_METHOD, &req, &opts, &resp);
	if (st < 0) {
		zc_chain_release(&req);	/* refused: still ours */
		return fail("call", st);
	}
	if (st != ZC_RPC_OK) {
		fprintf(stderr, "hello: call failed: %s\n",
			zc_rpc_status_name(st));
		return 1;
	}
	n = zc_chain_copyout(&resp, 0, got, sizeof(got) - 1);
	got[n] = 0;
	zc_chain_release(&resp);
	if (n != strlen(text) || memcmp(got, text, n)) {
		fprintf(stderr, "hello: answer '%s', expected '%s'\n", got,
			text);
		return 1;
	}
	printf("hello: %s\n", got);
	return 0;
}

int main(void)
{
	/* Give the reactor a receive budget of at least max_frame + 32
	 * (rpc.h, zc_rpc_server_create()). */
	struct zc_reactor_config rcfg = {
		.rx_budget = 2 * ZC_RPC_MAX_FRAME_DEFAULT,
	};
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct zc_rpc_server *srv;
	struct zc_rpc_client *cli;
	struct zc_reactor *r;
	int ret, bad = 1;

	printf("zcrpc %s (headers %s)\n", zc_version(), ZCRPC_VERSION_STRING);
	ret = zc_reactor_spawn(&rcfg, &r);
	if (ret)
		return fail("reactor", ret);
	ret = zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &r, .nreactors = 1 }, &srv);
	if (ret) {
		fail("server", ret);
		goto out_reactor;
	}
	ret = zc_rpc_server_register(srv, HELLO_METHOD, "hello",
				     ZC_RPC_INLINE, 0, hello, NULL);
	if (!ret)
		ret = zc_rpc_server_listen(srv, (struct sockaddr *)&addr,
					   sizeof(addr));
	if (ret) {
		fail("listen", ret);
		goto out_server;
	}
	addr.sin_port = htons(zc_rpc_server_port(srv));
	ret = zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .addr = (struct sockaddr *)&addr,
		.addrlen = sizeof(addr) }, &cli);
	if (ret) {
		fail("client", ret);
		goto out_server;
	}
	bad = call_once(cli, r, "hello, world");
	zc_rpc_client_destroy(cli);
out_server:
	/* goaway, let calls in flight finish (1 s at most), then close */
	if (zc_rpc_server_drain(srv, 1000))
		bad = 1;
	zc_rpc_server_destroy(srv);
out_reactor:
	/* -EBUSY while views of its buffers are held elsewhere: none are. */
	ret = zc_reactor_destroy(r);
	if (ret)
		return fail("reactor destroy", ret);
	return bad || ret;
}
