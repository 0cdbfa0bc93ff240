/* SPDX-License-Identifier: MIT */
/*
 * zcrpc/alloc.h - clone-aware buffers, per-owner pools and deferred free.
 *
 * This module knows nothing of io_uring or sockets.  It answers two
 * questions that a zero-copy transport must get right:
 *
 *   1. When may the memory behind a buffer be reused?  Only once *nobody*
 *      references it: no view, no clone, no slice, and no in-flight kernel
 *      send.  (The 2011 "ubuf must track clones" thread; Rusty Russell's
 *      2008 data destructor with its `orig` parent reference.)
 *   2. Where is a buffer freed?  On the thread that owns its pool.  A buffer
 *      released elsewhere is pushed onto its owner's lock-free list, and the
 *      owner takes the whole list back at the end of its batch of work.
 *      (Eric Dumazet's 2022 per-cpu skb defer lists.)
 *
 * DOC: Basic geometry
 *
 *   A pool owns slabs of page-aligned memory, cut into fixed-size buffers.
 *   Each buffer has a header (struct zc_buf, the tracker: the userspace
 *   skb_shared_info) kept apart from its data, so that the data of a slab is
 *   one contiguous, registrable region.
 *
 *        pool (owner thread T0)
 *        +-------------------------------------------------------------+
 *   slab |  buf 0 data  |  buf 1 data  |  buf 2 data  |  ...          |
 *        +-------------------------------------------------------------+
 *              ^                ^    ^
 *              |                |    +-- view C {buf1, off 900, len 300}
 *              |                +------- view B {buf1, off 0,   len 900}
 *              +--- view A {buf0, ...}   (B and C: two RPCs in one buffer)
 *
 *   hdr buf1: refs = 2 views + 1 in-flight send  ->  3
 *             owner = pool, release = pool free list
 *
 * DOC: dataref
 *
 *   A buffer carries one 64-bit reference word: the low half counts views
 *   (and any holder that called zc_buf_get()), the high half counts
 *   in-flight kernel references (zc_buf_inflight_get(), one per zero-copy
 *   send that covers the buffer, dropped on the kernel's notification).
 *   The buffer is released exactly once, when the whole word reaches zero,
 *   whichever half drops last and on whichever thread.  This is what makes
 *   clones safe: a clone is just another reference, so dropping the
 *   original before its clone never releases the memory early.
 *
 * DOC: Who may write
 *
 *   The data of a buffer may be written only by the holder of its *only*
 *   reference (zc_buf_is_exclusive()), typically the owner right after
 *   zc_buf_alloc() or the kernel receiving into it.  Once a second view
 *   exists, or once a send is in flight, the data is read-only for
 *   everybody.  External memory (zc_buf_wrap()) may be rewritten by the
 *   application only after its release callback has run.
 *
 *   One exception, the kernel's page_frag rule: the thread that allocated
 *   a buffer may keep appending to it after cutting views from its front,
 *   writing only bytes past the end of every view it has cut so far.  It
 *   must track that offset itself (the tracker does not) and never write
 *   below it, so no byte a view or the kernel can see is ever rewritten.
 *   rpc/ stages frame headers this way.
 *
 * DOC: Who releases, and where
 *
 *   The thread that drops the last reference releases the buffer:
 *     - on the owner thread of the pool: the buffer returns to the pool's
 *       free list at once (never deferred when already on the owner);
 *     - on any other thread: the buffer is pushed onto the pool's lock-free
 *       multi-producer list.  The owner takes the whole list with one
 *       atomic exchange in zc_pool_drain(), which its event loop calls at
 *       the end of each batch.  The pushing thread calls the pool's kick
 *       callback when its push makes the list non-empty and when it makes
 *       the list reach the pool's defer cap, so a sleeping owner wakes up
 *       and drains (the userspace IPI).  The kick is meant to wake the
 *       owner only if it sleeps (one fence and one load otherwise): one
 *       wake-up per idle period, never one per release.
 *
 *   The bound: a buffer released off the owner waits at most until the
 *   owner's next batch ends if the owner is awake, and, if it sleeps, until
 *   the wake-up that the push making the list non-empty sends.  An owner
 *   loop must therefore, after announcing that it sleeps, fence and check
 *   zc_pool_pending() (the stack's reactors do).
 *   Release callbacks of external memory always run on the owner thread,
 *   from zc_pool_drain() or from the zc_buf_put() that drops the last
 *   reference there, so applications need no locks around them.
 *
 * DOC: Required call sequence, and which calls are owner-only
 *
 *   owner thread:   zc_pool_create()          (binds the calling thread)
 *                   loop { zc_buf_alloc() ... hand out views ...
 *                          zc_pool_drain() }  (end of every batch)
 *                   zc_pool_destroy()         (-EBUSY while buffers live)
 *   owner only:     zc_buf_alloc(), zc_chain_pullup() when it must copy
 *                   (both -EPERM elsewhere), zc_pool_destroy() and
 *                   zc_pool_trim() (-EPERM elsewhere), zc_pool_drain() (a no-op returning 0
 *                   elsewhere), zc_pool_set_kick() (before sharing).
 *   any thread:     zc_view_*, zc_chain_* but pullup, zc_buf_get/put,
 *                   zc_buf_inflight_get/put, zc_buf_wrap, zc_pool_stats,
 *                   zc_pool_pending, zc_pool_is_owner
 *
 * Errors are negative errno values; errno is never set; nothing here aborts
 * on bad input.  assert() guards only this module's own invariants.
 */
#ifndef ZCRPC_ALLOC_H
#define ZCRPC_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ZC_API __attribute__((visibility("default")))
#define ZC_MUST_CHECK __attribute__((warn_unused_result))
#else
#define ZC_API
#define ZC_MUST_CHECK
#endif

/* Buffer sizes a pool accepts: a multiple of 4 KiB in this range. */
#define ZC_BUF_SIZE_MIN (4u * 1024)
#define ZC_BUF_SIZE_MAX (256u * 1024)
/* Default number of deferred buffers that makes the pusher kick the owner
 * (the userspace net.core.skb_defer_max). */
#define ZC_DEFER_MAX_DEFAULT 64u

struct zc_pool;
struct zc_buf;

/*
 * How buffers released off the owner thread find their way back.  OWNER is
 * zcrpc's design; the other two exist so that benchmarks compare the
 * strategies through one code path.
 *
 * ZC_FREE_OWNER  - pool buffers; remote releases go to the owner's lock-free
 *                  defer list (default).
 * ZC_FREE_LOCAL  - every zc_buf_alloc() takes fresh memory from the C
 *                  allocator (malloc/aligned_alloc) and the last release
 *                  frees it on whatever thread drops it: the "free on the
 *                  consuming CPU" baseline.  Buffers of this mode cannot be
 *                  registered with io_uring (no slabs).
 * ZC_FREE_LOCKED - pool buffers behind one mutex: every alloc and every
 *                  release, local or remote, takes the lock.
 */
enum zc_free_mode {
	ZC_FREE_OWNER = 0,
	ZC_FREE_LOCAL,
	ZC_FREE_LOCKED,
};

/* Name of a free mode ("owner", "local", "locked"), or NULL. */
ZC_API const char *zc_free_mode_name(enum zc_free_mode mode);
/* Parse a name back; returns 0 or -EINVAL. */
ZC_API int zc_free_mode_parse(const char *name, enum zc_free_mode *out);

/*
 * Pool configuration.  Zero fields take the documented default.
 */
struct zc_pool_config {
	/* Bytes per buffer: multiple of 4096 in [ZC_BUF_SIZE_MIN,
	 * ZC_BUF_SIZE_MAX].  Default 64 KiB. */
	size_t buf_size;
	/* Hard cap on the bytes of buffer data the pool may hold (in use or
	 * free).  zc_buf_alloc() answers -ENOBUFS past it.  Default 64 MiB. */
	size_t max_bytes;
	/* Bytes per slab, rounded down to whole buffers (at least one).
	 * Slabs are mmap()ed lazily as the pool grows.  Default 2 MiB. */
	size_t slab_bytes;
	/* Defer-list length at which the pusher kicks the owner.
	 * Default ZC_DEFER_MAX_DEFAULT; values above 65535 are clamped (the
	 * list's depth is kept in 16 spare bits of its head word). */
	unsigned defer_max;
	enum zc_free_mode free_mode;
	/* Called on the pushing thread each time a push makes the defer list
	 * non-empty or makes it reach defer_max (see "Who releases, and
	 * where").  It must be async-signal-safe in spirit: wake the owner
	 * if it sleeps (eventfd write, io_uring msg_ring), nothing more, and
	 * cost next to nothing when the owner is awake.
	 * @kick_arg must stay valid until zc_pool_destroy() returns 0, which
	 * waits for a kick still in progress.
	 * May be NULL; see also zc_pool_set_kick(). */
	void (*kick)(void *arg);
	void *kick_arg;
	/* Called on the owner thread each time a new slab is mapped, so that a
	 * layer above can register it (io_uring_register_buffers_update).
	 * @index is the slab's index, as zc_buf_slab_index() reports it.
	 * A negative return fails the allocation that grew the pool with that
	 * value.  May be NULL.  Never called in ZC_FREE_LOCAL mode. */
	int (*on_slab)(void *arg, unsigned index, void *base, size_t len);
	void *on_slab_arg;
	/* Called on the owner thread by zc_pool_trim() for each slab it gives
	 * back, before the slab is unmapped, so that the layer above removes
	 * it from wherever on_slab put it (io_uring's fixed-buffer table).
	 * Every buffer of the slab is free when it is called: no view, no
	 * in-flight send, nothing in a receive ring (see zc_pool_trim()).
	 * Its index may be handed to on_slab again for a later slab.  Gets
	 * on_slab_arg.  May be NULL.  Not called by zc_pool_destroy(). */
	void (*on_slab_release)(void *arg, unsigned index, void *base,
				size_t len);
	/* Most bytes of large regions kept for reuse after their last
	 * release (see zc_buf_alloc_large()).  Default max_bytes. */
	size_t large_cache_bytes;
	/* Called on the owner thread when zc_buf_alloc_large() maps a new
	 * region (not for one taken from the cache, nor for regions mapped
	 * off the owner), with the bytes the caller will use, so that a layer
	 * above can have them populated away from its loop (the stack: an
	 * asynchronous MADV_POPULATE_WRITE).  Gets on_slab_arg.  May be NULL. */
	void (*on_large_map)(void *arg, void *base, size_t len);
};

/*
 * Counters of one pool.  Each is written by one side only (owner thread or,
 * for kicks, the rare pusher that crosses the cap), so reading them costs
 * the hot path nothing.  zc_pool_stats() takes a consistent-enough snapshot
 * from any thread; exact values need the owner thread.
 * released_owner, deferred and drained count external buffers as well as
 * pool buffers; so, with ZC_FREE_OWNER, allocated + ext_wrapped ==
 * released_owner + drained + buffers still held or queued.
 */
struct zc_pool_stats {
	uint64_t allocated;        /* zc_buf_alloc() successes */
	uint64_t released_owner;   /* last reference dropped on the owner */
	uint64_t deferred;         /* pushed to the defer list (drained + pending) */
	uint64_t drained;          /* taken back by zc_pool_drain() */
	uint64_t kicks;            /* kick callbacks made */
	uint64_t pool_empty;       /* zc_buf_alloc() answered -ENOBUFS */
	uint64_t released_local;   /* ZC_FREE_LOCAL: freed off the owner */
	uint64_t released_locked;  /* ZC_FREE_LOCKED: returned under the lock */
	uint64_t ext_wrapped;      /* zc_buf_wrap() successes */
	uint64_t ext_released;     /* external release callbacks run */
	uint64_t in_use;           /* pool buffers handed out, not yet back */
	uint64_t bytes_mapped;     /* slab bytes mapped (or malloc'ed, LOCAL) */
	uint64_t slabs_trimmed;    /* slabs given back by zc_pool_trim() */
	uint64_t large_bytes;      /* large regions mapped, in use or cached */
	uint64_t large_cached;     /* of which cached, no buffer using them */
	uint64_t large_reused;     /* zc_buf_alloc_large() served warm */
};

/* -------------------------------------------------------------------------
 * Pools
 */

/*
 * Create a pool owned by the calling thread.
 * Returns 0 and sets *@out, or -EINVAL for a bad size or mode, -ENOMEM,
 * -ENOTSUP when the allocator's addresses do not fit the 48 bits a defer
 * list packs (tagged pointers, a 57-bit address space).
 * Ownership: the caller holds the pool and must zc_pool_destroy() it.
 * No memory is mapped until the first zc_buf_alloc().
 */
ZC_API ZC_MUST_CHECK int zc_pool_create(const struct zc_pool_config *cfg,
					struct zc_pool **out);

/*
 * Make the calling thread the pool's owner thread (a reactor started on a
 * new thread calls this first).  The previous owner thread must no longer
 * use the pool as its owner.  Pending deferred buffers stay queued.
 */
ZC_API void zc_pool_bind(struct zc_pool *pool);

/* True when the calling thread is the pool's owner thread. */
ZC_API bool zc_pool_is_owner(const struct zc_pool *pool);

/* Install or replace the kick callback (owner thread, before sharing). */
ZC_API void zc_pool_set_kick(struct zc_pool *pool, void (*kick)(void *),
			     void *arg);

/*
 * Owner thread only.  Take back every buffer pushed by other threads:
 * pool buffers return to the free list, external memory has its release
 * callback run here.  Returns the number of buffers taken (0, doing
 * nothing, when called off the owner thread).  Cheap when the list is
 * empty (one load), so call it at the end of every batch.
 */
ZC_API unsigned zc_pool_drain(struct zc_pool *pool);

/*
 * Any thread.  True when a deferred buffer waits for zc_pool_drain().  The
 * load is relaxed: an owner deciding whether it may sleep stores its
 * "sleeping" flag, issues a full fence (atomic_thread_fence(seq_cst)),
 * then calls this, pairing with the fence its kick callback issues after
 * the push.
 */
ZC_API bool zc_pool_pending(const struct zc_pool *pool);

/*
 * Owner thread only (-EPERM elsewhere).  Drain, then, if no buffer of the
 * pool is still referenced anywhere, unmap everything and free the pool:
 * returns 0 and the pool is gone.  If buffers are still held (views on
 * other threads, in-flight sends, external memory not yet released)
 * returns -EBUSY and the pool stays fully usable: release them and call
 * again.
 */
ZC_API ZC_MUST_CHECK int zc_pool_destroy(struct zc_pool *pool);

/* Snapshot of the counters; callable from any thread. */
ZC_API void zc_pool_stats(const struct zc_pool *pool,
			  struct zc_pool_stats *out);

/*
 * Owner thread only (-EPERM elsewhere).  Give memory back after a peak:
 * unmap slabs none of whose buffers is referenced, while the pool keeps
 * at least the larger of @floor bytes and the most buffer bytes in use at
 * once since the previous zc_pool_trim() (the high-water mark, reset by
 * each call).  So a caller that trims once per period gives back what
 * the last period did not need, and keeps what a steady load uses.
 * Deferred pool buffers are taken back first.  For each slab given back,
 * on_slab_release runs, then the slab is unmapped and its headers freed;
 * the free list keeps none of them.  Returns the number of slabs given
 * back (0 in ZC_FREE_LOCAL mode, which has no slabs), or -ENOMEM.
 * Cached large regions (zc_buf_alloc_large()) that no allocation took
 * since the previous call are retired too, in every mode (given back by
 * zc_pool_reclaim()).
 *
 * The rule that makes this safe: a slab is unmapped only when every one of
 * its buffers is on the free list, that is when its last reference (view,
 * clone, zc_buf_get(), in-flight send) has been dropped.  Memory lent to
 * the kernel must therefore hold a reference for as long as the kernel
 * may touch it: a provided-buffer ring holds one per buffer it stocks, a
 * zero-copy send one in-flight reference until its notification.  A
 * buffer handed to the kernel without a reference could be unmapped under
 * it.  Registered memory (on_slab) is unregistered by on_slab_release
 * before the unmap.
 */
ZC_API int zc_pool_trim(struct zc_pool *pool, size_t floor);

/* Buffer size of the pool. */
ZC_API size_t zc_pool_buf_size(const struct zc_pool *pool);
/* The byte cap of the pool (its configured max_bytes). */
ZC_API size_t zc_pool_max_bytes(const struct zc_pool *pool);
/* Any thread.  Bytes the pool can still hand out before -ENOBUFS: the cap
 * less the buffers out now (a snapshot; released buffers waiting on the
 * defer list still count as out).  Users that keep received buffers for
 * long compare it to the cap to decide when to copy instead. */
ZC_API size_t zc_pool_headroom(const struct zc_pool *pool);

/* -------------------------------------------------------------------------
 * Buffers (the tracker)
 */

/*
 * Owner thread only.  Take one buffer from the pool.
 * Returns 0 with *@out holding one reference (the caller's, exclusive, so
 * the caller may write the data), or -EPERM off the owner thread, -ENOBUFS
 * when the pool is at its byte cap with nothing free, -ENOMEM when mapping
 * a slab failed, -ENOTSUP when the allocator's addresses cannot be packed
 * in a defer list (tagged pointers, a 57-bit address space), or the
 * negative value of the on_slab callback.  On error *@out is untouched and
 * nothing is held.  With an empty free list, ZC_FREE_OWNER first takes
 * back the pool buffers of the defer list (external memory waits for the
 * next zc_pool_drain(), so an allocation never runs a release callback).
 */
ZC_API ZC_MUST_CHECK int zc_buf_alloc(struct zc_pool *pool,
				      struct zc_buf **out);

/*
 * Any thread.  Wrap application memory [@data, @data + @len) so it can be
 * sent without copying.  @release(@arg, @data) runs exactly once, on
 * @pool's owner thread, after the last view AND the last in-flight kernel
 * reference are gone; only then may the application reuse or free the
 * memory.  Returns 0 with *@out holding one reference (the caller's), or
 * -EINVAL (NULL data or release, len 0 or over UINT32_MAX), -ENOMEM (the
 * header could not be allocated), -ENOTSUP (its address cannot be packed
 * in a defer list); on error @release is never called and the memory
 * stays the caller's.
 */
ZC_API ZC_MUST_CHECK int zc_buf_wrap(struct zc_pool *pool, void *data,
				     size_t len,
				     void (*release)(void *arg, void *data),
				     void *arg, struct zc_buf **out);

/* Smallest request zc_buf_alloc_large() serves from a mapped region. */
#define ZC_LARGE_MIN ((size_t)128 * 1024)

/*
 * Any thread (the cache is used on the owner thread only).  Memory of its
 * own for one message of @len bytes, outside the pool's slabs and its
 * byte cap: a layer above charges it to whoever asked.  From ZC_LARGE_MIN
 * up it is a region of the next power-of-two size, taken warm from the
 * pool's cache when one is there (no page fault, no zeroing on first
 * touch) and otherwise mapped; below it, malloc'ed.  The data is not
 * zeroed.  Returns 0 with *@out holding one reference (the caller's,
 * exclusive: it may write; zc_buf_capacity() is @len), or -EINVAL (@len 0
 * or over UINT32_MAX), -ENOMEM, -ENOTSUP (as zc_buf_wrap()).
 * Ownership: the buffer is external memory of @pool (zc_buf_is_external());
 * after its last reference, view or in-flight, its region goes back to
 * the cache on the owner thread, or, once the cache holds
 * large_cache_bytes, is retired: unmapped later by zc_pool_reclaim(), a
 * slice at a time, since unmapping a populated region costs about as much
 * as copying it.  zc_pool_trim() retires cached regions that no
 * allocation took for one whole period; zc_pool_destroy() unmaps all.
 */
ZC_API ZC_MUST_CHECK int zc_buf_alloc_large(struct zc_pool *pool, size_t len,
					    struct zc_buf **out);

/* Any thread (a snapshot).  Bytes of large regions cached for reuse: an
 * owner loop that trims keeps trimming while this is not zero. */
ZC_API size_t zc_pool_large_cached(const struct zc_pool *pool);

/*
 * Owner thread only (elsewhere it does nothing and returns 0).  Unmap up
 * to @budget bytes of retired large regions (see zc_buf_alloc_large());
 * returns the bytes still waiting.  An owner loop calls it with a small
 * budget at the end of busy batches, so that giving back a peak never
 * stalls the loop, and with a larger one when idle.
 */
ZC_API size_t zc_pool_reclaim(struct zc_pool *pool, size_t budget);

/* Take one more reference on @buf (any thread, caller already holds one). */
ZC_API void zc_buf_get(struct zc_buf *buf);

/*
 * Drop one reference (any thread).  If it was the last reference of either
 * kind, the buffer is released as "Who releases, and where" says.  The
 * caller must not touch @buf afterwards.
 */
ZC_API void zc_buf_put(struct zc_buf *buf);

/*
 * Take / drop an in-flight kernel reference: the stack takes one per
 * zero-copy send covering @buf when it submits, and drops it only on that
 * send's notification (IORING_CQE_F_NOTIF).  The caller of _get must
 * already hold a reference.  _put may release the buffer.
 */
ZC_API void zc_buf_inflight_get(struct zc_buf *buf);
ZC_API void zc_buf_inflight_put(struct zc_buf *buf);

/* Data pointer and capacity (pool buffer size, or wrapped length). */
ZC_API void *zc_buf_data(const struct zc_buf *buf);
ZC_API size_t zc_buf_capacity(const struct zc_buf *buf);
ZC_API struct zc_pool *zc_buf_pool(const struct zc_buf *buf);

/* Current view-side and in-flight reference counts (racy snapshot). */
ZC_API uint32_t zc_buf_refs(const struct zc_buf *buf);
ZC_API uint32_t zc_buf_inflight(const struct zc_buf *buf);

/* True when the caller's reference is the only one: it may write. */
ZC_API bool zc_buf_is_exclusive(const struct zc_buf *buf);

/* True for zc_buf_wrap() memory, false for the pool's own buffers. */
ZC_API bool zc_buf_is_external(const struct zc_buf *buf);

/*
 * Index of the slab holding @buf's data, for io_uring fixed-buffer sends
 * (buf_index), or -ENOENT for external memory and ZC_FREE_LOCAL buffers.
 */
ZC_API int zc_buf_slab_index(const struct zc_buf *buf);

/* -------------------------------------------------------------------------
 * Views: {buffer, offset, length}, each holding one reference.
 *
 * A view is a plain value type; copying the struct does NOT take a
 * reference (use zc_view_clone()).  A zeroed view ({NULL, 0, 0}) is empty
 * and may be released harmlessly.
 */
struct zc_view {
	struct zc_buf *buf; /* holds one reference, or NULL when empty */
	uint32_t off;       /* offset of the first byte in the buffer */
	uint32_t len;       /* bytes */
};

/*
 * Make a view of [@off, @off + @len) of @buf, taking a new reference.
 * Returns 0, or -EINVAL when the range is outside the buffer (nothing
 * taken).  The caller keeps its own reference on @buf either way.
 */
ZC_API ZC_MUST_CHECK int zc_view_init(struct zc_view *v, struct zc_buf *buf,
				      size_t off, size_t len);

/* Make a view that adopts the caller's reference on @buf (no new one is
 * taken).  Returns 0 or -EINVAL (range outside the buffer; then the
 * reference stays the caller's). */
ZC_API ZC_MUST_CHECK int zc_view_adopt(struct zc_view *v, struct zc_buf *buf,
				       size_t off, size_t len);

/* Pointer to the first byte of @v. */
static inline void *zc_view_data(const struct zc_view *v)
{
	return (char *)zc_buf_data(v->buf) + v->off;
}

/* A second view of the same bytes: one more reference on the buffer. */
ZC_API void zc_view_clone(const struct zc_view *v, struct zc_view *out);

/*
 * A view of [@off, @off + @len) within @v, with its own reference.
 * Returns 0, or -EINVAL when the range exceeds @v (*@out untouched).
 */
ZC_API ZC_MUST_CHECK int zc_view_slice(const struct zc_view *v, size_t off,
				       size_t len, struct zc_view *out);

/*
 * Split @v at @at: @v keeps [0, @at), *@tail gets [@at, len) with a new
 * reference.  Returns 0 or -EINVAL when @at > len.  Splitting at 0 or at
 * len yields an empty side that still holds its reference (release it).
 */
ZC_API ZC_MUST_CHECK int zc_view_split(struct zc_view *v, size_t at,
				       struct zc_view *tail);

/* Drop the view's reference and empty it. */
ZC_API void zc_view_release(struct zc_view *v);

/* -------------------------------------------------------------------------
 * Chains: ordered scatter-gather lists of views, owning their views.
 *
 * A chain is a value with a few views stored inline and a heap array past
 * that.  All operations move or share views; none copies payload bytes
 * except zc_chain_pullup().  A chain may be moved to another thread and
 * released there.
 */
#define ZC_CHAIN_INLINE 4

struct zc_chain {
	/* private: use the functions below.  Views live in heap[] when it is
	 * set, else in inl[], so a chain may be moved by plain assignment
	 * (the source must then be forgotten, not released). */
	struct zc_view *heap; /* heap array of cap views, or NULL */
	uint32_t head;        /* live views are [head, head + n) */
	uint32_t n;
	uint32_t cap;         /* ZC_CHAIN_INLINE while heap is NULL */
	size_t len;           /* total bytes (read-only for users) */
	struct zc_view inl[ZC_CHAIN_INLINE];
};

/*
 * Start an empty chain.  A zeroed struct (`struct zc_chain c = {0}`, or
 * static storage) is an empty chain too, and so is ZC_CHAIN_INIT, the
 * static initializer: zc_chain_init() is only needed to reuse a chain
 * that was moved out by assignment.
 */
#define ZC_CHAIN_INIT { .cap = ZC_CHAIN_INLINE }
ZC_API void zc_chain_init(struct zc_chain *c);

/* Total bytes / number of views. */
static inline size_t zc_chain_len(const struct zc_chain *c) { return c->len; }
static inline unsigned zc_chain_nviews(const struct zc_chain *c) { return c->n; }
/* The i-th view (0 <= i < nviews), borrowed: no reference is taken. */
static inline const struct zc_view *zc_chain_view(const struct zc_chain *c,
						  unsigned i)
{
	return &(c->heap ? c->heap : c->inl)[c->head + i];
}

/*
 * Append @v to the tail, moving its reference into the chain (@v is
 * emptied).  An empty view is accepted and dropped.  Returns 0, or -ENOMEM
 * growing the array (then @v is untouched and still the caller's).
 */
ZC_API ZC_MUST_CHECK int zc_chain_append(struct zc_chain *c, struct zc_view *v);

/*
 * Append a clone of every view of @src to @c (@src unchanged).
 * Returns 0, or -ENOMEM (then @c is unchanged).
 */
ZC_API ZC_MUST_CHECK int zc_chain_append_clone(struct zc_chain *c,
					       const struct zc_chain *src);

/*
 * Move the first @n bytes of @c to the tail of @out, splitting a view that
 * straddles the cut (both halves then share that buffer, one reference
 * each).  No payload is copied.  Returns 0, or -EINVAL when @n > len(@c),
 * -ENOMEM (then both chains are unchanged).
 */
ZC_API ZC_MUST_CHECK int zc_chain_cut(struct zc_chain *c, size_t n,
				      struct zc_chain *out);

/* Drop the first @n bytes (@n <= len), releasing whole views. */
ZC_API void zc_chain_consume(struct zc_chain *c, size_t n);

/*
 * Owner thread of @pool only when it copies (-EPERM elsewhere; a chain
 * already contiguous answers 0 on any thread).  Make the first @n bytes of @c contiguous in
 * its first view.  If they already are, nothing happens.  Otherwise one
 * buffer is taken from @pool, the bytes are copied into it, and the source
 * views are trimmed: views fully copied drop their references, a view
 * partly copied keeps its reference on the rest, so any source still shared
 * with another view or an in-flight send stays alive exactly as long as
 * they need it.  Returns 0, -EINVAL (@n > len or 0), -EMSGSIZE (@n larger
 * than @pool's buffers), -ENOBUFS/-ENOMEM from the allocation, -ENOMEM
 * growing the array; on error @c is unchanged.
 */
ZC_API ZC_MUST_CHECK int zc_chain_pullup(struct zc_chain *c, size_t n,
					 struct zc_pool *pool);

/*
 * Any thread.  Copy @len bytes of @data into new heap memory and append
 * one view of it to @c: the one-call way to build a request or answer
 * from plain bytes off the reactor (in place of malloc, zc_buf_wrap(),
 * zc_view_adopt() and zc_chain_append()).  @pool is the pool whose owner
 * thread frees the copy once the last view and the last send are done
 * (for an RPC client, zc_reactor_pool() of its reactor).  @data stays the
 * caller's and may be reused at once.  Returns 0, or -EINVAL (NULL
 * argument, @len 0 or over UINT32_MAX), -ENOMEM; on error @c is
 * unchanged.
 */
ZC_API ZC_MUST_CHECK int zc_chain_copyin(struct zc_chain *c,
					 struct zc_pool *pool,
					 const void *data, size_t len);

/* Copy up to @len bytes from offset @off of @c into @dst; returns bytes. */
ZC_API size_t zc_chain_copyout(const struct zc_chain *c, size_t off,
			       void *dst, size_t len);

/* Release every view and any heap array; @c is empty and reusable. */
ZC_API void zc_chain_release(struct zc_chain *c);

#ifdef __cplusplus
}
#endif

#endif /* ZCRPC_ALLOC_H */
