/* SPDX-License-Identifier: MIT */
/*
 * ol_gap.h - the gaps between an open-loop schedule's intended send times,
 * shared by zcperf's pacer (bench/zcperf/openloop.c) and the peers' --rate
 * (bench/peers/peer_common.c), so both draw the same Poisson arrivals.
 */
#ifndef ZC_BENCH_OL_GAP_H
#define ZC_BENCH_OL_GAP_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* xorshift64*: a fixed seed makes a run's schedule repeatable.  53 bits
 * in (0, 1]: the log() below never sees 0. */
static inline double bench_uniform01(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (double)(((x * 0x2545F4914F6CDD1Dull) >> 11) + 1) /
	       9007199254740992.0;
}

/* The next gap, in the unit of @mean: @mean itself, or exponential of that
 * mean for Poisson arrivals.  @seed is the caller's, advanced. */
static inline double bench_ol_gap(uint64_t *seed, double mean, bool poisson)
{
	return poisson ? -log(bench_uniform01(seed)) * mean : mean;
}

#endif /* ZC_BENCH_OL_GAP_H */
