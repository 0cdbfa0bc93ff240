/* SPDX-License-Identifier: MIT */
/*
 * rpc/hist.h - latency histograms of the server's methods and of
 * clients: log-linear buckets of relaxed atomic counters.  One thread
 * writes a histogram (a reactor: the server keeps one per method and
 * reactor, a client one of its own), so recording is a few loads and
 * stores, no lock, no read-modify-write; any thread reads, summing the
 * shards, and may see a sample counted in one bucket but not yet in max.
 *
 * Values below 16 ns are exact; above, each power of two is cut into 8
 * buckets, so a percentile is known to within 1/16 (6.25 %) of itself, up
 * to 2^40 ns (about 18 minutes; larger values count in the top bucket).
 */
#ifndef ZCRPC_RPC_HIST_H
#define ZCRPC_RPC_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#include <zcrpc/rpc.h>

#define ZC__HIST_EXACT 16u		/* values counted one per bucket */
#define ZC__HIST_SUB 8u			/* buckets per power of two above */
#define ZC__HIST_TOP_SHIFT 40u
#define ZC__HIST_NB (ZC__HIST_EXACT + \
		     (ZC__HIST_TOP_SHIFT - 4u) * ZC__HIST_SUB)

struct zc__hist {
	atomic_uint_fast64_t max_ns;
	atomic_uint_fast64_t b[ZC__HIST_NB];
};

/* The writer thread of @h only. */
void zc__hist_add(struct zc__hist *h, uint64_t ns);
/* Any thread: percentiles of the sum of @n shards. */
void zc__hist_read(const struct zc__hist *h, unsigned n,
		   struct zc_rpc_latency *out);

#endif /* ZCRPC_RPC_HIST_H */
