/* SPDX-License-Identifier: MIT */
/*
 * runs_stats.h - the statistics of the bench tools' interleaved runs.
 */
#ifndef ZC_BENCH_RUNS_STATS_H
#define ZC_BENCH_RUNS_STATS_H

#include <stdlib.h>

static inline int runs_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sort the @n > 0 values of @v in place (so v[0] is the min and v[n - 1]
 * the max) and return their median. */
static inline double runs_sort_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), runs_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* ZC_BENCH_RUNS_STATS_H */
