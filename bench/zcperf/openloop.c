/* SPDX-License-Identifier: MIT */
/*
 * openloop.c - the pacer thread and the reactors' open-loop queues (see
 * openloop.h for the accounting).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "../ol_gap.h"
#include "cpu.h"
#include "openloop.h"

/* Intended times waiting per reactor: over a second of 64k calls/s; the
 * pacer waits for room rather than drop (the times keep their value). */
#define OL_RING (1u << 16)
#define OL_BACKLOG_MIN 1024u
/* The pacer sleeps at least this long between batches of due times.
 * Sleeping until every intended time woke it 130,000 times a second at
 * 130k calls/s, on the CPU the client's reactor runs on (bench/compare
 * pins a client to one CPU): 23% of the calls left over 1 ms late and
 * p50 was 449 us.  With 50 us: 0.6% late, p50 207 us (20, 100, 200 us:
 * p50 264, 223, 266 us).  The step delays a call by at most 50 us, and
 * that delay is in its latency, measured from the intended time. */
#define OL_PACE_STEP_NS 50000ull

/* ------------------------------------------------------------------------
 * Reactor side
 */

static void wake_fn(struct zc_work *w)
{
	struct zp_olq *q = (struct zp_olq *)((char *)w -
					      offsetof(struct zp_olq, work));

	/* Clear before draining: a time pushed after the drain then sees
	 * the flag down and queues the work again. */
	atomic_store(&q->wake_queued, false);
	zp_ol_pump(q);
}

int zp_olq_init(struct zp_olq *q, struct zc_reactor *r, zp_ol_issue_fn issue,
		void *arg)
{
	memset(q, 0, sizeof(*q));
	q->ring = malloc(OL_RING * sizeof(*q->ring));
	q->backlog = malloc(OL_BACKLOG_MIN * sizeof(*q->backlog));
	q->lag_h = malloc(sizeof(*q->lag_h));
	q->resp_h = malloc(sizeof(*q->resp_h));
	if (!q->ring || !q->backlog || !q->lag_h || !q->resp_h) {
		zp_olq_fini(q);
		return -ENOMEM;
	}
	zp_hist_reset(q->lag_h);
	zp_hist_reset(q->resp_h);
	q->mask = OL_RING - 1;
	q->bcap = OL_BACKLOG_MIN;
	q->r = r;
	q->issue = issue;
	q->arg = arg;
	q->work.fn = wake_fn;
	return 0;
}

void zp_olq_fini(struct zp_olq *q)
{
	free(q->ring);
	free(q->backlog);
	free(q->lag_h);
	free(q->resp_h);
	q->ring = NULL;
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

static void drain_inbox(struct zp_olq *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);

	for (; h != t; h++) {
		q->n.scheduled++;
		if (q->stopping || !backlog_push(q, q->ring[h & q->mask])) {
			/* After the deadline, or no memory to hold it. */
			q->n.failed++;
			if (q->stopping)
				q->n.unsent++;
		}
	}
	atomic_store_explicit(&q->head, h, memory_order_release);
}

void zp_ol_pump(struct zp_olq *q)
{
	drain_inbox(q);
	while (q->bcount && !q->stopping) {
		int ret = q->issue(q, q->backlog[q->bhead], q->arg);

		if (!ret)
			break;
		if (ret < 0)
			q->n.failed++;
		backlog_pop(q);
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
	drain_inbox(q);
	q->stopping = true;
	q->n.failed += q->bcount;
	q->n.unsent += q->bcount;
	q->bcount = 0;
}

/* ------------------------------------------------------------------------
 * Pacer
 */

static void wake(struct zp_olq *q)
{
	if (!atomic_exchange(&q->wake_queued, true))
		zc_reactor_queue(q->r, &q->work);
}

/* Push @t to @q, waiting (bounded by the run's end) while its inbox is
 * full: the reactor is behind, and the time keeps its intended value. */
static void push(struct zp_pacer *p, struct zp_olq *q, uint64_t t)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);

	while (tail - atomic_load_explicit(&q->head, memory_order_acquire) >
	       q->mask) {
		wake(q);
		if (zp_now_ns() > p->end_ns + 10000000000ull)
			return; /* a reactor that stopped draining: give up */
		zp_sleep_until(zp_now_ns() + 50000);
	}
	q->ring[tail & q->mask] = t;
	atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
}

static void *pacer_main(void *arg)
{
	struct zp_pacer *p = arg;
	double gap = 1e9 / p->rate, t = (double)p->start_ns;
	uint64_t seed = p->seed;
	unsigned next = 0, i;
	bool *touched = calloc(p->nq, sizeof(*touched));

	if (!touched)
		return NULL;
	/* The default 50 us timer slack would be a floor under every
	 * intended time's error. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (p->arrival == ZP_ARRIVAL_POISSON)
		t += bench_ol_gap(&seed, gap, true);
	while (t < (double)p->end_ns) {
		uint64_t now = zp_now_ns();

		if ((uint64_t)t > now) {
			zp_sleep_until((uint64_t)t > now + OL_PACE_STEP_NS ?
					       (uint64_t)t :
					       now + OL_PACE_STEP_NS);
			continue;
		}
		/* Everything due goes out in one batch, one wake per queue. */
		while (t <= (double)now && t < (double)p->end_ns) {
			push(p, p->qs[next], (uint64_t)t);
			touched[next] = true;
			next = (next + 1) % p->nq;
			t += bench_ol_gap(&seed, gap,
					  p->arrival == ZP_ARRIVAL_POISSON);
		}
		for (i = 0; i < p->nq; i++) {
			if (touched[i])
				wake(p->qs[i]);
			touched[i] = false;
		}
	}
	free(touched);
	return NULL;
}

int zp_pacer_start(struct zp_pacer *p, struct zp_olq **qs, unsigned nq,
		   double rate, enum zp_arrival arrival, uint64_t start_ns,
		   uint64_t end_ns)
{
	memset(p, 0, sizeof(*p));
	if (!nq || !(rate > 0))
		return -EINVAL;
	p->qs = qs;
	p->nq = nq;
	p->rate = rate;
	p->arrival = arrival;
	p->start_ns = start_ns;
	p->end_ns = end_ns;
	p->seed = 0x9E3779B97F4A7C15ull;
	if (pthread_create(&p->thread, NULL, pacer_main, p))
		return -EAGAIN;
	p->started = true;
	return 0;
}

void zp_pacer_join(struct zp_pacer *p)
{
	if (!p->started)
		return;
	pthread_join(p->thread, NULL);
	p->started = false;
}
