/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/rpc_test.h - loopback fixtures for the rpc tests: spawned
 * reactors, a server on an ephemeral port, clients, and call helpers that
 * count completions by status.
 */
#ifndef ZC_TESTS_RPC_TEST_H
#define ZC_TESTS_RPC_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zcrpc/zcrpc.h>

/* The fixtures do not depend on Criterion (its TSan stand-in lives in
 * each test's translation unit): a broken fixture aborts. */
#define RT_REQUIRE(cond, ...)						\
	do {								\
		if (!(cond))						\
			rt_die(__FILE__, __LINE__, #cond, "" __VA_ARGS__); \
	} while (0)

__attribute__((noreturn))
void rt_die(const char *file, int line, const char *expr, const char *fmt,
	    ...);

struct rt_env {
	struct zc_reactor *srv_r[2];
	unsigned nsrv;
	struct zc_reactor *cli_r;
	struct zc_rpc_server *srv;
	struct zc_rpc_client *cli;
	uint16_t port;
};

struct rt_opts {
	struct zc_reactor_config rc;	/* every reactor */
	struct zc_rpc_server_config sc;	/* reactors filled in (the last
					 * sc.nbulk of them: bulk_reactors) */
	struct zc_rpc_client_config cc;	/* reactor and addr filled in */
	unsigned server_reactors;	/* [1] */
	bool no_client;
	/* Register methods before listening. */
	void (*setup)(struct zc_rpc_server *s, void *arg);
	void *setup_arg;
};

/* Start reactors, server (listening on 127.0.0.1:0), client. */
void rt_start(struct rt_env *e, const struct rt_opts *o);
/* A second client on @e's client reactor. */
struct zc_rpc_client *rt_client(struct rt_env *e,
				const struct zc_rpc_client_config *cc);
/* Tear everything down; asserts the reactors' pools took every buffer
 * back (nothing leaked, nothing still referenced). */
void rt_stop(struct rt_env *e);
/* Restart only the server on the same port (reconnect tests). */
void rt_server_stop(struct rt_env *e);
void rt_server_start(struct rt_env *e, const struct rt_opts *o);

/* A loopback port nothing listens on: one just bound and released. */
uint16_t rt_free_port(void);
/* Pool buffers of @r's pool handed out and not yet back (a snapshot,
 * any thread). */
uint64_t rt_pool_in_use(struct zc_reactor *r);

/* Completion counter shared by many async calls. */
struct rt_tally {
	atomic_uint done;
	atomic_uint by_status[ZC_RPC_NSTATUS];
	atomic_uint_fast64_t bytes;
	atomic_uint bad;		/* answers whose content was wrong */
	atomic_uint order[4096];	/* completion order, by tag */
	atomic_uint seq;
};

/* Pool that wraps test payloads (the client reactor's). */
extern struct zc_pool *rt_pool;

/* Build a chain of @len pattern bytes (seed @seed) in malloc memory
 * wrapped into @pool's tracker (any thread). */
void rt_chain(struct zc_pool *pool, struct zc_chain *c, size_t len,
	      uint32_t seed);
/* Check that @c holds the pattern of @seed. */
bool rt_check(const struct zc_chain *c, size_t len, uint32_t seed);

/* Async echo call of @len bytes whose completion checks the content and
 * counts into @t.  Returns zc_rpc_call()'s result. */
int rt_echo_async(struct zc_rpc_client *cli, struct rt_tally *t, size_t len,
		  uint32_t seed, uint64_t timeout_us,
		  struct zc_rpc_pending **pending);
/* Same for any method; the answer is checked against @expect_len/@seed
 * unless @expect_len is SIZE_MAX. */
int rt_call_async(struct zc_rpc_client *cli, uint32_t method,
		  struct rt_tally *t, size_t len, uint32_t seed,
		  size_t expect_len, uint64_t timeout_us, unsigned tag,
		  struct zc_rpc_pending **pending);
/* zc_rpc_server_drain(s, timeout_ms) on a thread of its own:
 * pthread_create(&th, NULL, rt_drain_main, &d); its result lands in ret. */
struct rt_drain {
	struct zc_rpc_server *s;
	unsigned timeout_ms;
	int ret;
};
void *rt_drain_main(void *arg);

/* Wait (polling, up to @seconds) until @t has @n completions. */
bool rt_wait(struct rt_tally *t, unsigned n, unsigned seconds);
/* Wait until @cond(@arg) holds, up to @seconds. */
bool rt_wait_for(bool (*cond)(void *), void *arg, unsigned seconds);

#endif
