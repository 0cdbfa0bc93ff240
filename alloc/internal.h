/* SPDX-License-Identifier: MIT */
/*
 * alloc/internal.h - private layout of buffers and pools, shared by the
 * files of alloc/ only.  Nothing outside alloc/ may include it.
 */
#ifndef ZCRPC_ALLOC_INTERNAL_H
#define ZCRPC_ALLOC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zcrpc/alloc.h>

#define ZC__CACHELINE 64

/* Reference word: low half views, high half in-flight (see alloc.h). */
#define ZC__REF_VIEW	 ((uint64_t)1)
#define ZC__REF_INFLIGHT ((uint64_t)1 << 32)

enum zc__buf_kind {
	ZC__BUF_POOL,  /* data in a slab, header in the slab's array */
	ZC__BUF_LOCAL, /* ZC_FREE_LOCAL: header and data malloc'ed per alloc */
	ZC__BUF_EXT,   /* zc_buf_wrap(): application memory, malloc'ed header */
};

/*
 * The tracker.  One cache line each, so that remote threads dropping
 * references on neighbouring buffers do not share a line.
 */
struct zc_buf {
	/* Written by every holder, any thread. */
	_Atomic uint64_t ref;
	/* Immutable while the buffer is handed out. */
	struct zc_pool *pool;
	void *data;
	uint32_t cap;
	uint8_t kind;	   /* enum zc__buf_kind */
	/* ZC__BUF_POOL: its slab is to be given back (trim.c), so an owner
	 * return parks it on the pool's draining list.  Owner-written. */
	bool draining;
	uint32_t slab;	   /* ZC__BUF_POOL: index of the slab */
	union {
		struct { /* ZC__BUF_EXT */
			void (*release)(void *arg, void *data);
			void *release_arg;
		};
		/* ZC__BUF_POOL, free: on the top node of a drained defer
		 * list, the next such list (see zc_pool.free_chains). */
		struct zc_buf *chain_next;
	};
	/*
	 * Link on the pool's free list (owner or mutex) or on its defer list.
	 * Only touched by whoever holds the buffer after its last reference
	 * went: the releasing thread until its push is published, then the
	 * owner after it took the list.
	 */
	struct zc_buf *next;
} __attribute__((aligned(ZC__CACHELINE)));

_Static_assert(sizeof(struct zc_buf) == ZC__CACHELINE, "one line per header");

/* Size classes of large regions: ZC_LARGE_MIN << 0 .. << 15 (4 GiB). */
#define ZC__LARGE_CLASSES 16
struct zc__large;

struct zc__slab {
	void *base;	      /* mmap()ed, page aligned */
	size_t len;
	struct zc_buf *hdrs;  /* nbufs headers */
	uint32_t nbufs;
};

/*
 * Defer list head: a Treiber stack whose 64-bit word packs the top node's
 * address (low ZC__DEFER_PTR_BITS) and the list's depth (high bits,
 * saturating).  Keeping the depth in the head word lets a pusher learn the
 * depth its push makes without dereferencing the old top node, which the
 * owner may already have taken and freed (external headers are freed on
 * drain).
 */
#if UINTPTR_MAX == UINT64_MAX
#define ZC__DEFER_PTR_BITS 48
#else
#define ZC__DEFER_PTR_BITS 32
#endif
#define ZC__DEFER_PTR_MASK  (((uint64_t)1 << ZC__DEFER_PTR_BITS) - 1)
#define ZC__DEFER_DEPTH_MAX 0xffffu /* also the largest defer_max */

/*
 * True when every header up to (not including) @end can be packed: the
 * allocator's addresses fit the pointer bits.  Checked, in release builds
 * too, wherever headers are allocated (pool, slab, zc_buf_wrap()), so a
 * platform that tags pointers or maps above 2^48 fails with -ENOTSUP at
 * allocation instead of corrupting a defer list.
 */
static inline bool zc__defer_ptr_ok(const void *end)
{
	return ((uintptr_t)end & ~ZC__DEFER_PTR_MASK) == 0;
}

static inline uint64_t zc__defer_pack(struct zc_buf *top, uint32_t depth)
{
	return (uint64_t)(uintptr_t)top | ((uint64_t)depth << ZC__DEFER_PTR_BITS);
}

static inline struct zc_buf *zc__defer_top(uint64_t word)
{
	return (struct zc_buf *)(uintptr_t)(word & ZC__DEFER_PTR_MASK);
}

static inline uint32_t zc__defer_depth(uint64_t word)
{
	return (uint32_t)(word >> ZC__DEFER_PTR_BITS);
}

struct zc_pool {
	/*
	 * ---- read-mostly: read by every release, on any thread ----
	 * Immutable after create (set_kick: before sharing; owner: bind).
	 */
	size_t buf_size;
	size_t max_bytes;
	size_t slab_bytes;	/* whole buffers */
	uint32_t defer_max;
	enum zc_free_mode mode;
	void (*kick)(void *arg);
	void *kick_arg;
	int (*on_slab)(void *arg, unsigned index, void *base, size_t len);
	void (*on_slab_release)(void *arg, unsigned index, void *base,
				size_t len);
	void (*on_large_map)(void *arg, void *base, size_t len);
	void *on_slab_arg;
	/* The owner thread's token (see zc__self()). */
	_Atomic(const void *) owner;

	/* ---- owner thread only (LOCKED: under lock) ---- */
	_Alignas(ZC__CACHELINE) struct zc_buf *free;	/* LIFO free list of pool buffers */
	/*
	 * Whole defer lists taken back by a drain, each NULL-terminated and
	 * linked to the next by its top node's chain_next; each becomes the
	 * free list once the current one runs out.  Adopting a list whole
	 * keeps the drain O(1) (one header written per list): walking it
	 * would chase, one cache miss after another, headers last written on
	 * the releasing CPU.  Each header is touched instead when it is
	 * allocated again, and the next one is prefetched then.
	 */
	struct zc_buf *free_chains;
	/*
	 * Free buffers of draining slabs: the ones a trim wanted to give back
	 * but could not, because some of their buffers were in use (an idle
	 * receive ring's, a held view).  Handed out only when nothing else is
	 * free, so those slabs empty as their buffers come back, and the next
	 * trim gives them back.
	 */
	struct zc_buf *draining;
	/* Slot i is slab index i; a slot whose base is NULL was trimmed and
	 * is reused by the next slab mapped (so indices stay below the most
	 * slabs ever mapped at once, the size of a fixed-buffer table). */
	struct zc__slab *slabs;
	uint32_t nslabs;
	/* Most pool buffers in use at once since the last zc_pool_trim(). */
	uint64_t in_use_hwm;
	uint32_t slabs_cap;
	pthread_mutex_t lock;	/* ZC_FREE_LOCKED only */
	/* Cached large regions by size class (large.c); the trim period
	 * they were cached in is compared with large_gen. */
	struct zc__large *large_free[ZC__LARGE_CLASSES];
	/* Regions to give back, a slice at a time (zc_pool_reclaim()). */
	struct zc__large *large_unmap;
	size_t large_unmap_bytes;
	size_t large_cache_max;
	uint32_t large_gen;

	/*
	 * Owner-written counters, read by zc_pool_stats() from anywhere:
	 * relaxed atomics updated by plain load + store (zc__cnt_add), so no
	 * locked instruction on the hot path and no data race either.
	 */
	_Atomic uint64_t allocated;
	_Atomic uint64_t released_owner;
	_Atomic uint64_t drained;
	_Atomic uint64_t pool_empty;
	_Atomic uint64_t released_locked; /* under lock, any thread */
	_Atomic uint64_t ext_released;
	_Atomic uint64_t in_use;	  /* pool buffers; LOCKED: under lock */
	_Atomic uint64_t bytes_mapped;	  /* slabs */
	_Atomic uint64_t slabs_trimmed;
	_Atomic uint64_t large_cached;	  /* bytes of cached large regions */
	_Atomic uint64_t large_reused;	  /* large allocations from the cache */
	/* Bytes of large regions mapped (in use or cached): mapped off the
	 * owner too, so a locked add. */
	_Atomic uint64_t large_bytes;

	/* ---- written by other threads: own cache lines ---- */
	/* Defer list head of pool buffers (pointer + depth), see
	 * zc__defer_pack(). */
	_Alignas(ZC__CACHELINE) _Atomic uint64_t defer;
	/* External memory has a list of its own: its headers are freed and
	 * its callbacks run on drain, so it cannot be adopted whole. */
	_Alignas(ZC__CACHELINE) _Atomic uint64_t defer_ext;
	/* Rare or non-hot-path cross-thread counters. */
	_Atomic uint64_t kicks;
	/* Pushes made while a list's packed depth was saturated, less those
	 * a drain walked past the saturation: with the packed depths, the
	 * exact number pending (see zc_pool_stats()). */
	_Atomic int64_t defer_overflow;
	_Atomic uint32_t kickers;	  /* pushers inside the kick section */
	_Atomic uint64_t ext_wrapped;
	_Atomic uint64_t released_local;  /* LOCAL: freed off the owner */
	_Atomic uint64_t local_bytes;	  /* LOCAL: bytes allocated now */
};

/* Single-writer counter update: cheap, yet race-free for readers. */
static inline void zc__cnt_add(_Atomic uint64_t *c, int64_t d)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);

	atomic_store_explicit(c, v + (uint64_t)d, memory_order_relaxed);
}

static inline uint64_t zc__cnt(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

/*
 * Identity of the calling thread: the address of a per-thread byte, so one
 * thread may own several pools and a comparison is all is_owner costs.
 */
extern _Thread_local char zc__thread_token;

static inline const void *zc__self(void)
{
	return &zc__thread_token;
}

static inline bool zc__on_owner(const struct zc_pool *pool)
{
	return atomic_load_explicit((_Atomic(const void *) *)&pool->owner,
				    memory_order_relaxed) == zc__self();
}

/* pool.c: owner-side return of a pool buffer (OWNER: owner thread only;
 * LOCKED: takes the lock). */
void zc__pool_put_buf(struct zc_pool *pool, struct zc_buf *buf);
/* pool.c: owner-side return of a whole NULL-terminated list of @n pool
 * buffers (OWNER mode, owner thread). */
void zc__pool_adopt_chain(struct zc_pool *pool, struct zc_buf *top,
			  uint32_t n);
/* pool.c: unmap slab @i and free its headers (none on a free list). */
void zc__slab_unmap(struct zc_pool *pool, uint32_t i);
/* pool.c: free a ZC__BUF_LOCAL buffer, any thread. */
void zc__pool_free_local(struct zc_pool *pool, struct zc_buf *buf);

/* buf.c: run an external buffer's callback and free its header (owner). */
void zc__ext_finish(struct zc_pool *pool, struct zc_buf *buf);

/* large.c: retire the cached large regions no allocation took since the
 * previous call, and start a new period.  With
 * @all (destroy): unmap every cached and retired region now. */
void zc__large_trim(struct zc_pool *pool, bool all);

/* defer.c: push @buf (no references left) onto @pool's defer list. */
void zc__defer_push(struct zc_pool *pool, struct zc_buf *buf);
/* defer.c: take the pool-buffer defer list back, in O(1); returns the
 * number of buffers. */
unsigned zc__defer_take_pool(struct zc_pool *pool);
/* defer.c: wait until no pusher is still inside the kick section. */
void zc__defer_quiesce(struct zc_pool *pool);

#endif /* ZCRPC_ALLOC_INTERNAL_H */
