/* SPDX-License-Identifier: MIT */
/*
 * latch.c - a counter the main thread waits on with a timeout, counted
 * up by reactor threads (connections made, closed, calls finished).
 */
#include <errno.h>
#include <time.h>

#include "latch.h"

void zp_latch_init(struct zp_latch *l)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &attr);
	pthread_condattr_destroy(&attr);
	l->count = 0;
}

void zp_latch_destroy(struct zp_latch *l)
{
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

void zp_latch_add(struct zp_latch *l, unsigned n)
{
	pthread_mutex_lock(&l->lock);
	l->count += n;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

unsigned zp_latch_wait(struct zp_latch *l, unsigned target,
		       unsigned timeout_ms)
{
	struct timespec ts;
	unsigned count;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	while (l->count < target &&
	       pthread_cond_timedwait(&l->cond, &l->lock, &ts) != ETIMEDOUT)
		;
	count = l->count;
	pthread_mutex_unlock(&l->lock);
	return count;
}

