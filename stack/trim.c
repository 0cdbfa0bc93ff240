/* SPDX-License-Identifier: MIT */
/*
 * stack/trim.c - giving the pool's memory back after a peak.
 *
 * A burst maps slabs up to pool_bytes; without this they would stay mapped
 * (and registered) for the life of the reactor.  Once a period, at the end
 * of a batch, the reactor asks its pool to give back the slabs that the
 * period did not need (zc_pool_trim(): above the period's high-water mark
 * of buffers in use, wholly free).  A reactor whose pool grew does not
 * sleep longer than the period (wait_events()), so an idle reactor trims
 * too; once only the floor is left, or a few trims in a row found nothing
 * to give back, it sleeps without limit again (until the pool maps a
 * slab), and only batches that traffic brings trim further.
 *
 * Large regions cached for reuse (zc_buf_alloc_large()) are given back by
 * the same trim, once a period passed without an allocation taking them;
 * a batch that finds some cached arms the trim (zc__trim_arm_large()).
 * Regions retired by the trim or past the cache's cap are unmapped by
 * every batch a slice at a time (zc__reclaim_tick()), a bigger slice when
 * the batch had nothing else to do, and a reactor with some left waits
 * at most ZC__RECLAIM_WAIT_US: a peak of hundreds of MiB is given back
 * within a second of idleness without a batch ever stalling on it.
 *
 * The floor is the receive ring's worth of buffers, so that the next
 * burst does not map a slab at once.  Slabs leave io_uring's fixed-buffer
 * table before they are unmapped (zc__on_slab_release()).
 */
#include <time.h>

#include "internal.h"

static long long coarse_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void zc__trim_tick(struct zc_reactor *r)
{
	size_t floor = (size_t)r->cfg.rx_ring_entries * r->cfg.rxbuf_size;
	size_t cached = zc_pool_large_cached(r->pool);
	struct zc_pool_stats ps;
	long long now = coarse_us();
	int ret;

	if (now < r->trim_next_us)
		return;
	r->trim_next_us = now + ZC__TRIM_PERIOD_US;
	ret = zc_pool_trim(r->pool, floor);
	zc_pool_stats(r->pool, &ps);
	if (ps.bytes_mapped <= floor && !ps.large_cached) {
		r->trim_armed = false;
		r->trim_wake = false;
		return;
	}
	/* Trims that give nothing back for a while (slabs pinned by buffers
	 * in use: an idle ring's, a held view) no longer wake an idle
	 * reactor; batches that traffic brings keep trimming, and traffic is
	 * what frees those buffers.  Cached large regions always go within
	 * two periods, so they keep an idle reactor waking until they have. */
	r->trim_idle = ret > 0 || ps.large_cached < cached ? 0 :
							    r->trim_idle + 1;
	r->trim_wake = r->trim_idle < ZC__TRIM_TRIES || ps.large_cached;
}

void zc__reclaim_tick(struct zc_reactor *r, bool busy)
{
	r->reclaim_pending = zc_pool_reclaim(r->pool, busy ? ZC__RECLAIM_SLICE :
							      ZC__RECLAIM_IDLE) != 0;
}

void zc__trim_arm_large(struct zc_reactor *r)
{
	if (r->trim_armed || !zc_pool_large_cached(r->pool))
		return;
	r->trim_armed = true;
	r->trim_wake = true;
	r->trim_idle = 0;
}
