/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_addr.c - servers and clients from address strings: Unix
 * sockets (file and abstract) end to end, IPv6, a client going through
 * its candidates until one answers, SO_REUSEPORT only when asked, and
 * addresses refused at create time.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

static struct zc_reactor *r[2];

static void start(void)
{
	struct zc_reactor_config rc = { .rx_budget = 256 * 1024 };

	cr_assert_eq(zc_reactor_spawn(&rc, &r[0]), 0);
	cr_assert_eq(zc_reactor_spawn(&rc, &r[1]), 0);
}

static void stop(void)
{
	for (int i = 0; i < 2; i++)
		cr_assert_eq(zc_reactor_destroy(r[i]), 0);
}

TestSuite(addr, .init = start, .fini = stop);

static struct zc_rpc_server *server(const char *addr, unsigned nreactors,
				    bool reuseport, int *err)
{
	struct zc_rpc_server *s;

	cr_assert_eq(zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = r, .nreactors = nreactors,
		.reuseport = reuseport }, &s), 0);
	*err = zc_rpc_server_listen_str(s, addr);
	return s;
}

/* Echo calls of 1 byte and of 300 KiB (many frames) through @cli. */
static void echo_calls(struct zc_rpc_client *cli)
{
	static const size_t sizes[] = { 1, 300 * 1024 };
	struct zc_rpc_call_opts o = { .timeout_us = 10000000 };

	for (unsigned i = 0; i < 2; i++) {
		char *buf = malloc(sizes[i]), *got = malloc(sizes[i]);
		struct zc_chain req, resp;

		cr_assert(buf && got);
		for (size_t k = 0; k < sizes[i]; k++)
			buf[k] = (char)(k * 31 + i);
		zc_chain_init(&req);
		zc_chain_init(&resp);
		cr_assert_eq(zc_chain_copyin(&req, zc_reactor_pool(r[0]), buf,
					     sizes[i]), 0);
		cr_assert_eq(zc_rpc_call_sync(cli, ZC_RPC_METHOD_ECHO, &req, &o,
					      &resp), ZC_RPC_OK);
		cr_assert_eq(zc_chain_len(&resp), sizes[i]);
		zc_chain_copyout(&resp, 0, got, sizes[i]);
		cr_assert_eq(memcmp(buf, got, sizes[i]), 0);
		zc_chain_release(&resp);
		free(buf);
		free(got);
	}
}

static struct zc_rpc_client *client_to(const char *target)
{
	struct zc_rpc_client *cli;

	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r[0], .target = target }, &cli), 0, "%s", target);
	return cli;
}

/* Serve @listen, read back the bound address, call it by that string. */
static void serve_and_call(const char *listen, const char *expect_prefix)
{
	struct zc_rpc_server *s;
	struct zc_rpc_client *cli;
	char bound[128];
	int err;

	s = server(listen, 2, false, &err);
	cr_assert_eq(err, 0, "listen %s: %d", listen, err);
	cr_assert_gt(zc_rpc_server_address(s, bound, sizeof(bound)), 0);
	cr_assert_eq(strncmp(bound, expect_prefix, strlen(expect_prefix)), 0,
		     "%s bound as %s", listen, bound);
	cli = client_to(bound);
	echo_calls(cli);
	zc_rpc_client_destroy(cli);
	cr_assert_eq(zc_rpc_server_drain(s, 1000), 0);
	zc_rpc_server_destroy(s);
}

Test(addr, unix_file_end_to_end)
{
	char addr[64];

	snprintf(addr, sizeof(addr), "unix:/tmp/zc-rpc-addr-%d.sock",
		 (int)getpid());
	unlink(addr + 5);
	serve_and_call(addr, addr);
	cr_assert_neq(access(addr + 5, F_OK), 0, "socket file left behind");
}

Test(addr, unix_abstract_end_to_end)
{
	char addr[64];

	snprintf(addr, sizeof(addr), "unix:@zc-rpc-addr-%d", (int)getpid());
	serve_and_call(addr, addr);
}

Test(addr, ipv4_ipv6_and_localhost)
{
	serve_and_call("127.0.0.1:0", "127.0.0.1:");
	serve_and_call("[::1]:0", "[::1]:");
	/* Whatever "localhost" resolves to here, a server listening on it
	 * is reached by a client given the name. */
	{
		struct zc_rpc_server *s;
		struct zc_rpc_client *cli;
		char target[64];
		int err;

		s = server("localhost:0", 1, false, &err);
		cr_assert_eq(err, 0);
		snprintf(target, sizeof(target), "localhost:%u",
			 zc_rpc_server_port(s));
		cli = client_to(target);
		echo_calls(cli);
		zc_rpc_client_destroy(cli);
		zc_rpc_server_destroy(s);
	}
}

/*
 * A server on one family behind candidates whose first is the other
 * family's loopback (refused): every connection falls through to the
 * second candidate and the calls succeed, as a server on ::1 behind
 * "localhost" must work when the name also gives 127.0.0.1 (and the
 * reverse).
 */
static void fallback(const char *listen, bool v6_first)
{
	struct zc_rpc_client_stats st;
	struct zc_rpc_server *s;
	struct zc_rpc_client *cli;
	struct zc_addr cand[2];
	char a4[32], a6[32];
	int err;

	s = server(listen, 1, false, &err);
	cr_assert_eq(err, 0);
	snprintf(a4, sizeof(a4), "127.0.0.1:%u", zc_rpc_server_port(s));
	snprintf(a6, sizeof(a6), "[::1]:%u", zc_rpc_server_port(s));
	cr_assert_eq(zc_addr_resolve(v6_first ? a6 : a4, 0, &cand[0], 1), 1);
	cr_assert_eq(zc_addr_resolve(v6_first ? a4 : a6, 0, &cand[1], 1), 1);
	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r[0], .addrs = cand, .naddrs = 2, .conns = 2 },
		&cli), 0);
	echo_calls(cli);
	zc_rpc_client_stats(cli, &st);
	cr_assert_eq(st.by_status[ZC_RPC_OK], 2);
	cr_assert_geq(st.connect_failures, 1, "the first candidate refused");
	zc_rpc_client_destroy(cli);
	zc_rpc_server_destroy(s);
}

Test(addr, client_tries_every_candidate)
{
	fallback("127.0.0.1:0", true);
	fallback("[::1]:0", false);
}

static bool all_open(void *arg)
{
	struct zc_rpc_client_stats st;

	zc_rpc_client_stats(arg, &st);
	return st.conns_open == 16;
}

/* Two reactors accepting on one socket serve many connections. */
Test(addr, shared_socket_many_connections)
{
	struct zc_rpc_client_stats st;
	struct zc_rpc_server_stats ss;
	struct zc_rpc_server *s;
	struct zc_rpc_client *cli;
	char bound[64];
	int err;

	s = server("127.0.0.1:0", 2, false, &err);
	cr_assert_eq(err, 0);
	cr_assert_gt(zc_rpc_server_address(s, bound, sizeof(bound)), 0);
	cr_assert_eq(zc_rpc_client_create(&(struct zc_rpc_client_config){
		.reactor = r[0], .target = bound, .conns = 16,
		.wait_for_ready = true }, &cli), 0);
	for (int i = 0; i < 16; i++)
		echo_calls(cli);
	cr_assert(rt_wait_for(all_open, cli, 10), "16 connections up");
	zc_rpc_client_stats(cli, &st);
	cr_assert_eq(st.by_status[ZC_RPC_OK], 32);
	zc_rpc_server_stats(s, &ss);
	cr_assert_eq(ss.conns_accepted, 16);
	zc_rpc_client_destroy(cli);
	zc_rpc_server_destroy(s);
}

/* SO_REUSEPORT only when asked: by default a second server on a port in
 * use fails (it used to bind and take half the connections silently). */
Test(addr, second_bind_fails_unless_reuseport)
{
	struct zc_rpc_server *a, *b;
	char addr[32];
	int err;

	a = server("127.0.0.1:0", 2, false, &err);
	cr_assert_eq(err, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", zc_rpc_server_port(a));
	b = server(addr, 1, false, &err);
	cr_assert_eq(err, -EADDRINUSE);
	cr_assert_eq(zc_rpc_server_port(b), 0);
	zc_rpc_server_destroy(b);
	b = server(addr, 1, true, &err);
	cr_assert_eq(err, -EADDRINUSE, "reuseport joins only reuseport");
	zc_rpc_server_destroy(b);
	zc_rpc_server_destroy(a);

	a = server("127.0.0.1:0", 2, true, &err);
	cr_assert_eq(err, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", zc_rpc_server_port(a));
	b = server(addr, 1, true, &err);
	cr_assert_eq(err, 0, "both asked for SO_REUSEPORT");
	zc_rpc_server_destroy(b);
	zc_rpc_server_destroy(a);
}

/* Addresses no call could use are refused by create and listen. */
Test(addr, refused_at_create)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr sa = { .sa_family = AF_APPLETALK };
	struct sockaddr un = { .sa_family = AF_UNIX };
	struct zc_rpc_client *cli = NULL;
	struct zc_rpc_server *s;
	int err;

#define CREATE(...) zc_rpc_client_create(&(struct zc_rpc_client_config){ \
		.reactor = r[0], __VA_ARGS__ }, &cli)
	cr_assert_eq(CREATE(.addr = &un, .addrlen = 0), -EINVAL);
	cr_assert_eq(CREATE(.addr = &un, .addrlen = sizeof(sa_family_t)),
		     -EINVAL);
	cr_assert_eq(CREATE(.addr = (struct sockaddr *)&in, .addrlen = 4),
		     -EINVAL);
	cr_assert_eq(CREATE(.addr = &sa, .addrlen = sizeof(sa)), -EAFNOSUPPORT);
	cr_assert_eq(CREATE(0), -EINVAL);
	cr_assert_eq(CREATE(.addr = (struct sockaddr *)&in,
			    .addrlen = sizeof(in), .target = "127.0.0.1:1"),
		     -EINVAL);
	cr_assert_eq(CREATE(.target = "127.0.0.1"), -EINVAL);
	cr_assert_eq(CREATE(.target = ":7000"), -EINVAL);
	cr_assert_eq(CREATE(.addrs = (struct zc_addr[1]){ { .len = 0 } },
			    .naddrs = 1), -EINVAL);
#undef CREATE
	cr_assert_null(cli);

	s = server("unix:@zc-rpc-addr-reuse", 1, true, &err);
	cr_assert_eq(err, -EINVAL, "SO_REUSEPORT on a Unix socket");
	zc_rpc_server_destroy(s);
	cr_assert_eq(zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = r, .nreactors = 1 }, &s), 0);
	cr_assert_eq(zc_rpc_server_listen(s, &sa, sizeof(sa)), -EAFNOSUPPORT);
	cr_assert_eq(zc_rpc_server_listen_str(s, "127.0.0.1"), -EINVAL);
	cr_assert_eq(zc_rpc_server_address(s, (char[8]){ 0 }, 8), -ENOTCONN);
	zc_rpc_server_destroy(s);
}
