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
	struct zc_pool_stats ps;
	long long now = coarse_us();
	int ret;

	if (now < r->trim_next_us)
		return;
	r->trim_next_us = now + ZC__TRIM_PERIOD_US;
	ret = zc_pool_trim(r->pool, floor);
	zc_pool_stats(r->pool, &ps);
	if (ps.bytes_mapped <= floor) {
		r->trim_armed = false;
		r->trim_wake = false;
		return;
	}
	/* Trims that give nothing back for a while (slabs pinned by buffers
	 * in use: an idle ring's, a held view) no longer wake an idle
	 * reactor; batches that traffic brings keep trimming, and traffic is
	 * what frees those buffers. */
	r->trim_idle = ret > 0 ? 0 : r->trim_idle + 1;
	r->trim_wake = r->trim_idle < ZC__TRIM_TRIES;
}
