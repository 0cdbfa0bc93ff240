/* SPDX-License-Identifier: MIT */
/*
 * engine.c - reactors, connections and bookkeeping of one side of a test
 * (see engine.h for the threading rules).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "consumer.h"
#include "cpu.h"
#include "engine.h"
#include "tls.h"
#include "watch.h"

/* Receive budget per connection when a consumer thread holds the data:
 * what may be in flight between the reactor and the consumer. */
#define CONSUMER_RX_BUDGET (4u << 20)
#define CONNECT_TIMEOUT_MS 5000u

/* ------------------------------------------------------------------------
 * Work run on the reactors through zc_reactor_call()
 */

static int prepare_fn(void *arg)
{
	struct zp_rctx *rx = arg;
	char name[ZP_TCPU_NAME];

	snprintf(name, sizeof(name), "reactor%u", (unsigned)(rx - rx->eng->rx));
	/* Best effort: a 17th reactor is simply not broken down. */
	(void)zp_tcpu_register_self(&rx->eng->tcpu, name);

	if (rx->eng->rpc)
		return zp_rpc_prepare(rx);
	return rx->eng->fam->prepare ? rx->eng->fam->prepare(rx) : 0;
}

static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct zp_rctx *rx = ud;
	struct zp_conn *pc = calloc(1, sizeof(*pc));

	/* Without ops the stack closes the connection on return. */
	if (!pc)
		return;
	pc->c = c;
	pc->connected = true;
	zp_conn_link(rx, pc);
	atomic_fetch_add(&rx->eng->created, 1);
	zc_conn_set_ops(c, rx->eng->fam->ops, pc);
	zp_latch_add(&rx->eng->connected, 1);
}

struct listen_arg {
	struct zp_rctx *rx;
	struct zc_tls_ctx *tls;
	struct sockaddr_storage ss;
	socklen_t len;
};

unsigned zp_listen_flags(const struct zp_test_cfg *cfg)
{
	return ZC_LISTEN_REUSEPORT | (cfg->accept == ZP_ACCEPT_ONESHOT
					      ? ZC_LISTEN_ONESHOT_ACCEPT
					      : 0);
}

static int listen_fn(void *arg)
{
	struct listen_arg *la = arg;

	int ret = zc_listen(la->rx->r, (struct sockaddr *)&la->ss, la->len,
			    zp_listen_flags(&la->rx->eng->cfg), on_accept,
			    la->rx, &la->rx->lis);

	if (!ret && la->rx->eng->cfg.tls)
		ret = zc_listener_set_tls(la->rx->lis, la->tls);
	return ret;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static int engine_listen(struct zp_engine *e, const struct sockaddr *addr,
			 socklen_t len)
{
	struct listen_arg la;
	uint16_t port = 0;
	unsigned i;
	int ret;

	if (e->rpc)
		return zp_rpc_listen(e, addr, len);
	if (len > sizeof(la.ss))
		return -EINVAL;
	memcpy(&la.ss, addr, len);
	la.len = len;
	if (e->cfg.tls && !(la.tls = zp_tls_server()))
		return -EINVAL;
	for (i = 0; i < e->n; i++) {
		la.rx = &e->rx[i];
		/* The first listener picks the port, the others share it. */
		if (i)
			set_port(&la.ss, port);
		ret = zc_reactor_call(e->rx[i].r, listen_fn, &la);
		if (ret) {
			fprintf(stderr, "zcperf: listen: %s\n", strerror(-ret));
			return ret;
		}
		if (!i)
			port = zc_listener_port(e->rx[0].lis);
	}
	return port;
}

struct connect_arg {
	struct zp_rctx *rx;
	struct zc_tls_ctx *tls;
	const struct sockaddr *addr;
	socklen_t len;
};

static int connect_fn(void *arg)
{
	struct connect_arg *ca = arg;
	struct zp_conn *pc = calloc(1, sizeof(*pc));
	int ret;

	if (!pc)
		return -ENOMEM;
	pc->rx = ca->rx;
	ret = zc_connect(ca->rx->r, ca->addr, ca->len, CONNECT_TIMEOUT_MS,
			 ca->rx->eng->fam->ops, pc, &pc->c);
	if (ret) {
		free(pc);
		return ret;
	}
	if (ca->tls && (ret = zc_conn_start_tls(pc->c, ca->tls, NULL)))
		zc_conn_close(pc->c, ZC_CLOSE_ABORT); /* reported by on_close */
	zp_conn_link(ca->rx, pc);
	atomic_fetch_add(&ca->rx->eng->created, 1);
	return 0;
}

static int engine_connect(struct zp_engine *e, const struct sockaddr *addr,
			  socklen_t len)
{
	unsigned i, want = e->cfg.conns, done;
	struct zc_tls_ctx *tls = NULL;
	int ret;

	if (e->rpc)
		return zp_rpc_connect(e, addr, len);
	e->expect_closed = want;
	if (e->cfg.tls && !(tls = zp_tls_client()))
		return -EINVAL;
	for (i = 0; i < want; i++) {
		struct connect_arg ca = { .rx = &e->rx[i % e->n], .tls = tls,
					  .addr = addr, .len = len };

		ret = zc_reactor_call(ca.rx->r, connect_fn, &ca);
		if (ret) {
			fprintf(stderr, "zcperf: connect: %s\n", strerror(-ret));
			return ret;
		}
	}
	done = zp_latch_wait(&e->connected, want,
			     CONNECT_TIMEOUT_MS + 1000);
	if (done < want)
		return -ETIMEDOUT;
	if (atomic_load(&e->conn_failures)) {
		fprintf(stderr, "zcperf: %u of %u connections failed\n",
			atomic_load(&e->conn_failures), want);
		return -ECONNREFUSED;
	}
	return 0;
}

int zp_engine_wait_accepted(struct zp_engine *e, unsigned timeout_ms)
{
	unsigned n = e->cfg.conns + e->cfg.idle, waited = 0;

	if (!e->rpc)
		return zp_latch_wait(&e->connected, n, timeout_ms) >= n
			       ? 0
			       : -ETIMEDOUT;
	while (zp_rpc_accepted(e) < n) {
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		usleep(1000);
		waited++;
	}
	return 0;
}

static int start_fn(void *arg)
{
	struct zp_rctx *rx = arg;
	struct zp_conn *pc, *next;

	for (pc = rx->conns; pc; pc = next) {
		next = pc->next;
		rx->eng->fam->start(pc);
	}
	return 0;
}

static int stop_fn(void *arg)
{
	struct zp_rctx *rx = arg;
	struct zp_conn *pc, *next;

	if (zp_olq_live(&rx->ol))
		zp_ol_stop(&rx->ol);
	for (pc = rx->conns; pc; pc = next) {
		next = pc->next;
		if (!pc->stopping)
			rx->eng->fam->stop(pc);
	}
	return 0;
}

struct begin_arg {
	struct zp_engine *e;
	struct zp_olq *q;
	unsigned index, nq;
	uint64_t start_ns;
};

static int begin_fn(void *arg)
{
	struct begin_arg *b = arg;

	return zp_ol_begin(b->q, b->index, b->nq, b->e->cfg.rate,
			   (enum zp_arrival)b->e->cfg.arrival, b->start_ns,
			   b->e->ol_end_ns);
}

/* --rate: the families made a queue on each reactor that has
 * connections; each runs its share of the schedule from now to the
 * deadline. */
static void start_schedule(struct zp_engine *e)
{
	struct begin_arg b = { e, NULL, 0, 0, zp_now_ns() };
	unsigned i;
	int ret = 0;

	e->ol_end_ns = b.start_ns + (uint64_t)(e->cfg.seconds * 1e9);
	for (i = 0; i < e->n; i++)
		b.nq += zp_olq_live(&e->rx[i].ol);
	if (!b.nq)
		ret = -ENOMEM;
	for (i = 0; i < e->n && !ret; i++) {
		if (!zp_olq_live(&e->rx[i].ol))
			continue;
		b.q = &e->rx[i].ol;
		ret = zc_reactor_call(e->rx[i].r, begin_fn, &b);
		b.index++;
	}
	if (ret) {
		fprintf(stderr, "zcperf: open-loop schedule: %s\n",
			strerror(-ret));
		atomic_fetch_add(&e->conn_failures, 1);
	}
}

static void engine_start(struct zp_engine *e)
{
	unsigned i;

	zp_tcpu_start(&e->tcpu);
	if (e->server && e->cfg.stall_ms)
		atomic_store(&e->stall_at_ns,
			     zp_now_ns() + (uint64_t)(e->cfg.seconds * 1e9 / 2));
	if (e->rpc)
		zp_rpc_start(e);
	else
		for (i = 0; i < e->n; i++)
			zc_reactor_call(e->rx[i].r, start_fn, &e->rx[i]);
	if (zp_open_loop(e))
		start_schedule(e);
}

void zp_maybe_stall(struct zp_engine *e)
{
	struct timespec ts;

	if (!e->cfg.stall_ms || !e->server ||
	    zp_now_ns() < atomic_load(&e->stall_at_ns) ||
	    atomic_exchange(&e->stalled, true))
		return;
	/* On purpose on the reactor thread: the whole reactor stalls, as a
	 * page fault storm or a long handler would stall it. */
	ts.tv_sec = e->cfg.stall_ms / 1000;
	ts.tv_nsec = (long)(e->cfg.stall_ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void engine_stop(struct zp_engine *e)
{
	unsigned i;

	/* The reactors' schedules end at ol_end_ns: stopping earlier would
	 * count the times between as unsent. */
	if (zp_open_loop(e))
		zp_sleep_until(e->ol_end_ns);
	if (e->rpc) {
		zp_rpc_stop(e);
		return;
	}
	for (i = 0; i < e->n; i++)
		zc_reactor_call(e->rx[i].r, stop_fn, &e->rx[i]);
}

int zp_engine_wait_closed(struct zp_engine *e, unsigned timeout_ms)
{
	unsigned n = e->server ? e->cfg.conns : e->expect_closed;

	if (e->rpc && e->server)
		return zp_rpc_wait_closed(e, timeout_ms);
	return zp_latch_wait(&e->closed, n, timeout_ms) >= n ? 0 : -ETIMEDOUT;
}

static void engine_quiesce(struct zp_engine *e)
{
	if (e->rpc)
		zp_rpc_quiesce(e);
}

struct collect_arg {
	struct zp_rctx *rx;
	struct zp_side *side;
	struct zp_hist *hist;
	struct zp_hist *olh; /* --rate: lag, issued -> answered; or NULL */
};

static int collect_fn(void *arg)
{
	struct collect_arg *ca = arg;
	struct zp_rctx *rx = ca->rx;
	struct zc_reactor_stats st;
	struct zp_counters k;

	ca->side->bytes_sent += rx->bytes_sent;
	ca->side->bytes_received += rx->bytes_received;
	ca->side->transactions += rx->transactions;
	bench_ol_counts_add(&ca->side->ol, &rx->ol.n);
	if (ca->hist)
		zp_hist_merge(ca->hist, rx->hist);
	if (ca->olh && rx->ol.lag_h) {
		zp_hist_merge(&ca->olh[0], rx->ol.lag_h);
		zp_hist_merge(&ca->olh[1], rx->ol.resp_h);
	}
	zc_reactor_stats(rx->r, &st);
	k = rx->tcp;
	k.zc_sends = st.tx_zc;
	k.notifications = st.notifs;
	k.copied_notifications = st.notifs_copied;
	k.deferred_frees = st.pool.deferred;
	k.drains = st.pool.drained;
	k.kicks = st.pool.kicks;
	k.large_copies = st.pool.ext_wrapped;
	k.rx_enobufs = st.rx_enobufs;
	k.ktls_conns = st.tls_ktls;
	k.tlsrec_zcrpc = st.tls_rec_zcrpc;
	k.tlsrec_openssl = st.tls_rec_openssl;
	k.fixed_files = st.fixed_files;
	k.fixed_fallbacks = st.fixed_fallbacks;
	zp_counters_add(&ca->side->ctr, &k);
	return 0;
}

static void engine_collect(struct zp_engine *e, struct zp_side *side,
			   struct zp_hist *hist)
{
	/* Without memory the breakdown stays zero; the run still counts. */
	struct zp_hist *olh = zp_open_loop(e) ? malloc(2 * sizeof(*olh)) : NULL;
	unsigned i;

	if (e->consumer)
		zp_consumer_flush(e->consumer);
	if (olh) {
		zp_hist_reset(&olh[0]);
		zp_hist_reset(&olh[1]);
	}
	for (i = 0; i < e->n; i++) {
		struct collect_arg ca = { &e->rx[i], side, hist, olh };

		zc_reactor_call(e->rx[i].r, collect_fn, &ca);
	}
	if (olh) {
		zp_hist_summary(&olh[0], &side->ol_lag);
		zp_hist_summary(&olh[1], &side->ol_resp);
	}
	free(olh);
	if (e->rpc)
		zp_rpc_collect(e, side);
	zp_tcpu_read(&e->tcpu, &side->threads);
}

/* ------------------------------------------------------------------------
 * Life cycle
 */

static int teardown_fn(void *arg)
{
	struct zp_rctx *rx = arg;
	struct zp_conn *pc;

	zc_chain_release(&rx->tmpl);
	if (rx->lis) {
		zc_listener_close(rx->lis);
		rx->lis = NULL;
	}
	for (pc = rx->conns; pc; pc = pc->next)
		zc_conn_close(pc->c, ZC_CLOSE_ABORT);
	return 0;
}

void zp_reactor_config(const struct zp_test_cfg *cfg,
		       struct zc_reactor_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->rxbuf_size = cfg->rxbuf;
	rc->rx_ring_entries = cfg->rxring;
	rc->sock_sndbuf = cfg->sockbuf;
	rc->sock_rcvbuf = cfg->sockbuf;
	rc->free_mode = (enum zc_free_mode)cfg->free_mode;
	rc->busy_poll_us = cfg->poll_us;
	rc->send_mode = cfg->send == ZP_SEND_ZC	     ? ZC_SEND_ZC
			: cfg->send == ZP_SEND_COPY ? ZC_SEND_COPY
						    : ZC_SEND_AUTO;
	rc->congestion = cfg->cc[0] ? cfg->cc : NULL;
}

static size_t pool_bytes_for(const struct zp_test_cfg *cfg)
{
	size_t rxbuf = cfg->rxbuf ? cfg->rxbuf : 64 * 1024;
	/* The stack's own rule, 4x the ring (stack.h), for a --rxring
	 * deeper than the default's 128 buffers. */
	size_t ring = cfg->rxring > 128 ? cfg->rxring : 128;
	size_t base = 4 * ring * rxbuf, tmpl;

	if (base < (64u << 20))
		base = 64u << 20;
	tmpl = cfg->msg_size > cfg->req_size ? cfg->msg_size : cfg->req_size;
	if (cfg->resp_size > tmpl)
		tmpl = cfg->resp_size;
	/* Room for the templates (whole buffers) on top of receive needs. */
	return base + tmpl + rxbuf;
}

static const struct zp_family *family_of(enum zp_test t)
{
	switch (t) {
	case ZP_TCP_STREAM:
	case ZP_TCP_MAERTS:
		return &zp_stream_family;
	case ZP_TCP_RR:
		return &zp_rr_family;
	default:
		return NULL;
	}
}

static void engine_destroy(struct zp_engine *e);

static int engine_create(struct zp_engine **out,
			 const struct zp_test_cfg *cfg, bool server,
			 const cpu_set_t *cpus, bool pinned, bool verbose)
{
	struct zc_reactor_config rc;
	struct zp_engine *e;
	unsigned i;
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->server = server;
	e->verbose = verbose;
	e->fam = family_of(cfg->test);
	e->pinned = pinned && CPU_COUNT(cpus) > 0;
	if (e->pinned)
		e->cpus = *cpus;
	zp_latch_init(&e->connected);
	zp_latch_init(&e->closed);
	atomic_init(&e->stall_at_ns, UINT64_MAX);
	zp_tcpu_init(&e->tcpu);
	if (zp_test_is_rpc(cfg->test)) {
		ret = zp_rpc_create(e);
		if (ret)
			goto err;
	}
	if (!e->fam && !e->rpc) {
		ret = -EINVAL;
		goto err;
	}
	e->rx = calloc(cfg->reactors, sizeof(*e->rx));
	if (!e->rx) {
		ret = -ENOMEM;
		goto err;
	}
	if (zp_side_consumes(cfg, server) && !e->rpc) {
		ret = zp_consumer_start(&e->consumer, cfg->consumer_cpu);
		if (ret)
			goto err;
		(void)zp_tcpu_register(&e->tcpu, "consumer",
				       zp_consumer_thread(e->consumer));
	}

	zp_reactor_config(cfg, &rc);
	rc.pool_bytes = pool_bytes_for(cfg);
	rc.rx_budget = e->consumer ? CONSUMER_RX_BUDGET : 0;

	for (i = 0; i < cfg->reactors; i++) {
		struct zp_rctx *rx = &e->rx[i];

		rx->eng = e;
		zc_chain_init(&rx->tmpl);
		rx->hist = malloc(sizeof(*rx->hist));
		if (!rx->hist) {
			ret = -ENOMEM;
			goto err;
		}
		zp_hist_reset(rx->hist);
		rc.pin = e->pinned;
		rc.cpu = e->pinned ? zp_nth_cpu(&e->cpus, i) : 0;
		ret = zc_reactor_spawn(&rc, &rx->r);
		if (ret) {
			fprintf(stderr, "zcperf: reactor %u: %s\n", i,
				strerror(-ret));
			goto err;
		}
		e->n++;
		ret = zc_reactor_call(rx->r, prepare_fn, rx);
		if (ret) {
			fprintf(stderr, "zcperf: payload buffers: %s\n",
				strerror(-ret));
			goto err;
		}
	}
	*out = e;
	return 0;
err:
	engine_destroy(e);
	return ret;
}

static void engine_destroy(struct zp_engine *e)
{
	unsigned i;

	if (e->rpc)
		zp_rpc_quiesce(e);
	for (i = 0; i < e->n; i++)
		zc_reactor_call(e->rx[i].r, teardown_fn, &e->rx[i]);
	/* Aborted connections still owe their on_close; give them a moment
	 * so their frees and counts land before the reactors go. */
	zp_latch_wait(&e->closed, atomic_load(&e->created), 2000);
	if (e->consumer) {
		uint64_t sum = zp_consumer_stop(e->consumer);

		if (e->verbose)
			fprintf(stderr, "zcperf: consumer read sum %llx\n",
				(unsigned long long)sum);
	}
	for (i = 0; i < e->n; i++) {
		int tries = 0, ret;

		while ((ret = zc_reactor_destroy(e->rx[i].r)) == -EBUSY &&
		       tries++ < 100)
			usleep(10000);
		if (ret) {
			/* A reactor still running may call back into e->rx:
			 * leak the engine rather than free it under it. */
			fprintf(stderr, "zcperf: reactor %u teardown: %s\n", i,
				strerror(-ret));
			return;
		}
	}
	if (e->rx) {
		for (i = 0; i < e->cfg.reactors; i++) {
			free(e->rx[i].hist);
			zp_olq_fini(&e->rx[i].ol);
			zp_item_cache_fini(&e->rx[i].items);
		}
		free(e->rx);
	}
	zp_rpc_free(e);
	zp_latch_destroy(&e->connected);
	zp_latch_destroy(&e->closed);
	zp_tcpu_destroy(&e->tcpu);
	free(e);
}

/* ------------------------------------------------------------------------
 * The entry points, watched (watch.h): each may wait on a reactor.
 */

int zp_engine_listen(struct zp_engine *e, const struct sockaddr *addr,
		     socklen_t len)
{
	int ret;

	zp_watch_begin("engine listen");
	ret = engine_listen(e, addr, len);
	zp_watch_end();
	return ret;
}

int zp_engine_connect(struct zp_engine *e, const struct sockaddr *addr,
		      socklen_t len)
{
	int ret;

	zp_watch_begin("engine connect");
	ret = engine_connect(e, addr, len);
	zp_watch_end();
	return ret;
}

void zp_engine_start(struct zp_engine *e)
{
	zp_watch_begin("engine start");
	engine_start(e);
	zp_watch_end();
}

void zp_engine_stop(struct zp_engine *e)
{
	zp_watch_begin("engine stop");
	engine_stop(e);
	zp_watch_end();
}

void zp_engine_quiesce(struct zp_engine *e)
{
	zp_watch_begin("engine quiesce");
	engine_quiesce(e);
	zp_watch_end();
}

void zp_engine_collect(struct zp_engine *e, struct zp_side *side,
		       struct zp_hist *hist)
{
	zp_watch_begin("engine collect");
	engine_collect(e, side, hist);
	zp_watch_end();
}

int zp_engine_create(struct zp_engine **out, const struct zp_test_cfg *cfg,
		     bool server, const cpu_set_t *cpus, bool pinned,
		     bool verbose)
{
	int ret;

	zp_watch_begin("engine create");
	ret = engine_create(out, cfg, server, cpus, pinned, verbose);
	zp_watch_end();
	return ret;
}

void zp_engine_destroy(struct zp_engine *e)
{
	zp_watch_begin("engine destroy");
	engine_destroy(e);
	zp_watch_end();
}
