/* SPDX-License-Identifier: MIT */
/*
 * ol_counts.h - what an open-loop run counts, shared by zcperf --rate
 * (bench/zcperf/openloop.h) and the peers' --rate (bench/peers), so that
 * bench/compare reads the same numbers from both.
 *
 * Every intended send time of the window ends as exactly one of sent
 * (answered, issued within the late threshold of its time), late
 * (answered, issued later) or failed (not answered; unsent at the end is
 * a part of it): sent + late + failed == scheduled once the run is over.
 */
#ifndef ZC_BENCH_OL_COUNTS_H
#define ZC_BENCH_OL_COUNTS_H

#include <stdint.h>

struct bench_ol_counts {
	uint64_t scheduled;
	uint64_t sent;
	uint64_t late;
	uint64_t failed;     /* includes unsent */
	uint64_t unsent;     /* never sent before the end of the window */
	uint64_t max_lag_ns; /* worst issue time minus intended time */
};

static inline void bench_ol_counts_add(struct bench_ol_counts *dst,
				       const struct bench_ol_counts *src)
{
	dst->scheduled += src->scheduled;
	dst->sent += src->sent;
	dst->late += src->late;
	dst->failed += src->failed;
	dst->unsent += src->unsent;
	if (src->max_lag_ns > dst->max_lag_ns)
		dst->max_lag_ns = src->max_lag_ns;
}

#endif /* ZC_BENCH_OL_COUNTS_H */
