/* SPDX-License-Identifier: MIT */
/*
 * rpc/examples/hello.c - the README's embedding example as a whole
 * program: one reactor, a server with one method, a client that calls it,
 * every result checked, everything torn down.  CI builds it in the tree
 * and, out of the tree, against the installed package (tests/consumer).
 *
 *   hello               serve on 127.0.0.1 (a port the kernel picks), call it
 *   hello ADDR          the same on ADDR: "[::1]:0", "unix:/tmp/h.sock",
 *                       "unix:@hello", "localhost:7000"
 *   hello -s ADDR       serve only, until SIGINT or SIGTERM
 *   hello -c ADDR       call a hello server at ADDR
 * Exit status 0 when every step worked.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

/* Serve until SIGINT or SIGTERM (blocked in every thread, taken here). */
static void serve_until_signal(const char *addr)
{
	sigset_t set;
	int sig;

	printf("hello: serving %s\n", addr);
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigwait(&set, &sig);
}

int main(int argc, char **argv)
{
	/* Give the reactor a receive budget of at least max_frame + 32
	 * (rpc.h, zc_rpc_server_create()). */
	struct zc_reactor_config rcfg = {
		.rx_budget = 2 * ZC_RPC_MAX_FRAME_DEFAULT,
	};
	const char *mode = argc == 3 ? argv[1] : "";
	const char *where = argc >= 2 ? argv[argc - 1] : "127.0.0.1:0";
	struct zc_rpc_server *srv = NULL;
	struct zc_rpc_client *cli;
	struct zc_reactor *r;
	char bound[128];
	sigset_t sigs;
	int ret, bad = 1;

	if (argc > 3 || (argc == 3 && strcmp(mode, "-s") && strcmp(mode, "-c"))) {
		fprintf(stderr, "usage: hello [-s|-c] [ADDR]\n");
		return 2;
	}
	/* Threads started from here inherit the mask: signals come to
	 * sigwait() only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	printf("zcrpc %s (headers %s)\n", zc_version(), ZCRPC_VERSION_STRING);
	ret = zc_reactor_spawn(&rcfg, &r);
	if (ret)
		return fail("reactor", ret);
	if (!strcmp(mode, "-c")) {
		snprintf(bound, sizeof(bound), "%s", where);
		goto call;
	}
	ret = zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &r, .nreactors = 1 }, &srv);
	if (ret) {
		fail("server", ret);
		goto out_reactor;
	}
	ret = zc_rpc_server_register(srv, HELLO_METHOD, "hello",
				     ZC_RPC_INLINE, 0, hello, NULL);
	if (!ret)	/* "host:port", "[v6]:port", "unix:/path", "unix:@name" */
		ret = zc_rpc_server_listen_str(srv, where);
	if (ret) {
		fail("listen", ret);
		goto out_server;
	}
	/* The address clients can use, with the port the kernel picked. */
	ret = zc_rpc_server_address(srv, bound, sizeof(bound));
	if (ret < 0) {
		fail("address", ret);
		goto out_server;
	}
	if (!strcmp(mode, "-s")) {
		serve_until_signal(bound);
		bad = 0;
		goto out_server;
	}
call:
	ret = zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r, .target = bound }, &cli);
	if (ret) {
		fail("client", ret);
		goto out_server;
	}
	bad = call_once(cli, r, "hello, world");
	/* 0 from any thread but the client's reactor (there: -EBUSY until
	 * the loop has run). */
	if (zc_rpc_client_destroy(cli))
		bad = 1;
out_server:
	if (srv) {
		/* goaway, let calls in flight finish (1 s at most), close */
		if (zc_rpc_server_drain(srv, 1000) ||
		    zc_rpc_server_destroy(srv))
			bad = 1;
	}
out_reactor:
	/* -EBUSY while views of its buffers are held elsewhere: none are. */
	ret = zc_reactor_destroy(r);
	if (ret)
		return fail("reactor destroy", ret);
	return bad;
}
