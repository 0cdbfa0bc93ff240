/* SPDX-License-Identifier: MIT */
/*
 * rpc/hist.c - the latency histograms of rpc/hist.h.
 */
#include <stdlib.h>
#include <string.h>

#include "hist.h"

static unsigned bucket_of(uint64_t ns)
{
	unsigned msb, shift;

	if (ns < ZC__HIST_EXACT)
		return (unsigned)ns;
	if (ns >> ZC__HIST_TOP_SHIFT)
		return ZC__HIST_NB - 1;
	msb = 63u - (unsigned)__builtin_clzll(ns);	/* >= 4 */
	shift = msb - 3u;	/* keep the top 4 bits: 8 steps of 2^shift */
	return ZC__HIST_EXACT + (msb - 4u) * ZC__HIST_SUB +
	       (unsigned)((ns >> shift) & (ZC__HIST_SUB - 1));
}

/* The largest value that falls in bucket @i. */
static uint64_t bucket_top(unsigned i)
{
	unsigned octave, step, shift;

	if (i < ZC__HIST_EXACT)
		return i;
	octave = (i - ZC__HIST_EXACT) / ZC__HIST_SUB;	/* msb - 4 */
	step = (i - ZC__HIST_EXACT) % ZC__HIST_SUB;
	shift = octave + 1u;
	return ((uint64_t)(ZC__HIST_SUB + step + 1) << shift) - 1;
}

void zc__hist_add(struct zc__hist *h, uint64_t ns)
{
	atomic_uint_fast64_t *b = &h->b[bucket_of(ns)];

	/* Single writer: a plain increment, published relaxed. */
	atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed)
				 + 1, memory_order_relaxed);
	if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
		atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

void zc__hist_read(const struct zc__hist *h, unsigned n,
		   struct zc_rpc_latency *out)
{
	static const double q[] = { 0.5, 0.9, 0.99, 0.999 };
	uint64_t sum[ZC__HIST_NB] = { 0 }, count = 0, seen = 0, max = 0;
	uint64_t *pct[] = { &out->p50_ns, &out->p90_ns, &out->p99_ns,
			    &out->p999_ns };
	unsigned k = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned s = 0; s < n; s++) {
		uint64_t m = atomic_load_explicit(&h[s].max_ns,
						  memory_order_relaxed);

		max = m > max ? m : max;
		for (unsigned i = 0; i < ZC__HIST_NB; i++)
			sum[i] += atomic_load_explicit(&h[s].b[i],
						       memory_order_relaxed);
	}
	for (unsigned i = 0; i < ZC__HIST_NB; i++)
		count += sum[i];
	out->count = count;
	if (!count)
		return;
	for (unsigned i = 0; i < ZC__HIST_NB && k < 4; i++) {
		seen += sum[i];
		/* The bucket holding the ceil(q * count)-th sample. */
		while (k < 4 && (double)seen >= q[k] * (double)count) {
			uint64_t top = bucket_top(i);

			*pct[k++] = top < max ? top : max;
		}
	}
	out->max_ns = max;
}
