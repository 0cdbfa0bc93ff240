/* SPDX-License-Identifier: MIT */
/*
 * alloc/trim.c - giving slabs back after a peak (zc_pool_trim()).
 *
 * A slab may go only when all of its buffers are on the owner's free
 * lists: a buffer there has no reference left, so neither a view nor the
 * kernel can reach its data.  The walk that finds such slabs chases every
 * free header once; it runs when the owner chooses (the stack: about once
 * a second), never on the allocation path.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Append the adopted defer lists and the draining list to the free list:
 * one list to walk. */
static void flatten_free(struct zc_pool *pool)
{
	struct zc_buf **tail = &pool->free;

	for (struct zc_buf *list = pool->free_chains; list;
	     list = list->chain_next) {
		while (*tail)
			tail = &(*tail)->next;
		*tail = list;
	}
	while (*tail)
		tail = &(*tail)->next;
	*tail = pool->draining;
	pool->free_chains = NULL;
	pool->draining = NULL;
}

/* Mark in @gone the wholly free slabs that may go, most recent first,
 * while the pool stays at or above @keep bytes; returns how many. */
static uint32_t pick_slabs(struct zc_pool *pool, size_t keep,
			   const uint32_t *nfree, uint8_t *gone)
{
	size_t mapped = zc__cnt(&pool->bytes_mapped);
	uint32_t n = 0;

	for (uint32_t i = pool->nslabs; i-- > 0;) {
		struct zc__slab *s = &pool->slabs[i];

		if (!s->base || nfree[i] != s->nbufs || mapped - s->len < keep)
			continue;
		gone[i] = 1;
		mapped -= s->len;
		n++;
	}
	return n;
}

/* Unlink from the free list the headers of the slabs that go. */
static void unlink_gone(struct zc_pool *pool, const uint8_t *gone)
{
	struct zc_buf **link = &pool->free;

	while (*link) {
		if (gone[(*link)->slab])
			*link = (*link)->next;
		else
			link = &(*link)->next;
	}
}

/*
 * The lowest slabs that make @keep bytes stay; the ones above are marked
 * draining, header by header, and their free buffers move to the draining
 * list, handed out last: what still pins them (an idle ring's buffers, a
 * held view) comes back there, and a later trim finds them wholly free.
 */
static void mark_draining(struct zc_pool *pool, size_t keep)
{
	struct zc_buf **link = &pool->free, **dtail = &pool->draining;
	size_t kept = 0;

	for (uint32_t i = 0; i < pool->nslabs; i++) {
		struct zc__slab *s = &pool->slabs[i];
		bool drain = kept >= keep;

		if (!s->base)
			continue;
		kept += drain ? 0 : s->len;
		for (uint32_t j = 0; j < s->nbufs; j++)
			s->hdrs[j].draining = drain;
	}
	while (*link) {
		struct zc_buf *b = *link;

		if (!b->draining) {
			link = &b->next;
			continue;
		}
		*link = b->next;
		*dtail = b;
		dtail = &b->next;
	}
	*dtail = NULL;
}

static int trim_locked(struct zc_pool *pool, size_t floor)
{
	size_t keep = (size_t)pool->in_use_hwm * pool->buf_size;
	uint32_t *nfree, n;
	uint8_t *gone;

	if (keep < floor)
		keep = floor;
	pool->in_use_hwm = zc__cnt(&pool->in_use);
	if (!pool->nslabs)
		return 0;
	gone = calloc(pool->nslabs, 1);
	nfree = calloc(pool->nslabs, sizeof(*nfree));
	if (!gone || !nfree) {
		free(gone);
		free(nfree);
		return -ENOMEM;
	}
	flatten_free(pool);
	for (struct zc_buf *b = pool->free; b; b = b->next)
		nfree[b->slab]++;
	n = pick_slabs(pool, keep, nfree, gone);
	if (n) {
		unlink_gone(pool, gone);
		for (uint32_t i = 0; i < pool->nslabs; i++) {
			struct zc__slab *s = &pool->slabs[i];

			if (!gone[i])
				continue;
			if (pool->on_slab_release)
				pool->on_slab_release(pool->on_slab_arg, i,
						      s->base, s->len);
			zc__slab_unmap(pool, i);
		}
		zc__cnt_add(&pool->slabs_trimmed, n);
	}
	mark_draining(pool, keep);
	free(gone);
	free(nfree);
	return (int)n;
}

int zc_pool_trim(struct zc_pool *pool, size_t floor)
{
	int ret;

	if (!zc__on_owner(pool))
		return -EPERM;
	zc__large_trim(pool, false);
	if (pool->mode == ZC_FREE_LOCAL)
		return 0;
	if (pool->mode == ZC_FREE_OWNER)
		zc__defer_take_pool(pool);
	if (pool->mode == ZC_FREE_LOCKED)
		pthread_mutex_lock(&pool->lock);
	ret = trim_locked(pool, floor);
	if (pool->mode == ZC_FREE_LOCKED)
		pthread_mutex_unlock(&pool->lock);
	return ret;
}
