/* SPDX-License-Identifier: MIT */
/*
 * alloc/pool.c - pool lifecycle, slabs, and the owner's free list.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

_Thread_local char zc__thread_token;

#define ZC_DEFAULT_BUF_SIZE   (64u * 1024)
#define ZC_DEFAULT_MAX_BYTES  ((size_t)64 << 20)
#define ZC_DEFAULT_SLAB_BYTES ((size_t)2 << 20)

static const char *const mode_names[] = {
	[ZC_FREE_OWNER] = "owner",
	[ZC_FREE_LOCAL] = "local",
	[ZC_FREE_LOCKED] = "locked",
};

const char *zc_free_mode_name(enum zc_free_mode mode)
{
	if ((unsigned)mode >= sizeof(mode_names) / sizeof(mode_names[0]))
		return NULL;
	return mode_names[mode];
}

int zc_free_mode_parse(const char *name, enum zc_free_mode *out)
{
	if (!name || !out)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(name, mode_names[i])) {
			*out = (enum zc_free_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------------
 * Lifecycle
 */

int zc_pool_create(const struct zc_pool_config *cfg, struct zc_pool **out)
{
	struct zc_pool_config c = { 0 };
	struct zc_pool *pool;

	if (!out)
		return -EINVAL;
	if (cfg)
		c = *cfg;
	if (!c.buf_size)
		c.buf_size = ZC_DEFAULT_BUF_SIZE;
	if (!c.max_bytes)
		c.max_bytes = ZC_DEFAULT_MAX_BYTES;
	if (!c.slab_bytes)
		c.slab_bytes = ZC_DEFAULT_SLAB_BYTES;
	if (!c.defer_max)
		c.defer_max = ZC_DEFER_MAX_DEFAULT;
	if (c.buf_size < ZC_BUF_SIZE_MIN || c.buf_size > ZC_BUF_SIZE_MAX ||
	    c.buf_size % 4096 || c.max_bytes < c.buf_size)
		return -EINVAL;
	if ((unsigned)c.free_mode > ZC_FREE_LOCKED)
		return -EINVAL;
	/* The depth lives in the defer head's spare bits (see internal.h). */
	if (c.defer_max > ZC__DEFER_DEPTH_MAX)
		c.defer_max = ZC__DEFER_DEPTH_MAX;
	c.slab_bytes -= c.slab_bytes % c.buf_size;
	if (c.slab_bytes < c.buf_size)
		c.slab_bytes = c.buf_size;
	/* A slab's buffer count and a buffer's capacity fit 32 bits. */
	if (c.slab_bytes / c.buf_size > UINT32_MAX)
		c.slab_bytes = (size_t)UINT32_MAX * c.buf_size;

	pool = aligned_alloc(ZC__CACHELINE, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	/* Headers come from the same allocator: if its addresses do not
	 * fit the defer head's pointer bits (tagged pointers, a 57-bit
	 * address space), fail here rather than on a release. */
	if (!zc__defer_ptr_ok(pool + 1)) {
		free(pool);
		return -ENOTSUP;
	}
	memset(pool, 0, sizeof(*pool));
	if (pthread_mutex_init(&pool->lock, NULL)) {
		free(pool);
		return -ENOMEM;
	}
	pool->buf_size = c.buf_size;
	pool->max_bytes = c.max_bytes;
	pool->large_cache_max = c.large_cache_bytes ? c.large_cache_bytes :
						      c.max_bytes;
	pool->slab_bytes = c.slab_bytes;
	pool->defer_max = c.defer_max;
	pool->mode = c.free_mode;
	pool->kick = c.kick;
	pool->kick_arg = c.kick_arg;
	pool->on_slab = c.on_slab;
	pool->on_slab_release = c.on_slab_release;
	pool->on_large_map = c.on_large_map;
	pool->on_slab_arg = c.on_slab_arg;
	atomic_init(&pool->owner, zc__self());
	*out = pool;
	return 0;
}

void zc_pool_bind(struct zc_pool *pool)
{
	/*
	 * Release: whatever the previous owner did to the owner-only state
	 * is published to the new owner, provided the hand-over itself
	 * synchronises (thread start, a queue); this store only names it.
	 */
	atomic_store_explicit(&pool->owner, zc__self(), memory_order_release);
}

bool zc_pool_is_owner(const struct zc_pool *pool)
{
	return zc__on_owner(pool);
}

void zc_pool_set_kick(struct zc_pool *pool, void (*kick)(void *), void *arg)
{
	pool->kick = kick;
	pool->kick_arg = arg;
}

size_t zc_pool_buf_size(const struct zc_pool *pool)
{
	return pool->buf_size;
}

size_t zc_pool_max_bytes(const struct zc_pool *pool)
{
	return pool->max_bytes;
}

size_t zc_pool_headroom(const struct zc_pool *pool)
{
	struct zc_pool *p = (struct zc_pool *)pool;
	uint64_t used = p->mode == ZC_FREE_LOCAL ?
			zc__cnt(&p->local_bytes) :
			zc__cnt(&p->in_use) * p->buf_size;

	return used < p->max_bytes ? p->max_bytes - used : 0;
}

/* Buffers still referenced anywhere, or a pusher still kicking. */
static bool pool_busy(struct zc_pool *pool)
{
	uint64_t wrapped, in_use;

	if (pool->mode == ZC_FREE_LOCKED)
		pthread_mutex_lock(&pool->lock);
	in_use = zc__cnt(&pool->in_use);
	if (pool->mode == ZC_FREE_LOCKED)
		pthread_mutex_unlock(&pool->lock);
	if (in_use)
		return true;
	/* Acquire: pairs with the fetch_sub of the last LOCAL free, so that
	 * its accesses to the buffer happen before we free the pool. */
	if (atomic_load_explicit(&pool->local_bytes, memory_order_acquire))
		return true;
	wrapped = atomic_load_explicit(&pool->ext_wrapped, memory_order_relaxed);
	return wrapped != zc__cnt(&pool->ext_released);
}

int zc_pool_destroy(struct zc_pool *pool)
{
	if (!zc__on_owner(pool))
		return -EPERM;
	zc_pool_drain(pool);
	if (pool_busy(pool))
		return -EBUSY;
	/* A pusher that made the list reach the cap may still be calling
	 * kick and counting it; it holds no buffer any more, so wait. */
	zc__defer_quiesce(pool);
	zc__large_trim(pool, true);
	for (uint32_t i = 0; i < pool->nslabs; i++)
		if (pool->slabs[i].base)
			zc__slab_unmap(pool, i);
	free(pool->slabs);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
	return 0;
}

void zc_pool_stats(const struct zc_pool *pool, struct zc_pool_stats *out)
{
	struct zc_pool *p = (struct zc_pool *)pool;
	uint64_t head = atomic_load_explicit(&p->defer, memory_order_relaxed);
	uint64_t head_ext = atomic_load_explicit(&p->defer_ext,
						 memory_order_relaxed);
	int64_t overflow;

	memset(out, 0, sizeof(*out));
	out->allocated = zc__cnt(&p->allocated);
	out->released_owner = zc__cnt(&p->released_owner);
	out->drained = zc__cnt(&p->drained);
	/* Pushes past a saturated depth are counted apart (defer.c). */
	overflow = atomic_load_explicit(&p->defer_overflow, memory_order_relaxed);
	out->deferred = out->drained + zc__defer_depth(head) +
			zc__defer_depth(head_ext) + (overflow > 0 ? (uint64_t)overflow : 0);
	out->kicks = zc__cnt(&p->kicks);
	out->pool_empty = zc__cnt(&p->pool_empty);
	out->released_local = zc__cnt(&p->released_local);
	out->released_locked = zc__cnt(&p->released_locked);
	out->ext_wrapped = zc__cnt(&p->ext_wrapped);
	out->ext_released = zc__cnt(&p->ext_released);
	out->large_bytes = zc__cnt(&p->large_bytes);
	out->large_cached = zc__cnt(&p->large_cached);
	out->large_reused = zc__cnt(&p->large_reused);
	if (p->mode == ZC_FREE_LOCAL) {
		out->bytes_mapped = zc__cnt(&p->local_bytes);
		out->in_use = out->bytes_mapped / p->buf_size;
	} else {
		out->bytes_mapped = zc__cnt(&p->bytes_mapped);
		out->in_use = zc__cnt(&p->in_use);
	}
	out->slabs_trimmed = zc__cnt(&p->slabs_trimmed);
}

/* ------------------------------------------------------------------------
 * Slabs (owner thread; LOCKED: under the lock)
 */

void zc__slab_unmap(struct zc_pool *pool, uint32_t i)
{
	struct zc__slab *s = &pool->slabs[i];

	munmap(s->base, s->len);
	free(s->hdrs);
	zc__cnt_add(&pool->bytes_mapped, -(int64_t)s->len);
	memset(s, 0, sizeof(*s));
}

/* The lowest slot a trim emptied, else a new one at the end. */
static int slab_slot(struct zc_pool *pool, uint32_t *out)
{
	struct zc__slab *s;
	uint32_t i;

	for (i = 0; i < pool->nslabs; i++) {
		if (!pool->slabs[i].base) {
			*out = i;
			return 0;
		}
	}
	if (pool->nslabs == pool->slabs_cap) {
		uint32_t cap = pool->slabs_cap ? pool->slabs_cap * 2 : 8;

		s = realloc(pool->slabs, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		pool->slabs = s;
		pool->slabs_cap = cap;
	}
	*out = pool->nslabs;
	return 0;
}

static int slab_grow(struct zc_pool *pool)
{
	size_t mapped = zc__cnt(&pool->bytes_mapped);
	size_t len = pool->slab_bytes;
	struct zc__slab *s;
	struct zc_buf *hdrs;
	uint32_t nbufs, idx;
	void *base;
	int ret;

	if (mapped + pool->buf_size > pool->max_bytes)
		return -ENOBUFS;
	/* The last slab may be short so the byte cap holds exactly. */
	if (len > pool->max_bytes - mapped)
		len = (pool->max_bytes - mapped) / pool->buf_size * pool->buf_size;
	nbufs = (uint32_t)(len / pool->buf_size);
	ret = slab_slot(pool, &idx);
	if (ret < 0)
		return ret;
	hdrs = aligned_alloc(ZC__CACHELINE, (size_t)nbufs * sizeof(*hdrs));
	if (!hdrs)
		return -ENOMEM;
	if (!zc__defer_ptr_ok(hdrs + nbufs)) {
		ret = -ENOTSUP;
		goto err_free_hdrs;
	}
	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		ret = -ENOMEM;
		goto err_free_hdrs;
	}
	if (pool->on_slab) {
		ret = pool->on_slab(pool->on_slab_arg, idx, base, len);
		if (ret < 0)
			goto err_unmap;
	}

	/* Push in reverse so the free list hands out buffer 0 first. */
	memset(hdrs, 0, (size_t)nbufs * sizeof(*hdrs));
	for (uint32_t i = nbufs; i-- > 0;) {
		struct zc_buf *b = &hdrs[i];

		atomic_init(&b->ref, 0);
		b->pool = pool;
		b->data = (char *)base + (size_t)i * pool->buf_size;
		b->cap = (uint32_t)pool->buf_size;
		b->kind = ZC__BUF_POOL;
		b->slab = idx;
		b->next = pool->free;
		pool->free = b;
	}
	if (idx == pool->nslabs)
		pool->nslabs++;
	s = &pool->slabs[idx];
	s->base = base;
	s->len = len;
	s->hdrs = hdrs;
	s->nbufs = nbufs;
	zc__cnt_add(&pool->bytes_mapped, (int64_t)len);
	return 0;

err_unmap:
	munmap(base, len);
err_free_hdrs:
	free(hdrs);
	return ret;
}

/* ------------------------------------------------------------------------
 * Allocation and return
 */

static int alloc_local(struct zc_pool *pool, struct zc_buf **out)
{
	size_t sz = pool->buf_size;
	struct zc_buf *b;
	uint64_t prev;

	/* Reserve first: remote frees give bytes back concurrently. */
	prev = atomic_fetch_add_explicit(&pool->local_bytes, sz,
					 memory_order_relaxed);
	if (prev + sz > pool->max_bytes) {
		atomic_fetch_sub_explicit(&pool->local_bytes, sz,
					  memory_order_relaxed);
		zc__cnt_add(&pool->pool_empty, 1);
		return -ENOBUFS;
	}
	b = aligned_alloc(ZC__CACHELINE, sizeof(*b));
	if (!b)
		goto err_unreserve;
	memset(b, 0, sizeof(*b));
	b->data = aligned_alloc(4096, sz);
	if (!b->data)
		goto err_free_hdr;
	b->pool = pool;
	b->cap = (uint32_t)sz;
	b->kind = ZC__BUF_LOCAL;
	atomic_init(&b->ref, ZC__REF_VIEW);
	zc__cnt_add(&pool->allocated, 1);
	*out = b;
	return 0;

err_free_hdr:
	free(b);
err_unreserve:
	atomic_fetch_sub_explicit(&pool->local_bytes, sz, memory_order_relaxed);
	return -ENOMEM;
}

static int alloc_pooled(struct zc_pool *pool, struct zc_buf **out)
{
	struct zc_buf *b = pool->free;
	int ret;

	/* Reuse what other threads gave back before mapping more. */
	if (!b && pool->free_chains) {
		b = pool->free = pool->free_chains;
		pool->free_chains = b->chain_next;
	}
	if (!b && pool->mode == ZC_FREE_OWNER) {
		zc__defer_take_pool(pool);
		b = pool->free;
	}
	/* Better a buffer of a slab meant to go than a new slab. */
	if (!b && pool->draining) {
		b = pool->free = pool->draining;
		pool->draining = NULL;
	}
	if (!b) {
		ret = slab_grow(pool);
		if (ret < 0) {
			if (ret == -ENOBUFS)
				zc__cnt_add(&pool->pool_empty, 1);
			return ret;
		}
		b = pool->free;
	}
	pool->free = b->next;
	/* The next header was likely last written on a releasing CPU: start
	 * bringing it over now, for writing, while the caller uses this one. */
	if (pool->free)
		__builtin_prefetch(pool->free, 1);
	b->next = NULL;
	/* Relaxed: the buffer is private until the caller publishes it. */
	atomic_store_explicit(&b->ref, ZC__REF_VIEW, memory_order_relaxed);
	zc__cnt_add(&pool->in_use, 1);
	if (zc__cnt(&pool->in_use) > pool->in_use_hwm)
		pool->in_use_hwm = zc__cnt(&pool->in_use);
	zc__cnt_add(&pool->allocated, 1);
	*out = b;
	return 0;
}

int zc_buf_alloc(struct zc_pool *pool, struct zc_buf **out)
{
	int ret;

	if (!pool || !out)
		return -EINVAL;
	if (!zc__on_owner(pool))
		return -EPERM;
	switch (pool->mode) {
	case ZC_FREE_LOCAL:
		return alloc_local(pool, out);
	case ZC_FREE_LOCKED:
		pthread_mutex_lock(&pool->lock);
		ret = alloc_pooled(pool, out);
		pthread_mutex_unlock(&pool->lock);
		return ret;
	default:
		return alloc_pooled(pool, out);
	}
}

void zc__pool_adopt_chain(struct zc_pool *pool, struct zc_buf *top,
			  uint32_t n)
{
	assert(pool->mode == ZC_FREE_OWNER && zc__on_owner(pool));
	assert(zc__cnt(&pool->in_use) >= n);
	zc__cnt_add(&pool->in_use, -(int64_t)n);
	if (!pool->free) {
		pool->free = top;
		return;
	}
	top->chain_next = pool->free_chains;
	pool->free_chains = top;
}

/* The list an owner-side return goes to (owner, or under the lock). */
static struct zc_buf **put_list(struct zc_pool *pool, struct zc_buf *buf)
{
	return buf->draining ? &pool->draining : &pool->free;
}

void zc__pool_put_buf(struct zc_pool *pool, struct zc_buf *buf)
{
	struct zc_buf **list;

	assert(buf->kind == ZC__BUF_POOL);
	if (pool->mode == ZC_FREE_LOCKED) {
		pthread_mutex_lock(&pool->lock);
		list = put_list(pool, buf);
		buf->next = *list;
		*list = buf;
		zc__cnt_add(&pool->in_use, -1);
		zc__cnt_add(&pool->released_locked, 1);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	assert(zc__on_owner(pool));
	list = put_list(pool, buf);
	buf->next = *list;
	*list = buf;
	assert(zc__cnt(&pool->in_use) > 0);
	zc__cnt_add(&pool->in_use, -1);
}

void zc__pool_free_local(struct zc_pool *pool, struct zc_buf *buf)
{
	size_t sz = buf->cap;

	assert(buf->kind == ZC__BUF_LOCAL);
	free(buf->data);
	free(buf);
	if (zc__on_owner(pool))
		zc__cnt_add(&pool->released_owner, 1);
	else
		atomic_fetch_add_explicit(&pool->released_local, 1,
					  memory_order_relaxed);
	/* Release: the frees above happen before a destroy that sees 0. */
	atomic_fetch_sub_explicit(&pool->local_bytes, sz, memory_order_release);
}
