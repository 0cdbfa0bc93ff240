/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - the consumer thread and its hand-off queue.
 *
 * The queue is a multi-producer lock-free stack: a reactor pushes with one
 * CAS, the consumer takes the whole stack with one exchange and reverses
 * it to get arrival order back.  The consumer sleeps on a futex once the
 * stack stays empty; producers wake it only when it announced sleeping
 * (seq_cst store of `sleeping` then load of `head`, against push then load
 * of `sleeping`: one of the two sides always sees the other).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../pin_thread.h"
#include "consumer.h"

/* Yields before sleeping: enough to ride out a burst, short enough not to
 * show as CPU use when idle. */
#define SPIN_ROUNDS 200

struct zp_item {
	struct zp_item *next;
	struct zp_item_cache *home;
	struct zc_conn *c;
	size_t len;
	struct zc_chain data;
};

struct zp_consumer {
	_Atomic(struct zp_item *) head;
	atomic_uint seq;      /* futex word, bumped by wakers */
	atomic_bool sleeping;
	atomic_bool quit;
	atomic_uint_fast64_t pushed;
	atomic_uint_fast64_t done;
	pthread_t thread;
	int cpu;
	uint64_t checksum;    /* consumer thread only */
};

static void futex_wait(atomic_uint *addr, unsigned val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void wake(struct zp_consumer *q)
{
	if (atomic_load(&q->sleeping)) {
		atomic_fetch_add(&q->seq, 1);
		futex_wake(&q->seq);
	}
}

uint64_t zp_chain_touch(const struct zc_chain *c)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < zc_chain_nviews(c); i++) {
		const struct zc_view *v = zc_chain_view(c, i);
		const unsigned char *p = zc_view_data(v);
		uint32_t off;

		for (off = 0; off < v->len; off += 64)
			sum += p[off];
	}
	return sum;
}

/* Consumer thread: the node goes back to its producer's cache.  Release:
 * our last reads of it happen before the producer reuses it. */
static void item_return(struct zp_item *it)
{
	struct zp_item_cache *ic = it->home;
	struct zp_item *old = atomic_load_explicit(&ic->returned,
						memory_order_relaxed);

	do {
		it->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&ic->returned, &old, it,
							memory_order_release,
							memory_order_relaxed));
}

/* Producer thread.  Acquire: pairs with item_return(). */
static struct zp_item *item_get(struct zp_item_cache *ic)
{
	struct zp_item *it = ic->free;

	if (!it)
		it = atomic_exchange_explicit(&ic->returned, NULL,
					      memory_order_acquire);
	if (!it) {
		it = malloc(sizeof(*it));
		if (!it)
			return NULL;
		it->next = NULL;
		it->home = ic;
	}
	ic->free = it->next;
	return it;
}

void zp_item_cache_fini(struct zp_item_cache *ic)
{
	struct zp_item *it = ic->free, *next;

	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	it = atomic_exchange(&ic->returned, NULL);
	for (; it; it = next) {
		next = it->next;
		free(it);
	}
	ic->free = NULL;
}

static void process(struct zp_consumer *q, struct zp_item *it)
{
	q->checksum += zp_chain_touch(&it->data);
	zc_chain_release(&it->data);
	zc_conn_recv_done(it->c, it->len);
	zc_conn_put(it->c);
	item_return(it);
	atomic_fetch_add_explicit(&q->done, 1, memory_order_release);
}

static struct zp_item *take_all(struct zp_consumer *q)
{
	struct zp_item *list = atomic_exchange(&q->head, NULL), *rev = NULL;

	while (list) {
		struct zp_item *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	return rev;
}

static void *consumer_main(void *arg)
{
	struct zp_consumer *q = arg;
	unsigned spins = 0;

	bench_pin_thread(q->cpu);
	for (;;) {
		struct zp_item *it = take_all(q);
		unsigned seq;

		if (it) {
			while (it) {
				struct zp_item *next = it->next;

				process(q, it);
				it = next;
			}
			spins = 0;
			continue;
		}
		if (atomic_load(&q->quit))
			break;
		if (++spins < SPIN_ROUNDS) {
			sched_yield();
			continue;
		}
		seq = atomic_load(&q->seq);
		atomic_store(&q->sleeping, true);
		if (!atomic_load(&q->head) && !atomic_load(&q->quit))
			futex_wait(&q->seq, seq);
		atomic_store(&q->sleeping, false);
		spins = 0;
	}
	return NULL;
}

pthread_t zp_consumer_thread(const struct zp_consumer *q)
{
	return q->thread;
}

int zp_consumer_start(struct zp_consumer **out, int cpu)
{
	struct zp_consumer *q = calloc(1, sizeof(*q));
	int ret;

	if (!q)
		return -ENOMEM;
	q->cpu = cpu;
	ret = pthread_create(&q->thread, NULL, consumer_main, q);
	if (ret) {
		free(q);
		return -ret;
	}
	*out = q;
	return 0;
}

int zp_consumer_push(struct zp_consumer *q, struct zp_item_cache *ic,
		     struct zc_conn *c, struct zc_chain *data)
{
	struct zp_item *it = item_get(ic);
	struct zp_item *old;

	if (!it)
		return -ENOMEM;
	it->c = c;
	it->len = zc_chain_len(data);
	/* Move the chain by assignment; the source is forgotten (alloc.h). */
	it->data = *data;
	zc_conn_get(c);
	atomic_fetch_add_explicit(&q->pushed, 1, memory_order_relaxed);
	old = atomic_load_explicit(&q->head, memory_order_relaxed);
	do {
		it->next = old;
	} while (!atomic_compare_exchange_weak(&q->head, &old, it));
	wake(q);
	return 0;
}

void zp_consumer_flush(struct zp_consumer *q)
{
	uint64_t target = atomic_load(&q->pushed);

	while (atomic_load_explicit(&q->done, memory_order_acquire) < target) {
		wake(q);
		usleep(200);
	}
}

uint64_t zp_consumer_stop(struct zp_consumer *q)
{
	uint64_t sum;

	zp_consumer_flush(q);
	atomic_store(&q->quit, true);
	atomic_fetch_add(&q->seq, 1);
	futex_wake(&q->seq);
	pthread_join(q->thread, NULL);
	sum = q->checksum;
	free(q);
	return sum;
}
