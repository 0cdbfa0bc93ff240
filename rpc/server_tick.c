/* SPDX-License-Identifier: MIT */
/*
 * rpc/server_tick.c - the server's timers and its drain, on the reactors.
 *
 * The stack has no timers, so a ticker thread wakes every ZC__TICK_MS,
 * sweeps the worker queue for calls whose deadline passed there, and
 * queues one tick on every reactor that has connections (or a drain to
 * finish): each time while a deadline or a drain is pending, else every
 * ZC__TICK_SLOW wakes.  A
 * tick walks the reactor's connections: HELLO, idle and stall timeouts,
 * deadlines of calls still being received, the drain deadline, and the
 * linger bound of graceful closes.  A walk rather than a timer wheel: a
 * few compares per connection per tick, and nothing to keep in step on
 * the hot path (every timer is a timestamp the parser writes anyway).
 *
 * Drain: each reactor sends GOAWAY on its connections; a connection
 * closes once every call up to its GOAWAY id is answered and the answers
 * have left the send queue (server.c, zc__sconn_maybe_close()); at the
 * deadline what is left is cancelled.  The reactor whose last connection
 * closes last reports the drain done.
 */
#include <errno.h>
#include <stdlib.h>

#include "server.h"

/* ---- ticker thread ----------------------------------------------------- */

static bool wants_tick(const struct zc_rpc_server *s,
		       const struct zc__srctx *rc)
{
	return atomic_load(&rc->nconns) ||
	       (atomic_load(&s->drain_started) &&
		atomic_load(&s->drain_left));
}

/* Anything that wants the fine resolution (see ZC__TICK_SLOW)? */
static bool fine_tick(const struct zc_rpc_server *s)
{
	return zc__ctr_get(&s->reasm_timed) ||
	       atomic_load(&s->budget_waiting) ||
	       (atomic_load(&s->drain_started) && atomic_load(&s->drain_left));
}

static void *ticker_main(void *arg)
{
	struct zc_rpc_server *s = arg;
	struct timespec ts;
	unsigned n = 0;

	pthread_mutex_lock(&s->tlock);
	while (!s->tstop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += ZC__TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&s->tcond, &s->tlock, &ts);
		if (s->tstop)
			break;
		pthread_mutex_unlock(&s->tlock);
		if (s->nworkers)
			zc__worker_expire(s, zc__now_ns());
		if (++n % ZC__TICK_SLOW && !fine_tick(s)) {
			pthread_mutex_lock(&s->tlock);
			continue;
		}
		for (unsigned i = 0; i < s->nrc; i++) {
			struct zc__srctx *rc = &s->rcs[i];

			if (wants_tick(s, rc) &&
			    !atomic_exchange(&rc->tick_queued, true))
				zc_reactor_queue(rc->r, &rc->tick_work);
		}
		pthread_mutex_lock(&s->tlock);
	}
	pthread_mutex_unlock(&s->tlock);
	return NULL;
}

int zc__ticker_start(struct zc_rpc_server *s)
{
	int ret = pthread_create(&s->ticker, NULL, ticker_main, s);

	if (ret)
		return -ret;
	s->ticker_started = true;
	return 0;
}

void zc__ticker_stop(struct zc_rpc_server *s)
{
	if (!s->ticker_started)
		return;
	pthread_mutex_lock(&s->tlock);
	s->tstop = true;
	pthread_cond_signal(&s->tcond);
	pthread_mutex_unlock(&s->tlock);
	pthread_join(s->ticker, NULL);
	s->ticker_started = false;
}

/* ---- one tick on a reactor --------------------------------------------- */

static uint64_t later(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void timed_out(struct zc__sconn *sc, const char *why)
{
	zc__sconn_reset(sc, &sc->rc->s->conns_timed_out, why);
}

/* True when @since (pushed back to the last time we resumed reading) is
 * more than the stall timeout ago. */
static bool stalled(const struct zc__sconn *sc, uint64_t since, uint64_t now)
{
	return now >= zc__deadline_after(later(since, sc->stall_base),
					 sc->rc->s->cfg.stall_timeout_ms);
}

/* Calls being reassembled: deadlines, and fragments that stopped.
 * Returns false when the connection was closed. */
static bool tick_reasm(struct zc__sconn *sc, uint64_t now, bool parked)
{
	struct zc_rpc_call **list;
	uint32_t n = zc__sconn_reasm(sc, &list);
	bool alive = true;

	for (uint32_t i = 0; i < n && alive; i++) {
		struct zc_rpc_call *call = list[i];

		if (call->deadline && now >= call->deadline) {
			zc__sconn_expire_reasm(sc, call);
		} else if (!parked && stalled(sc, call->last_frag, now)) {
			timed_out(sc, "a message's fragments stopped coming "
				  "(stall_timeout_ms)");
			alive = false;
		}
	}
	free(list);
	return alive;
}

static void tick_conn(struct zc__sconn *sc, uint64_t now)
{
	const struct zc_rpc_server_config *cfg = &sc->rc->s->cfg;
	bool parked = sc->paused || sc->budget_wait;

	if (!sc->conn)
		return;
	if ((sc->closing || sc->close_soon) && sc->close_deadline &&
	    now >= sc->close_deadline) {
		zc__ctr_add(&sc->rc->s->lingered, 1);
		zc__log("server: resetting connection (fd %d): the peer did "
			"not close within linger_ms", zc_conn_fd(sc->conn));
		sc->close_deadline = 0;
		zc_conn_close(sc->conn, ZC_CLOSE_ABORT);
		return;
	}
	if (sc->closing || sc->broken)
		return;
	if (!sc->hello) {
		if (now >= sc->hello_deadline)
			timed_out(sc, "no HELLO within hello_timeout_ms");
		return;
	}
	if (sc->nreasm && !tick_reasm(sc, now, parked))
		return;
	zc__sconn_tick_wait(sc);
	if (!sc->conn || sc->broken)
		return;
	if (!parked && sc->rx_since && stalled(sc, sc->rx_since, now)) {
		timed_out(sc, "a frame stopped arriving mid-way "
			  "(stall_timeout_ms)");
		return;
	}
	/* The clock before the send queue: a tick then reads only the
	 * first two lines of a connection that is not idle long enough. */
	if (!sc->draining && !sc->peer_eof && !sc->ncalls && !sc->nsending &&
	    !sc->rx_since &&
	    now >= zc__deadline_after(sc->last_rx, cfg->idle_timeout_ms) &&
	    zc__tx_idle(&sc->tx)) {
		zc__ctr_add(&sc->rc->s->conns_timed_out, 1);
		zc__log("server: closing idle connection (fd %d)",
			zc_conn_fd(sc->conn));
		zc__sconn_goaway(sc, ZC_RPC_OK, "idle");
		zc__sconn_close_soon(sc);
	}
	zc__sconn_maybe_close(sc);
}

/* The drain deadline passed: cancel what is left, close when sent. */
static void drain_cut(struct zc__srctx *rc)
{
	rc->drain_cut = true;
	for (struct zc__sconn *sc = rc->conns; sc; sc = sc->next) {
		if (zc__sconn_cancel_rest(sc))
			atomic_store(&rc->s->drain_late, true);
		zc__sconn_close_soon(sc);
		zc__tx_flush(&sc->tx);
	}
}

static void tick_rc(struct zc__srctx *rc)
{
	uint64_t now = zc__now_ns();
	struct zc__sconn *sc, *next;

	if (rc->draining && !rc->drain_cut && now >= rc->drain_deadline)
		drain_cut(rc);
	/* A tick closes connections but never frees one (on_close comes
	 * later), so the next pointer stays good. */
	for (sc = rc->conns; sc; sc = next) {
		next = sc->next;
		/* 10,000 connections do not stay in the cache: fetch the
		 * next one's two lines while this one is looked at. */
		__builtin_prefetch(next);
		__builtin_prefetch((const char *)next + 64);
		tick_conn(sc, now);
	}
	zc__server_drain_check(rc);
}

void zc__server_tick(struct zc_work *w)
{
	struct zc__srctx *rc = (struct zc__srctx *)((char *)w -
				offsetof(struct zc__srctx, tick_work));

	atomic_store(&rc->tick_queued, false);
	zc__tx_stage_tick(&rc->stage);
	tick_rc(rc);
}

/* ---- drain ------------------------------------------------------------- */

void zc__server_drain_begin(struct zc_work *w)
{
	struct zc__srctx *rc = (struct zc__srctx *)((char *)w -
				offsetof(struct zc__srctx, drain_work));

	if (!rc->draining) {
		rc->draining = true;
		rc->drain_deadline = zc__deadline_after(zc__now_ns(),
						rc->s->drain_timeout_ms);
		zc__server_goaway_all(rc);
		tick_rc(rc);
	}
	atomic_store(&rc->drain_queued, false);
}

void zc__server_drain_check(struct zc__srctx *rc)
{
	struct zc_rpc_server *s = rc->s;

	if (!rc->draining || rc->drain_reported || rc->conns ||
	    atomic_load(&rc->inbound))
		return;	/* a tick checks again */
	rc->drain_reported = true;
	if (atomic_fetch_sub(&s->drain_left, 1) == 1 && s->drain_done)
		s->drain_done(s->drain_arg,
			      atomic_load(&s->drain_late) ? -ETIMEDOUT : 0);
}
