/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/guard.h - place parser input flush against an unmapped page, so
 * that a decoder reading one byte too far faults at once (picohttpparser's
 * trick) instead of reading stale memory silently.
 */
#ifndef ZCRPC_TESTS_RPC_GUARD_H
#define ZCRPC_TESTS_RPC_GUARD_H

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages of room before the guard: a frame with a ZC_FRAG_MIN payload
 * (4 KiB + its header) must fit. */
#define GUARD_DATA_PAGES 2

struct guard {
	unsigned char *base;
	size_t page;
};

static inline int guard_init(struct guard *g)
{
	g->page = (size_t)sysconf(_SC_PAGESIZE);
	g->base = mmap(NULL, (GUARD_DATA_PAGES + 1) * g->page,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (g->base == MAP_FAILED)
		return -1;
	return mprotect(g->base + GUARD_DATA_PAGES * g->page, g->page,
			PROT_NONE);
}

/* Copy @len bytes (<= GUARD_DATA_PAGES pages) so that the last one is
 * the last byte before the guard page. */
static inline const void *guard_place(struct guard *g, const void *p,
				      size_t len)
{
	unsigned char *dst = g->base + GUARD_DATA_PAGES * g->page - len;

	memcpy(dst, p, len);
	return dst;
}

static inline void guard_fini(struct guard *g)
{
	munmap(g->base, (GUARD_DATA_PAGES + 1) * g->page);
}

#endif
