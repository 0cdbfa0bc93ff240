/* SPDX-License-Identifier: MIT */
/*
 * hist.h - log-linear latency histogram, HdrHistogram-style.
 *
 * Values (nanoseconds) below 2^ZP_HIST_SUB_BITS are counted exactly; above,
 * each power of two is cut into 2^(ZP_HIST_SUB_BITS - 1) equal sub-buckets,
 * so every recorded value is known to within 1/128 (0.8 %) of itself, from
 * 1 ns to ZP_HIST_MAX_NS.  Recording is one shift and one add, so a reactor
 * can record every transaction; each thread records into its own histogram
 * and the report merges them.  min, max and the sum are kept exactly.
 */
#ifndef ZCPERF_HIST_H
#define ZCPERF_HIST_H

#include <stdint.h>

#define ZP_HIST_SUB_BITS 8
#define ZP_HIST_MAX_SHIFT 40 /* 2^40 ns: about 18 minutes; larger clamps */
#define ZP_HIST_NBUCKETS                                                   \
	((1u << ZP_HIST_SUB_BITS) +                                        \
	 (ZP_HIST_MAX_SHIFT - ZP_HIST_SUB_BITS) * (1u << (ZP_HIST_SUB_BITS - 1)))

struct zp_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t clamped; /* values over 2^ZP_HIST_MAX_SHIFT, counted at the top */
	uint64_t bucket[ZP_HIST_NBUCKETS];
};

/* The percentiles every report prints, in microseconds. */
struct zp_lat {
	uint64_t samples;
	double min, mean, p50, p90, p99, p999, max;
};

void zp_hist_reset(struct zp_hist *h);
void zp_hist_record(struct zp_hist *h, uint64_t ns);
/* Add every count of @src into @dst. */
void zp_hist_merge(struct zp_hist *dst, const struct zp_hist *src);
/*
 * Value at quantile @q (0 < q <= 1) in ns: the highest value equivalent to
 * the bucket that holds the ceil(q * count)-th sample, never above max.
 * 0 for an empty histogram.
 */
uint64_t zp_hist_quantile(const struct zp_hist *h, double q);
void zp_hist_summary(const struct zp_hist *h, struct zp_lat *out);

#endif /* ZCPERF_HIST_H */
