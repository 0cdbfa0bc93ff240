/* SPDX-License-Identifier: MIT */
/*
 * openloop.h - zcperf --rate: requests on a schedule, not on answers.
 *
 * Closed loop (the default) sends the next request when an answer comes
 * back, so a slow answer slows the sender and hides the queueing it
 * caused (coordinated omission).  Open loop decides every request's
 * *intended* send time in advance, at --rate per second in all, constant
 * or Poisson (--arrival), and measures each latency from that intended
 * time, as wrk2 does: a stall shows up in the percentiles.
 *
 * Threads: one pacer thread per client side generates the schedule and
 * deals the intended times round-robin to the reactors, through one
 * single-producer single-consumer inbox each, waking a reactor with a
 * zc_work when it queued something.  On the reactor the times go to a
 * backlog (FIFO), and the family issues from its front whenever it has
 * room: a free RPC slot, or a TCP_RR connection with fewer than -d
 * requests outstanding.  Nothing else is shared.
 *
 * Accounting (what bench-smoke checks): every intended time before the
 * deadline is `scheduled`; each ends as exactly one of
 *   sent   answered, issued within ZP_LATE_NS of its intended time,
 *   late   answered, issued later than that (the sender fell behind,
 *          or every slot was busy: the wait is in its latency),
 *   failed not answered: the call failed, or it was still in the
 *          backlog at the deadline (`unsent`, a part of failed),
 * so sent + late + failed == scheduled once the run is over.
 */
#ifndef ZCPERF_OPENLOOP_H
#define ZCPERF_OPENLOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <zcrpc/zcrpc.h>

#include "../ol_counts.h"
#include "hist.h"
#include "opts.h"

/* A request issued more than this after its intended time is late. */
#define ZP_LATE_NS 1000000ull

/*
 * What the answer of an open-loop call with @status means.  OK: answered.
 * A retryable status (OVERLOADED, UNAVAILABLE) is a call the server did
 * not process, the way a drain refuses the calls still in flight at the
 * end of a run (the client stops, tells the server, and the server's
 * GOAWAY refuses what it had not read yet): a failed call of the
 * schedule, not a broken connection, as the closed loop takes it.  Any
 * other status is both, and refuses the run.
 */
enum zp_ol_outcome {
	ZP_OL_ANSWERED,
	ZP_OL_REFUSED,	/* counted failed */
	ZP_OL_BROKEN,	/* counted failed and as a connection failure */
};

static inline enum zp_ol_outcome zp_ol_outcome(int status)
{
	if (status == ZC_RPC_OK)
		return ZP_OL_ANSWERED;
	return zc_rpc_status_retryable(status) ? ZP_OL_REFUSED : ZP_OL_BROKEN;
}

struct zp_olq;
/*
 * Issue one request intended at @intended.  Returns 1 when it went out
 * (the family records its completion with zp_ol_done()), 0 when there is
 * no room now (it stays at the front of the backlog; call zp_ol_pump()
 * when room appears), or -errno when it cannot be issued (counted failed).
 */
typedef int (*zp_ol_issue_fn)(struct zp_olq *q, uint64_t intended, void *arg);

/*
 * One reactor's open-loop queue.  The inbox fields are shared with the
 * pacer (atomics); the rest is the reactor thread's.
 */
struct zp_olq {
	struct zc_reactor *r;
	/* inbox: pacer writes tail, reactor writes head */
	uint64_t *ring;
	uint32_t mask;
	_Atomic uint64_t head, tail;
	atomic_bool wake_queued;
	struct zc_work work;
	/* reactor thread only */
	uint64_t *backlog;   /* FIFO of intended times, grows */
	size_t bcap, bhead, bcount;
	zp_ol_issue_fn issue;
	void *arg;
	bool stopping;
	struct bench_ol_counts n;
	/* Where a call's latency went: intended -> issued (the sender's
	 * lag) and issued -> answered (the network and the server). */
	struct zp_hist *lag_h, *resp_h;
};

/* Set up @q for reactor @r (any thread, before the pacer starts).
 * 0 or -ENOMEM. */
int zp_olq_init(struct zp_olq *q, struct zc_reactor *r, zp_ol_issue_fn issue,
		void *arg);
/* Free what init took; the pacer is joined and no work is queued. */
void zp_olq_fini(struct zp_olq *q);

/* Reactor thread: take the inbox into the backlog, then issue from the
 * backlog while the family has room. */
void zp_ol_pump(struct zp_olq *q);
/*
 * Reactor thread: a request issued at @issued_ns for @intended ended,
 * answered at @answered_ns, or not answered when that is 0.  Records its
 * lag and, answered, issued -> answered in q's histograms; the caller
 * records the latency (answered - intended).
 */
void zp_ol_done(struct zp_olq *q, uint64_t intended, uint64_t issued_ns,
		uint64_t answered_ns);
/* Reactor thread, at the deadline (after the pacer was joined): take
 * what is left in the inbox, count the backlog as unsent, stop issuing. */
void zp_ol_stop(struct zp_olq *q);

struct zp_pacer {
	pthread_t thread;
	struct zp_olq **qs;
	unsigned nq;
	double rate;        /* requests per second, all queues together */
	enum zp_arrival arrival;
	uint64_t start_ns, end_ns;
	uint64_t seed;
	bool started;
};

/* Start generating intended times in [@start_ns, @end_ns) over @qs.
 * 0 or -errno. */
int zp_pacer_start(struct zp_pacer *p, struct zp_olq **qs, unsigned nq,
		   double rate, enum zp_arrival arrival, uint64_t start_ns,
		   uint64_t end_ns);
/* Wait for the pacer to pass @end_ns and finish (no-op if not started). */
void zp_pacer_join(struct zp_pacer *p);

#endif /* ZCPERF_OPENLOOP_H */
