/* SPDX-License-Identifier: MIT */
/*
 * rpc/server_move.c - connections that turn bulk leave the reactors that
 * serve small calls for a bulk reactor (config bulk_reactors).
 *
 * A reactor thread that copies one peer's megabytes (receive copies, the
 * kernel's inline send copies, the loopback receiver's TCP work done in
 * the sender's context) looks at nobody else's request meanwhile: slicing
 * its work bounds the wait, it cannot remove it (docs/RELIABILITY.md).
 * So the connection moves to a thread of its own kind.
 *
 * When: the parser meets a new request with msg_len >= bulk_message_bytes
 * (zc__sconn_bulk_check).  It leaves that frame unparsed and stops, so
 * the stack's receive budget fills and reading stops too, as for any
 * pause.  The move waits until the only calls of the connection left are
 * those still being received: every dispatched call answered and its
 * answer framed and handed to the stack.  Then no worker thread can
 * finish a call through the old reactor's inbox (call->sc->rc changes
 * with the move) and nothing of the connection is in that reactor's
 * lists (flush_list, budget_waiters).
 *
 * How: the connection leaves rc->conns (the old reactor's ticker and
 * drain no longer see it) and the ring pins of its calls in reassembly
 * leave rc->pinned; zc_conn_move() does the rest in the stack (cancel the
 * receive, wait for the old ring's completions, hand over, send on from
 * the new ring what was queued).  On arrival (sc_moved, on the bulk
 * reactor) it joins that reactor's lists, its views of the old ring are
 * copied out (the old ring gets its buffers back at once), and parsing
 * resumes with the frame that triggered the move.  The connection stays
 * on the bulk reactor until it closes.  Any failure (the connection
 * closing meanwhile, a TLS connection, no memory) leaves it where it was,
 * parsing again; it is never tried twice.
 */
#include <errno.h>

#include "server.h"

bool zc__sconn_bulk_check(struct zc__sconn *sc, const struct zc_frame *f)
{
	const struct zc_rpc_server *s = sc->rc->s;

	/* Cheapest first: without bulk reactors this is one compare. */
	if (!s->cfg.nbulk || f->type != ZC_FT_REQUEST || sc->rc->bulk ||
	    sc->bulk_done || f->msg_len < s->cfg.bulk_message_bytes ||
	    f->msg_len > s->cfg.max_message || s->cfg.tls || sc->draining ||
	    sc->peer_eof || sc->close_soon || sc->broken ||
	    zc__map_get(&sc->calls, f->id))	/* a fragment, not new */
		return false;
	sc->bulk_want = true;
	zc__sconn_move_kick(sc);
	return true;
}

/* Ring bytes its calls in reassembly pin (charged to rc->pinned). */
static size_t reasm_pinned(const struct zc__sconn *sc)
{
	size_t n = 0;
	uint32_t i = 0;
	uint64_t id;
	void *v;

	while (zc__map_next(&sc->calls, &i, &id, &v))
		if (v != ZC__DISCARD &&
		    ((struct zc_rpc_call *)v)->state == CALL_REASM)
			n += ((struct zc_rpc_call *)v)->ra.pinned;
	return n;
}

/* Stay (for good) and parse on. */
static void give_up(struct zc__sconn *sc)
{
	sc->bulk_want = false;
	sc->bulk_done = true;
	zc__sconn_parse(sc);
	if (sc->conn)
		zc__srv_rx_unpin(sc);
}

/* Stack callback, once: on the bulk reactor (0, or -ESHUTDOWN: it is
 * closed there), or on the old one with the error of a connection that
 * started closing before it left.  @sc->rc is still the old context. */
static void sc_moved(struct zc_conn *c, int err, void *arg)
{
	struct zc__sconn *sc = arg;
	struct zc__srctx *old = sc->rc, *to = sc->move_to;
	struct zc_rpc_server *s = old->s;
	bool arrived = zc_reactor_current() == to->r;

	sc->moving = false;
	sc->bulk_want = false;
	sc->bulk_done = true;
	sc->move_to = NULL;
	if (!arrived) {
		/* Closing where it is: on_close follows there. */
		old->pinned += reasm_pinned(sc);
		zc__sconn_link(old, sc);
		atomic_fetch_sub(&to->inbound, 1);
		zc__sconn_put(sc);
		return;
	}
	sc->rc = to;
	sc->tx.stage = &to->stage;
	zc__sconn_link(to, sc);
	atomic_fetch_sub(&to->inbound, 1);
	zc__srv_conn_moved(sc);
	if (!err) {
		zc__ctr_add(&s->conns_moved, 1);
		/* The stall clocks stop while we read nothing. */
		sc->stall_base = zc__now_ns();
		if (atomic_load(&s->aborting)) {
			/* Destroy's abort passed this reactor already. */
			(void)zc__sconn_cancel_rest(sc);
			zc_conn_close(c, ZC_CLOSE_ABORT);
		} else if (atomic_load(&s->drained)) {
			zc__sconn_goaway(sc, ZC_RPC_OK, NULL);
		}
		zc__sconn_parse(sc);
		if (sc->conn)
			zc__srv_rx_unpin(sc);
	}
	zc__sconn_put(sc);
}

static void try_move(struct zc__sconn *sc)
{
	struct zc_rpc_server *s = sc->rc->s;
	struct zc__srctx *to;
	int ret;

	if (!sc->bulk_want || sc->moving || !sc->conn)
		return;
	if (sc->broken || sc->closing || sc->draining || sc->close_soon ||
	    sc->peer_eof) {
		give_up(sc);
		return;
	}
	/* References: the connection's, this check's, and one per call:
	 * only calls still being received may go along. */
	if (sc->parsing || sc->flush_queued || sc->budget_wait ||
	    sc->nsending || !zc__tx_idle(&sc->tx) ||
	    sc->refs != 2 + sc->nreasm)
		return;	/* a later answer or flush kicks again */
	to = &s->rcs[s->cfg.nreactors +
		     atomic_fetch_add(&s->next_bulk, 1) % s->cfg.nbulk];
	/* From here @to's drain waits for it (it is on no list meanwhile).
	 * Counted before the drain flag is read: a drain that began first
	 * keeps it here (this reactor's drain sees it), one that begins
	 * after finds it counted. */
	atomic_fetch_add(&to->inbound, 1);
	ret = atomic_load(&s->drained) ? -ESHUTDOWN :
		zc_conn_move(sc->conn, to->r, sc_moved, sc);
	if (ret) {
		atomic_fetch_sub(&to->inbound, 1);
		give_up(sc);
		return;
	}
	sc->moving = true;
	sc->move_to = to;
	sc->refs++;	/* until sc_moved */
	sc->rc->pinned -= reasm_pinned(sc);
	zc__sconn_unlink(sc);
}

static void move_check(struct zc_work *w)
{
	struct zc__sconn *sc = (struct zc__sconn *)((char *)w -
				offsetof(struct zc__sconn, move_check));

	sc->move_check_queued = false;
	try_move(sc);
	zc__sconn_put(sc);
}

void zc__sconn_move_kick(struct zc__sconn *sc)
{
	if (!sc->bulk_want || sc->moving || sc->move_check_queued ||
	    !sc->conn)
		return;
	/* From the reactor's queue, outside the parse or flush that kicked
	 * (which hold references and lists the check must see released). */
	sc->move_check_queued = true;
	sc->refs++;
	sc->move_check.fn = move_check;
	zc_reactor_queue(sc->rc->r, &sc->move_check);
}
