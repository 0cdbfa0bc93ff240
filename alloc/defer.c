/* SPDX-License-Identifier: MIT */
/*
 * alloc/defer.c - the owner's multi-producer defer list.
 *
 * Threads that drop the last reference of a buffer they do not own push it
 * here (a Treiber stack); the owner takes the whole list with one exchange
 * at the end of its batch.  Nodes are only ever removed all at once, so the
 * ABA problem of single pops cannot arise.  The list's depth travels in the
 * head word itself, which tells a pusher exactly when its push reaches the
 * cap, without a shared counter and without touching the old top node.
 */
#include <assert.h>
#include <sched.h>

#include "internal.h"

void zc__defer_push(struct zc_pool *pool, struct zc_buf *buf)
{
	/* Read before publishing: once pushed, @buf belongs to the owner. */
	const uint32_t cap = pool->defer_max;
	uint64_t old, new;
	uint32_t depth;
	bool cross, kicking = false;

	assert(((uintptr_t)buf & ~ZC__DEFER_PTR_MASK) == 0);
	old = atomic_load_explicit(&pool->defer, memory_order_relaxed);
	do {
		depth = zc__defer_depth(old);
		if (depth < ZC__DEFER_DEPTH_MAX)
			depth++;
		/*
		 * The push that makes the list reach the cap kicks (strictly
		 * crossing: a saturated depth stops counting).  Announce it
		 * before the push becomes visible: once it is, the owner may
		 * drain and destroy the pool, and destroy waits for kickers
		 * to leave.  Only the rare crossing pusher writes this line.
		 */
		cross = depth == cap && zc__defer_depth(old) < cap;
		if (cross != kicking) {
			kicking = !kicking;
			if (kicking)
				atomic_fetch_add_explicit(&pool->kickers, 1,
							  memory_order_relaxed);
			else
				atomic_fetch_sub_explicit(&pool->kickers, 1,
							  memory_order_relaxed);
		}
		buf->next = zc__defer_top(old);
		new = zc__defer_pack(buf, depth);
		/*
		 * Release on success: our writes to the buffer (its data as
		 * the last holder saw it, ->next) and the kickers increment
		 * happen before the owner's acquire exchange takes the node.
		 * Relaxed on failure: we only retry with the fresh head.
		 */
	} while (!atomic_compare_exchange_weak_explicit(&pool->defer, &old, new,
							memory_order_release,
							memory_order_relaxed));
	if (!kicking)
		return;
	if (pool->kick)
		pool->kick(pool->kick_arg);
	atomic_fetch_add_explicit(&pool->kicks, 1, memory_order_relaxed);
	/* Release: our reads of the pool happen before destroy frees it. */
	atomic_fetch_sub_explicit(&pool->kickers, 1, memory_order_release);
}

void zc__defer_quiesce(struct zc_pool *pool)
{
	/* Acquire: pairs with the kicker's release decrement. */
	while (atomic_load_explicit(&pool->kickers, memory_order_acquire))
		sched_yield();
}

/*
 * Take the whole list back.  Pool buffers return to the free list; the
 * callbacks of external memory run here when @run_ext, else (from inside
 * zc_buf_alloc(), whose caller does not expect callbacks) they wait on
 * the owner's ext_later list for the next zc_pool_drain().
 */
unsigned zc__defer_take(struct zc_pool *pool, bool run_ext)
{
	struct zc_buf *b, *next;
	unsigned n = 0;

	assert(zc__on_owner(pool));
	/* One relaxed load keeps the empty case cheap. */
	if (!atomic_load_explicit(&pool->defer, memory_order_relaxed))
		return 0;
	/*
	 * Acquire: the pushers' writes to every node (->next, the data, the
	 * external headers) happen before we walk and reuse them.  The
	 * exchange reads the last CAS of the release sequence, so every
	 * earlier push on this list is covered too.
	 */
	b = zc__defer_top(atomic_exchange_explicit(&pool->defer, 0,
						   memory_order_acquire));
	for (; b; b = next) {
		next = b->next;
		if (b->kind != ZC__BUF_EXT) {
			zc__pool_put_buf(pool, b);
		} else if (run_ext) {
			zc__ext_finish(pool, b);
		} else {
			b->next = pool->ext_later;
			pool->ext_later = b;
		}
		n++;
	}
	zc__cnt_add(&pool->drained, n);
	return n;
}

unsigned zc_pool_drain(struct zc_pool *pool)
{
	struct zc_buf *b;

	while ((b = pool->ext_later)) {
		pool->ext_later = b->next;
		zc__ext_finish(pool, b);
	}
	return zc__defer_take(pool, true);
}
