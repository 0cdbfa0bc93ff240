/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/rpc_test.c - the loopback fixtures of rpc_test.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc_test.h"

struct zc_pool *rt_pool;

void rt_die(const char *file, int line, const char *expr, const char *fmt,
	    ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: fixture failed: %s ", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static void loopback(struct sockaddr_in *sin, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

void rt_server_start(struct rt_env *e, const struct rt_opts *o)
{
	struct zc_rpc_server_config sc = o->sc;
	struct sockaddr_in sin;
	int ret;

	/* The last o->sc.nbulk server reactors are bulk ones. */
	RT_REQUIRE(o->sc.nbulk < e->nsrv);
	sc.reactors = e->srv_r;
	sc.nreactors = e->nsrv - o->sc.nbulk;
	sc.bulk_reactors = o->sc.nbulk ? e->srv_r + sc.nreactors : NULL;
	ret = zc_rpc_server_create(&sc, &e->srv);
	RT_REQUIRE(ret == 0, "server create: %d", ret);
	if (o->setup)
		o->setup(e->srv, o->setup_arg);
	loopback(&sin, e->port);
	ret = zc_rpc_server_listen(e->srv, (struct sockaddr *)&sin,
				   sizeof(sin));
	RT_REQUIRE(ret == 0, "listen: %d", ret);
	e->port = zc_rpc_server_port(e->srv);
	RT_REQUIRE(e->port != 0);
}

uint16_t rt_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	loopback(&sin, 0);
	RT_REQUIRE(fd >= 0);
	RT_REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	RT_REQUIRE(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	close(fd);
	return ntohs(sin.sin_port);
}

void rt_server_stop(struct rt_env *e)
{
	zc_rpc_server_destroy(e->srv);
	e->srv = NULL;
}

struct zc_rpc_client *rt_client(struct rt_env *e,
				const struct zc_rpc_client_config *cc)
{
	struct zc_rpc_client_config c = *cc;
	struct zc_rpc_client *cli;
	struct sockaddr_in sin;
	int ret;

	loopback(&sin, e->port);
	c.reactor = e->cli_r;
	c.addr = (struct sockaddr *)&sin;
	c.addrlen = sizeof(sin);
	ret = zc_rpc_client_create(&c, &cli);
	RT_REQUIRE(ret == 0, "client create: %d", ret);
	return cli;
}

void rt_start(struct rt_env *e, const struct rt_opts *o)
{
	int ret;

	memset(e, 0, sizeof(*e));
	e->nsrv = o->server_reactors ? o->server_reactors : 1;
	for (unsigned i = 0; i < e->nsrv; i++) {
		ret = zc_reactor_spawn(&o->rc, &e->srv_r[i]);
		RT_REQUIRE(ret == 0, "spawn: %d", ret);
	}
	ret = zc_reactor_spawn(&o->rc, &e->cli_r);
	RT_REQUIRE(ret == 0, "spawn: %d", ret);
	rt_pool = zc_reactor_pool(e->cli_r);
	rt_server_start(e, o);
	if (!o->no_client)
		e->cli = rt_client(e, &o->cc);
}

static void destroy_reactor(struct zc_reactor *r)
{
	int ret;

	/* Views released on other threads come home at the next batch;
	 * -EBUSY that persists means a leak. */
	for (int i = 0; i < 2000; i++) {
		ret = zc_reactor_destroy(r);
		if (ret != -EBUSY)
			break;
		usleep(1000);
	}
	RT_REQUIRE(ret == 0, "reactor destroy: %d (buffers leaked?)", ret);
}

void rt_stop(struct rt_env *e)
{
	if (e->cli)
		zc_rpc_client_destroy(e->cli);
	if (e->srv)
		zc_rpc_server_destroy(e->srv);
	destroy_reactor(e->cli_r);
	for (unsigned i = 0; i < e->nsrv; i++)
		destroy_reactor(e->srv_r[i]);
}

static uint8_t pattern(uint32_t seed, size_t i)
{
	uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u;

	return (uint8_t)(x ^ x >> 13 ^ i >> 8);
}

static void free_release(void *arg, void *data)
{
	free(data);
}

void rt_chain(struct zc_pool *pool, struct zc_chain *c, size_t len,
	      uint32_t seed)
{
	struct zc_buf *b;
	struct zc_view v;
	uint8_t *p;

	zc_chain_init(c);
	if (!len)
		return;
	p = malloc(len);
	RT_REQUIRE(p != NULL);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(seed, i);
	RT_REQUIRE(zc_buf_wrap(pool, p, len, free_release, NULL, &b) == 0);
	RT_REQUIRE(zc_view_adopt(&v, b, 0, len) == 0);
	RT_REQUIRE(zc_chain_append(c, &v) == 0);
}

bool rt_check(const struct zc_chain *c, size_t len, uint32_t seed)
{
	size_t off = 0;

	if (zc_chain_len(c) != len)
		return false;
	for (unsigned i = 0; i < zc_chain_nviews(c); i++) {
		const struct zc_view *v = zc_chain_view(c, i);
		const uint8_t *p = zc_view_data(v);

		for (uint32_t k = 0; k < v->len; k++)
			if (p[k] != pattern(seed, off + k))
				return false;
		off += v->len;
	}
	return true;
}

struct rt_ctx {
	struct rt_tally *t;
	size_t expect_len;
	uint32_t seed;
	unsigned tag;
};

static void tally_done(void *arg, int status, struct zc_chain *resp)
{
	struct rt_ctx *x = arg;
	struct rt_tally *t = x->t;

	if (status == ZC_RPC_OK) {
		if (x->expect_len != SIZE_MAX &&
		    !rt_check(resp, x->expect_len, x->seed))
			atomic_fetch_add(&t->bad, 1);
		atomic_fetch_add(&t->bytes, zc_chain_len(resp));
	}
	zc_chain_release(resp);
	if (x->tag < 4096)
		atomic_store(&t->order[x->tag], atomic_fetch_add(&t->seq, 1));
	atomic_fetch_add(&t->by_status[status], 1);
	atomic_fetch_add(&t->done, 1);
	free(x);
}

int rt_call_async(struct zc_rpc_client *cli, uint32_t method,
		  struct rt_tally *t, size_t len, uint32_t seed,
		  size_t expect_len, uint64_t timeout_us, unsigned tag,
		  struct zc_rpc_pending **pending)
{
	struct zc_rpc_call_opts opts = { .timeout_us = timeout_us };
	struct rt_ctx *x = malloc(sizeof(*x));
	struct zc_chain req;
	int ret;

	RT_REQUIRE(x != NULL);
	x->t = t;
	x->expect_len = expect_len;
	x->seed = seed;
	x->tag = tag;
	rt_chain(rt_pool, &req, len, seed);
	ret = zc_rpc_call(cli, method, &req, &opts, tally_done, x, pending);
	if (ret) {
		zc_chain_release(&req);
		free(x);
	}
	return ret;
}

int rt_echo_async(struct zc_rpc_client *cli, struct rt_tally *t, size_t len,
		  uint32_t seed, uint64_t timeout_us,
		  struct zc_rpc_pending **pending)
{
	return rt_call_async(cli, ZC_RPC_METHOD_ECHO, t, len, seed, len,
			     timeout_us, 4096, pending);
}

bool rt_wait(struct rt_tally *t, unsigned n, unsigned seconds)
{
	for (unsigned i = 0; i < seconds * 1000; i++) {
		if (atomic_load(&t->done) >= n)
			return true;
		usleep(1000);
	}
	return atomic_load(&t->done) >= n;
}

uint64_t rt_pool_in_use(struct zc_reactor *r)
{
	struct zc_pool_stats ps;

	zc_pool_stats(zc_reactor_pool(r), &ps);
	return ps.in_use;
}

bool rt_wait_for(bool (*cond)(void *), void *arg, unsigned seconds)
{
	for (unsigned i = 0; i < seconds * 1000; i++) {
		if (cond(arg))
			return true;
		usleep(1000);
	}
	return cond(arg);
}

void *rt_drain_main(void *arg)
{
	struct rt_drain *d = arg;

	d->ret = zc_rpc_server_drain(d->s, d->timeout_ms);
	return NULL;
}
