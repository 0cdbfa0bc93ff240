/* SPDX-License-Identifier: MIT */
/*
 * rpc/util.c - status names, logging, the id map, the reactor inbox and
 * receive appends: the small pieces the server and the client share.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const status_names[ZC_RPC_NSTATUS] = {
	[ZC_RPC_OK]		   = "ok",
	[ZC_RPC_CANCELLED]	   = "cancelled",
	[ZC_RPC_DEADLINE_EXCEEDED] = "deadline_exceeded",
	[ZC_RPC_UNKNOWN_METHOD]	   = "unknown_method",
	[ZC_RPC_TOO_LARGE]	   = "too_large",
	[ZC_RPC_OVERLOADED]	   = "overloaded",
	[ZC_RPC_UNAVAILABLE]	   = "unavailable",
	[ZC_RPC_INTERNAL]	   = "internal",
	[ZC_RPC_PROTOCOL_ERROR]	   = "protocol_error",
	[ZC_RPC_PERMISSION_DENIED] = "permission_denied",
};

const char *zc_rpc_status_name(int status)
{
	if (status < 0 || status >= ZC_RPC_NSTATUS)
		return status_names[ZC_RPC_INTERNAL];
	return status_names[status];
}

bool zc_rpc_status_retryable(int status)
{
	return status == ZC_RPC_OVERLOADED || status == ZC_RPC_UNAVAILABLE;
}

void zc__log(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!zc__log_on(ZC_LOG_WARN))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	zc__logp(ZC_LOG_WARN, NULL, "log", "%s", line);
}

/* ---- id map ------------------------------------------------------------ */

/* Entries of 16 bytes in one cache-aligned table: a key and its value
 * share a line, and the smallest table (the one a connection at depth 1
 * keeps) is one line, so a lookup on a cold connection costs one miss,
 * not one for the keys and one for the values. */
#define MAP_MIN_CAP 4u

void zc__map_init(struct zc__map *m)
{
	memset(m, 0, sizeof(*m));
}

void zc__map_free(struct zc__map *m)
{
	free(m->ents);
	zc__map_init(m);
}

static inline uint32_t slot_of(uint64_t key, uint32_t mask)
{
	/* Fibonacci hashing: sequential ids spread over the table. */
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

void *zc__map_get(const struct zc__map *m, uint64_t key)
{
	if (!m->n)
		return NULL;
	for (uint32_t i = slot_of(key, m->mask);; i = (i + 1) & m->mask) {
		if (m->ents[i].key == key)
			return m->ents[i].val;
		if (!m->ents[i].key)
			return NULL;
	}
}

static void insert(struct zc__map *m, uint64_t key, void *val)
{
	uint32_t i = slot_of(key, m->mask);

	while (m->ents[i].key)
		i = (i + 1) & m->mask;
	m->ents[i].key = key;
	m->ents[i].val = val;
	m->n++;
}

static int grow(struct zc__map *m)
{
	uint32_t cap = m->mask ? (m->mask + 1) * 2 : MAP_MIN_CAP;
	struct zc__map nm = { .mask = cap - 1 };
	size_t bytes = (size_t)cap * sizeof(*nm.ents);

	/* A multiple of the line, as aligned_alloc() wants. */
	nm.ents = aligned_alloc(64, bytes);
	if (!nm.ents)
		return -ENOMEM;
	memset(nm.ents, 0, bytes);
	for (uint32_t i = 0; m->mask && i <= m->mask; i++)
		if (m->ents[i].key)
			insert(&nm, m->ents[i].key, m->ents[i].val);
	free(m->ents);
	*m = nm;
	return 0;
}

int zc__map_put(struct zc__map *m, uint64_t key, void *val)
{
	/* Keep the load at most 1/2 so probes stay short. */
	if (!m->mask || (m->n + 1) * 2 > m->mask + 1) {
		int ret = grow(m);

		if (ret)
			return ret;
	}
	insert(m, key, val);
	return 0;
}

void *zc__map_del(struct zc__map *m, uint64_t key)
{
	uint32_t i, j;
	void *val;

	if (!m->n)
		return NULL;
	for (i = slot_of(key, m->mask); m->ents[i].key != key;
	     i = (i + 1) & m->mask)
		if (!m->ents[i].key)
			return NULL;
	val = m->ents[i].val;
	m->n--;
	/* Backward shift: pull later members of the probe run into the hole
	 * when their home slot does not lie in (hole, their slot]. */
	for (j = (i + 1) & m->mask; m->ents[j].key; j = (j + 1) & m->mask) {
		uint32_t home = slot_of(m->ents[j].key, m->mask);

		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->ents[i] = m->ents[j];
			i = j;
		}
	}
	m->ents[i].key = 0;
	m->ents[i].val = NULL;
	return val;
}

bool zc__map_next(const struct zc__map *m, uint32_t *i, uint64_t *k, void **v)
{
	for (; m->mask && *i <= m->mask; (*i)++) {
		if (m->ents[*i].key) {
			*k = m->ents[*i].key;
			*v = m->ents[*i].val;
			(*i)++;
			return true;
		}
	}
	return false;
}

/* ---- inbox ------------------------------------------------------------- */

static void inbox_work(struct zc_work *w)
{
	struct zc__inbox *ib = (struct zc__inbox *)((char *)w -
				offsetof(struct zc__inbox, work));
	struct zc__inode *list, *rev = NULL;

	/* Clear first: a push racing with the exchange below queues again
	 * rather than being stranded. */
	atomic_store_explicit(&ib->queued, false, memory_order_seq_cst);
	list = atomic_exchange_explicit(&ib->head, NULL, memory_order_acquire);
	while (list) {
		struct zc__inode *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	if (rev)
		ib->run(ib, rev);
}

void zc__inbox_init(struct zc__inbox *ib, struct zc_reactor *r,
		    void (*run)(struct zc__inbox *, struct zc__inode *))
{
	atomic_init(&ib->head, NULL);
	atomic_init(&ib->queued, false);
	ib->work.next = NULL;
	ib->work.fn = inbox_work;
	ib->reactor = r;
	ib->run = run;
}

void zc__inbox_push(struct zc__inbox *ib, struct zc__inode *n)
{
	struct zc__inode *old = atomic_load_explicit(&ib->head,
						     memory_order_relaxed);

	do {
		n->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&ib->head, &old, n,
			memory_order_release, memory_order_relaxed));
	if (!atomic_exchange_explicit(&ib->queued, true, memory_order_seq_cst))
		zc_reactor_queue(ib->reactor, &ib->work);
}

/* ---- receive ----------------------------------------------------------- */

int zc__rx_append(struct zc_chain *rx, struct zc_chain *data)
{
	int ret;

	if (!zc_chain_len(rx)) {
		/* The common case: nothing left over, adopt the delivery. */
		zc_chain_release(rx);
		*rx = *data;
		zc_chain_init(data);
		return 0;
	}
	ret = zc_chain_append_clone(rx, data);
	zc_chain_release(data);
	return ret;
}
