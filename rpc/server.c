/* SPDX-License-Identifier: MIT */
/*
 * rpc/server.c - server connections and calls, on their reactor thread.
 *
 * Life of a request: on_data() appends the delivery to the connection's
 * unparsed bytes; frames are cut out of it as views (the payload of a
 * REQUEST is moved into its call's chain, nothing copied); a complete
 * message is admitted or refused, then run inline or queued to a worker;
 * the answer comes back through zc__call_finish() (directly on the reactor,
 * through the inbox from elsewhere) and is queued on the connection's
 * framing send queue.
 *
 * Two receive budgets: the stack's per-connection rx_budget counts bytes
 * not parsed yet (credit goes back as frames are cut); max_inflight_bytes
 * counts request bytes of calls not answered yet, whole server.  When a
 * new request would pass the latter, parsing stops where it is, so the
 * former fills and the stack stops reading that connection.
 *
 * Reference rule: a connection struct lives while its zc_conn is open or
 * any of its calls is unanswered (sc->refs); calls point at it, never at
 * the zc_conn, which is gone after on_close.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Map value marking a refused message whose further fragments we skip. */
static char discard_mark;
#define DISCARD ((void *)&discard_mark)
/* Discard marks allowed per connection beyond its call limit. */
#define DISCARD_SLACK 1024u

static void sconn_put(struct zc__sconn *sc)
{
	if (--sc->refs)
		return;
	assert(!sc->conn && !sc->calls.n);
	zc__map_free(&sc->calls);
	zc__ctr_sub(&sc->rc->s->sconns_live, 1);
	free(sc);
}

/* Flush now, or at the end of the batch we are in. */
static void want_flush(struct zc__sconn *sc)
{
	struct zc__srctx *rc = sc->rc;

	if (!rc->in_batch) {
		zc__tx_flush(&sc->tx);
		return;
	}
	if (sc->flush_queued)
		return;
	sc->flush_queued = true;
	sc->refs++;
	sc->flush_next = rc->flush_list;
	rc->flush_list = sc;
}

static void batch_begin(struct zc__srctx *rc)
{
	rc->in_batch++;
}

static void batch_end(struct zc__srctx *rc)
{
	if (--rc->in_batch)
		return;
	while (rc->flush_list) {
		struct zc__sconn *sc = rc->flush_list;

		rc->flush_list = sc->flush_next;
		sc->flush_queued = false;
		if (sc->conn)
			zc__tx_flush(&sc->tx);
		sconn_put(sc);
	}
}

static void queue_error(struct zc__sconn *sc, uint64_t id, uint32_t method,
			int status, const char *msg)
{
	struct zc_frame h = { .type = ZC_FT_ERROR, .status = (uint16_t)status,
			      .method = method, .id = id };
	size_t len = msg ? strlen(msg) : 0;

	if (len > 64)
		len = 64;
	/* -ENOMEM: the peer's call then ends at its deadline or close. */
	(void)zc__tx_control(&sc->tx, &h, msg, (uint32_t)len);
	want_flush(sc);
}

/*
 * Abort, not a graceful close: a peer that broke the protocol cannot be
 * trusted to send its EOF, and a graceful close would keep the connection
 * (and its buffers) until it did.  The reset drops anything queued, so no
 * GOAWAY goes out: the reason is in our log and counter only.
 */
static void protocol_error(struct zc__sconn *sc, const char *why)
{
	if (sc->broken)
		return;
	sc->broken = true;
	zc__ctr_add(&sc->rc->s->conns_protocol_error, 1);
	zc__logc(ZC_LOG_WARN, sc->conn, "protocol error",
		 "server closing connection (fd %d): %s", zc_conn_fd(sc->conn),
		 why);
	zc_conn_close(sc->conn, ZC_CLOSE_ABORT);
}

static void call_free(struct zc_rpc_call *call)
{
	zc_chain_release(&call->req);
	zc_chain_release(&call->resp);
	free(call);
}

/* Request bytes were given back: connections waiting for room, on any
 * reactor, parse again (from their own reactor's posted work). */
static void budget_kick(struct zc_rpc_server *s)
{
	if (!atomic_load(&s->budget_waiting))
		return;
	for (unsigned i = 0; i < s->cfg.nreactors; i++) {
		struct zc__srctx *rc = &s->rcs[i];

		if (atomic_load(&rc->nwaiting) &&
		    !atomic_exchange(&rc->resume_queued, true))
			zc_reactor_queue(rc->r, &rc->resume_work);
	}
}

/* Undo the admission counters of a call: answered or abandoned. */
static void call_unadmit(struct zc_rpc_server *s, struct zc_rpc_call *call)
{
	zc__ctr_sub(&call->m->inflight, 1);
	zc__ctr_sub(&s->inflight, 1);
	/* seq_cst, pairing with budget_wait(): either it sees the bytes
	 * gone, or budget_kick() sees it waiting. */
	atomic_fetch_sub(&s->inflight_bytes, call->msg_len);
	budget_kick(s);
}

static bool budget_full(const struct zc_rpc_server *s, uint32_t msg_len)
{
	uint64_t held = atomic_load(&s->inflight_bytes);	/* seq_cst */

	return held && held + msg_len > s->cfg.max_inflight_bytes;
}

/* Would admitting this new message overrun max_inflight_bytes?  One
 * message is always let in when nothing is held, so a message up to
 * max_message (<= max_inflight_bytes) always makes progress. */
static bool budget_blocks(struct zc__sconn *sc, const struct zc_frame *f)
{
	struct zc_rpc_server *s = sc->rc->s;

	if (f->type != ZC_FT_REQUEST || sc->draining ||
	    f->msg_len > s->cfg.max_message ||
	    zc__map_get(&sc->calls, f->id))
		return false;
	return budget_full(s, f->msg_len);
}

static void budget_wait(struct zc__sconn *sc, uint32_t msg_len)
{
	struct zc__srctx *rc = sc->rc;

	if (sc->budget_wait)
		return;
	sc->budget_wait = true;
	sc->refs++;
	sc->wait_next = rc->budget_waiters;
	rc->budget_waiters = sc;
	zc__ctr_add(&rc->s->rx_budget_stops, 1);
	atomic_fetch_add(&rc->nwaiting, 1);
	atomic_fetch_add(&rc->s->budget_waiting, 1);
	/* A call on another reactor may have finished between our check
	 * and the count, without seeing us: look again.  (Kicking blindly
	 * would spin: the resumed parse would block and kick again.) */
	if (!budget_full(rc->s, msg_len))
		budget_kick(rc->s);
}

/* ---- answers ----------------------------------------------------------- */

/* Reactor thread: put the answer of @call on the wire and forget it. */
static void call_complete(struct zc_rpc_call *call)
{
	struct zc__sconn *sc = call->sc;
	struct zc_rpc_server *s = sc->rc->s;
	struct zc__method *m = call->m;
	int status = call->status;

	if (status < 0 || status >= ZC_RPC_NSTATUS)
		status = ZC_RPC_INTERNAL;
	zc__ctr_add(&m->by_status[status], 1);
	zc__hist_add(&m->lat[sc->rc - s->rcs], zc__now_ns() - call->start_ns);
	call_unadmit(s, call);
	if (sc->conn && !call->peer_cancelled) {
		/* A peer cancel took it out of the map already. */
		zc__map_del(&sc->calls, call->id);
		sc->ncalls--;
	}
	if (!sc->conn || call->answered_early || call->peer_cancelled) {
		zc__ctr_add(&s->dropped_answers, 1);
		goto out;
	}
	if (status == ZC_RPC_OK) {
		struct zc__txmsg *tm = zc__txmsg_new();

		if (!tm) {
			queue_error(sc, call->id, m->id, ZC_RPC_INTERNAL,
				    "out of memory");
			goto out;
		}
		tm->hdr = (struct zc_frame){ .type = ZC_FT_RESPONSE,
					     .method = m->id, .id = call->id };
		tm->body = call->resp;
		zc_chain_init(&call->resp);
		zc__ctr_add(&m->tx_bytes, zc_chain_len(&tm->body));
		zc__tx_queue(&sc->tx, tm);
		want_flush(sc);
	} else {
		queue_error(sc, call->id, m->id, status,
			    call->msg[0] ? call->msg : NULL);
	}
out:
	call_free(call);
	sconn_put(sc);
}

void zc__server_inbox(struct zc__inbox *ib, struct zc__inode *list)
{
	struct zc__srctx *rc = (struct zc__srctx *)((char *)ib -
				offsetof(struct zc__srctx, inbox));

	batch_begin(rc);
	while (list) {
		struct zc__inode *next = list->next;

		call_complete((struct zc_rpc_call *)list);
		list = next;
	}
	batch_end(rc);
}

void zc__call_finish(struct zc_rpc_call *call)
{
	struct zc__srctx *rc = call->sc->rc;

	if (zc_reactor_current() == rc->r) {
		batch_begin(rc);
		call_complete(call);
		batch_end(rc);
	} else {
		zc__inbox_push(&rc->inbox, &call->node);
	}
}

/* ---- requests ---------------------------------------------------------- */

static void dispatch(struct zc__sconn *sc, struct zc_rpc_call *call)
{
	struct zc__method *m = call->m;
	struct zc_chain req;

	call->state = CALL_DISPATCHED;
	zc__ctr_add(&m->calls, 1);
	zc__ctr_add(&m->rx_bytes, call->msg_len);
	zc__ctr_add(&sc->rc->s->requests, 1);
	if (m->mode == ZC_RPC_WORKER) {
		zc__worker_push(sc->rc->s, call);
		return;
	}
	/* The handler owns the views from here; the call may be gone when
	 * it returns (answered inline). */
	req = call->req;
	zc_chain_init(&call->req);
	m->fn(call, &req, m->arg);
}

/* Admission of a new message: 0 or the status that refuses it. */
static int admit(struct zc__sconn *sc, const struct zc_frame *f,
		 struct zc__method **mp)
{
	struct zc_rpc_server *s = sc->rc->s;
	const struct zc_rpc_server_config *cfg = &s->cfg;
	struct zc__method *m;

	if (sc->draining) {
		zc__ctr_add(&s->rejected_draining, 1);
		return ZC_RPC_UNAVAILABLE;
	}
	if (f->msg_len > cfg->max_message) {
		zc__ctr_add(&s->rejected_too_large, 1);
		return ZC_RPC_TOO_LARGE;
	}
	m = zc__server_method(s, f->method);
	if (!m) {
		zc__ctr_add(&s->rejected_unknown, 1);
		return ZC_RPC_UNKNOWN_METHOD;
	}
	if (zc__ctr_get(&s->inflight) >= cfg->max_inflight ||
	    sc->ncalls >= cfg->max_inflight_conn ||
	    (m->max_inflight && zc__ctr_get(&m->inflight) >= m->max_inflight) ||
	    zc__ctr_get(&s->inflight_bytes) + f->msg_len >
		    cfg->max_inflight_bytes) {
		zc__ctr_add(&s->rejected_overload, 1);
		zc__ctr_add(&m->by_status[ZC_RPC_OVERLOADED], 1);
		return ZC_RPC_OVERLOADED;
	}
	*mp = m;
	return 0;
}

/* The payload of the current frame is skipped: drop it, give credit. */
static void skip_payload(struct zc__sconn *sc, uint32_t len)
{
	zc_chain_consume(&sc->rx, len);
	zc_conn_recv_done(sc->conn, len);
}

static int on_request(struct zc__sconn *sc, const struct zc_frame *f)
{
	struct zc_rpc_server *s = sc->rc->s;
	void *v = zc__map_get(&sc->calls, f->id);
	bool last = !(f->flags & ZC_FF_MORE);
	struct zc_rpc_call *call;
	struct zc__method *m = NULL;
	int status;

	if (v == DISCARD) {
		skip_payload(sc, f->len);
		if (last)
			zc__map_del(&sc->calls, f->id);
		return 0;
	}
	if (!v) {
		if (sc->calls.n >= s->cfg.max_inflight_conn + DISCARD_SLACK) {
			protocol_error(sc, "too many open calls");
			return -EPROTO;
		}
		if (f->id > sc->last_id)
			sc->last_id = f->id;
		status = admit(sc, f, &m);
		if (status) {
			skip_payload(sc, f->len);
			queue_error(sc, f->id, f->method, status, NULL);
			if (!last && zc__map_put(&sc->calls, f->id, DISCARD)) {
				protocol_error(sc, "out of memory");
				return -ENOMEM;
			}
			return 0;
		}
		call = calloc(1, sizeof(*call));
		if (!call || zc__map_put(&sc->calls, f->id, call)) {
			free(call);
			protocol_error(sc, "out of memory");
			return -ENOMEM;
		}
		call->sc = sc;
		call->m = m;
		call->id = f->id;
		call->msg_len = f->msg_len;
		call->start_ns = sc->parse_ns;
		call->deadline = f->deadline_us ?
			zc__now_ns() + (uint64_t)f->deadline_us * 1000 : 0;
		atomic_init(&call->cancelled, false);
		zc_chain_init(&call->req);
		zc_chain_init(&call->resp);
		sc->ncalls++;
		sc->refs++;
		zc__ctr_add(&m->inflight, 1);
		zc__ctr_add(&s->inflight, 1);
		zc__ctr_add(&s->inflight_bytes, f->msg_len);
	} else {
		call = v;
		if (call->state != CALL_REASM) {
			protocol_error(sc, "request id reused");
			return -EPROTO;
		}
		if (f->msg_len != call->msg_len ||
		    f->method != call->m->id) {
			protocol_error(sc, "fragment does not match message");
			return -EPROTO;
		}
	}
	if (call->got + f->len > call->msg_len ||
	    (last && call->got + f->len != call->msg_len)) {
		protocol_error(sc, "fragment lengths do not add up");
		return -EPROTO;
	}
	if (zc_chain_cut(&sc->rx, f->len, &call->req)) {
		protocol_error(sc, "out of memory");
		return -ENOMEM;
	}
	/* Parsed bytes leave the connection's receive budget (which bounds
	 * unparsed bytes) and stay in max_inflight_bytes until answered. */
	zc_conn_recv_done(sc->conn, f->len);
	call->got += f->len;
	if (last)
		dispatch(sc, call);
	return 0;
}

static void on_cancel(struct zc__sconn *sc, const struct zc_frame *f)
{
	void *v = zc__map_get(&sc->calls, f->id);
	struct zc_rpc_call *call = v;

	if (!v || v == DISCARD)
		return;	/* answered already or refused: not an error */
	zc__ctr_add(&sc->rc->s->cancels, 1);
	if (call->state == CALL_REASM) {
		/* Skip the rest of its fragments; never reaches a handler. */
		zc__map_del(&sc->calls, f->id);
		if (zc__map_put(&sc->calls, f->id, DISCARD))
			protocol_error(sc, "out of memory");
		sc->ncalls--;
		call_unadmit(sc->rc->s, call);
		call_free(call);
		sconn_put(sc);
		return;
	}
	/* Running or queued: the handler sees it, the answer is dropped. */
	call->peer_cancelled = true;
	atomic_store_explicit(&call->cancelled, true, memory_order_release);
	zc__map_del(&sc->calls, f->id);
	sc->ncalls--;
}

static int on_frame(struct zc__sconn *sc, const struct zc_frame *f)
{
	struct zc_frame h;
	uint8_t buf[ZC_FRAME_HELLO_LEN];

	zc_chain_consume(&sc->rx, ZC_FRAME_HDR_LEN);
	zc_conn_recv_done(sc->conn, ZC_FRAME_HDR_LEN);
	if (!sc->hello && f->type != ZC_FT_HELLO) {
		protocol_error(sc, "first frame is not hello");
		return -EPROTO;
	}
	switch (f->type) {
	case ZC_FT_HELLO:
		zc_chain_copyout(&sc->rx, 0, buf, sizeof(buf));
		skip_payload(sc, f->len);
		if (sc->hello || zc__hello_decode(buf, sizeof(buf), &sc->peer)) {
			protocol_error(sc, "bad hello");
			return -EPROTO;
		}
		sc->hello = true;
		sc->tx.max_frame = sc->peer.max_frame;
		return 0;
	case ZC_FT_REQUEST:
		return on_request(sc, f);
	case ZC_FT_CANCEL:
		on_cancel(sc, f);
		return 0;
	case ZC_FT_PING:
		h = (struct zc_frame){ .type = ZC_FT_PONG };
		zc_chain_copyout(&sc->rx, 0, buf, ZC_FRAME_PING_LEN);
		skip_payload(sc, f->len);
		(void)zc__tx_control(&sc->tx, &h, buf, ZC_FRAME_PING_LEN);
		want_flush(sc);
		return 0;
	case ZC_FT_PONG:
		skip_payload(sc, f->len);
		return 0;
	default:
		protocol_error(sc, "frame type not sent by clients");
		return -EPROTO;
	}
}

static bool over_tx_budget(const struct zc__sconn *sc)
{
	return sc->tx.queued + sc->tx.in_stack > sc->rc->s->cfg.tx_budget;
}

static void parse(struct zc__sconn *sc)
{
	struct zc__srctx *rc = sc->rc;

	if (sc->parsing)
		return;
	/* Hold the struct: handlers may answer (and drop refs) inline. */
	sc->refs++;
	sc->parsing = true;
	batch_begin(rc);
	sc->parse_ns = zc__now_ns();	/* one clock read per pass */
	while (!sc->broken && sc->conn) {
		struct zc_frame f;
		int ret;

		if (over_tx_budget(sc)) {
			if (!sc->paused)
				zc__ctr_add(&sc->rc->s->tx_budget_stops, 1);
			sc->paused = true;
			break;
		}
		ret = zc__frame_decode_chain(&sc->rx, &sc->lim, &f);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			protocol_error(sc, ret == -EMSGSIZE ? "frame too long" :
				       ret == -EPROTONOSUPPORT ?
				       "unsupported version" :
				       "malformed frame header");
			break;
		}
		if (budget_blocks(sc, &f)) {
			/* Leave the frame unparsed: its bytes stay charged to
			 * the receive budget, so the stack stops reading. */
			budget_wait(sc, f.msg_len);
			break;
		}
		if (on_frame(sc, &f))
			break;
	}
	sc->parsing = false;
	batch_end(rc);
	sconn_put(sc);
}

void zc__server_resume(struct zc_work *w)
{
	struct zc__srctx *rc = (struct zc__srctx *)((char *)w -
				offsetof(struct zc__srctx, resume_work));
	struct zc__sconn *list;

	atomic_store(&rc->resume_queued, false);
	list = rc->budget_waiters;
	rc->budget_waiters = NULL;
	while (list) {
		struct zc__sconn *sc = list;

		list = sc->wait_next;
		sc->budget_wait = false;
		atomic_fetch_sub(&rc->nwaiting, 1);
		atomic_fetch_sub(&rc->s->budget_waiting, 1);
		if (sc->conn)
			parse(sc);
		sconn_put(sc);
	}
}

/* ---- connection callbacks ---------------------------------------------- */

static void sc_on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct zc__sconn *sc = ud;

	if (sc->broken) {
		zc_conn_recv_done(c, zc_chain_len(data));
		zc_chain_release(data);
		return;
	}
	if (zc__rx_append(&sc->rx, data)) {
		protocol_error(sc, "out of memory");
		return;
	}
	parse(sc);
}

static void sc_released(struct zc__tx *tx, size_t payload)
{
	struct zc__sconn *sc = (struct zc__sconn *)((char *)tx -
				offsetof(struct zc__sconn, tx));

	if (sc->paused && sc->conn && !over_tx_budget(sc)) {
		sc->paused = false;
		parse(sc);
	}
}

static void sc_on_writable(struct zc_conn *c, void *ud)
{
	struct zc__sconn *sc = ud;

	zc__tx_flush(&sc->tx);
}

static void sc_on_close(struct zc_conn *c, int err, void *ud)
{
	struct zc__sconn *sc = ud;
	struct zc_rpc_server *s = sc->rc->s;
	uint32_t i = 0;
	uint64_t id;
	void *v;

	zc__tx_drop(&sc->tx);
	while (zc__map_next(&sc->calls, &i, &id, &v)) {
		struct zc_rpc_call *call = v;

		if (v == DISCARD)
			continue;
		if (call->state == CALL_REASM) {
			call_unadmit(s, call);
			call_free(call);
			sc->refs--;	/* never the last: the conn holds one */
			continue;
		}
		atomic_store_explicit(&call->cancelled, true,
				      memory_order_release);
	}
	zc__map_free(&sc->calls);
	sc->ncalls = 0;
	zc_chain_release(&sc->rx);
	sc->conn = NULL;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		sc->rc->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	zc__ctr_sub(&s->conns_open, 1);
	sconn_put(sc);
}

static const struct zc_conn_ops sconn_ops = {
	.on_data = sc_on_data,
	.on_writable = sc_on_writable,
	.on_close = sc_on_close,
};

static int send_hello(struct zc__sconn *sc)
{
	const struct zc_rpc_server_config *cfg = &sc->rc->s->cfg;
	struct zc_frame h = { .type = ZC_FT_HELLO };
	struct zc_hello hello = {
		.max_message = cfg->max_message,
		.max_frame = cfg->max_frame,
		.max_inflight = cfg->max_inflight_conn,
	};
	uint8_t buf[ZC_FRAME_HELLO_LEN];

	zc__hello_encode(buf, &hello);
	return zc__tx_control(&sc->tx, &h, buf, sizeof(buf));
}

void zc__server_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct zc__srctx *rc = ud;
	struct zc__sconn *sc;

	if (atomic_load(&rc->s->drained))
		return;	/* no ops: the stack closes it */
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return;
	sc->rc = rc;
	sc->conn = c;
	sc->refs = 1;
	sc->lim.max_frame = rc->s->cfg.max_frame;
	zc_chain_init(&sc->rx);
	zc__map_init(&sc->calls);
	zc__tx_init(&sc->tx, c, zc_reactor_pool(rc->r), rc->s->cfg.tx_window,
		    sc_released);
	if (send_hello(sc)) {
		free(sc);
		return;
	}
	sc->next = rc->conns;
	if (rc->conns)
		rc->conns->prev = sc;
	rc->conns = sc;
	zc__ctr_add(&rc->s->sconns_live, 1);
	zc__ctr_add(&rc->s->conns_accepted, 1);
	zc__ctr_add(&rc->s->conns_open, 1);
	zc_conn_set_ops(c, &sconn_ops, sc);
	zc__tx_flush(&sc->tx);
}

/* ---- drain ------------------------------------------------------------- */

void zc__server_goaway_all(struct zc__srctx *rc)
{
	if (rc->l) {
		zc_listener_close(rc->l);
		rc->l = NULL;
	}
	for (struct zc__sconn *sc = rc->conns; sc; sc = sc->next) {
		struct zc_frame h = { .type = ZC_FT_GOAWAY, .id = sc->last_id };

		if (sc->draining || sc->broken)
			continue;
		sc->draining = true;
		(void)zc__tx_control(&sc->tx, &h, NULL, 0);
		zc__tx_flush(&sc->tx);
	}
}

void zc__server_close_all(struct zc__srctx *rc, bool abort)
{
	zc__server_goaway_all(rc);
	for (struct zc__sconn *sc = rc->conns; sc; sc = sc->next) {
		uint32_t i = 0;
		uint64_t id;
		void *v;

		while (zc__map_next(&sc->calls, &i, &id, &v)) {
			struct zc_rpc_call *call = v;

			if (v == DISCARD || call->state != CALL_DISPATCHED ||
			    call->answered_early)
				continue;
			call->answered_early = true;
			atomic_store_explicit(&call->cancelled, true,
					      memory_order_release);
			queue_error(sc, id, call->m->id, ZC_RPC_CANCELLED,
				    "server shutting down");
		}
		zc__tx_flush(&sc->tx);
		zc_conn_close(sc->conn, abort ? ZC_CLOSE_ABORT :
						ZC_CLOSE_GRACEFUL);
	}
}
