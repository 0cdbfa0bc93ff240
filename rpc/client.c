/* SPDX-License-Identifier: MIT */
/*
 * rpc/client.c - the client on its reactor thread: connection slots with
 * reconnect and backoff, routing of calls, response reassembly, deadlines
 * and cancellation.
 *
 * A call is SENT once it has an id on a ready connection (its request may
 * still be waiting in the framing queue), WAITING while no connection is
 * ready, DONE after its callback.  Exactly one path completes it:
 * complete() removes it from every structure first, so a late answer, a
 * timer and a cancel can never both report it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static char discard_mark;
#define DISCARD ((void *)&discard_mark)

/* Something is timed: make sure the tick thread is awake.  The lock is
 * taken only on the idle -> busy transition. */
static void want_tick(struct zc_rpc_client *cli)
{
	if (atomic_exchange(&cli->need_tick, true))
		return;
	pthread_mutex_lock(&cli->tick_lock);
	pthread_cond_signal(&cli->tick_cond);
	pthread_mutex_unlock(&cli->tick_lock);
}

static void cc_close_calls(struct zc__cconn *cc, int status);
static void route(struct zc_rpc_client *cli, struct zc_rpc_pending *p);

/* ---- deadline heap ----------------------------------------------------- */

static void heap_set(struct zc_rpc_client *cli, uint32_t i,
		     struct zc_rpc_pending *p)
{
	cli->heap[i] = p;
	p->heap_idx = i + 1;
}

static void heap_up(struct zc_rpc_client *cli, uint32_t i)
{
	struct zc_rpc_pending *p = cli->heap[i];

	while (i) {
		uint32_t parent = (i - 1) / 2;

		if (cli->heap[parent]->deadline <= p->deadline)
			break;
		heap_set(cli, i, cli->heap[parent]);
		i = parent;
	}
	heap_set(cli, i, p);
}

static void heap_down(struct zc_rpc_client *cli, uint32_t i)
{
	struct zc_rpc_pending *p = cli->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= cli->nheap)
			break;
		if (c + 1 < cli->nheap &&
		    cli->heap[c + 1]->deadline < cli->heap[c]->deadline)
			c++;
		if (p->deadline <= cli->heap[c]->deadline)
			break;
		heap_set(cli, i, cli->heap[c]);
		i = c;
	}
	heap_set(cli, i, p);
}

static int heap_push(struct zc_rpc_client *cli, struct zc_rpc_pending *p)
{
	if (cli->nheap == cli->heap_cap) {
		uint32_t cap = cli->heap_cap ? cli->heap_cap * 2 : 64;
		void *h = realloc(cli->heap, cap * sizeof(*cli->heap));

		if (!h)
			return -ENOMEM;
		cli->heap = h;
		cli->heap_cap = cap;
	}
	cli->heap[cli->nheap++] = p;
	heap_up(cli, cli->nheap - 1);
	return 0;
}

static void heap_remove(struct zc_rpc_client *cli, struct zc_rpc_pending *p)
{
	uint32_t i = p->heap_idx - 1;
	struct zc_rpc_pending *last;

	if (!p->heap_idx)
		return;
	p->heap_idx = 0;
	last = cli->heap[--cli->nheap];
	if (last == p)
		return;
	heap_set(cli, i, last);
	heap_up(cli, i);
	heap_down(cli, last->heap_idx - 1);
}

/* ---- idle connections ------------------------------------------------- */

/* May @cc take a new call now? */
static bool takes_call(const struct zc_rpc_client *cli,
		       const struct zc__cconn *cc)
{
	return cc && cc->ready && !cc->goaway && !cc->broken &&
	       (!cli->cfg.max_inflight_conn ||
		cc->ninflight < cli->cfg.max_inflight_conn);
}

static void idle_unlink(struct zc__cconn *cc)
{
	struct zc_rpc_client *cli = cc->cli;

	if (!cc->idle)
		return;
	if (cc->idle_prev)
		cc->idle_prev->idle_next = cc->idle_next;
	else
		cli->idle_head = cc->idle_next;
	if (cc->idle_next)
		cc->idle_next->idle_prev = cc->idle_prev;
	else
		cli->idle_tail = cc->idle_prev;
	cc->idle = false;
}

/* @cc may have become idle: its last call ended, or its HELLO came.  Not
 * while it closes (its send queue dropped): the calls it fails then end
 * here too. */
static void idle_push(struct zc__cconn *cc)
{
	struct zc_rpc_client *cli = cc->cli;

	if (cc->idle || cc->ninflight || !takes_call(cli, cc) || !cc->conn ||
	    cc->tx.dead)
		return;
	cc->idle = true;
	cc->idle_next = NULL;
	cc->idle_prev = cli->idle_tail;
	if (cli->idle_tail)
		cli->idle_tail->idle_next = cc;
	else
		cli->idle_head = cc;
	cli->idle_tail = cc;
}

/* ---- completion -------------------------------------------------------- */

/* Give request bytes back to tx_budget. */
static void uncharge(struct zc_rpc_client *cli, size_t n)
{
	if (n)
		zc__ctr_sub(&cli->tx_pending, n);
}

static void complete(struct zc_rpc_pending *p, int status)
{
	struct zc_rpc_client *cli = p->cli;
	const struct zc_rpc_error *prev;
	struct zc_rpc_error why;
	struct zc_chain resp;

	assert(p->state != P_DONE);
	zc__call_why(cli, p, status, &why);
	heap_remove(cli, p);
	if (p->tm) {
		/* Never framed: take it back; else let it finish alone. */
		if (zc__tx_unqueue(&p->cc->tx, p->tm)) {
			uncharge(cli, zc_chain_len(&p->tm->body));
			p->tm->backref = NULL;
			zc__txmsg_free(p->tm);
		} else {
			p->tm->backref = NULL;
		}
		p->tm = NULL;
	}
	if (p->state == P_NEW || p->state == P_WAITING) {
		/* The request never reached a send queue. */
		uncharge(cli, zc_chain_len(&p->req));
	}
	if (p->cc && !--p->cc->ninflight)
		idle_push(p->cc);
	zc_chain_release(&p->req);
	p->state = P_DONE;
	zc__reasm_release(&p->ra);
	if (status != ZC_RPC_OK)
		zc_chain_release(&p->resp);
	resp = p->resp;
	zc_chain_init(&p->resp);
	zc__ctr_add(&cli->by_status[status < ZC_RPC_NSTATUS ? status :
				ZC_RPC_INTERNAL], 1);
	zc__hist_add(&cli->lat, (cli->rx_ns ? cli->rx_ns : zc__now_ns()) -
				p->start_ns);
	/* Counted before the callback: a waiter it wakes sees final stats. */
	zc__ctr_sub(&cli->inflight, 1);
	prev = zc__call_error_enter(&why);
	p->done(p->arg, status, &resp);
	zc__call_error_leave(prev);
	zc__pending_put(p);
}

/* ---- connections ------------------------------------------------------- */

static struct zc__cconn *pick(struct zc_rpc_client *cli);
static void send_on(struct zc__cconn *cc, struct zc_rpc_pending *p);

/* End of a batch: calls that waited for room go out, then every
 * connection that got frames flushes once. */
static void cc_flush_dirty(struct zc_rpc_client *cli)
{
	struct zc__cconn *room, *cc;

	while (cli->whead && !cli->closing_r && (room = pick(cli))) {
		struct zc_rpc_pending *p = cli->whead;

		cli->whead = p->wnext;
		if (!cli->whead)
			cli->wtail = NULL;
		p->state = P_NEW;
		send_on(room, p);
	}
	/* The dirty ones only: with thousands of connections a walk over
	 * all of them at the end of every delivery cost more than the calls
	 * (18% of a client's CPU at 1,000 active connections). */
	while ((cc = cli->dirty)) {
		cli->dirty = cc->dirty_next;
		cc->dirty = false;
		if (cc->conn)
			zc__tx_flush(&cc->tx);
	}
}

void zc__cconn_dirty(struct zc__cconn *cc)
{
	if (cc->dirty)
		return;
	cc->dirty = true;
	cc->dirty_next = cc->cli->dirty;
	cc->cli->dirty = cc;
}

static void cc_protocol_error(struct zc__cconn *cc, const char *why)
{
	if (cc->broken)
		return;
	cc->broken = true;
	zc__ctr_add(&cc->cli->protocol_errors, 1);
	zc__logc(ZC_LOG_WARN, cc->conn, "protocol error",
		 "client closing connection (fd %d): %s", zc_conn_fd(cc->conn),
		 why);
	zc_conn_close(cc->conn, ZC_CLOSE_ABORT);
}

static uint64_t rand_next(struct zc_rpc_client *cli)
{
	/* xorshift64*: jitter only, not security. */
	cli->rng ^= cli->rng >> 12;
	cli->rng ^= cli->rng << 25;
	cli->rng ^= cli->rng >> 27;
	return cli->rng * 0x2545f4914f6cdd1dull;
}

/* Exponential backoff with jitter: uniform in [d/2, d]. */
static uint64_t backoff_ns(struct zc_rpc_client *cli, unsigned failures)
{
	uint64_t d = cli->cfg.backoff_min_ms;
	uint64_t max = cli->cfg.backoff_max_ms;

	for (unsigned i = 1; i < failures && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	d *= 1000000;
	return d / 2 + rand_next(cli) % (d / 2 + 1);
}

/* Fail the calls waiting for a connection, but those asked to wait for
 * one (wait_for_ready) unless @all. */
static void fail_waiting(struct zc_rpc_client *cli, int status, bool all)
{
	struct zc_rpc_pending *keep = NULL, *keep_tail = NULL;

	while (cli->whead) {
		struct zc_rpc_pending *p = cli->whead;

		cli->whead = p->wnext;
		if (all || !p->wait_for_ready) {
			complete(p, status);
			continue;
		}
		p->wnext = NULL;
		if (keep_tail)
			keep_tail->wnext = p;
		else
			keep = p;
		keep_tail = p;
	}
	cli->whead = keep;
	cli->wtail = keep_tail;
}

static bool any_slot_alive(struct zc_rpc_client *cli)
{
	for (unsigned i = 0; i < cli->cfg.conns; i++)
		if (cli->slots[i].cc)
			return true;
	return false;
}

/* Remember why the current candidate of @sl failed (-errno), for
 * zc_rpc_call_error() of the calls that fail for want of a connection. */
static void note_connect_failure(struct zc_rpc_client *cli,
				 const struct zc__slot *sl, int err)
{
	const struct zc_addr *a = &cli->addrs[sl->addr_idx];
	char peer[ZC_PEER_MAX];

	cli->last_fail.err = err ? err : -ECONNABORTED;
	cli->last_fail.addr = sl->addr_idx;
	if (!zc__log_on(ZC_LOG_INFO) ||
	    zc_addr_format((const struct sockaddr *)&a->ss, a->len, peer,
			   sizeof(peer)) < 0)
		return;
	zc__logp(ZC_LOG_INFO, peer, "connect failed", "%s",
		 strerror(-cli->last_fail.err));
}

/* A connection closed before it was ready: refused, timed out, or the
 * peer sent no valid HELLO in time (-EPROTO: not a zcrpc server). */
static void cc_connect_failed(struct zc__cconn *cc, int err)
{
	if (cc->slot >= 0)
		note_connect_failure(cc->cli, &cc->cli->slots[cc->slot],
				     cc->broken ? -EPROTO : err);
}

static void cc_on_close(struct zc_conn *c, int err, void *ud);
static bool next_candidate(struct zc_rpc_client *cli, struct zc__slot *sl);
static void slot_connect(struct zc_rpc_client *cli, unsigned i);

static void cc_free(struct zc__cconn *cc)
{
	struct zc_rpc_client *cli = cc->cli;

	/* Closed with frames still to flush (which no longer go out). */
	for (struct zc__cconn **pp = &cli->dirty; cc->dirty && *pp;
	     pp = &(*pp)->dirty_next) {
		if (*pp == cc) {
			*pp = cc->dirty_next;
			break;
		}
	}

	idle_unlink(cc);
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		cli->all = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	zc__map_free(&cc->calls);
	zc_chain_release(&cc->rx);
	zc__ctr_sub(&cli->conns_live, 1);
	free(cc);
}

static void cc_on_close(struct zc_conn *c, int err, void *ud)
{
	struct zc__cconn *cc = ud;
	struct zc_rpc_client *cli = cc->cli;
	bool was_ready = cc->ready;
	int again = -1;			/* slot to connect at once */

	uncharge(cli, zc__tx_drop(&cc->tx));
	cc->lost_err = err ? err : -ECONNRESET;
	if (!was_ready)
		cc_connect_failed(cc, err);
	else if (!cc->goaway)
		zc__ctr_sub(&cli->conns_usable, 1);
	zc__ping_lost(cc);
	cc_close_calls(cc, ZC_RPC_UNAVAILABLE);
	cc->conn = NULL;
	idle_unlink(cc);
	if (was_ready)
		zc__ctr_sub(&cli->conns_open, 1);
	if (cc->slot >= 0) {
		struct zc__slot *sl = &cli->slots[cc->slot];

		sl->cc = NULL;
		if (!was_ready && next_candidate(cli, sl) && !cli->closing_r)
			again = cc->slot;	/* Happy Eyeballs: the next one */
		else
			sl->retry_at = cli->closing_r ? 0 :
				zc__now_ns() + (sl->failures ?
					backoff_ns(cli, sl->failures) : 0);
		if (sl->retry_at)
			want_tick(cli);
	}
	cc_free(cc);
	if (again >= 0)
		slot_connect(cli, (unsigned)again);
	/* Fail fast: nobody is connected or connecting any more. */
	if (!any_slot_alive(cli))
		fail_waiting(cli, ZC_RPC_UNAVAILABLE, false);
}

/* Fail every call of @cc with @status (ids above a GOAWAY, or all). */
static void cc_close_calls(struct zc__cconn *cc, int status)
{
	uint32_t i = 0;
	uint64_t id;
	void *v;

	while (zc__map_next(&cc->calls, &i, &id, &v)) {
		struct zc_rpc_pending *p = v;

		if (v == DISCARD)
			continue;
		p->cc = cc;
		complete(p, status);
	}
	zc__map_free(&cc->calls);
}

static void cc_skip(struct zc__cconn *cc, uint32_t len)
{
	zc_chain_consume(&cc->rx, len);
	zc_conn_recv_done(cc->conn, len);
}

static void on_hello(struct zc__cconn *cc)
{
	struct zc_rpc_client *cli = cc->cli;
	struct zc_rpc_pending *list;

	cc->ready = true;
	cc->tx.max_frame = cc->peer.max_frame;
	if (cc->slot >= 0) {
		cli->slots[cc->slot].failures = 0;
		cli->slots[cc->slot].tried = 0;
	}
	zc__ctr_add(&cli->connects, 1);
	zc__ctr_add(&cli->conns_open, 1);
	zc__ctr_add(&cli->conns_usable, 1);
	zc__logc(ZC_LOG_DEBUG, cc->conn, "connected", "client connection ready");
	zc__ping_ready(cc);
	idle_push(cc);
	list = cli->whead;
	cli->whead = cli->wtail = NULL;
	while (list) {
		struct zc_rpc_pending *p = list;

		list = p->wnext;
		p->state = P_NEW;
		route(cli, p);
	}
	if (cli->on_ready)
		cli->on_ready(cli->on_ready_arg);
}

/* Answers keep views of the receive ring while they are small, in few
 * fragments, and the pool has room; else their bytes are copied out as
 * they arrive, so that large answers never drain the ring (rpc/reasm.c). */
static bool keep_views(struct zc_pool *pool, const struct zc_rpc_pending *p)
{
	return p->resp_len <= (1u << 20) && p->ra.frags < 64 &&
	       zc_pool_headroom(pool) >= zc_pool_max_bytes(pool) / 4;
}

static int on_response(struct zc__cconn *cc, const struct zc_frame *f)
{
	struct zc_rpc_client *cli = cc->cli;
	struct zc_pool *pool = zc_reactor_pool(zc_conn_reactor(cc->conn));
	void *v = zc__map_get(&cc->calls, f->id);
	struct zc_rpc_pending *p = v;
	bool last = !(f->flags & ZC_FF_MORE);

	if (!v || v == DISCARD) {
		/* Cancelled, expired or refused: skip quietly. */
		cc_skip(cc, f->len);
		if (v && last)
			zc__map_del(&cc->calls, f->id);
		return 0;
	}
	if (!p->got && !zc_chain_len(&p->resp)) {
		p->resp_len = f->msg_len;
		if (f->msg_len > cli->cfg.max_message) {
			cc_skip(cc, f->len);
			zc__map_del(&cc->calls, f->id);
			if (!last && zc__map_put(&cc->calls, f->id, DISCARD)) {
				cc_protocol_error(cc, "out of memory");
				return -ENOMEM;
			}
			complete(p, ZC_RPC_TOO_LARGE);
			return 0;
		}
	} else if (f->msg_len != p->resp_len) {
		cc_protocol_error(cc, "fragment does not match message");
		return -EPROTO;
	}
	if (p->got + f->len > p->resp_len ||
	    (last && p->got + f->len != p->resp_len)) {
		cc_protocol_error(cc, "fragment lengths do not add up");
		return -EPROTO;
	}
	if (zc__reasm_add(&p->ra, &p->resp, &cc->rx, f->len, p->resp_len,
			  pool, keep_views(pool, p)) ||
	    (last && zc__reasm_finish(&p->ra, &p->resp))) {
		cc_protocol_error(cc, "out of memory");
		return -ENOMEM;
	}
	/* Answer bytes leave the receive budget as they reach the caller:
	 * the callee owns them from the callback on. */
	zc_conn_recv_done(cc->conn, f->len);
	p->got += f->len;
	zc__ctr_add(&cli->rx_bytes, f->len);
	if (last) {
		zc__map_del(&cc->calls, f->id);
		complete(p, ZC_RPC_OK);
	}
	return 0;
}

static void on_goaway(struct zc__cconn *cc, const struct zc_frame *f)
{
	struct zc_rpc_client *cli = cc->cli;
	uint32_t i = 0;
	uint64_t id;
	void *v;

	zc__ctr_add(&cli->goaways, 1);
	if (!cc->goaway)
		zc__ctr_sub(&cli->conns_usable, 1);
	if (f->status)
		zc__logc(ZC_LOG_INFO, cc->conn, "goaway",
			 "server going away: %s",
			 zc_rpc_status_name(f->status));
	cc->goaway = true;
	/* Calls the server will not serve: retryable elsewhere.  Collect
	 * first, the map must not change while we walk it. */
	for (;;) {
		struct zc_rpc_pending *victim = NULL;

		i = 0;
		while (zc__map_next(&cc->calls, &i, &id, &v)) {
			if (v != DISCARD && id > f->id) {
				victim = v;
				break;
			}
		}
		if (!victim)
			break;
		zc__map_del(&cc->calls, id);
		complete(victim, ZC_RPC_UNAVAILABLE);
	}
	if (cc->slot >= 0) {
		struct zc__slot *sl = &cli->slots[cc->slot];

		sl->cc = NULL;
		sl->retry_at = cli->closing_r ? 0 : zc__now_ns();
		cc->slot = -1;
		want_tick(cli);
	}
	if (!cc->calls.n)
		zc_conn_close(cc->conn, ZC_CLOSE_GRACEFUL);
}

static int on_frame(struct zc__cconn *cc, const struct zc_frame *f)
{
	struct zc_frame h;
	uint8_t buf[ZC_FRAME_HELLO_LEN];
	void *v;

	zc_chain_consume(&cc->rx, ZC_FRAME_HDR_LEN);
	zc_conn_recv_done(cc->conn, ZC_FRAME_HDR_LEN);
	if (!cc->ready && f->type != ZC_FT_HELLO) {
		cc_protocol_error(cc, "first frame is not hello");
		return -EPROTO;
	}
	switch (f->type) {
	case ZC_FT_HELLO:
		zc_chain_copyout(&cc->rx, 0, buf, sizeof(buf));
		cc_skip(cc, f->len);
		if (cc->ready || zc__hello_decode(buf, sizeof(buf), &cc->peer)) {
			cc_protocol_error(cc, "bad hello");
			return -EPROTO;
		}
		on_hello(cc);
		return 0;
	case ZC_FT_RESPONSE:
		return on_response(cc, f);
	case ZC_FT_ERROR:
		cc_skip(cc, f->len);
		v = zc__map_del(&cc->calls, f->id);
		if (v && v != DISCARD)
			complete(v, f->status < ZC_RPC_NSTATUS ? f->status :
							      ZC_RPC_INTERNAL);
		return 0;
	case ZC_FT_PING:
		h = (struct zc_frame){ .type = ZC_FT_PONG };
		zc_chain_copyout(&cc->rx, 0, buf, ZC_FRAME_PING_LEN);
		cc_skip(cc, f->len);
		(void)zc__tx_control(&cc->tx, &h, buf, ZC_FRAME_PING_LEN);
		zc__cconn_dirty(cc);
		return 0;
	case ZC_FT_PONG:
		zc_chain_copyout(&cc->rx, 0, buf, ZC_FRAME_PING_LEN);
		cc_skip(cc, f->len);
		zc__ping_pong(cc, buf);
		return 0;
	case ZC_FT_GOAWAY:
		cc_skip(cc, f->len);
		on_goaway(cc, f);
		return 0;
	default:
		cc_protocol_error(cc, "frame type not sent by servers");
		return -EPROTO;
	}
}

static void cc_on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct zc__cconn *cc = ud;

	if (cc->broken) {
		zc_conn_recv_done(c, zc_chain_len(data));
		zc_chain_release(data);
		return;
	}
	if (zc__rx_append(&cc->rx, data)) {
		cc_protocol_error(cc, "out of memory");
		return;
	}
	/* The answers of this delivery arrived now: one clock read. */
	cc->cli->rx_ns = zc__now_ns();
	while (!cc->broken && cc->conn) {
		struct zc_frame f;
		int ret = zc__frame_decode_chain(&cc->rx, &cc->lim, &f);

		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			cc_protocol_error(cc, ret == -EMSGSIZE ?
					  "frame too long" :
					  "malformed frame header");
			break;
		}
		if (on_frame(cc, &f))
			break;
	}
	cc->cli->rx_ns = 0;
	if (cc->goaway && !cc->calls.n && !cc->broken)
		zc_conn_close(c, ZC_CLOSE_GRACEFUL);
	cc_flush_dirty(cc->cli);
}

static void cc_on_writable(struct zc_conn *c, void *ud)
{
	struct zc__cconn *cc = ud;

	zc__tx_flush(&cc->tx);
}

static void cc_released(struct zc__tx *tx, size_t payload)
{
	struct zc__cconn *cc = (struct zc__cconn *)((char *)tx -
				offsetof(struct zc__cconn, tx));

	uncharge(cc->cli, payload);
}

static const struct zc_conn_ops cconn_ops = {
	.on_data = cc_on_data,
	.on_writable = cc_on_writable,
	.on_close = cc_on_close,
};

/*
 * A connect to @sl's candidate failed: the next candidate of this round
 * should be tried at once (true), or every one has failed (false: the
 * slot backs off, and the next round starts over).  A slot that got
 * through starts its next round with the candidate that worked.
 */
static bool next_candidate(struct zc_rpc_client *cli, struct zc__slot *sl)
{
	zc__ctr_add(&cli->connect_failures, 1);
	sl->addr_idx = (sl->addr_idx + 1) % cli->naddrs;
	if (++sl->tried < cli->naddrs)
		return true;
	sl->tried = 0;
	sl->failures++;
	return false;
}

/* Connect slot @i to its current candidate and queue our HELLO: 0, or a
 * -errno of zc_connect() (nothing left behind). */
static int slot_try(struct zc_rpc_client *cli, unsigned i)
{
	struct zc__slot *sl = &cli->slots[i];
	const struct zc_addr *a = &cli->addrs[sl->addr_idx];
	struct zc_frame h = { .type = ZC_FT_HELLO };
	struct zc_hello hello = {
		.max_message = cli->cfg.max_message,
		.max_frame = cli->cfg.max_frame,
	};
	uint8_t buf[ZC_FRAME_HELLO_LEN];
	struct zc__cconn *cc;
	int ret;

	cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	cc->cli = cli;
	cc->slot = (int)i;
	cc->lim.max_frame = cli->cfg.max_frame;
	zc_chain_init(&cc->rx);
	zc__map_init(&cc->calls);
	ret = zc_connect(cli->r, (const struct sockaddr *)&a->ss, a->len,
			 cli->cfg.connect_timeout_ms, &cconn_ops, cc, &cc->conn);
	if (ret) {
		free(cc);
		return ret;
	}
	/* Never plaintext when TLS was asked for: a connection that cannot
	 * start it is closed (on_close follows, then the retry). */
	if (cli->cfg.tls && zc_conn_start_tls(cc->conn, cli->cfg.tls, NULL))
		zc_conn_close(cc->conn, ZC_CLOSE_ABORT);
	zc__tx_init(&cc->tx, cc->conn, &cli->stage, cli->cfg.tx_window,
		    cc_released);
	cc->next = cli->all;
	if (cli->all)
		cli->all->prev = cc;
	cli->all = cc;
	zc__ctr_add(&cli->conns_live, 1);
	sl->cc = cc;
	/* The server's HELLO must follow within the connect timeout, or
	 * calls would wait for a peer that does not speak zcrpc. */
	cc->hello_deadline = zc__now_ns() +
			     (uint64_t)cli->cfg.connect_timeout_ms * 1000000;
	want_tick(cli);
	zc__hello_encode(buf, &hello);
	if (zc__tx_control(&cc->tx, &h, buf, sizeof(buf))) {
		zc_conn_close(cc->conn, ZC_CLOSE_ABORT);
		return 0;	/* on_close reports it */
	}
	zc__tx_flush(&cc->tx);
	return 0;
}

/* Connect slot @i, going through the candidates that fail at once (a
 * family the host lacks, ...); when all have, back off. */
static void slot_connect(struct zc_rpc_client *cli, unsigned i)
{
	struct zc__slot *sl = &cli->slots[i];

	sl->retry_at = 0;
	for (;;) {
		int ret = slot_try(cli, i);

		if (!ret)
			return;
		note_connect_failure(cli, sl, ret);
		if (!next_candidate(cli, sl))
			break;
	}
	sl->retry_at = zc__now_ns() + backoff_ns(cli, sl->failures);
	want_tick(cli);
}

void zc__client_start(struct zc_rpc_client *cli)
{
	for (unsigned i = 0; i < cli->cfg.conns; i++)
		slot_connect(cli, i);
}

/* ---- calls ------------------------------------------------------------- */

/* The ready connection with the fewest calls: the one idle the longest,
 * else the least busy, round-robin among equals. */
static struct zc__cconn *pick(struct zc_rpc_client *cli)
{
	struct zc__cconn *best = NULL, *cc;
	unsigned n = cli->cfg.conns;

	while ((cc = cli->idle_head)) {
		idle_unlink(cc);
		if (takes_call(cli, cc) && !cc->ninflight)
			return cc;
	}

	for (unsigned k = 0; k < n; k++) {
		cc = cli->slots[(cli->rr + k) % n].cc;
		if (!takes_call(cli, cc))
			continue;
		if (!best || cc->ninflight < best->ninflight)
			best = cc;
		if (!best->ninflight)
			break;	/* none is less busy: no need to look on */
	}
	cli->rr++;
	return best;
}

static bool any_slot_connecting(struct zc_rpc_client *cli)
{
	for (unsigned i = 0; i < cli->cfg.conns; i++)
		if (cli->slots[i].cc)
			return true;
	return false;
}

static void send_on(struct zc__cconn *cc, struct zc_rpc_pending *p)
{
	struct zc_rpc_client *cli = cc->cli;
	struct zc__txmsg *tm;
	uint64_t budget = 0;

	if (zc_chain_len(&p->req) > cc->peer.max_message) {
		complete(p, ZC_RPC_TOO_LARGE);
		return;
	}
	if (p->deadline) {
		uint64_t now = zc__now_ns();

		if (now >= p->deadline) {
			complete(p, ZC_RPC_DEADLINE_EXCEEDED);
			return;
		}
		budget = (p->deadline - now + 999) / 1000;
		if (budget > UINT32_MAX)
			budget = UINT32_MAX;
	}
	tm = zc__txmsg_new();
	p->id = ++cli->next_id;
	if (!tm || zc__map_put(&cc->calls, p->id, p)) {
		zc__txmsg_free(tm);
		complete(p, ZC_RPC_INTERNAL);
		return;
	}
	tm->hdr = (struct zc_frame){ .type = ZC_FT_REQUEST,
		.method = p->method, .id = p->id,
		.deadline_us = (uint32_t)budget };
	tm->body = p->req;
	zc_chain_init(&p->req);
	tm->backref = &p->tm;
	tm->counted = true;
	p->tm = tm;
	p->cc = cc;
	p->state = P_SENT;
	cc->ninflight++;
	zc__ctr_add(&cli->tx_bytes, zc_chain_len(&tm->body));
	zc__tx_queue(&cc->tx, tm);
	zc__cconn_dirty(cc);
}

static void route(struct zc_rpc_client *cli, struct zc_rpc_pending *p)
{
	struct zc__cconn *cc = cli->closing_r ? NULL : pick(cli);

	if (cc) {
		send_on(cc, p);
		return;
	}
	if (cli->closing_r ||
	    (!any_slot_connecting(cli) && !p->wait_for_ready)) {
		complete(p, ZC_RPC_UNAVAILABLE);
		return;
	}
	p->state = P_WAITING;
	p->wnext = NULL;
	if (cli->wtail)
		cli->wtail->wnext = p;
	else
		cli->whead = p;
	cli->wtail = p;
	want_tick(cli);
}

static void unwait(struct zc_rpc_client *cli, struct zc_rpc_pending *p)
{
	struct zc_rpc_pending **pp, *prev = NULL;

	for (pp = &cli->whead; *pp; prev = *pp, pp = &(*pp)->wnext) {
		if (*pp != p)
			continue;
		*pp = p->wnext;
		if (cli->wtail == p)
			cli->wtail = prev;
		return;
	}
}

/* Cancel or expire: the call ends now with @status; tell the server. */
static void abort_call(struct zc_rpc_pending *p, int status)
{
	struct zc__cconn *cc = p->cc;

	if (p->state == P_DONE)
		return;
	if (p->state == P_NEW) {
		/* Cancel overtook the submission (another thread): the
		 * submission completes it on arrival. */
		p->cancel_early = true;
		return;
	}
	if (p->state == P_WAITING) {
		unwait(p->cli, p);
		complete(p, status);
		return;
	}
	if (p->state == P_SENT && cc) {
		bool framed = !p->tm || p->tm->framed;
		struct zc_frame h = { .type = ZC_FT_CANCEL, .id = p->id,
				      .method = p->method };

		zc__map_del(&cc->calls, p->id);
		if (framed && cc->conn && !cc->broken) {
			(void)zc__tx_control(&cc->tx, &h, NULL, 0);
			zc__cconn_dirty(cc);
		}
		complete(p, status);
		if (cc->goaway && !cc->calls.n && cc->conn)
			zc_conn_close(cc->conn, ZC_CLOSE_GRACEFUL);
		return;
	}
	complete(p, status);
}

void zc__client_inbox(struct zc__inbox *ib, struct zc__inode *list)
{
	struct zc_rpc_client *cli = (struct zc_rpc_client *)((char *)ib -
				    offsetof(struct zc_rpc_client, inbox));

	while (list) {
		struct zc__cmsg *m = (struct zc__cmsg *)list;
		struct zc_rpc_pending *p;

		list = list->next;
		if (m->kind == MSG_SUBMIT) {
			p = (struct zc_rpc_pending *)((char *)m -
				offsetof(struct zc_rpc_pending, submit));
			if (p->cancel_early) {
				complete(p, ZC_RPC_CANCELLED);
				continue;
			}
			if (p->deadline && heap_push(cli, p)) {
				complete(p, ZC_RPC_INTERNAL);
				continue;
			}
			route(cli, p);
		} else if (m->kind == MSG_PING) {
			zc__ping_start(cli, (struct zc__ping *)m);
			want_tick(cli);
		} else {
			p = (struct zc_rpc_pending *)((char *)m -
				offsetof(struct zc_rpc_pending, cancel));
			abort_call(p, ZC_RPC_CANCELLED);
			zc__pending_put(p);	/* the cancel message's ref */
		}
	}
	if (cli->nheap)
		want_tick(cli);
	cc_flush_dirty(cli);
}

void zc__client_tick(struct zc_work *w)
{
	struct zc_rpc_client *cli = (struct zc_rpc_client *)((char *)w -
				    offsetof(struct zc_rpc_client, tick_work));
	uint64_t now = zc__now_ns();
	bool more = false;

	atomic_store(&cli->tick_queued, false);
	while (cli->nheap && cli->heap[0]->deadline <= now)
		abort_call(cli->heap[0], ZC_RPC_DEADLINE_EXCEEDED);
	more = zc__ping_tick(cli, now);
	for (unsigned i = 0; i < cli->cfg.conns; i++) {
		struct zc__slot *sl = &cli->slots[i];

		if (sl->cc && !sl->cc->ready && sl->cc->conn) {
			if (now >= sl->cc->hello_deadline)
				cc_protocol_error(sl->cc, "no hello from server");
			else
				more = true;
		}
		if (cli->closing_r || !sl->retry_at || sl->cc)
			continue;
		if (sl->retry_at <= now)
			slot_connect(cli, i);
		else
			more = true;
	}
	cc_flush_dirty(cli);
	if (!cli->nheap && !more && !cli->whead)
		atomic_store(&cli->need_tick, false);
}

void zc__client_shutdown(struct zc_rpc_client *cli)
{
	cli->closing_r = true;
	fail_waiting(cli, ZC_RPC_UNAVAILABLE, true);
	zc__ping_shutdown(cli);
	for (unsigned i = 0; i < cli->cfg.conns; i++)
		cli->slots[i].retry_at = 0;
	for (struct zc__cconn *cc = cli->all; cc; cc = cc->next)
		if (cc->conn)
			zc_conn_close(cc->conn, ZC_CLOSE_ABORT);
}
