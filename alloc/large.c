/* SPDX-License-Identifier: MIT */
/*
 * alloc/large.c - memory for one large message (zc_buf_alloc_large()).
 *
 * A message too big for a pool buffer gets memory of its own.  Mapping it
 * fresh for every message costs a page fault and a page of zeroing per
 * 4 KiB on first touch, and the copy that fills it runs on the owner's
 * event loop: an 8 MiB message meant 2,048 faults spread over the batches
 * that received it, which every other connection of that loop waited
 * out.  So regions are kept after their last release, in power-of-two
 * size classes, and handed out again warm; a region no allocation took
 * for a whole trim period goes back to the system (zc_pool_trim()), and
 * the cache never holds more than large_cache_bytes.
 *
 * Regions are taken from the cache and returned to it on the owner thread
 * only: the release callback of external memory always runs there.  Off
 * the owner, an allocation maps a new region; its release still caches.
 *
 * A region mapped fresh is announced to the layer above
 * (on_large_map), which can have it populated by another thread while the
 * loop goes on: the copies then find its pages present.
 *
 * Giving a populated region back costs too (about 0.1-0.2 ms per MiB
 * here), so no region is unmapped where it is released or trimmed: it
 * goes onto the unmap list, and the owner's loop unmaps that list a slice
 * at a time (zc_pool_reclaim()), from the region's end.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

/* One region: mapped memory of one size class, and its place in the
 * cache while no buffer uses it. */
struct zc__large {
	struct zc_pool *pool;
	void *base;
	size_t size;			/* the class: a power of two */
	uint32_t gen;			/* trim period it was cached in */
	struct zc__large *next;
};

static unsigned class_of(size_t len)
{
	unsigned c = 0;

	while (((size_t)ZC_LARGE_MIN << c) < len)
		c++;
	return c;
}

static void region_unmap(struct zc__large *l)
{
	struct zc_pool *pool = l->pool;

	munmap(l->base, l->size);
	atomic_fetch_sub_explicit(&pool->large_bytes, l->size,
				  memory_order_relaxed);
	free(l);
}

/* Owner: queue @l for zc_pool_reclaim(). */
static void region_retire(struct zc__large *l)
{
	struct zc_pool *pool = l->pool;

	l->next = pool->large_unmap;
	pool->large_unmap = l;
	pool->large_unmap_bytes += l->size;
}

/* Release callback: back into the cache, or unmapped past its cap. */
static void region_release(void *arg, void *data)
{
	struct zc__large *l = arg;
	struct zc_pool *pool = l->pool;
	unsigned c = class_of(l->size);
	size_t cached = zc__cnt(&pool->large_cached);

	(void)data;
	if (cached + l->size > pool->large_cache_max) {
		region_retire(l);
		return;
	}
	l->gen = pool->large_gen;
	l->next = pool->large_free[c];
	pool->large_free[c] = l;
	zc__cnt_add(&pool->large_cached, (int64_t)l->size);
}

static void small_release(void *arg, void *data)
{
	(void)arg;
	free(data);
}

static struct zc__large *region_new(struct zc_pool *pool, size_t size)
{
	struct zc__large *l = malloc(sizeof(*l));

	if (!l)
		return NULL;
	l->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->base == MAP_FAILED) {
		free(l);
		return NULL;
	}
	l->pool = pool;
	l->size = size;
	atomic_fetch_add_explicit(&pool->large_bytes, size,
				  memory_order_relaxed);
	return l;
}

int zc_buf_alloc_large(struct zc_pool *pool, size_t len, struct zc_buf **out)
{
	struct zc__large *l = NULL;
	unsigned c;
	void *mem;
	int ret;

	if (!pool || !out || !len || len > UINT32_MAX)
		return -EINVAL;
	if (len < ZC_LARGE_MIN) {
		mem = malloc(len);
		if (!mem)
			return -ENOMEM;
		ret = zc_buf_wrap(pool, mem, len, small_release, NULL, out);
		if (ret)
			free(mem);
		return ret;
	}
	c = class_of(len);
	if (c >= ZC__LARGE_CLASSES)
		return -EINVAL;
	if (zc__on_owner(pool) && pool->large_free[c]) {
		l = pool->large_free[c];
		pool->large_free[c] = l->next;
		zc__cnt_add(&pool->large_cached, -(int64_t)l->size);
		zc__cnt_add(&pool->large_reused, 1);
	} else {
		l = region_new(pool, (size_t)ZC_LARGE_MIN << c);
		if (!l)
			return -ENOMEM;
		if (pool->on_large_map && zc__on_owner(pool))
			pool->on_large_map(pool->on_slab_arg, l->base, len);
	}
	ret = zc_buf_wrap(pool, l->base, len, region_release, l, out);
	if (ret) {
		if (zc__on_owner(pool))
			region_release(l, l->base);
		else
			region_unmap(l);
	}
	return ret;
}

void zc__large_trim(struct zc_pool *pool, bool all)
{
	for (unsigned c = 0; c < ZC__LARGE_CLASSES; c++) {
		struct zc__large **link = &pool->large_free[c];

		while (*link) {
			struct zc__large *l = *link;

			if (!all && l->gen == pool->large_gen) {
				link = &l->next;
				continue;
			}
			*link = l->next;
			zc__cnt_add(&pool->large_cached, -(int64_t)l->size);
			if (all)
				region_unmap(l);
			else
				region_retire(l);
		}
	}
	while (all && pool->large_unmap) {
		struct zc__large *l = pool->large_unmap;

		pool->large_unmap = l->next;
		region_unmap(l);
	}
	if (all)
		pool->large_unmap_bytes = 0;
	pool->large_gen++;
}

size_t zc_pool_reclaim(struct zc_pool *pool, size_t budget)
{
	if (!zc__on_owner(pool))
		return 0;
	while (budget && pool->large_unmap) {
		struct zc__large *l = pool->large_unmap;
		size_t cut = l->size < budget ? l->size : budget;

		/* From the end: the rest stays one mapping at l->base. */
		cut &= ~(size_t)4095;
		if (!cut)
			break;
		munmap((char *)l->base + l->size - cut, cut);
		atomic_fetch_sub_explicit(&pool->large_bytes, cut,
					  memory_order_relaxed);
		l->size -= cut;
		pool->large_unmap_bytes -= cut;
		budget -= cut;
		if (!l->size) {
			pool->large_unmap = l->next;
			free(l);
		}
	}
	return pool->large_unmap_bytes;
}

size_t zc_pool_large_cached(const struct zc_pool *pool)
{
	return zc__cnt(&pool->large_cached);
}
