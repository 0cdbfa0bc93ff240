/* SPDX-License-Identifier: MIT */
/*
 * rpc/server_mem.c - what one peer may make the server hold, and where.
 *
 * Three per-connection bounds, each with its own brake:
 *   - unparsed bytes: the stack's receive budget (set here at accept); a
 *     connection whose parsing is paused stops being read;
 *   - request bytes of its unanswered calls (max_inflight_bytes_conn), and
 *     the server's total (max_inflight_bytes, whose last reserve_bytes
 *     only single-frame requests may use): a new request over them waits
 *     unparsed when calls being served will give bytes back, and is
 *     answered OVERLOADED when only unfinished messages hold them;
 *   - answer and control bytes queued (tx_budget, server.c): parsing
 *     pauses, so a peer that does not read gets no new work and no PONG.
 *
 * And one per-reactor bound on where those bytes live: views of the
 * receive ring pin its buffers, and the ring is refilled from the pool
 * every connection of the reactor shares.  Requests keep views only up to
 * rx_pin_max ring bytes per reactor; beyond, and for large or many-
 * fragment messages, their bytes are copied out as they arrive (reasm.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "server.h"

/* Messages up to this size may be reassembled from views. */
#define VIEW_MSG_MAX (1u << 20)
/* ... in at most this many fragments. */
#define VIEW_FRAGS_MAX 64u

/* The kernel resets a connection whose peer has taken nothing (zero
 * window, or unacknowledged data) for the timeout: no timer of ours,
 * and it fires exactly when the peer stopped reading. */
static void set_user_timeout(struct zc__sconn *sc)
{
	unsigned ms = sc->rc->s->cfg.unwritable_timeout_ms;

	if (ms == ZC_RPC_TIMEOUT_OFF)
		return;
	if (setsockopt(zc_conn_fd(sc->conn), IPPROTO_TCP, TCP_USER_TIMEOUT,
		       &ms, sizeof(ms)))
		zc__log("server: TCP_USER_TIMEOUT: errno %d", errno);
}

void zc__srv_conn_closed(struct zc__sconn *sc, int err)
{
	struct zc_rpc_server *s = sc->rc->s;

	if (err != -ETIMEDOUT)
		return;
	zc__ctr_add(&s->conns_unwritable, 1);
	zc__log("server: connection reset: the peer took no byte for %u ms",
		s->cfg.unwritable_timeout_ms);
}

/* The reactor's pin cap, at its first connection (accepted or moved). */
static void pin_max_init(struct zc__srctx *rc)
{
	if (rc->pin_max)
		return;
	rc->pin_max = rc->s->cfg.rx_pin_max;
	if (!rc->pin_max)
		rc->pin_max = zc_pool_max_bytes(zc_reactor_pool(rc->r)) / 4;
}

void zc__srv_conn_setup(struct zc__sconn *sc)
{
	struct zc__srctx *rc = sc->rc;
	size_t want = 2 * ((size_t)rc->s->cfg.max_frame + ZC_FRAME_HDR_LEN);
	size_t have = zc_conn_rx_budget(sc->conn);

	if (!have || have > want)
		zc_conn_set_rx_budget(sc->conn, want);
	set_user_timeout(sc);
	pin_max_init(rc);
}

bool zc__srv_keep_views(const struct zc__sconn *sc,
			const struct zc_rpc_call *call, uint32_t len)
{
	const struct zc__srctx *rc = sc->rc;

	return call->msg_len <= VIEW_MSG_MAX &&
	       call->ra.frags < VIEW_FRAGS_MAX &&
	       rc->pinned + len <= rc->pin_max;
}

void zc__srv_answer_unpin(struct zc__sconn *sc, struct zc__txmsg *tm)
{
	struct zc__srctx *rc = sc->rc;
	size_t pin = zc__chain_pinned(&tm->body, 0);

	if (!pin)
		return;
	if (rc->pinned + pin > rc->pin_max &&
	    !zc__chain_to_heap(&tm->body, zc_reactor_pool(rc->r))) {
		zc__ctr_add(&rc->s->rx_copied, zc_chain_len(&tm->body));
		return;
	}
	/* Views kept (or no memory to copy them): charged until the
	 * message leaves the queue (zc__txmsg_free). */
	tm->pinned = pin;
	tm->pin_acct = &rc->pinned;
	rc->pinned += pin;
}

/* True when some view of @c is a pool (ring) buffer. */
static bool pins_ring(const struct zc_chain *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (!zc_buf_is_external(zc_chain_view(c, i)->buf))
			return true;
	return false;
}

void zc__srv_rx_unpin(struct zc__sconn *sc)
{
	struct zc_pool *pool = zc_reactor_pool(sc->rc->r);
	size_t len = zc_chain_len(&sc->rx);

	/* Only once half the pool is out: on the busy path a leftover
	 * partial frame is completed by the next delivery, while peers
	 * that stop mid-frame (slow, idle, hostile) would each keep a ring
	 * buffer, which is what copying under pressure bounds. */
	if (!len || zc_pool_headroom(pool) >= zc_pool_max_bytes(pool) / 2 ||
	    !pins_ring(&sc->rx))
		return;
	/* -ENOMEM: the views stay, the receive budget still bounds them. */
	if (!zc__chain_to_heap(&sc->rx, pool))
		zc__ctr_add(&sc->rc->s->rx_copied, len);
}

void zc__srv_conn_moved(struct zc__sconn *sc)
{
	struct zc__srctx *rc = sc->rc;
	struct zc_pool *pool = zc_reactor_pool(rc->r);
	size_t len = zc_chain_len(&sc->rx);
	uint32_t i = 0;
	uint64_t id;
	void *v;

	pin_max_init(rc);
	while (zc__map_next(&sc->calls, &i, &id, &v)) {
		struct zc_rpc_call *call = v;

		if (v == ZC__DISCARD || call->state != CALL_REASM ||
		    !call->ra.pinned)
			continue;
		if (zc__reasm_unpin(&call->ra, &call->req, call->msg_len,
				    pool))
			rc->pinned += call->ra.pinned;	/* freed here */
		else
			zc__ctr_add(&rc->s->rx_copied, call->ra.got);
	}
	/* -ENOMEM: the views stay, the receive budget still bounds them. */
	if (len && pins_ring(&sc->rx) && !zc__chain_to_heap(&sc->rx, pool))
		zc__ctr_add(&rc->s->rx_copied, len);
}

enum zc__bytes_verdict zc__srv_bytes_check(const struct zc__sconn *sc,
					   uint32_t msg_len)
{
	struct zc_rpc_server *s = sc->rc->s;
	const struct zc_rpc_server_config *cfg = &s->cfg;
	uint64_t held = zc__ctr_get(&s->inflight_bytes);
	uint64_t lim = cfg->max_inflight_bytes;
	bool conn_full, srv_full;

	if (msg_len > cfg->max_frame)
		lim -= cfg->reserve_bytes;
	conn_full = sc->req_bytes &&
		    sc->req_bytes + msg_len > cfg->max_inflight_bytes_conn;
	srv_full = held && held + msg_len > lim;
	if (!conn_full && !srv_full)
		return ZC__BYTES_OK;
	/* Wait only for bytes that calls being served will give back:
	 * messages still arriving may never finish (their fragments may be
	 * behind the very frame that waits). */
	if (conn_full && sc->req_bytes == sc->reasm_bytes)
		return ZC__BYTES_REFUSE;
	if (srv_full && held == zc__ctr_get(&s->reasm_bytes))
		return ZC__BYTES_REFUSE;
	return ZC__BYTES_WAIT;
}
