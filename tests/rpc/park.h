/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/park.h - a handler that parks its calls so that the test
 * thread decides when (and whether) each is answered, and a worker
 * handler that blocks until released.
 */
#ifndef ZC_TESTS_RPC_PARK_H
#define ZC_TESTS_RPC_PARK_H

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "rpc_test.h"

#define PARK_MAX 64

struct park {
	pthread_mutex_t lock;
	struct zc_rpc_call *calls[PARK_MAX];
	unsigned n;		/* parked so far (ever) */
	atomic_uint runs;	/* handler invocations */
	atomic_bool open;	/* park_block: let workers go */
};

static struct park park = { .lock = PTHREAD_MUTEX_INITIALIZER };

static inline void park_reset(void)
{
	pthread_mutex_lock(&park.lock);
	park.n = 0;
	pthread_mutex_unlock(&park.lock);
	atomic_store(&park.runs, 0);
	atomic_store(&park.open, false);
}

/* INLINE or WORKER: keep the call, drop the request. */
static inline void park_handler(struct zc_rpc_call *call,
				struct zc_chain *req, void *arg)
{
	zc_chain_release(req);
	atomic_fetch_add(&park.runs, 1);
	pthread_mutex_lock(&park.lock);
	cr_assert_lt(park.n, PARK_MAX);
	park.calls[park.n++] = call;
	pthread_mutex_unlock(&park.lock);
}

/* WORKER: block the worker until park.open, then echo. */
static inline void park_block(struct zc_rpc_call *call,
			      struct zc_chain *req, void *arg)
{
	atomic_fetch_add(&park.runs, 1);
	while (!atomic_load(&park.open))
		usleep(1000);
	(void)zc_rpc_reply(call, req);
}

static inline bool park_has(void *arg)
{
	unsigned want = (unsigned)(uintptr_t)arg, n;

	pthread_mutex_lock(&park.lock);
	n = park.n;
	pthread_mutex_unlock(&park.lock);
	return n >= want;
}

static inline struct zc_rpc_call *park_get(unsigned i)
{
	struct zc_rpc_call *c;

	pthread_mutex_lock(&park.lock);
	c = park.calls[i];
	pthread_mutex_unlock(&park.lock);
	return c;
}

#endif
