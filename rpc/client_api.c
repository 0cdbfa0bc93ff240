/* SPDX-License-Identifier: MIT */
/*
 * rpc/client_api.c - the client's any-thread surface: calls, cancel, the
 * blocking wrapper, the tick thread, setup and teardown.
 *
 * Calls from any thread reach the reactor through the client's inbox: one
 * wake-up per batch of calls, not one per call.  The stack has no timers,
 * so a small thread queues a tick on the reactor every millisecond while
 * something is timed (deadlines, reconnects, waiting calls) and sleeps
 * otherwise.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

void zc__pending_put(struct zc_rpc_pending *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	zc_chain_release(&p->req);
	zc_chain_release(&p->resp);
	free(p);
}

static void *ticker_main(void *arg)
{
	struct zc_rpc_client *cli = arg;

	while (!atomic_load(&cli->stop)) {
		pthread_mutex_lock(&cli->tick_lock);
		while (!atomic_load(&cli->need_tick) &&
		       !atomic_load(&cli->stop))
			pthread_cond_wait(&cli->tick_cond, &cli->tick_lock);
		pthread_mutex_unlock(&cli->tick_lock);
		usleep(1000);
		if (atomic_load(&cli->need_tick) &&
		    !atomic_exchange(&cli->tick_queued, true))
			zc_reactor_queue(cli->r, &cli->tick_work);
	}
	return NULL;
}

static int start_fn(void *arg)
{
	zc__client_start(arg);
	return 0;
}

static int shutdown_fn(void *arg)
{
	zc__client_shutdown(arg);
	return 0;
}

static int noop_fn(void *arg)
{
	return 0;
}

/* A sockaddr given by the caller: refused now if no connect could use
 * it, rather than at every call. */
static int check_addr(const struct sockaddr *sa, socklen_t len)
{
	if (len < sizeof(sa_family_t) || len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	switch (sa->sa_family) {
	case AF_INET:
		return len < sizeof(struct sockaddr_in) ? -EINVAL : 0;
	case AF_INET6:
		return len < sizeof(struct sockaddr_in6) ? -EINVAL : 0;
	case AF_UNIX:
		return len <= offsetof(struct sockaddr_un, sun_path) ?
			-EINVAL : 0;
	default:
		return -EAFNOSUPPORT;
	}
}

/* The peer's candidates into @cli: @cfg->target resolved here, on the
 * caller's thread, or the sockaddrs given, checked. */
static int peer_addrs(struct zc_rpc_client *cli,
		      const struct zc_rpc_client_config *cfg)
{
	int ret;

	if (!!cfg->addr + !!cfg->target + !!cfg->addrs != 1 ||
	    (cfg->addrs && (!cfg->naddrs || cfg->naddrs > ZC_ADDR_MAX)))
		return -EINVAL;
	if (cfg->target) {
		ret = zc_addr_resolve(cfg->target, 0, cli->addrs, ZC_ADDR_MAX);
		if (ret < 0)
			return ret;
		cli->naddrs = (unsigned)ret;
	} else if (cfg->addr) {
		ret = check_addr(cfg->addr, cfg->addrlen);
		if (ret)
			return ret;
		memcpy(&cli->addrs[0].ss, cfg->addr, cfg->addrlen);
		cli->addrs[0].len = cfg->addrlen;
		cli->naddrs = 1;
	} else {
		for (unsigned i = 0; i < cfg->naddrs; i++) {
			ret = check_addr((const struct sockaddr *)
						 &cfg->addrs[i].ss,
					 cfg->addrs[i].len);
			if (ret)
				return ret;
			cli->addrs[i] = cfg->addrs[i];
		}
		cli->naddrs = cfg->naddrs;
	}
	/* Nothing of the caller's is kept. */
	cli->cfg.target = NULL;
	cli->cfg.addrs = NULL;
	cli->cfg.naddrs = 0;
	cli->cfg.addr = (struct sockaddr *)&cli->addrs[0].ss;
	cli->cfg.addrlen = cli->addrs[0].len;
	return 0;
}

int zc__client_create(const struct zc_rpc_client_config *cfg,
		      void (*on_ready)(void *arg), void *arg,
		      struct zc_rpc_client **out)
{
	struct zc_rpc_client *cli;
	int ret;

	if (!cfg || !cfg->reactor ||
	    (cfg->max_frame && (cfg->max_frame < ZC_FRAME_MIN ||
				cfg->max_frame > ZC_FRAME_MAX)))
		return -EINVAL;
	cli = calloc(1, sizeof(*cli));
	if (!cli)
		return -ENOMEM;
	cli->cfg = *cfg;
	ret = peer_addrs(cli, cfg);
	if (ret) {
		free(cli);
		return ret;
	}
#define DEF(f, v) do { if (!cli->cfg.f) cli->cfg.f = (v); } while (0)
	DEF(conns, 2);
	DEF(max_message, ZC_RPC_MAX_MESSAGE_DEFAULT);
	DEF(max_frame, ZC_RPC_MAX_FRAME_DEFAULT);
	DEF(tx_budget, 64u << 20);
	DEF(tx_window, 1u << 20);
	DEF(backoff_min_ms, 10);
	DEF(backoff_max_ms, 2000);
	DEF(connect_timeout_ms, 2000);
#undef DEF
	cli->r = cfg->reactor;
	zc__tx_stage_init(&cli->stage, zc_reactor_pool(cli->r));
	cli->on_ready = on_ready;
	cli->on_ready_arg = arg;
	cli->rng = zc__now_ns() | 1;
	cli->tick_work.fn = zc__client_tick;
	zc__inbox_init(&cli->inbox, cli->r, zc__client_inbox);
	pthread_mutex_init(&cli->tick_lock, NULL);
	pthread_cond_init(&cli->tick_cond, NULL);
	cli->slots = calloc(cli->cfg.conns, sizeof(*cli->slots));
	if (!cli->slots) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = pthread_create(&cli->ticker, NULL, ticker_main, cli);
	if (ret) {
		ret = -ret;
		goto err_free;
	}
	(void)zc_reactor_call(cli->r, start_fn, cli);
	*out = cli;
	return 0;
err_free:
	pthread_mutex_destroy(&cli->tick_lock);
	pthread_cond_destroy(&cli->tick_cond);
	free(cli->slots);
	free(cli);
	return ret;
}

int zc_rpc_client_create(const struct zc_rpc_client_config *cfg,
			 struct zc_rpc_client **out)
{
	return zc__client_create(cfg, NULL, NULL, out);
}

bool zc__client_usable(const struct zc_rpc_client *cli)
{
	return zc__ctr_get(&cli->conns_usable) > 0;
}

static void ticker_stop(struct zc_rpc_client *cli)
{
	if (atomic_load(&cli->stop))
		return;
	pthread_mutex_lock(&cli->tick_lock);
	atomic_store(&cli->stop, true);
	pthread_cond_signal(&cli->tick_cond);
	pthread_mutex_unlock(&cli->tick_lock);
	pthread_join(cli->ticker, NULL);
}

/*
 * One step of destroy, on any thread: 0 once nothing needs the reactor
 * any more (ticker joined), -EBUSY otherwise.  Closing again is harmless:
 * calls that were on their way fail on arrival.
 */
static int destroy_step(struct zc_rpc_client *cli)
{
	atomic_store(&cli->closing, true);
	/* A call that passed the closing check is counted in inflight and
	 * still reaches the reactor, where it completes UNAVAILABLE. */
	(void)zc_reactor_call(cli->r, shutdown_fn, cli);
	if (zc__ctr_get(&cli->inflight) || zc__ctr_get(&cli->conns_live) ||
	    zc__ctr_get(&cli->pings_live))
		return -EBUSY;
	ticker_stop(cli);
	if (atomic_load(&cli->tick_queued) ||
	    atomic_load(&cli->inbox.queued) || atomic_load(&cli->inbox.head))
		return -EBUSY;
	return 0;
}

int zc_rpc_client_destroy(struct zc_rpc_client *cli)
{
	if (zc_reactor_current() == cli->r) {
		/* An embedder's loop thread: never wait for ourselves. */
		int ret = destroy_step(cli);

		if (ret)
			return ret;
	} else {
		for (;;) {
			while (destroy_step(cli))
				usleep(1000);
			/* The last batch may still be running its work. */
			(void)zc_reactor_call(cli->r, noop_fn, NULL);
			if (!destroy_step(cli))
				break;
		}
	}
	pthread_mutex_destroy(&cli->tick_lock);
	pthread_cond_destroy(&cli->tick_cond);
	/* No connection is left to write into it; the views of its last
	 * frames hold the buffer while the kernel has them. */
	zc__tx_stage_fini(&cli->stage);
	free(cli->heap);
	free(cli->slots);
	free(cli);
	return 0;
}

int zc_rpc_call(struct zc_rpc_client *cli, uint32_t method,
		struct zc_chain *req, const struct zc_rpc_call_opts *opts,
		zc_rpc_done_fn done, void *arg, struct zc_rpc_pending **pending)
{
	size_t len = zc_chain_len(req);
	struct zc_rpc_pending *p;

	if (!method || !done)
		return -EINVAL;
	zc__ctr_add(&cli->inflight, 1);
	if (atomic_load(&cli->closing)) {
		zc__ctr_sub(&cli->inflight, 1);
		return -ESHUTDOWN;
	}
	if (zc__ctr_get(&cli->tx_pending) + len > cli->cfg.tx_budget &&
	    zc__ctr_get(&cli->tx_pending)) {
		/* An empty pipe always takes one call, however large, so a
		 * message over the budget still gets its chance. */
		zc__ctr_sub(&cli->inflight, 1);
		zc__ctr_add(&cli->tx_budget_refusals, 1);
		return -EAGAIN;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		zc__ctr_sub(&cli->inflight, 1);
		return -ENOMEM;
	}
	atomic_init(&p->refs, pending ? 2 : 1);
	atomic_init(&p->cancel_sent, false);
	p->submit.kind = MSG_SUBMIT;
	p->cancel.kind = MSG_CANCEL;
	p->cli = cli;
	p->method = method;
	p->done = done;
	p->arg = arg;
	p->start_ns = zc__now_ns();
	if (opts && opts->timeout_us)
		p->deadline = p->start_ns + opts->timeout_us * 1000;
	p->wait_for_ready = cli->cfg.wait_for_ready ||
			    (opts && opts->wait_for_ready);
	p->req = *req;
	zc_chain_init(req);
	p->req_bytes = len;
	zc_chain_init(&p->resp);
	zc__ctr_add(&cli->tx_pending, len);
	zc__ctr_add(&cli->calls, 1);
	if (pending)
		*pending = p;
	zc__inbox_push(&cli->inbox, &p->submit.node);
	return 0;
}

void zc_rpc_cancel(struct zc_rpc_pending *p)
{
	if (atomic_exchange(&p->cancel_sent, true))
		return;
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	zc__inbox_push(&p->cli->inbox, &p->cancel.node);
}

void zc_rpc_pending_put(struct zc_rpc_pending *p)
{
	zc__pending_put(p);
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int status;
	struct zc_chain resp;
	struct zc_rpc_error why;
};

static void sync_done(void *arg, int status, struct zc_chain *resp)
{
	struct sync_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->status = status;
	w->resp = *resp;
	w->why = *zc_rpc_call_error();
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int zc_rpc_call_sync(struct zc_rpc_client *cli, uint32_t method,
		     struct zc_chain *req, const struct zc_rpc_call_opts *opts,
		     struct zc_chain *resp)
{
	struct sync_wait w = { .done = false };
	int ret;

	if (zc_reactor_current() == cli->r)
		return -EDEADLK;
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	zc_chain_init(&w.resp);
	ret = zc_rpc_call(cli, method, req, opts, sync_done, &w, NULL);
	if (!ret) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock);
		pthread_mutex_unlock(&w.lock);
		ret = w.status;
		zc__call_error_keep(&w.why);
		zc_chain_release(resp);
		*resp = w.resp;
	}
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	return ret;
}

void zc_rpc_client_stats(const struct zc_rpc_client *cli,
			 struct zc_rpc_client_stats *out)
{
	out->calls = zc__ctr_get(&cli->calls);
	out->inflight = zc__ctr_get(&cli->inflight);
	out->tx_bytes = zc__ctr_get(&cli->tx_bytes);
	out->rx_bytes = zc__ctr_get(&cli->rx_bytes);
	out->tx_budget_refusals = zc__ctr_get(&cli->tx_budget_refusals);
	out->connects = zc__ctr_get(&cli->connects);
	out->connect_failures = zc__ctr_get(&cli->connect_failures);
	out->conns_open = zc__ctr_get(&cli->conns_open);
	out->goaways = zc__ctr_get(&cli->goaways);
	out->protocol_errors = zc__ctr_get(&cli->protocol_errors);
	out->tx_pending_bytes = zc__ctr_get(&cli->tx_pending);
	for (int i = 0; i < ZC_RPC_NSTATUS; i++)
		out->by_status[i] = zc__ctr_get(&cli->by_status[i]);
}

void zc_rpc_client_latency(const struct zc_rpc_client *cli,
			   struct zc_rpc_latency *out)
{
	zc__hist_read(&cli->lat, 1, out);
}
