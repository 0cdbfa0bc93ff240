/* SPDX-License-Identifier: MIT */
/*
 * latch.h - a counter that reactor threads count up and the main thread
 * waits on, with a timeout so that a stuck run ends with a message.
 */
#ifndef ZCPERF_LATCH_H
#define ZCPERF_LATCH_H

#include <pthread.h>

/* Counts up to a target; the main thread waits for it with a timeout. */
struct zp_latch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned count;
};

void zp_latch_init(struct zp_latch *l);
void zp_latch_destroy(struct zp_latch *l);
void zp_latch_add(struct zp_latch *l, unsigned n);
/* Wait until count >= @target or @timeout_ms passed; returns the count. */
unsigned zp_latch_wait(struct zp_latch *l, unsigned target,
		       unsigned timeout_ms);

#endif /* ZCPERF_LATCH_H */
