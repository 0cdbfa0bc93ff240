/* SPDX-License-Identifier: MIT */
/*
 * alloc/defer.c - the owner's multi-producer defer list.
 *
 * Threads that drop the last reference of a buffer they do not own push it
 * here (a Treiber stack); the owner takes the whole list with one exchange
 * at the end of its batch.  Pool buffers and external memory have one list
 * each: a list of pool buffers is adopted whole by the pool, without a walk.  Nodes are only ever removed all at once, so the
 * ABA problem of single pops cannot arise.  The list's depth travels in the
 * head word itself, which tells a pusher exactly when its push reaches the
 * cap, without a shared counter and without touching the old top node.
 */
#include <assert.h>
#include <sched.h>

#include "internal.h"

/*
 * When a push kicks the owner: when it makes the list non-empty (a
 * sleeping owner learns of its first deferred buffer, so no release waits
 * for an idle owner indefinitely; an awake owner's kick costs a fence and
 * a load, once per drain), and when it makes the list reach the cap
 * (strictly crossing: a saturated depth stops counting).
 */
static bool push_kicks(uint32_t old_depth, uint32_t depth, uint32_t cap)
{
	return old_depth == 0 || (depth == cap && old_depth < cap);
}

void zc__defer_push(struct zc_pool *pool, struct zc_buf *buf)
{
	/* Read before publishing: once pushed, @buf belongs to the owner. */
	const uint32_t cap = pool->defer_max;
	_Atomic uint64_t *list = buf->kind == ZC__BUF_EXT ? &pool->defer_ext
							  : &pool->defer;
	uint64_t old, new;
	uint32_t depth;
	bool kick, kicking = false;

	assert(zc__defer_ptr_ok(buf + 1));
	old = atomic_load_explicit(list, memory_order_relaxed);
	do {
		depth = zc__defer_depth(old);
		if (depth < ZC__DEFER_DEPTH_MAX)
			depth++;
		/*
		 * Announce a kick before the push becomes visible: once it
		 * is, the owner may drain and destroy the pool, and destroy
		 * waits for kickers to leave.  Only the rare kicking pusher
		 * writes this line.
		 */
		kick = push_kicks(zc__defer_depth(old), depth, cap);
		if (kick != kicking) {
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
	} while (!atomic_compare_exchange_weak_explicit(list, &old, new,
							memory_order_release,
							memory_order_relaxed));
	if (zc__defer_depth(old) == ZC__DEFER_DEPTH_MAX)
		atomic_fetch_add_explicit(&pool->defer_overflow, 1,
					  memory_order_relaxed);
	if (!kicking)
		return;
	/*
	 * The Dekker pair with a sleeping owner: our push (above) then, in
	 * the kick, a full fence and a load of the owner's "sleeping" flag;
	 * the owner stores that flag, fences, then loads the list heads
	 * (zc_pool_pending()).  One of the two sees the other.
	 */
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
 * Take a whole list.  Acquire: the pushers' writes to every node (->next,
 * the data, the external headers) happen before we reuse them.  The
 * exchange reads the last CAS of the release sequence, so every earlier
 * push on this list is covered too.  One relaxed load first keeps the
 * empty case cheap.  Returns the top node and sets *@n to the depth.
 */
static struct zc_buf *defer_take(_Atomic uint64_t *list,
				 _Atomic int64_t *overflow, uint32_t *n)
{
	uint64_t word;
	struct zc_buf *b;

	*n = 0;
	if (!atomic_load_explicit(list, memory_order_relaxed))
		return NULL;
	word = atomic_exchange_explicit(list, 0, memory_order_acquire);
	*n = zc__defer_depth(word);
	if (*n == ZC__DEFER_DEPTH_MAX) {
		/* The depth saturated, so it is no count: walk (rare), and
		 * take the pushes past it off the overflow count. */
		*n = 0;
		for (b = zc__defer_top(word); b; b = b->next)
			(*n)++;
		atomic_fetch_sub_explicit(overflow, *n - ZC__DEFER_DEPTH_MAX,
					  memory_order_relaxed);
	}
	return zc__defer_top(word);
}

unsigned zc__defer_take_pool(struct zc_pool *pool)
{
	uint32_t n;
	struct zc_buf *top;

	assert(zc__on_owner(pool));
	top = defer_take(&pool->defer, &pool->defer_overflow, &n);
	if (top)
		zc__pool_adopt_chain(pool, top, n);
	zc__cnt_add(&pool->drained, n);
	return n;
}

/* External memory: each callback runs here, on the owner thread. */
unsigned zc_pool_drain(struct zc_pool *pool)
{
	struct zc_buf *b, *next;
	uint32_t n;

	if (!zc__on_owner(pool))
		return 0;
	for (b = defer_take(&pool->defer_ext, &pool->defer_overflow, &n); b;
	     b = next) {
		next = b->next;
		zc__ext_finish(pool, b);
	}
	zc__cnt_add(&pool->drained, n);
	return n + zc__defer_take_pool(pool);
}

bool zc_pool_pending(const struct zc_pool *pool)
{
	struct zc_pool *p = (struct zc_pool *)pool;

	/* Relaxed: a caller pairing with a kick fences before calling. */
	return atomic_load_explicit(&p->defer, memory_order_relaxed) ||
	       atomic_load_explicit(&p->defer_ext, memory_order_relaxed);
}
