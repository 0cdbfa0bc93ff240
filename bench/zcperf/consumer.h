/* SPDX-License-Identifier: MIT */
/*
 * consumer.h - a thread on another CPU that reads received data and
 * releases it there: the RFS case of the 2022 seed.
 *
 * The receiving reactor counts the bytes, then hands each chain to the
 * consumer.  The consumer reads every cache line of it (as an application
 * parsing the data would), releases the views on its own CPU, where the
 * pool's free mode decides what that costs (owner: a push onto the
 * reactor's deferred list; local: free() here; locked: the pool mutex),
 * and gives the bytes back to the connection's receive budget, which is
 * what bounds the memory in flight between the two threads.
 */
#ifndef ZCPERF_CONSUMER_H
#define ZCPERF_CONSUMER_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>

#include <zcrpc/zcrpc.h>

struct zp_consumer;
struct zp_item;

/*
 * Hand-off nodes of one producer (one reactor thread).  The producer takes
 * nodes from @free, refilled with one exchange from @returned, where the
 * consumer pushes them back when done: no malloc/free crosses CPUs per
 * chain, so the only cross-CPU release left in a run is the receive
 * buffers', which is what --free compares.  Zero-initialise it.
 */
struct zp_item_cache {
	struct zp_item *free;                /* producer thread only */
	_Atomic(struct zp_item *) returned;  /* consumer pushes, producer takes */
};

/* Free every node; after zp_consumer_stop(). */
void zp_item_cache_fini(struct zp_item_cache *ic);

/* Read one word per cache line of @c, as an application parsing it would:
 * the data crosses to the calling CPU.  Returns their sum, for the caller
 * to keep so that the reads cannot be optimised out.  @c stays the
 * caller's. */
uint64_t zp_chain_touch(const struct zc_chain *c);
/* Start the thread pinned to @cpu.  0 or -errno. */
int zp_consumer_start(struct zp_consumer **out, int cpu);
/* The consumer's thread, for its CPU clock (threadcpu.h). */
pthread_t zp_consumer_thread(const struct zp_consumer *q);
/*
 * Reactor thread.  Move @data to the consumer, which releases it and
 * calls zc_conn_recv_done(@c, len).  A reference on @c is taken here and
 * dropped by the consumer.  The node comes from @ic, this thread's cache.
 * Returns 0, or -ENOMEM (then @data is still the caller's).
 */
int zp_consumer_push(struct zp_consumer *q, struct zp_item_cache *ic,
		     struct zc_conn *c, struct zc_chain *data);
/* Wait until everything pushed so far is released. */
void zp_consumer_flush(struct zp_consumer *q);
/* Flush, stop and join.  Returns the checksum of what was read (so the
 * reads cannot be optimised out; reported in verbose mode only). */
uint64_t zp_consumer_stop(struct zp_consumer *q);

#endif /* ZCPERF_CONSUMER_H */
