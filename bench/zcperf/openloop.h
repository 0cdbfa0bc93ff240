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
 * Threads: none of its own.  Each client reactor that has connections
 * runs its share of the schedule itself (--rate / reactors per second; a
 * constant schedule is dealt round-robin by phase, a Poisson one is a
 * Poisson stream per reactor, whose sum is Poisson at --rate): a zc_timer
 * on its own ring wakes it at the next intended time (at most every 50
 * us: the times due by then go out as one batch), and every time due
 * then, or when an answer wakes the reactor, goes to a backlog (FIFO) from whose
 * front the family issues while it has room: a free RPC slot, or a TCP_RR
 * connection with fewer than -d requests outstanding.  Nothing is handed
 * across threads per request, as the peers' loops do (bench/peers): a
 * pacer thread that dealt the times to the reactors before woke a
 * reactor from another thread for every batch of them.
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

/* One reactor's share of the schedule; its reactor thread's alone. */
struct zp_olq {
	struct zc_timer timer;	/* first: timer_fn() casts it back */
	struct zc_reactor *r;
	/* the schedule: next intended time, mean gap, end (ns) */
	double next, gap;
	uint64_t end_ns;
	uint64_t fired_ns;	/* when the timer last fired */
	uint64_t seed;
	bool poisson;
	bool begun, stopping;
	uint64_t *backlog;   /* FIFO of intended times, grows */
	size_t bcap, bhead, bcount;
	zp_ol_issue_fn issue;
	void *arg;
	struct bench_ol_counts n;
	/* Where a call's latency went: intended -> issued (the sender's
	 * lag) and issued -> answered (the network and the server). */
	struct zp_hist *lag_h, *resp_h;
};

/* Reactor thread of @r: set up @q for @r.  0 or -ENOMEM. */
int zp_olq_init(struct zp_olq *q, struct zc_reactor *r, zp_ol_issue_fn issue,
		void *arg);
/* Free what init took (its reactor is destroyed, or @q never began). */
void zp_olq_fini(struct zp_olq *q);
/* True once zp_olq_init() succeeded (and until zp_olq_fini()). */
static inline bool zp_olq_live(const struct zp_olq *q)
{
	return q->backlog != NULL;
}

/*
 * Reactor thread: start @q's share of the schedule, queue @index of
 * @nq: @rate / @nq per second from @start_ns to @end_ns, constant (phase
 * @index / @rate) or Poisson (its own seed).  0, or -EINVAL, or -errno
 * from the timer (the schedule then ends unsent at zp_ol_stop()).
 */
int zp_ol_begin(struct zp_olq *q, unsigned index, unsigned nq, double rate,
		enum zp_arrival arrival, uint64_t start_ns, uint64_t end_ns);
/* Reactor thread: take the times now due into the backlog, issue from it
 * while the family has room, and keep the timer armed for the next. */
void zp_ol_pump(struct zp_olq *q);
/*
 * Reactor thread: a request issued at @issued_ns for @intended ended,
 * answered at @answered_ns, or not answered when that is 0.  Records its
 * lag and, answered, issued -> answered in q's histograms; the caller
 * records the latency (answered - intended).
 */
void zp_ol_done(struct zp_olq *q, uint64_t intended, uint64_t issued_ns,
		uint64_t answered_ns);
/* Reactor thread, at the deadline: count every time of the schedule not
 * yet issued (the backlog, and those not yet due) as unsent, and stop. */
void zp_ol_stop(struct zp_olq *q);

#endif /* ZCPERF_OPENLOOP_H */
