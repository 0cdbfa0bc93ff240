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
 * not parsed yet (credit goes back as frames are cut); the request bytes
 * of calls not answered yet count per connection and whole server
 * (server_mem.c).  When a new request must wait for the latter, parsing
 * stops where it is, so the former fills and the stack stops reading
 * that connection.  Request bytes are reassembled by reasm.c, as views of
 * the receive ring or copied out of it (server_mem.c decides).
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

char zc__discard_mark;
#define DISCARD ZC__DISCARD
/* Discard marks allowed per connection beyond its call limit. */
#define DISCARD_SLACK 1024u
/* Budgets below this cannot be met: no request crosses TCP from its
 * sender to our parser in less (PROTOCOL.md section 6). */
#define DEADLINE_FLOOR_NS 10000u

void zc__sconn_put(struct zc__sconn *sc)
{
	if (--sc->refs)
		return;
	assert(!sc->conn && !sc->calls.n);
	zc__map_free(&sc->calls);
	zc__ctr_sub(&sc->rc->s->sconns_live, 1);
	zc_tls_peer_put(sc->tls_peer);
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
		zc__sconn_put(sc);
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
	zc__sconn_reset(sc, &sc->rc->s->conns_protocol_error, why);
}

void zc__sconn_reset(struct zc__sconn *sc, zc__ctr *counter, const char *why)
{
	if (sc->broken)
		return;
	sc->broken = true;
	zc__ctr_add(counter, 1);
	zc__logc(ZC_LOG_WARN, sc->conn,
		 counter == &sc->rc->s->conns_protocol_error ?
			 "protocol error" :
		 counter == &sc->rc->s->conns_timed_out ?
			 "timed out" : "connection reset",
		 "server closing connection (fd %d): %s", zc_conn_fd(sc->conn),
		 why);
	zc_conn_close(sc->conn, ZC_CLOSE_ABORT);
}

static void call_free(struct zc_rpc_call *call)
{
	call->sc->rc->pinned -= call->ra.pinned;
	zc__reasm_release(&call->ra);
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
	for (unsigned i = 0; i < s->nrc; i++) {
		struct zc__srctx *rc = &s->rcs[i];

		if (atomic_load(&rc->nwaiting) &&
		    !atomic_exchange(&rc->resume_queued, true))
			zc_reactor_queue(rc->r, &rc->resume_work);
	}
}

/* Undo the admission counters of a call: answered or abandoned. */
static void call_unadmit(struct zc_rpc_server *s, struct zc_rpc_call *call)
{
	if (call->state == CALL_REASM) {
		call->sc->reasm_bytes -= call->msg_len;
		zc__ctr_sub(&s->reasm_bytes, call->msg_len);
	}
	call->sc->req_bytes -= call->msg_len;
	zc__ctr_sub(&call->m->inflight, 1);
	zc__ctr_sub(&s->inflight, 1);
	/* seq_cst, pairing with budget_wait(): either it sees the bytes
	 * gone, or budget_kick() sees it waiting. */
	atomic_fetch_sub(&s->inflight_bytes, call->msg_len);
	budget_kick(s);
}

/*
 * Absolute deadline of a new call: its budget counts from when we parsed
 * its first fragment or, if that frame had to wait for request-byte room,
 * from when it first reached the parser.
 */
static uint64_t start_deadline(uint64_t waited_since, uint32_t budget_us)
{
	uint64_t t0 = waited_since ? waited_since : zc__now_ns();
	uint64_t budget = (uint64_t)budget_us * 1000;

	if (!budget_us)
		return 0;
	/* A budget under the floor has run out in transit already. */
	return budget < DEADLINE_FLOOR_NS ? t0 : t0 + budget;
}

/* The new request at the head of @sc's unparsed bytes waited for room
 * past its deadline: it is to be refused, not waited for. */
static bool wait_expired(const struct zc__sconn *sc, const struct zc_frame *f)
{
	return f->deadline_us && sc->wait_since &&
	       zc__now_ns() >= start_deadline(sc->wait_since, f->deadline_us);
}

/* Must this new message wait for request bytes to be given back
 * (server_mem.c)?  One message is always let in when nothing is held,
 * so a message up to max_message always makes progress. */
static bool budget_blocks(struct zc__sconn *sc, const struct zc_frame *f)
{
	struct zc_rpc_server *s = sc->rc->s;

	if (f->type != ZC_FT_REQUEST || sc->draining ||
	    f->msg_len > s->cfg.max_message ||
	    zc__map_get(&sc->calls, f->id) || wait_expired(sc, f))
		return false;
	return zc__srv_bytes_check(sc, f->msg_len) == ZC__BYTES_WAIT;
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
	if (zc__srv_bytes_check(sc, msg_len) != ZC__BYTES_WAIT)
		budget_kick(rc->s);
}

/* ---- answers ----------------------------------------------------------- */

/*
 * The RESPONSE of a SENDING call left the send queue: fully framed, cut
 * by a CANCEL or the drain deadline, or dropped with the connection.
 * Never closes anything itself: it may run inside a flush.
 */
static void response_gone(struct zc__txmsg *tm)
{
	struct zc_rpc_call *call = tm->owner;
	struct zc__sconn *sc = call->sc;

	if (sc->conn && zc__map_get(&sc->calls, call->id) == call)
		zc__map_del(&sc->calls, call->id);
	sc->nsending--;
	call->tm = NULL;
	call_free(call);
	zc__sconn_put(sc);	/* never the last: a flush or on_close holds one */
}

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
	/* The handler is done with the request: the views it kept in the
	 * answer are charged by zc__srv_answer_unpin() below, so charging
	 * the request's too would count an echo twice (and copy it once the
	 * double count reached rx_pin_max). */
	sc->rc->pinned -= call->ra.pinned;
	call->ra.pinned = 0;
	if (sc->conn && !call->peer_cancelled)
		sc->ncalls--;
	if (!sc->conn || call->answered_early || call->peer_cancelled) {
		/* A peer cancel took it out of the map already. */
		if (sc->conn && !call->peer_cancelled)
			zc__map_del(&sc->calls, call->id);
		zc__ctr_add(&s->dropped_answers, 1);
		goto out;
	}
	if (status == ZC_RPC_OK) {
		struct zc__txmsg *tm = zc__txmsg_new();

		if (!tm) {
			zc__map_del(&sc->calls, call->id);
			queue_error(sc, call->id, m->id, ZC_RPC_INTERNAL,
				    "out of memory");
			goto out;
		}
		tm->hdr = (struct zc_frame){ .type = ZC_FT_RESPONSE,
					     .method = m->id, .id = call->id };
		tm->body = call->resp;
		zc_chain_init(&call->resp);
		zc__srv_answer_unpin(sc, tm);
		zc__ctr_add(&m->tx_bytes, zc_chain_len(&tm->body));
		/* The call stays in the map, and holds its sconn, until the
		 * last fragment is framed: a CANCEL can still cut it, and
		 * its id is still in use. */
		tm->on_free = response_gone;
		tm->owner = call;
		call->tm = tm;
		call->state = CALL_SENDING;
		sc->nsending++;
		zc__tx_queue(&sc->tx, tm);
		want_flush(sc);
		return;
	} else {
		zc__map_del(&sc->calls, call->id);
		queue_error(sc, call->id, m->id, status,
			    call->msg[0] ? call->msg : NULL);
	}
out:
	call_free(call);
	zc__sconn_move_kick(sc);	/* the last call it waited for? */
	zc__sconn_put(sc);
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

/* @call leaves reassembly (dispatched, dropped, or its conn closed). */
static void reasm_end(struct zc__sconn *sc, struct zc_rpc_call *call)
{
	sc->nreasm--;
	if (call->deadline)
		zc__ctr_sub(&sc->rc->s->reasm_timed, 1);
}

static void dispatch(struct zc__sconn *sc, struct zc_rpc_call *call)
{
	struct zc__method *m = call->m;
	struct zc_chain req;

	call->state = CALL_DISPATCHED;
	reasm_end(sc, call);
	sc->reasm_bytes -= call->msg_len;
	zc__ctr_sub(&sc->rc->s->reasm_bytes, call->msg_len);
	zc__ctr_add(&m->calls, 1);
	zc__ctr_add(&m->rx_bytes, call->msg_len);
	zc__ctr_add(&sc->rc->s->requests, 1);
	if (call->deadline && zc__now_ns() >= call->deadline) {
		/* Ran out while it was being received or waited for room. */
		zc__ctr_add(&sc->rc->s->expired_queued, 1);
		zc_rpc_reply_error(call, ZC_RPC_DEADLINE_EXCEEDED,
				   "expired before it ran");
		return;
	}
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
		 uint64_t deadline, struct zc__method **mp)
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
	if (!sc->tls_peer_known) {
		sc->tls_peer = zc_conn_tls_peer(sc->conn);
		sc->tls_peer_known = true;
	}
	if (cfg->authorize &&
	    !cfg->authorize(cfg->authorize_arg, f->method, sc->tls_peer)) {
		zc__ctr_add(&m->by_status[ZC_RPC_PERMISSION_DENIED], 1);
		return ZC_RPC_PERMISSION_DENIED;
	}
	if (deadline && zc__now_ns() >= deadline) {
		/* Spent in transit (the floor) or waiting for room. */
		zc__ctr_add(&s->expired_queued, 1);
		zc__ctr_add(&m->by_status[ZC_RPC_DEADLINE_EXCEEDED], 1);
		return ZC_RPC_DEADLINE_EXCEEDED;
	}
	if (zc__ctr_get(&s->inflight) >= cfg->max_inflight ||
	    sc->ncalls >= cfg->max_inflight_conn ||
	    (m->max_inflight && zc__ctr_get(&m->inflight) >= m->max_inflight) ||
	    zc__srv_bytes_check(sc, f->msg_len) != ZC__BYTES_OK) {
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

/* The payload of the current frame joins @call: as views while that is
 * cheap for the ring, else copied (server_mem.c). */
static int reasm_add(struct zc__sconn *sc, struct zc_rpc_call *call,
		     uint32_t len)
{
	size_t pinned = call->ra.pinned;
	bool keep = zc__srv_keep_views(sc, call, len);
	bool copying = call->ra.heap;
	int ret;

	ret = zc__reasm_add(&call->ra, &call->req, &sc->rx, len,
			    call->msg_len, zc_reactor_pool(sc->rc->r), keep);
	sc->rc->pinned += call->ra.pinned - pinned;
	/* Every byte that went into the copy: this fragment, and on the
	 * switch to copy mode the views gathered before it. */
	if (!ret && call->ra.heap)
		zc__ctr_add(&sc->rc->s->rx_copied,
			    copying ? len : call->ra.got);
	return ret;
}

static int on_request(struct zc__sconn *sc, const struct zc_frame *f)
{
	struct zc_rpc_server *s = sc->rc->s;
	void *v = zc__map_get(&sc->calls, f->id);
	bool last = !(f->flags & ZC_FF_MORE);
	struct zc_rpc_call *call;
	struct zc__method *m = NULL;
	uint64_t waited_since, deadline;
	int status;

	if (v == DISCARD) {
		skip_payload(sc, f->len);
		if (last)
			zc__map_del(&sc->calls, f->id);
		return 0;
	}
	if (!v) {
		/* Only a new message can have waited for room. */
		waited_since = sc->wait_since;
		sc->wait_since = 0;
		/* Sequence rules first (section 7 order), then admission. */
		if (f->id <= sc->last_id) {
			protocol_error(sc, "request id not above the last one "
					   "(reused?)");
			return -EPROTO;
		}
		if (last && f->msg_len != f->len) {
			protocol_error(sc, "unfragmented request with msg_len "
					   "!= length");
			return -EPROTO;
		}
		if (sc->calls.n - sc->nsending >=
		    s->cfg.max_inflight_conn + DISCARD_SLACK) {
			protocol_error(sc, "too many open calls");
			return -EPROTO;
		}
		sc->last_id = f->id;
		deadline = start_deadline(waited_since, f->deadline_us);
		status = admit(sc, f, deadline, &m);
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
		call->start_ns = sc->last_rx;
		call->deadline = deadline;
		atomic_init(&call->cancelled, false);
		zc_chain_init(&call->req);
		zc_chain_init(&call->resp);
		sc->ncalls++;
		sc->nreasm++;
		if (call->deadline)	/* the ticker then ticks finely */
			zc__ctr_add(&s->reasm_timed, 1);
		sc->refs++;
		zc__reasm_init(&call->ra);
		zc__ctr_add(&m->inflight, 1);
		zc__ctr_add(&s->inflight, 1);
		zc__ctr_add(&s->inflight_bytes, f->msg_len);
		zc__ctr_add(&s->reasm_bytes, f->msg_len);
		sc->req_bytes += f->msg_len;
		sc->reasm_bytes += f->msg_len;
	} else {
		call = v;
		if (call->state != CALL_REASM) {
			protocol_error(sc, call->state == CALL_SENDING ?
				       "request id reused while its answer "
				       "is being sent" :
				       "request id reused while in flight");
			return -EPROTO;
		}
		if (f->msg_len != call->msg_len ||
		    f->method != call->m->id) {
			protocol_error(sc, "fragment does not match message");
			return -EPROTO;
		}
	}
	if (call->ra.got + f->len > call->msg_len ||
	    (last && call->ra.got + f->len != call->msg_len)) {
		protocol_error(sc, "fragment lengths do not add up");
		return -EPROTO;
	}
	if (reasm_add(sc, call, f->len) ||
	    (last && zc__reasm_finish(&call->ra, &call->req))) {
		protocol_error(sc, "out of memory");
		return -ENOMEM;
	}
	/* Parsed bytes leave the connection's receive budget (which bounds
	 * unparsed bytes) and stay in max_inflight_bytes until answered. */
	zc_conn_recv_done(sc->conn, f->len);
	call->last_frag = zc__now_ns();
	if (last)
		dispatch(sc, call);
	return 0;
}

/* Forget a call being reassembled; its further fragments are skipped
 * (the peer may still send them). */
static void drop_reasm(struct zc__sconn *sc, struct zc_rpc_call *call)
{
	zc__map_del(&sc->calls, call->id);
	if (zc__map_put(&sc->calls, call->id, DISCARD))
		protocol_error(sc, "out of memory");
	sc->ncalls--;
	reasm_end(sc, call);
	call_unadmit(sc->rc->s, call);
	call_free(call);
	zc__sconn_put(sc);
}

static void on_cancel(struct zc__sconn *sc, const struct zc_frame *f)
{
	void *v = zc__map_get(&sc->calls, f->id);
	struct zc_rpc_call *call = v;

	if (!v || v == DISCARD)
		return;	/* answered already or refused: not an error */
	zc__ctr_add(&sc->rc->s->cancels, 1);
	if (call->state == CALL_SENDING) {
		/* Its answer is being sent: drop the fragments not framed
		 * yet (the client forgot the id when it sent CANCEL). */
		if (zc__tx_remove(&sc->tx, call->tm))
			zc__txmsg_free(call->tm);	/* response_gone */
		return;
	}
	if (call->state == CALL_REASM) {
		/* Skip the rest of its fragments; never reaches a handler. */
		drop_reasm(sc, call);
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

	sc->rx_since = 0;
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
	return zc__tx_held(&sc->tx) > sc->rc->s->cfg.tx_budget;
}

static void eof_reap(struct zc__sconn *sc);
static void version_mismatch(struct zc__sconn *sc);

void zc__sconn_parse(struct zc__sconn *sc)
{
	struct zc__srctx *rc = sc->rc;

	if (sc->parsing)
		return;
	if (sc->bulk_want) {
		/* Waiting to move: the rest is parsed on the bulk reactor. */
		zc__sconn_move_kick(sc);
		return;
	}
	/* Hold the struct: handlers may answer (and drop refs) inline. */
	sc->refs++;
	sc->parsing = true;
	batch_begin(rc);
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
		if (ret == -EAGAIN) {
			if (zc_chain_len(&sc->rx) && !sc->rx_since)
				sc->rx_since = zc__now_ns();
			if (sc->peer_eof)
				eof_reap(sc);
			break;
		}
		if (ret == -EPROTONOSUPPORT) {
			/* Section 4: GOAWAY protocol_error in our version,
			 * then close. */
			version_mismatch(sc);
			break;
		}
		if (ret < 0) {
			protocol_error(sc, ret == -EMSGSIZE ? "frame too long" :
				       "malformed frame header");
			break;
		}
		if (zc__sconn_bulk_check(sc, &f))
			break;	/* moves first (server_move.c) */
		if (budget_blocks(sc, &f)) {
			/* Leave the frame unparsed: its bytes stay charged to
			 * the receive budget, so the stack stops reading. */
			if (!sc->wait_since)
				sc->wait_since = zc__now_ns();
			budget_wait(sc, f.msg_len);
			break;
		}
		if (on_frame(sc, &f))
			break;
	}
	sc->parsing = false;
	batch_end(rc);
	zc__sconn_maybe_close(sc);
	zc__sconn_put(sc);
}

/*
 * The peer half-closed and every byte it sent before is parsed: messages
 * still being reassembled can never complete, so they are dropped (no
 * answer: the peer cannot have been waiting for one it could not ask
 * for in full), and so are the bytes of an unfinished frame.
 */
static void eof_reap(struct zc__sconn *sc)
{
	struct zc_rpc_call **list;
	uint32_t n;

	skip_payload(sc, (uint32_t)zc_chain_len(&sc->rx));
	sc->rx_since = 0;
	n = zc__sconn_reasm(sc, &list);
	for (uint32_t i = 0; i < n; i++)
		drop_reasm(sc, list[i]);
	free(list);
}

/*
 * The calls of @sc (REASM ones only when @reasm), collected into a malloc
 * array (*@out, the caller frees it), because the map may not change
 * while it is iterated.  Out of memory resets the connection: 0 calls.
 */
static uint32_t collect_calls(struct zc__sconn *sc, bool reasm,
			      struct zc_rpc_call ***out)
{
	struct zc_rpc_call **list;
	uint32_t i = 0, n = 0;
	uint64_t id;
	void *v;

	*out = NULL;
	if (!sc->calls.n || (reasm && !sc->nreasm))
		return 0;
	list = malloc(sc->calls.n * sizeof(*list));
	if (!list) {
		protocol_error(sc, "out of memory");
		return 0;
	}
	while (zc__map_next(&sc->calls, &i, &id, &v))
		if (v != DISCARD && (!reasm ||
		    ((struct zc_rpc_call *)v)->state == CALL_REASM))
			list[n++] = v;
	*out = list;
	return n;
}

uint32_t zc__sconn_reasm(struct zc__sconn *sc, struct zc_rpc_call ***out)
{
	return collect_calls(sc, true, out);
}

static void version_mismatch(struct zc__sconn *sc)
{
	struct zc_rpc_server *s = sc->rc->s;

	zc__ctr_add(&s->conns_protocol_error, 1);
	zc__log("server: closing connection (fd %d): unsupported version",
		zc_conn_fd(sc->conn));
	zc__sconn_goaway(sc, ZC_RPC_PROTOCOL_ERROR, "unsupported version");
	/* Nothing more is parsed or answered from this peer. */
	sc->broken = true;
	zc__sconn_close_soon(sc);
}

void zc__sconn_tick_wait(struct zc__sconn *sc)
{
	struct zc_frame f;

	if (!sc->budget_wait || sc->parsing || !sc->conn || sc->broken)
		return;
	/* The frame we left unparsed for room: refuse it at its deadline
	 * (parse() lets it through to admission, which says so). */
	if (zc__frame_decode_chain(&sc->rx, &sc->lim, &f) > 0 &&
	    wait_expired(sc, &f))
		zc__sconn_parse(sc);
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
		sc->stall_base = zc__now_ns();
		atomic_fetch_sub(&rc->nwaiting, 1);
		atomic_fetch_sub(&rc->s->budget_waiting, 1);
		if (sc->conn)
			zc__sconn_parse(sc);
		zc__sconn_put(sc);
	}
}

/* ---- connection callbacks ---------------------------------------------- */

static void sc_on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct zc__sconn *sc = ud;

	sc->last_rx = zc__now_ns();
	if (sc->broken) {
		zc_conn_recv_done(c, zc_chain_len(data));
		zc_chain_release(data);
		return;
	}
	if (zc__rx_append(&sc->rx, data)) {
		protocol_error(sc, "out of memory");
		return;
	}
	zc__sconn_parse(sc);
	if (sc->conn)
		zc__srv_rx_unpin(sc);
}

static void sc_released(struct zc__tx *tx, size_t payload)
{
	struct zc__sconn *sc = (struct zc__sconn *)((char *)tx -
				offsetof(struct zc__sconn, tx));

	if (sc->paused && sc->conn && !over_tx_budget(sc)) {
		sc->paused = false;
		sc->stall_base = zc__now_ns();
		zc__sconn_parse(sc);
	}
}

/* Everything queued is with the stack: a closing connection may close. */
static void sc_tx_idle(struct zc__tx *tx)
{
	struct zc__sconn *sc = (struct zc__sconn *)((char *)tx -
				offsetof(struct zc__sconn, tx));

	zc__sconn_maybe_close(sc);
	zc__sconn_move_kick(sc);	/* its answers are all sent */
}

static void sc_on_writable(struct zc_conn *c, void *ud)
{
	struct zc__sconn *sc = ud;

	zc__tx_flush(&sc->tx);
}

/* Half-close: the calls that arrived before the FIN are still answered
 * in full, then we close (PROTOCOL.md section 8). */
static void sc_on_eof(struct zc_conn *c, void *ud)
{
	struct zc__sconn *sc = ud;

	sc->peer_eof = true;
	if (sc->broken)
		return;
	/* Frames received before the FIN and not parsed yet (we had
	 * stopped for room) are still served when parsing resumes. */
	if (!sc->paused && !sc->budget_wait)
		zc__sconn_parse(sc);
}

static void sc_on_close(struct zc_conn *c, int err, void *ud)
{
	struct zc__sconn *sc = ud;
	struct zc_rpc_server *s = sc->rc->s;
	uint32_t i = 0;
	uint64_t id;
	void *v;

	zc__srv_conn_closed(sc, err);
	zc__tx_drop(&sc->tx);	/* SENDING calls leave the map here */
	while (zc__map_next(&sc->calls, &i, &id, &v)) {
		struct zc_rpc_call *call = v;

		if (v == DISCARD)
			continue;
		if (call->state == CALL_REASM) {
			reasm_end(sc, call);
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
	sc->nreasm = 0;
	zc_chain_release(&sc->rx);
	sc->conn = NULL;
	zc__sconn_unlink(sc);
	zc__ctr_sub(&s->conns_open, 1);
	zc__server_drain_check(sc->rc);
	zc__sconn_put(sc);
}

static const struct zc_conn_ops sconn_ops = {
	.on_data = sc_on_data,
	.on_writable = sc_on_writable,
	.on_eof = sc_on_eof,
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
	sc->last_rx = zc__now_ns();
	sc->hello_deadline = zc__deadline_after(sc->last_rx,
					    rc->s->cfg.hello_timeout_ms);
	sc->lim.max_frame = rc->s->cfg.max_frame;
	zc_chain_init(&sc->rx);
	zc__map_init(&sc->calls);
	zc__tx_init(&sc->tx, c, &rc->stage, rc->s->cfg.tx_window,
		    sc_released);
	sc->tx.on_idle = sc_tx_idle;
	if (send_hello(sc)) {
		free(sc);
		return;
	}
	zc__sconn_link(rc, sc);
	zc__ctr_add(&rc->s->sconns_live, 1);
	zc__ctr_add(&rc->s->conns_accepted, 1);
	zc__ctr_add(&rc->s->conns_open, 1);
	zc_conn_set_ops(c, &sconn_ops, sc);
	zc__srv_conn_setup(sc);
	zc__tx_flush(&sc->tx);
}

void zc__sconn_link(struct zc__srctx *rc, struct zc__sconn *sc)
{
	sc->prev = NULL;
	sc->next = rc->conns;
	if (rc->conns)
		rc->conns->prev = sc;
	rc->conns = sc;
	atomic_fetch_add(&rc->nconns, 1);
}

void zc__sconn_unlink(struct zc__sconn *sc)
{
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		sc->rc->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	sc->prev = sc->next = NULL;
	atomic_fetch_sub(&sc->rc->nconns, 1);
	/* No connection left to tick it: let the stage go now. */
	if (!sc->rc->conns)
		zc__tx_stage_fini(&sc->rc->stage);
}

/* ---- drain ------------------------------------------------------------- */

void zc__server_goaway_all(struct zc__srctx *rc)
{
	if (rc->l) {
		zc_listener_close(rc->l);
		rc->l = NULL;
	}
	for (struct zc__sconn *sc = rc->conns; sc; sc = sc->next)
		zc__sconn_goaway(sc, ZC_RPC_OK, NULL);
}

void zc__server_abort_all(struct zc__srctx *rc)
{
	zc__server_goaway_all(rc);
	for (struct zc__sconn *sc = rc->conns; sc; sc = sc->next) {
		/* Handlers see their calls cancelled; the reset drops what
		 * was queued. */
		(void)zc__sconn_cancel_rest(sc);
		zc_conn_close(sc->conn, ZC_CLOSE_ABORT);
	}
}

/* ---- closing: drain, half-close, timeouts ------------------------------ */

uint64_t zc__deadline_after(uint64_t now, unsigned ms)
{
	return ms == ZC_RPC_TIMEOUT_OFF ? UINT64_MAX :
					   now + (uint64_t)ms * 1000000;
}

void zc__sconn_maybe_close(struct zc__sconn *sc)
{
	/* The flags before the send queue (further into @sc): every tick
	 * asks this of every connection. */
	if (!sc->conn || sc->closing ||
	    (!sc->close_soon && !sc->draining && !sc->peer_eof) ||
	    !zc__tx_idle(&sc->tx))
		return;
	if (!sc->close_soon) {
		/* Every call it must answer is answered, and unparsed
		 * frames (we stopped for room) are still to be served. */
		if (sc->ncalls || sc->nsending || sc->paused || sc->budget_wait)
			return;
		if (sc->peer_eof && zc_chain_len(&sc->rx))
			return;
	}
	sc->closing = true;
	if (!sc->close_deadline)
		sc->close_deadline = zc__deadline_after(zc__now_ns(),
						sc->rc->s->cfg.linger_ms);
	zc_conn_close(sc->conn, ZC_CLOSE_GRACEFUL);
}

void zc__sconn_close_soon(struct zc__sconn *sc)
{
	sc->close_soon = true;
	if (!sc->close_deadline)
		sc->close_deadline = zc__deadline_after(zc__now_ns(),
						sc->rc->s->cfg.linger_ms);
	zc__sconn_maybe_close(sc);
}

void zc__sconn_goaway(struct zc__sconn *sc, int status, const char *why)
{
	struct zc_frame h = { .type = ZC_FT_GOAWAY, .status = (uint16_t)status,
			      .id = sc->last_id };
	size_t len = why ? strlen(why) : 0;

	if (sc->draining || sc->broken || !sc->conn)
		return;
	sc->draining = true;
	(void)zc__tx_control(&sc->tx, &h, why, (uint32_t)len);
	want_flush(sc);
}

void zc__sconn_expire_reasm(struct zc__sconn *sc, struct zc_rpc_call *call)
{
	zc__ctr_add(&sc->rc->s->expired_reasm, 1);
	zc__ctr_add(&call->m->by_status[ZC_RPC_DEADLINE_EXCEEDED], 1);
	queue_error(sc, call->id, call->m->id, ZC_RPC_DEADLINE_EXCEEDED,
		    "expired while being received");
	drop_reasm(sc, call);
}

bool zc__sconn_cancel_rest(struct zc__sconn *sc)
{
	struct zc_rpc_call **list;
	bool cut = false;
	uint32_t n;

	if (!sc->conn || sc->broken)
		return false;
	n = collect_calls(sc, false, &list);
	for (uint32_t i = 0; i < n; i++) {
		struct zc_rpc_call *call = list[i];
		uint64_t cid = call->id;
		uint32_t mid = call->m->id;

		switch (call->state) {
		case CALL_REASM:
			drop_reasm(sc, call);
			break;
		case CALL_DISPATCHED:
			if (call->answered_early)
				continue;
			call->answered_early = true;
			atomic_store_explicit(&call->cancelled, true,
					      memory_order_release);
			break;
		case CALL_SENDING:
			/* Section 8: an ERROR ends a cut RESPONSE. */
			if (!zc__tx_remove(&sc->tx, call->tm))
				continue;
			zc__txmsg_free(call->tm);	/* response_gone */
			break;
		}
		cut = true;
		zc__ctr_add(&sc->rc->s->drain_cut, 1);
		queue_error(sc, cid, mid, ZC_RPC_CANCELLED,
			    "server shutting down");
	}
	free(list);
	return cut;
}
