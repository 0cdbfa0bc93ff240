/* SPDX-License-Identifier: MIT */
/*
 * openloop.c - a reactor's share of the open-loop schedule, run by the
 * reactor itself on a zc_timer (see openloop.h for the accounting).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../ol_gap.h"
#include "cpu.h"
#include "openloop.h"

#define OL_BACKLOG_MIN 1024u
/* The timer fires at most once per this: the times due in between go out
 * as one batch (and sooner, whenever an answer wakes the reactor).  The
 * pacer thread this replaces slept at least as long between batches: at
 * 130k calls/s, waking for every time made 23% of the calls late, 50 us
 * 0.6% (docs/BENCHMARKS.md).  A call waits at most this long for its
 * batch, and that wait is in its latency, measured from its intended
 * time. */
#define OL_TIMER_STEP_NS 50000ull
/* Queue 0's seed: the pacer thread's before, so that one reactor draws
 * the Poisson schedule it drew. */
#define OL_SEED 0x9E3779B97F4A7C15ull

static void timer_fn(struct zc_timer *t, int status)
{
	struct zp_olq *q = (struct zp_olq *)t;

	q->fired_ns = zp_now_ns();
	/* An early firing (status < 0) only pumps early: pump reads the
	 * clock and re-arms for what is not due yet. */
	(void)status;
	zp_ol_pump(q);
}

int zp_olq_init(struct zp_olq *q, struct zc_reactor *r, zp_ol_issue_fn issue,
		void *arg)
{
	memset(q, 0, sizeof(*q));
	q->backlog = malloc(OL_BACKLOG_MIN * sizeof(*q->backlog));
	q->lag_h = malloc(sizeof(*q->lag_h));
	q->resp_h = malloc(sizeof(*q->resp_h));
	if (!q->backlog || !q->lag_h || !q->resp_h) {
		zp_olq_fini(q);
		return -ENOMEM;
	}
	zp_hist_reset(q->lag_h);
	zp_hist_reset(q->resp_h);
	q->bcap = OL_BACKLOG_MIN;
	q->r = r;
	q->issue = issue;
	q->arg = arg;
	q->timer.fn = timer_fn;
	return 0;
}

void zp_olq_fini(struct zp_olq *q)
{
	free(q->backlog);
	free(q->lag_h);
	free(q->resp_h);
	q->backlog = NULL;
	q->lag_h = NULL;
	q->resp_h = NULL;
}

/* Append @t to the backlog, doubling it when full.  False: no memory. */
static bool backlog_push(struct zp_olq *q, uint64_t t)
{
	if (q->bcount == q->bcap) {
		uint64_t *nb = malloc(2 * q->bcap * sizeof(*nb));
		size_t i;

		if (!nb)
			return false;
		for (i = 0; i < q->bcount; i++)
			nb[i] = q->backlog[(q->bhead + i) % q->bcap];
		free(q->backlog);
		q->backlog = nb;
		q->bhead = 0;
		q->bcap *= 2;
	}
	q->backlog[(q->bhead + q->bcount) % q->bcap] = t;
	q->bcount++;
	return true;
}

static void backlog_pop(struct zp_olq *q)
{
	q->bhead = (q->bhead + 1) % q->bcap;
	q->bcount--;
}

/* True while the schedule has a time before its end. */
static bool sched_open(const struct zp_olq *q)
{
	return q->begun && q->next < (double)q->end_ns;
}

/* Take the schedule's next time (counted scheduled) and advance it. */
static uint64_t sched_take(struct zp_olq *q)
{
	uint64_t t = (uint64_t)q->next;

	q->n.scheduled++;
	q->next += bench_ol_gap(&q->seed, q->gap, q->poisson);
	return t;
}

int zp_ol_begin(struct zp_olq *q, unsigned index, unsigned nq, double rate,
		enum zp_arrival arrival, uint64_t start_ns, uint64_t end_ns)
{
	if (!nq || index >= nq || !(rate > 0))
		return -EINVAL;
	q->poisson = arrival == ZP_ARRIVAL_POISSON;
	q->gap = 1e9 * nq / rate;
	q->end_ns = end_ns;
	/* Far apart for xorshift: a multiple of an odd 64-bit constant. */
	q->seed = OL_SEED ^ (index * 0xBF58476D1CE4E5B9ull);
	/* Constant: queue i takes times i, i + nq, ... of the whole
	 * schedule.  Poisson starts one random gap in. */
	q->next = (double)start_ns +
		  (q->poisson ? bench_ol_gap(&q->seed, q->gap, true)
			      : 1e9 * index / rate);
	q->begun = true;
	return zc_timer_arm(q->r, &q->timer, (uint64_t)q->next);
}

/* When the timer fires next: at the next intended time, but not within
 * OL_TIMER_STEP_NS of its last firing. */
static uint64_t next_fire(const struct zp_olq *q)
{
	uint64_t t = (uint64_t)q->next, floor = q->fired_ns + OL_TIMER_STEP_NS;

	return t > floor ? t : floor;
}

void zp_ol_pump(struct zp_olq *q)
{
	uint64_t now;

	if (q->stopping || !q->begun)
		return;
	now = zp_now_ns();
	while (sched_open(q) && q->next <= (double)now) {
		uint64_t t = sched_take(q);

		if (!backlog_push(q, t))
			q->n.failed++; /* no memory to hold it */
	}
	while (q->bcount) {
		int ret = q->issue(q, q->backlog[q->bhead], q->arg);

		if (!ret)
			break;
		if (ret < 0)
			q->n.failed++;
		backlog_pop(q);
	}
	/* An armed timer is due at or before q->next (next only grows). */
	if (sched_open(q) && !zc_timer_armed(&q->timer) &&
	    zc_timer_arm(q->r, &q->timer, next_fire(q))) {
		/* Cannot wake for the rest: it is unsent, and says so. */
		zp_ol_stop(q);
	}
}

void zp_ol_done(struct zp_olq *q, uint64_t intended, uint64_t issued_ns,
		uint64_t answered_ns)
{
	uint64_t lag = issued_ns > intended ? issued_ns - intended : 0;

	if (lag > q->n.max_lag_ns)
		q->n.max_lag_ns = lag;
	zp_hist_record(q->lag_h, lag);
	if (!answered_ns) {
		q->n.failed++;
		return;
	}
	if (lag > ZP_LATE_NS)
		q->n.late++;
	else
		q->n.sent++;
	/* One thread's monotonic clock: answered_ns >= issued_ns. */
	zp_hist_record(q->resp_h, answered_ns - issued_ns);
}

void zp_ol_stop(struct zp_olq *q)
{
	uint64_t left = q->bcount;

	while (sched_open(q)) {
		sched_take(q);
		left++;
	}
	q->stopping = true;
	q->n.failed += left;
	q->n.unsent += left;
	q->bcount = 0;
}
