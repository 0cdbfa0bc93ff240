/* SPDX-License-Identifier: MIT */
/*
 * alloc/buf.c - the reference word, external memory, and where a buffer
 * goes when its last reference drops.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------------------
 * Release routing: called once, by whoever dropped the word to zero.
 */

void zc__ext_finish(struct zc_pool *pool, struct zc_buf *buf)
{
	assert(buf->kind == ZC__BUF_EXT && zc__on_owner(pool));
	buf->release(buf->release_arg, buf->data);
	free(buf);
	zc__cnt_add(&pool->ext_released, 1);
}

static void buf_release(struct zc_buf *buf)
{
	struct zc_pool *pool = buf->pool;

	switch (buf->kind) {
	case ZC__BUF_LOCAL:
		zc__pool_free_local(pool, buf);
		return;
	case ZC__BUF_POOL:
		if (pool->mode == ZC_FREE_LOCKED) {
			zc__pool_put_buf(pool, buf);
			return;
		}
		break;
	default:
		break;
	}
	/* Pool buffers (OWNER mode) and external memory go home. */
	if (zc__on_owner(pool)) {
		zc__cnt_add(&pool->released_owner, 1);
		if (buf->kind == ZC__BUF_EXT)
			zc__ext_finish(pool, buf);
		else
			zc__pool_put_buf(pool, buf);
	} else {
		zc__defer_push(pool, buf);
	}
}

/*
 * Acq_rel on every drop: release orders this holder's reads and writes of
 * the data before the drop; acquire, on the drop that reaches zero, makes
 * all other holders' accesses happen before the buffer is reused.
 */
static inline void ref_drop(struct zc_buf *buf, uint64_t unit)
{
	uint64_t old = atomic_fetch_sub_explicit(&buf->ref, unit,
						 memory_order_acq_rel);

	assert((unit == ZC__REF_VIEW && (uint32_t)old != 0) ||
	       (unit == ZC__REF_INFLIGHT && (old >> 32) != 0));
	if (old == unit)
		buf_release(buf);
}

/* Relaxed: the caller already holds a reference, so nothing can free the
 * buffer meanwhile; ordering comes with the drops. */
void zc_buf_get(struct zc_buf *buf)
{
	uint64_t old = atomic_fetch_add_explicit(&buf->ref, ZC__REF_VIEW,
						 memory_order_relaxed);

	assert(old != 0 && (uint32_t)old != UINT32_MAX);
	(void)old;
}

void zc_buf_put(struct zc_buf *buf)
{
	ref_drop(buf, ZC__REF_VIEW);
}

void zc_buf_inflight_get(struct zc_buf *buf)
{
	uint64_t old = atomic_fetch_add_explicit(&buf->ref, ZC__REF_INFLIGHT,
						 memory_order_relaxed);

	assert(old != 0 && (old >> 32) != UINT32_MAX);
	(void)old;
}

void zc_buf_inflight_put(struct zc_buf *buf)
{
	ref_drop(buf, ZC__REF_INFLIGHT);
}

/* ------------------------------------------------------------------------
 * External memory
 */

int zc_buf_wrap(struct zc_pool *pool, void *data, size_t len,
		void (*release)(void *arg, void *data), void *arg,
		struct zc_buf **out)
{
	struct zc_buf *b;

	if (!pool || !data || !release || !out || !len || len > UINT32_MAX)
		return -EINVAL;
	b = aligned_alloc(ZC__CACHELINE, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (!zc__defer_ptr_ok(b + 1)) {
		free(b);
		return -ENOTSUP;
	}
	memset(b, 0, sizeof(*b));
	atomic_init(&b->ref, ZC__REF_VIEW);
	b->pool = pool;
	b->data = data;
	b->cap = (uint32_t)len;
	b->kind = ZC__BUF_EXT;
	b->release = release;
	b->release_arg = arg;
	/* Relaxed: destroy learns of this buffer's life through its drops. */
	atomic_fetch_add_explicit(&pool->ext_wrapped, 1, memory_order_relaxed);
	*out = b;
	return 0;
}

/* ------------------------------------------------------------------------
 * Accessors
 */

void *zc_buf_data(const struct zc_buf *buf)
{
	return buf ? buf->data : NULL;
}

size_t zc_buf_capacity(const struct zc_buf *buf)
{
	return buf->cap;
}

struct zc_pool *zc_buf_pool(const struct zc_buf *buf)
{
	return buf->pool;
}

static uint64_t ref_word(const struct zc_buf *buf)
{
	return atomic_load_explicit((_Atomic uint64_t *)&buf->ref,
				    memory_order_acquire);
}

uint32_t zc_buf_refs(const struct zc_buf *buf)
{
	return (uint32_t)ref_word(buf);
}

uint32_t zc_buf_inflight(const struct zc_buf *buf)
{
	return (uint32_t)(ref_word(buf) >> 32);
}

/* Acquire: if we are alone, earlier holders' reads are done before we
 * write. */
bool zc_buf_is_exclusive(const struct zc_buf *buf)
{
	return ref_word(buf) == ZC__REF_VIEW;
}

bool zc_buf_is_external(const struct zc_buf *buf)
{
	return buf->kind == ZC__BUF_EXT;
}

int zc_buf_slab_index(const struct zc_buf *buf)
{
	if (buf->kind != ZC__BUF_POOL)
		return -ENOENT;
	return (int)buf->slab;
}
