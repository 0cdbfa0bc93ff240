/* SPDX-License-Identifier: MIT */
/*
 * hist.c - log-linear latency histogram (see hist.h for the geometry).
 */
#include <string.h>

#include "hist.h"

#define SUB (1u << ZP_HIST_SUB_BITS)
#define HALF (SUB >> 1)

static unsigned msb64(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

static unsigned bucket_of(uint64_t v)
{
	unsigned e, shift;

	if (v < SUB)
		return (unsigned)v;
	e = msb64(v);
	/* Keep the top ZP_HIST_SUB_BITS bits: m is in [HALF, SUB). */
	shift = e - ZP_HIST_SUB_BITS + 1;
	return SUB + (e - ZP_HIST_SUB_BITS) * HALF +
	       (unsigned)((v >> shift) - HALF);
}

/* Highest value that falls in bucket @i. */
static uint64_t bucket_top(unsigned i)
{
	unsigned octave, shift;
	uint64_t m;

	if (i < SUB)
		return i;
	octave = (i - SUB) / HALF;
	m = HALF + (i - SUB) % HALF;
	shift = octave + 1;
	return ((m + 1) << shift) - 1;
}

void zp_hist_reset(struct zp_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min_ns = UINT64_MAX;
}

void zp_hist_record(struct zp_hist *h, uint64_t ns)
{
	uint64_t v = ns;

	if (v >= (1ull << ZP_HIST_MAX_SHIFT)) {
		v = (1ull << ZP_HIST_MAX_SHIFT) - 1;
		h->clamped++;
	}
	h->bucket[bucket_of(v)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void zp_hist_merge(struct zp_hist *dst, const struct zp_hist *src)
{
	unsigned i;

	if (!src->count)
		return;
	for (i = 0; i < ZP_HIST_NBUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	dst->clamped += src->clamped;
	if (src->min_ns < dst->min_ns)
		dst->min_ns = src->min_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t zp_hist_quantile(const struct zp_hist *h, double q)
{
	uint64_t rank, seen = 0, top;
	unsigned i;

	if (!h->count)
		return 0;
	if (q <= 0)
		return h->min_ns;
	rank = (uint64_t)(q * (double)h->count + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank >= h->count)
		return h->max_ns;
	for (i = 0; i < ZP_HIST_NBUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	if (i >= ZP_HIST_NBUCKETS - 1)
		/* The top bucket also holds the clamped values. */
		return h->max_ns;
	top = bucket_top(i);
	if (top > h->max_ns)
		top = h->max_ns;
	if (top < h->min_ns)
		top = h->min_ns;
	return top;
}

void zp_hist_summary(const struct zp_hist *h, struct zp_lat *out)
{
	memset(out, 0, sizeof(*out));
	out->samples = h->count;
	if (!h->count)
		return;
	out->min = (double)h->min_ns / 1e3;
	out->mean = (double)h->sum_ns / (double)h->count / 1e3;
	out->p50 = (double)zp_hist_quantile(h, 0.50) / 1e3;
	out->p90 = (double)zp_hist_quantile(h, 0.90) / 1e3;
	out->p99 = (double)zp_hist_quantile(h, 0.99) / 1e3;
	out->p999 = (double)zp_hist_quantile(h, 0.999) / 1e3;
	out->max = (double)h->max_ns / 1e3;
}
