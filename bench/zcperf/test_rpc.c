/* SPDX-License-Identifier: MIT */
/*
 * test_rpc.c - RPC_RR and RPC_STREAM on zcrpc's own server and client.
 *
 * Server: a zc_rpc_server on the engine's reactors.  When the request and
 * answer sizes are equal the client calls the built-in echo method, which
 * answers with the request's own receive-buffer views (the zero-copy echo
 * path); otherwise it calls SIZED, registered here, which answers with a
 * clone of a RESP-byte template of the reactor's pool.  With
 * --consumer-cpu N the client calls CONSUME instead, a WORKER method on a
 * server worker pinned to CPU N: it reads the request there and releases
 * it there (the RFS case: request buffers go home to the receiving
 * reactor's pool by --free), then answers like SIZED.
 *
 * Client: one zc_rpc_client per reactor, the -P connections spread over
 * them, and -d "slots" per connection: a slot is one call kept in flight,
 * reissued from its own completion until the deadline.  A slot that
 * finishes after the deadline counts on the engine's `closed` latch, so
 * the run ends when every call sent was answered: bytes add up exactly.
 * RPC_STREAM is the same machinery with -m payloads both ways.
 *
 * With -H a,b,c (e->ntargets > 1) each client reactor calls through one
 * zc_rpc_balancer over the servers' data ports instead of one client,
 * with -P connections to each server (--lb picks the policy); the
 * balancer's per-endpoint sends and OK answers are collected for the
 * report.
 *
 * With --rate (openloop.h) the slots are not reissued from their
 * completions: a free slot takes the next intended time from the
 * reactor's open-loop queue, and the client's reactor counts once on the
 * `closed` latch when its last call after the deadline is answered.
 * With --stall the server answers through SIZED even for equal sizes, so
 * that the stall happens in a handler of ours.
 *
 * Equal sizes call ECHO, zcperf's own copy of the built-in echo method
 * (the answer is the request's own receive-buffer views), so that the
 * server can note how requests lie in receive buffers: how many spanned
 * more than one buffer, and how many began in the buffer the previous
 * request on that reactor ended in (a buffer shared by several RPCs: the
 * BIG TCP shape).  The INLINE handlers note it; CONSUME, on a worker,
 * does not.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#include "consumer.h"
#include "cpu.h"
#include "engine.h"
#include "tls.h"

#define ZP_METHOD_SIZED (ZC_RPC_METHOD_USER + 1)
#define ZP_METHOD_CONSUME (ZC_RPC_METHOD_USER + 2)
#define ZP_METHOD_ECHO (ZC_RPC_METHOD_USER + 3)
#define RPC_CONNECT_TIMEOUT_MS 5000u

struct rpc_cctx;

struct rpc_slot {
	struct rpc_cctx *cc;
	uint64_t t0;       /* when it was sent; --rate: intended */
	uint64_t t_issued; /* --rate: when it was really sent */
	struct rpc_slot *next_free; /* --rate: cc->free_slots */
};

/* One client, on one reactor; fields are its reactor thread's. */
struct rpc_cctx {
	struct zp_rctx *rx;
	struct zc_rpc_client *cl;
	struct zc_rpc_balancer *bal;   /* -H a,b,c: instead of cl */
	struct zc_rpc_client *idle_cl; /* --idle: connections never used */
	unsigned conns;
	unsigned nslots;
	struct rpc_slot *slots;
	bool stopping;
	/* --rate only */
	struct rpc_slot *free_slots;
	unsigned inflight;
	bool finished;     /* counted on the closed latch */
};

struct zp_rpc {
	struct zc_rpc_server *srv;
	struct zc_reactor **reactors; /* lent to the server, freed after it */
	struct rpc_cctx *cc;  /* one per reactor (client) */
	uint32_t method;
	uint32_t req_len;
	uint32_t resp_len;
	/* What CONSUME read (see zp_chain_touch()); the worker's only. */
	uint64_t consumed;
};

static uint32_t msg_max(const struct zp_rpc *p)
{
	uint32_t m = p->req_len > p->resp_len ? p->req_len : p->resp_len;

	/* Room for the largest message plus the protocol's own default. */
	return m > ZC_RPC_MAX_MESSAGE_DEFAULT ? m : ZC_RPC_MAX_MESSAGE_DEFAULT;
}

int zp_rpc_create(struct zp_engine *e)
{
	struct zp_rpc *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	if (e->cfg.test == ZP_RPC_STREAM) {
		p->req_len = e->cfg.msg_size;
		p->resp_len = e->cfg.msg_size;
	} else {
		p->req_len = e->cfg.req_size;
		p->resp_len = e->cfg.resp_size;
	}
	if (e->cfg.consumer_cpu >= 0)
		p->method = ZP_METHOD_CONSUME;
	else if (p->req_len == p->resp_len && !e->cfg.stall_ms)
		p->method = ZP_METHOD_ECHO;
	else
		p->method = ZP_METHOD_SIZED;
	e->rpc = p;
	return 0;
}

void zp_rpc_free(struct zp_engine *e)
{
	struct zp_rpc *p = e->rpc;
	unsigned i;

	if (!p)
		return;
	if (e->verbose && p->method == ZP_METHOD_CONSUME)
		fprintf(stderr, "zcperf: consume handler read sum %llx\n",
			(unsigned long long)p->consumed);
	if (p->cc) {
		for (i = 0; i < e->cfg.reactors; i++)
			free(p->cc[i].slots);
		free(p->cc);
	}
	free(p->reactors);
	free(p);
	e->rpc = NULL;
}

int zp_rpc_prepare(struct zp_rctx *rx)
{
	struct zp_engine *e = rx->eng;
	struct zp_rpc *p = e->rpc;

	if (!e->server)
		return zp_tmpl_make(rx, p->req_len);
	if (p->method == ZP_METHOD_ECHO)
		return 0;
	return zp_tmpl_make(rx, p->resp_len);
}

/* ------------------------------------------------------------------------
 * Server
 */

static struct zp_rctx *rctx_of(struct zp_engine *e, struct zc_reactor *r)
{
	unsigned i;

	for (i = 0; i < e->n; i++)
		if (e->rx[i].r == r)
			return &e->rx[i];
	return NULL;
}

/*
 * Reactor thread: how @req lies in the receive buffers (see the top).
 * "Began where the previous one ended": the same buffer, at or past the
 * previous request's end, so a buffer recycled in between (which starts
 * again at 0) is not mistaken for a shared one.
 */
static void note_shape(struct zp_rctx *rx, const struct zc_chain *req)
{
	unsigned n = zc_chain_nviews(req);
	const struct zc_view *first, *last;

	if (!n)
		return;
	first = zc_chain_view(req, 0);
	last = zc_chain_view(req, n - 1);
	if (n > 1)
		rx->tcp.rpc_spanning++;
	if (first->buf == rx->shape_buf && first->off >= rx->shape_end)
		rx->tcp.rpc_shared_buf++;
	rx->shape_buf = last->buf;
	rx->shape_end = last->off + last->len;
}

/* ECHO: the built-in echo, plus note_shape(). */
static void echo_handler(struct zc_rpc_call *call, struct zc_chain *req,
			 void *arg)
{
	struct zp_rctx *rx = rctx_of(arg, zc_rpc_call_reactor(call));

	if (rx)
		note_shape(rx, req);
	(void)zc_rpc_reply(call, req);
}

/* INLINE handler, or the tail of consume_handler() on a worker: the
 * template is read-only once prepared, so any thread may clone it. */
static void sized_handler(struct zc_rpc_call *call, struct zc_chain *req,
			  void *arg)
{
	struct zp_rctx *rx = rctx_of(arg, zc_rpc_call_reactor(call));
	struct zc_chain resp;

	zp_maybe_stall(arg);
	if (rx && zc_rpc_call_reactor(call) == zc_reactor_current())
		note_shape(rx, req);
	zc_chain_release(req);
	zc_chain_init(&resp);
	if (!rx || zc_chain_append_clone(&resp, &rx->tmpl)) {
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "zcperf: no memory");
		return;
	}
	zc_rpc_reply(call, &resp);
}

/* WORKER handler: the request is read and released on the worker's CPU. */
static void consume_handler(struct zc_rpc_call *call, struct zc_chain *req,
			    void *arg)
{
	struct zp_engine *e = arg;
	/* Workers are the rpc server's threads, made per test: each counts
	 * its CPU from its first call (threadcpu.h). */
	static _Thread_local bool counted;

	if (!counted) {
		counted = true;
		(void)zp_tcpu_register_self(&e->tcpu, "worker");
	}
	e->rpc->consumed += zp_chain_touch(req);
	sized_handler(call, req, arg);
}

int zp_rpc_listen(struct zp_engine *e, const struct sockaddr *addr,
		  socklen_t len)
{
	struct zp_rpc *p = e->rpc;
	struct zc_rpc_server_config sc;
	struct zc_reactor **rs;
	unsigned i;
	int ret;

	rs = calloc(e->n, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	p->reactors = rs;
	for (i = 0; i < e->n; i++)
		rs[i] = e->rx[i].r;
	memset(&sc, 0, sizeof(sc));
	sc.reactors = rs;
	sc.nreactors = e->n;
	/* One SO_REUSEPORT socket per reactor, as the TCP tests listen: the
	 * kernel spreads the connections evenly over the reactors. */
	sc.reuseport = true;
	sc.oneshot_accept = e->cfg.accept == ZP_ACCEPT_ONESHOT;
	sc.max_message = msg_max(p);
	if (e->cfg.tls && !(sc.tls = zp_tls_server()))
		return -EINVAL;
	if (p->method == ZP_METHOD_CONSUME) {
		sc.workers = 1;
		sc.worker_cpus = &e->cfg.consumer_cpu;
	}
	ret = zc_rpc_server_create(&sc, &p->srv);
	if (ret) {
		fprintf(stderr, "zcperf: rpc server: %s\n", strerror(-ret));
		return ret;
	}
	if (p->method == ZP_METHOD_SIZED)
		ret = zc_rpc_server_register(p->srv, ZP_METHOD_SIZED, "sized",
					     ZC_RPC_INLINE, 0, sized_handler, e);
	else if (p->method == ZP_METHOD_ECHO)
		ret = zc_rpc_server_register(p->srv, ZP_METHOD_ECHO, "echo",
					     ZC_RPC_INLINE, 0, echo_handler, e);
	else if (p->method == ZP_METHOD_CONSUME)
		ret = zc_rpc_server_register(p->srv, ZP_METHOD_CONSUME,
					     "consume", ZC_RPC_WORKER, 0,
					     consume_handler, e);
	if (ret)
		goto err;
	ret = zc_rpc_server_listen(p->srv, addr, len);
	if (ret)
		goto err;
	return zc_rpc_server_port(p->srv);
err:
	fprintf(stderr, "zcperf: rpc server: %s\n", strerror(-ret));
	zc_rpc_server_destroy(p->srv);
	p->srv = NULL;
	return ret;
}

unsigned zp_rpc_accepted(struct zp_engine *e)
{
	struct zc_rpc_server_stats st;

	if (!e->rpc->srv)
		return 0;
	zc_rpc_server_stats(e->rpc->srv, &st);
	return (unsigned)st.conns_accepted;
}

/*
 * The run is over: drain rather than reset.  Every connection of the data
 * port (the test's own and any other client's) gets GOAWAY, the calls it
 * names are answered in full, then each closes gracefully.
 */
int zp_rpc_wait_closed(struct zp_engine *e, unsigned timeout_ms)
{
	int ret = zc_rpc_server_drain(e->rpc->srv, timeout_ms);

	return ret == -ETIMEDOUT ? ret : 0;
}

/* ------------------------------------------------------------------------
 * Client
 */

static void issue(struct rpc_slot *s);

/* One call through the reactor's client, or its balancer. */
static int rpc_call(struct rpc_cctx *cc, struct zc_chain *req,
		    zc_rpc_done_fn done, void *arg)
{
	uint32_t method = cc->rx->eng->rpc->method;

	if (cc->bal)
		return zc_rpc_balancer_call(cc->bal, method, req, NULL, done,
					    arg);
	return zc_rpc_call(cc->cl, method, req, NULL, done, arg, NULL);
}

static void slot_finished(struct rpc_cctx *cc)
{
	zp_latch_add(&cc->rx->eng->closed, 1);
}

static void ol_finish_if_idle(struct rpc_cctx *cc)
{
	if (cc->stopping && !cc->inflight && !cc->finished) {
		cc->finished = true;
		slot_finished(cc);
	}
}

static void ol_call_done(void *arg, int status, struct zc_chain *resp)
{
	struct rpc_slot *s = arg;
	struct rpc_cctx *cc = s->cc;
	struct zp_rctx *rx = cc->rx;
	enum zp_ol_outcome out = zp_ol_outcome(status);
	uint64_t answered = 0;

	if (out == ZP_OL_ANSWERED) {
		rx->bytes_received += zc_chain_len(resp);
		zc_chain_release(resp);
		/* From the intended time: the wait for a slot is latency. */
		answered = zp_now_ns();
		zp_hist_record(rx->hist, answered - s->t0);
		rx->transactions++;
	} else {
		if (rx->eng->verbose)
			fprintf(stderr, "zcperf: call failed: %s\n",
				zc_rpc_status_name(status));
		if (out == ZP_OL_BROKEN)
			atomic_fetch_add(&rx->eng->conn_failures, 1);
		else
			rx->bytes_sent -= rx->tmpl_len; /* not processed */
	}
	zp_ol_done(&rx->ol, s->t0, s->t_issued, answered);
	cc->inflight--;
	s->next_free = cc->free_slots;
	cc->free_slots = s;
	zp_ol_pump(&rx->ol);
	ol_finish_if_idle(cc);
}

/* zp_ol_issue_fn: send the call intended at @intended on a free slot. */
static int ol_issue(struct zp_olq *q, uint64_t intended, void *arg)
{
	struct rpc_cctx *cc = arg;
	struct zp_rctx *rx = cc->rx;
	struct rpc_slot *s = cc->free_slots;
	struct zc_chain req;
	int ret;

	if (!s)
		return 0;
	zc_chain_init(&req);
	ret = zc_chain_append_clone(&req, &rx->tmpl);
	if (!ret) {
		s->t0 = intended;
		s->t_issued = zp_now_ns();
		ret = rpc_call(cc, &req, ol_call_done, s);
	}
	if (ret) {
		if (rx->eng->verbose)
			fprintf(stderr, "zcperf: rpc call: %s\n",
				strerror(-ret));
		zc_chain_release(&req);
		return ret;
	}
	cc->free_slots = s->next_free;
	cc->inflight++;
	rx->bytes_sent += rx->tmpl_len;
	return 1;
}

static void call_done(void *arg, int status, struct zc_chain *resp)
{
	struct rpc_slot *s = arg;
	struct rpc_cctx *cc = s->cc;
	struct zp_rctx *rx = cc->rx;

	if (zc_rpc_status_retryable(status)) {
		/* OVERLOADED or UNAVAILABLE: not processed, so not measured.
		 * The server asks us to come back (the slot calls again), or,
		 * as the run ends, its drain refused the call: not a failure. */
		rx->bytes_sent -= rx->tmpl_len;
		if (cc->stopping)
			slot_finished(cc);
		else
			issue(s);
		return;
	}
	if (status != ZC_RPC_OK) {
		if (rx->eng->verbose)
			fprintf(stderr, "zcperf: call failed: %s\n",
				zc_rpc_status_name(status));
		atomic_fetch_add(&rx->eng->conn_failures, 1);
		slot_finished(cc);
		return;
	}
	rx->bytes_received += zc_chain_len(resp);
	zc_chain_release(resp);
	zp_hist_record(rx->hist, zp_now_ns() - s->t0);
	rx->transactions++;
	if (cc->stopping)
		slot_finished(cc);
	else
		issue(s);
}

static void issue(struct rpc_slot *s)
{
	struct rpc_cctx *cc = s->cc;
	struct zp_rctx *rx = cc->rx;
	struct zc_chain req;
	int ret;

	zc_chain_init(&req);
	ret = zc_chain_append_clone(&req, &rx->tmpl);
	if (!ret) {
		s->t0 = zp_now_ns();
		ret = rpc_call(cc, &req, call_done, s);
	}
	if (ret) {
		/* Calls in flight are bounded by the slots, which fit in the
		 * client's tx budget: -EAGAIN here is a real failure too. */
		fprintf(stderr, "zcperf: rpc call: %s\n", strerror(-ret));
		zc_chain_release(&req);
		atomic_fetch_add(&rx->eng->conn_failures, 1);
		slot_finished(cc);
		return;
	}
	rx->bytes_sent += rx->tmpl_len;
}

/*
 * --idle: one more client per reactor holding its share of the idle
 * connections.  The stack connects them and exchanges HELLO; nothing
 * calls through them, so on the server they are accepted, idle
 * connections, the kind a busy server holds thousands of.
 */
static int connect_idle(struct zp_engine *e, const struct sockaddr *addr,
			socklen_t len)
{
	struct zp_rpc *p = e->rpc;
	unsigned i;

	for (i = 0; i < e->n && e->cfg.idle; i++) {
		struct zc_rpc_client_config ccfg;
		unsigned n = e->cfg.idle / e->n + (i < e->cfg.idle % e->n);
		int ret;

		if (!n)
			continue;
		memset(&ccfg, 0, sizeof(ccfg));
		ccfg.reactor = e->rx[i].r;
		ccfg.addr = addr;
		ccfg.addrlen = len;
		ccfg.conns = n;
		ccfg.max_message = msg_max(p);
		ccfg.connect_timeout_ms = RPC_CONNECT_TIMEOUT_MS + e->cfg.idle;
		ret = zc_rpc_client_create(&ccfg, &p->cc[i].idle_cl);
		if (ret) {
			fprintf(stderr, "zcperf: rpc idle client: %s\n",
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* -H a,b,c: @cc calls the servers through a balancer whose endpoints'
 * clients are @ccfg (address fields aside). */
static int connect_balancer(struct zp_engine *e, struct rpc_cctx *cc,
			    const struct zc_rpc_client_config *ccfg)
{
	char names[ZP_HOSTS_MAX][ZC_PEER_MAX];
	const char *targets[ZP_HOSTS_MAX];
	struct zc_rpc_balancer_config bc;
	unsigned i;
	int ret;

	for (i = 0; i < e->ntargets; i++) {
		const struct sockaddr_storage *ss = &e->targets[i];

		ret = zc_addr_format((const struct sockaddr *)ss,
				     ss->ss_family == AF_INET6 ?
					     sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in),
				     names[i], sizeof(names[i]));
		if (ret < 0)
			return ret;
		targets[i] = names[i];
	}
	memset(&bc, 0, sizeof(bc));
	bc.reactor = cc->rx->r;
	bc.targets = targets;
	bc.ntargets = e->ntargets;
	bc.policy = (enum zc_rpc_balance)e->lb;
	bc.client = ccfg;
	return zc_rpc_balancer_create(&bc, &cc->bal);
}

/* Connections up for @cc (a balancer: its endpoints with one ready, each
 * counting for its share of the -P connections). */
static unsigned conns_ready(const struct rpc_cctx *cc)
{
	struct zc_rpc_balancer_stats bs;
	struct zc_rpc_client_stats st;
	unsigned ready = 0;

	if (cc->bal) {
		zc_rpc_balancer_stats(cc->bal, &bs);
		for (unsigned j = 0; j < bs.nendpoints; j++)
			ready += bs.endpoint[j].ready;
		return ready == bs.nendpoints ? cc->conns : 0;
	}
	if (cc->cl) {
		zc_rpc_client_stats(cc->cl, &st);
		ready += (unsigned)st.conns_open;
	}
	return ready;
}

int zp_rpc_connect(struct zp_engine *e, const struct sockaddr *addr,
		   socklen_t len)
{
	struct zp_rpc *p = e->rpc;
	unsigned i, waited = 0;
	int ret;

	p->cc = calloc(e->n, sizeof(*p->cc));
	if (!p->cc)
		return -ENOMEM;
	e->expect_closed = 0;
	for (i = 0; i < e->n; i++) {
		struct rpc_cctx *cc = &p->cc[i];
		struct zc_rpc_client_config ccfg;
		size_t inflight_bytes;
		unsigned j;

		cc->rx = &e->rx[i];
		cc->conns = e->cfg.conns / e->n + (i < e->cfg.conns % e->n);
		if (!cc->conns)
			continue;
		cc->nslots = cc->conns * e->cfg.depth;
		cc->slots = calloc(cc->nslots, sizeof(*cc->slots));
		if (!cc->slots)
			return -ENOMEM;
		for (j = 0; j < cc->nslots; j++)
			cc->slots[j].cc = cc;
		inflight_bytes = (size_t)cc->nslots * p->req_len;
		memset(&ccfg, 0, sizeof(ccfg));
		ccfg.reactor = cc->rx->r;
		ccfg.addr = addr;
		ccfg.addrlen = len;
		ccfg.conns = cc->conns;
		ccfg.max_message = msg_max(p);
		ccfg.max_inflight_conn = e->cfg.depth;
		ccfg.tx_budget = 2 * inflight_bytes > (64u << 20)
					 ? 2 * inflight_bytes
					 : (64u << 20);
		ccfg.connect_timeout_ms = RPC_CONNECT_TIMEOUT_MS;
		if (e->cfg.tls && !(ccfg.tls = zp_tls_client()))
			return -EINVAL;
		ret = e->ntargets > 1 ? connect_balancer(e, cc, &ccfg) :
					zc_rpc_client_create(&ccfg, &cc->cl);
		if (ret) {
			fprintf(stderr, "zcperf: rpc client: %s\n",
				strerror(-ret));
			return ret;
		}
		/* --rate: one count per reactor, see ol_finish_if_idle(). */
		e->expect_closed += zp_open_loop(e) ? 1 : cc->nslots;
	}
	ret = connect_idle(e, addr, len);
	if (ret)
		return ret;
	/* Calls made before the connections are up would wait in the
	 * client and count their wait as latency: start only once all are
	 * connected (--idle ones included: a millisecond more each). */
	for (;;) {
		unsigned ready = 0, want = 0;

		for (i = 0; i < e->n; i++) {
			struct zc_rpc_client_stats st;

			if (p->cc[i].cl || p->cc[i].bal) {
				ready += conns_ready(&p->cc[i]);
				want += p->cc[i].conns;
			}
			if (p->cc[i].idle_cl) {
				zc_rpc_client_stats(p->cc[i].idle_cl, &st);
				ready += (unsigned)st.conns_open;
			}
		}
		want += e->cfg.idle;
		if (ready >= want)
			return 0;
		if (waited++ >= RPC_CONNECT_TIMEOUT_MS + e->cfg.idle) {
			fprintf(stderr, "zcperf: rpc: %u of %u connections up\n",
				ready, want);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
}

static int start_fn(void *arg)
{
	struct rpc_cctx *cc = arg;
	unsigned j;

	if (zp_open_loop(cc->rx->eng)) {
		/* The schedule drives; every slot waits for an intended
		 * time. */
		for (j = 0; j < cc->nslots; j++) {
			cc->slots[j].next_free = cc->free_slots;
			cc->free_slots = &cc->slots[j];
		}
		return zp_olq_init(&cc->rx->ol, cc->rx->r, ol_issue, cc);
	}
	for (j = 0; j < cc->nslots; j++)
		issue(&cc->slots[j]);
	return 0;
}

static int stop_fn(void *arg)
{
	struct rpc_cctx *cc = arg;

	cc->stopping = true;
	if (zp_open_loop(cc->rx->eng)) {
		if (zp_olq_live(&cc->rx->ol))
			zp_ol_stop(&cc->rx->ol);
		ol_finish_if_idle(cc);
	}
	return 0;
}

static void for_each_client(struct zp_engine *e, int (*fn)(void *))
{
	unsigned i;

	if (e->server || !e->rpc->cc)
		return;
	for (i = 0; i < e->n; i++)
		if (e->rpc->cc[i].cl || e->rpc->cc[i].bal)
			zc_reactor_call(e->rx[i].r, fn, &e->rpc->cc[i]);
}

void zp_rpc_start(struct zp_engine *e)
{
	for_each_client(e, start_fn);
}

void zp_rpc_stop(struct zp_engine *e)
{
	for_each_client(e, stop_fn);
}

void zp_rpc_collect(struct zp_engine *e, struct zp_side *side)
{
	struct zc_rpc_method_stats ms;

	/* Client counts were summed per reactor by the engine, but the
	 * balancers' per-server ones; the server's live in the rpc server,
	 * per method. */
	for (unsigned i = 0; !e->server && e->rpc->cc && i < e->n; i++) {
		struct zc_rpc_balancer_stats bs;

		if (!e->rpc->cc[i].bal)
			continue;
		zc_rpc_balancer_stats(e->rpc->cc[i].bal, &bs);
		for (unsigned j = 0; j < bs.nendpoints; j++) {
			e->ep_sent[j] += bs.endpoint[j].sent;
			e->ep_ok[j] += bs.endpoint[j].ok;
		}
	}
	if (!e->server || !e->rpc->srv)
		return;
	if (zc_rpc_server_method_stats(e->rpc->srv, e->rpc->method, &ms))
		return;
	side->bytes_received += ms.rx_bytes;
	side->bytes_sent += ms.tx_bytes;
	side->transactions += ms.by_status[ZC_RPC_OK];
}

void zp_rpc_quiesce(struct zp_engine *e)
{
	struct zp_rpc *p = e->rpc;
	unsigned i;

	if (p->srv) {
		zc_rpc_server_destroy(p->srv);
		p->srv = NULL;
	}
	if (!p->cc)
		return;
	for (i = 0; i < e->n; i++) {
		if (p->cc[i].cl) {
			zc_rpc_client_destroy(p->cc[i].cl);
			p->cc[i].cl = NULL;
		}
		if (p->cc[i].bal) {
			zc_rpc_balancer_destroy(p->cc[i].bal);
			p->cc[i].bal = NULL;
		}
		if (p->cc[i].idle_cl) {
			zc_rpc_client_destroy(p->cc[i].idle_cl);
			p->cc[i].idle_cl = NULL;
		}
	}
}
