/* SPDX-License-Identifier: MIT */
/*
 * rpc/server_api.c - server setup, the worker pool, drain, answers, stats.
 *
 * Workers take calls from one FIFO under a mutex.  A call's request views
 * are released on the worker (by the handler or when it answers), so the
 * receive buffers travel home through their pool's deferred list: the
 * consumer-on-another-CPU case the stack is built for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static void echo_handler(struct zc_rpc_call *call, struct zc_chain *req,
			 void *arg)
{
	(void)zc_rpc_reply(call, req);
}

struct zc__method *zc__server_method(const struct zc_rpc_server *s,
				     uint32_t id)
{
	unsigned lo = 0, hi = s->nmethods;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (s->methods[mid]->id == id)
			return s->methods[mid];
		if (s->methods[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int add_method(struct zc_rpc_server *s, uint32_t id, const char *name,
		      enum zc_rpc_mode mode, uint32_t max_inflight,
		      zc_rpc_handler_fn fn, void *arg)
{
	struct zc__method *m, **arr;
	unsigned i;

	if (zc__server_method(s, id))
		return -EEXIST;
	m = calloc(1, sizeof(*m));
	if (m)
		m->lat = calloc(s->nrc, sizeof(*m->lat));
	arr = realloc(s->methods, (s->nmethods + 1) * sizeof(*arr));
	if (!m || !m->lat || !arr) {
		if (m)
			free(m->lat);
		free(m);
		if (arr)
			s->methods = arr;
		return -ENOMEM;
	}
	s->methods = arr;
	m->id = id;
	snprintf(m->name, sizeof(m->name), "%s", name ? name : "?");
	m->mode = mode;
	m->max_inflight = max_inflight;
	m->fn = fn;
	m->arg = arg;
	for (i = s->nmethods; i > 0 && arr[i - 1]->id > id; i--)
		arr[i] = arr[i - 1];
	arr[i] = m;
	s->nmethods++;
	return 0;
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct zc_rpc_server *s = arg;

	pthread_mutex_lock(&s->wlock);
	for (;;) {
		struct zc_rpc_call *call;
		struct zc_chain req;

		while (!s->whead && !s->wstop)
			pthread_cond_wait(&s->wcond, &s->wlock);
		if (!s->whead)
			break;
		call = (struct zc_rpc_call *)s->whead;
		s->whead = call->node.next;
		if (!s->whead)
			s->wtail = NULL;
		if (call->deadline)
			atomic_fetch_sub(&s->wq_timed, 1);
		pthread_mutex_unlock(&s->wlock);

		/* Deadline first: a call that expired in the queue is
		 * reported as such even if the client's cancel (sent when
		 * its own timer fired) got here too. */
		if (call->deadline && zc__now_ns() >= call->deadline) {
			zc__ctr_add(&s->expired_queued, 1);
			zc_rpc_reply_error(call, ZC_RPC_DEADLINE_EXCEEDED,
					   "expired in queue");
		} else if (atomic_load_explicit(&call->cancelled,
						memory_order_acquire)) {
			zc_rpc_reply_error(call, ZC_RPC_CANCELLED, NULL);
		} else {
			req = call->req;
			zc_chain_init(&call->req);
			call->m->fn(call, &req, call->m->arg);
		}
		pthread_mutex_lock(&s->wlock);
	}
	pthread_mutex_unlock(&s->wlock);
	return NULL;
}

void zc__worker_push(struct zc_rpc_server *s, struct zc_rpc_call *call)
{
	call->node.next = NULL;
	pthread_mutex_lock(&s->wlock);
	if (s->wtail)
		s->wtail->next = &call->node;
	else
		s->whead = &call->node;
	s->wtail = &call->node;
	if (call->deadline)
		atomic_fetch_add(&s->wq_timed, 1);
	pthread_cond_signal(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
}

void zc__worker_expire(struct zc_rpc_server *s, uint64_t now)
{
	struct zc__inode *n, *prev = NULL, *expired = NULL;

	if (!atomic_load(&s->wq_timed))
		return;
	pthread_mutex_lock(&s->wlock);
	for (n = s->whead; n;) {
		struct zc_rpc_call *call = (struct zc_rpc_call *)n;
		struct zc__inode *next = n->next;

		if (call->deadline && now >= call->deadline) {
			if (prev)
				prev->next = next;
			else
				s->whead = next;
			if (s->wtail == n)
				s->wtail = prev;
			atomic_fetch_sub(&s->wq_timed, 1);
			n->next = expired;
			expired = n;
		} else {
			prev = n;
		}
		n = next;
	}
	pthread_mutex_unlock(&s->wlock);
	/* Answered here rather than when a worker gets to them: the client
	 * learns at its deadline even while every worker is busy. */
	while (expired) {
		struct zc_rpc_call *call = (struct zc_rpc_call *)expired;

		expired = expired->next;
		zc__ctr_add(&s->expired_queued, 1);
		zc_rpc_reply_error(call, ZC_RPC_DEADLINE_EXCEEDED,
				   "expired in queue");
	}
}

struct wstart {
	struct zc_rpc_server *s;
	int cpu;
};

static void *pin_and_run(void *arg)
{
	struct wstart ws = *(struct wstart *)arg;
	cpu_set_t set;

	free(arg);
	if (ws.cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(ws.cpu, &set);
		/* Best effort: a missing CPU leaves the worker unpinned. */
		(void)sched_setaffinity(0, sizeof(set), &set);
	}
	return worker_main(ws.s);
}

static void stop_workers(struct zc_rpc_server *s)
{
	pthread_mutex_lock(&s->wlock);
	s->wstop = true;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->wthreads[i], NULL);
	s->nworkers = 0;
}

static int start_workers(struct zc_rpc_server *s)
{
	s->wthreads = calloc(s->cfg.workers, sizeof(*s->wthreads));
	if (!s->wthreads)
		return -ENOMEM;
	for (unsigned i = 0; i < s->cfg.workers; i++) {
		struct wstart *ws = malloc(sizeof(*ws));
		int ret;

		if (!ws)
			return -ENOMEM;
		ws->s = s;
		ws->cpu = s->cfg.worker_cpus ? s->cfg.worker_cpus[i] : -1;
		ret = pthread_create(&s->wthreads[i], NULL, pin_and_run, ws);
		if (ret) {
			free(ws);
			return -ret;
		}
		s->nworkers++;
	}
	return 0;
}

/* ---- create / destroy -------------------------------------------------- */

/* What create made, once no thread uses it any more. */
static void server_free(struct zc_rpc_server *s)
{
	for (unsigned i = 0; i < s->nmethods; i++) {
		free(s->methods[i]->lat);
		free(s->methods[i]);
	}
	free(s->methods);
	free(s->wthreads);
	/* No connection is left to write into them (the reactors outlive
	 * the server, so their pools are still there). */
	for (unsigned i = 0; i < s->nrc; i++)
		zc__tx_stage_fini(&s->rcs[i].stage);
	free(s->rcs);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	pthread_mutex_destroy(&s->tlock);
	pthread_cond_destroy(&s->tcond);
	free(s);
}

int zc_rpc_server_create(const struct zc_rpc_server_config *cfg,
			 struct zc_rpc_server **out)
{
	struct zc_rpc_server *s;
	struct zc_rpc_server_config c;
	pthread_condattr_t ca;
	int ret;

	if (!cfg || !cfg->reactors || !cfg->nreactors ||
	    (cfg->nbulk && !cfg->bulk_reactors))
		return -EINVAL;
	c = *cfg;
#define DEF(f, v) do { if (!c.f) c.f = (v); } while (0)
	DEF(max_message, ZC_RPC_MAX_MESSAGE_DEFAULT);
	DEF(max_frame, ZC_RPC_MAX_FRAME_DEFAULT);
	DEF(max_inflight, 65536);
	DEF(max_inflight_conn, 4096);
	DEF(max_inflight_bytes, c.max_message > (128u << 20) ?
				2 * (size_t)c.max_message : 256u << 20);
	DEF(max_inflight_bytes_conn,
	    c.max_message > c.max_inflight_bytes / 2 ?
		    c.max_message : c.max_inflight_bytes / 2);
	DEF(reserve_bytes, c.max_inflight_bytes / 8);
	DEF(tx_budget, 8u << 20);
	DEF(unwritable_timeout_ms, 30000);
	DEF(tx_window, 1u << 20);
	DEF(hello_timeout_ms, 10000);
	DEF(idle_timeout_ms, 300000);
	DEF(stall_timeout_ms, 30000);
	DEF(linger_ms, 2000);
	DEF(bulk_message_bytes, 1u << 20);
#undef DEF
	if (c.max_frame < ZC_FRAME_MIN || c.max_frame > ZC_FRAME_MAX ||
	    c.max_message > c.max_inflight_bytes ||
	    c.reserve_bytes >= c.max_inflight_bytes)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = c;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wcond, NULL);
	pthread_mutex_init(&s->tlock, NULL);
	/* The ticker sleeps on CLOCK_MONOTONIC, like every timer here. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->tcond, &ca);
	pthread_condattr_destroy(&ca);
	s->nrc = cfg->nreactors + cfg->nbulk;
	s->rcs = calloc(s->nrc, sizeof(*s->rcs));
	if (!s->rcs) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < s->nrc; i++) {
		bool bulk = i >= cfg->nreactors;

		s->rcs[i].s = s;
		s->rcs[i].bulk = bulk;
		s->rcs[i].r = bulk ? cfg->bulk_reactors[i - cfg->nreactors] :
				     cfg->reactors[i];
		zc__inbox_init(&s->rcs[i].inbox, s->rcs[i].r,
			       zc__server_inbox);
		zc__tx_stage_init(&s->rcs[i].stage,
				  zc_reactor_pool(s->rcs[i].r));
		s->rcs[i].resume_work.fn = zc__server_resume;
		s->rcs[i].tick_work.fn = zc__server_tick;
		s->rcs[i].drain_work.fn = zc__server_drain_begin;
	}
	ret = add_method(s, ZC_RPC_METHOD_ECHO, "echo", ZC_RPC_INLINE, 0,
			 echo_handler, NULL);
	if (ret)
		goto err_free;
	ret = start_workers(s);
	if (ret)
		goto err_workers;
	ret = zc__ticker_start(s);
	if (ret)
		goto err_workers;
	*out = s;
	return 0;
err_workers:
	stop_workers(s);
err_free:
	server_free(s);
	return ret;
}

int zc_rpc_server_register(struct zc_rpc_server *s, uint32_t method,
			   const char *name, enum zc_rpc_mode mode,
			   uint32_t max_inflight, zc_rpc_handler_fn fn,
			   void *arg)
{
	if (method < ZC_RPC_METHOD_USER || !fn ||
	    (mode != ZC_RPC_INLINE && mode != ZC_RPC_WORKER) ||
	    (mode == ZC_RPC_WORKER && !s->nworkers))
		return -EINVAL;
	if (s->listening)
		return -EBUSY;
	return add_method(s, method, name, mode, max_inflight, fn, arg);
}

struct listen_arg {
	struct zc__srctx *rc;
	struct zc_addr addr;
	unsigned flags;
	int share_fd;		/* the first listener's socket, or -1 */
};

static int listen_on(void *arg)
{
	struct listen_arg *la = arg;
	int ret;

	if (la->share_fd >= 0)
		ret = zc_listen_fd(la->rc->r, la->share_fd,
				   la->flags & ZC_LISTEN_ONESHOT_ACCEPT,
				   zc__server_accept, la->rc, &la->rc->l);
	else
		ret = zc_listen(la->rc->r, (struct sockaddr *)&la->addr.ss,
				la->addr.len, la->flags, zc__server_accept,
				la->rc, &la->rc->l);
	if (!ret && la->rc->s->cfg.tls &&
	    (ret = zc_listener_set_tls(la->rc->l, la->rc->s->cfg.tls))) {
		zc_listener_close(la->rc->l);
		la->rc->l = NULL;
	}
	return ret;
}

static int close_listener(void *arg)
{
	struct zc__srctx *rc = arg;

	if (rc->l)
		zc_listener_close(rc->l);
	rc->l = NULL;
	return 0;
}

/*
 * The first reactor binds.  Without reuseport the others accept on a dup
 * of its socket (one socket: a second bind of the port fails); with it
 * each binds its own socket on the port the first one got.
 */
static int listen_all(struct zc_rpc_server *s, struct listen_arg *la)
{
	int ret = 0;

	la->share_fd = -1;
	la->flags = (s->cfg.reuseport ? ZC_LISTEN_REUSEPORT : 0) |
		    (s->cfg.oneshot_accept ? ZC_LISTEN_ONESHOT_ACCEPT : 0);
	for (unsigned i = 0; i < s->cfg.nreactors; i++) {
		la->rc = &s->rcs[i];
		ret = zc_reactor_call(la->rc->r, listen_on, la);
		if (ret || i)
			continue;
		s->bound.len = sizeof(s->bound.ss);
		if (getsockname(zc_listener_fd(la->rc->l),
				(struct sockaddr *)&s->bound.ss,
				&s->bound.len)) {
			ret = -errno;
			break;
		}
		if (la->addr.ss.ss_family == AF_UNIX)
			s->bound.len = la->addr.len;	/* the name as given */
		s->port = zc_listener_port(la->rc->l);
		if (!s->cfg.reuseport)
			la->share_fd = zc_listener_fd(la->rc->l);
		else
			la->addr = s->bound;
	}
	if (ret) {
		for (unsigned i = 0; i < s->cfg.nreactors; i++)
			(void)zc_reactor_call(s->rcs[i].r, close_listener,
					      &s->rcs[i]);
		s->port = 0;
		s->bound.len = 0;
	}
	return ret;
}

int zc_rpc_server_listen(struct zc_rpc_server *s, const struct sockaddr *addr,
			 socklen_t addrlen)
{
	struct listen_arg la;
	int ret;

	if (s->listening)
		return -EBUSY;
	if (!addr || addrlen > sizeof(la.addr.ss) ||
	    addrlen < sizeof(sa_family_t))
		return -EINVAL;
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 &&
	    addr->sa_family != AF_UNIX)
		return -EAFNOSUPPORT;
	if (addr->sa_family == AF_UNIX && s->cfg.reuseport)
		return -EINVAL;
	memset(&la, 0, sizeof(la));
	memcpy(&la.addr.ss, addr, addrlen);
	la.addr.len = addrlen;
	ret = listen_all(s, &la);
	if (ret)
		return ret;
	s->listening = true;
	return 0;
}

int zc_rpc_server_listen_str(struct zc_rpc_server *s, const char *addr)
{
	struct zc_addr a;
	int ret;

	if (s->listening)
		return -EBUSY;
	ret = zc_addr_resolve(addr, ZC_ADDR_PASSIVE, &a, 1);
	if (ret < 0)
		return ret;
	return zc_rpc_server_listen(s, (struct sockaddr *)&a.ss, a.len);
}

uint16_t zc_rpc_server_port(const struct zc_rpc_server *s)
{
	return s->port;
}

int zc_rpc_server_address(const struct zc_rpc_server *s, char *buf,
			  size_t size)
{
	if (!s->bound.len)
		return -ENOTCONN;
	return zc_addr_format((const struct sockaddr *)&s->bound.ss,
			      s->bound.len, buf, size);
}

static int abort_fn(void *arg)
{
	zc__server_abort_all(arg);
	return 0;
}

static int noop_fn(void *arg)
{
	return 0;
}

/* Is the calling thread one of @s's reactors? */
static bool on_own_reactor(const struct zc_rpc_server *s)
{
	struct zc_reactor *cur = zc_reactor_current();

	for (unsigned i = 0; cur && i < s->nrc; i++)
		if (s->rcs[i].r == cur)
			return true;
	return false;
}

int zc_rpc_server_drain_start(struct zc_rpc_server *s, unsigned timeout_ms,
			      zc_rpc_drain_fn done, void *arg)
{
	if (atomic_exchange(&s->drain_started, true))
		return -EALREADY;
	s->drain_done = done;
	s->drain_arg = arg;
	s->drain_timeout_ms = timeout_ms;
	atomic_store(&s->drain_left, s->nrc);
	atomic_store(&s->drained, true);
	/* Queued even on our own reactor: the drain runs from its loop. */
	for (unsigned i = 0; i < s->nrc; i++) {
		atomic_store(&s->rcs[i].drain_queued, true);
		zc_reactor_queue(s->rcs[i].r, &s->rcs[i].drain_work);
	}
	return 0;
}

struct drain_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int result;
};

static void drain_wake(void *arg, int result)
{
	struct drain_wait *dw = arg;

	pthread_mutex_lock(&dw->lock);
	dw->result = result;
	dw->done = true;
	pthread_cond_signal(&dw->cond);
	pthread_mutex_unlock(&dw->lock);
}

int zc_rpc_server_drain(struct zc_rpc_server *s, unsigned timeout_ms)
{
	struct drain_wait dw = { .done = false };
	int ret;

	if (on_own_reactor(s))
		return -EDEADLK;
	pthread_mutex_init(&dw.lock, NULL);
	pthread_cond_init(&dw.cond, NULL);
	ret = zc_rpc_server_drain_start(s, timeout_ms, drain_wake, &dw);
	if (!ret) {
		/* Bounded by the drain itself: timeout_ms, then linger_ms,
		 * then the resets' on_close. */
		pthread_mutex_lock(&dw.lock);
		while (!dw.done)
			pthread_cond_wait(&dw.cond, &dw.lock);
		pthread_mutex_unlock(&dw.lock);
		ret = dw.result;
	}
	pthread_mutex_destroy(&dw.lock);
	pthread_cond_destroy(&dw.cond);
	return ret;
}

/* Anything that still needs a reactor of @s to run? */
static bool destroy_busy(struct zc_rpc_server *s)
{
	if (zc__ctr_get(&s->inflight) || zc__ctr_get(&s->sconns_live) ||
	    (atomic_load(&s->drain_started) && atomic_load(&s->drain_left)))
		return true;
	for (unsigned i = 0; i < s->nrc; i++) {
		struct zc__srctx *rc = &s->rcs[i];

		if (atomic_load(&rc->inbox.queued) ||
		    atomic_load(&rc->inbox.head) ||
		    atomic_load(&rc->resume_queued) ||
		    atomic_load(&rc->tick_queued) ||
		    atomic_load(&rc->drain_queued))
			return true;
	}
	return false;
}

/*
 * One step of destroy: 0 when nothing needs the reactors any more (the
 * ticker is joined), -EBUSY otherwise.  The first step aborts every
 * connection.
 */
static int destroy_step(struct zc_rpc_server *s)
{
	if (!s->destroying) {
		s->destroying = true;
		atomic_store(&s->drained, true);
		/* A connection arriving on a bulk reactor after its abort
		 * ran is aborted there (server_move.c). */
		atomic_store(&s->aborting, true);
		for (unsigned i = 0; i < s->nrc; i++)
			(void)zc_reactor_call(s->rcs[i].r, abort_fn, &s->rcs[i]);
	}
	if (destroy_busy(s))
		return -EBUSY;
	/* Idle: the ticker may still queue one tick before it stops. */
	zc__ticker_stop(s);
	return destroy_busy(s) ? -EBUSY : 0;
}

int zc_rpc_server_destroy(struct zc_rpc_server *s)
{
	bool loop = on_own_reactor(s);
	int ret;

	if (loop && s->nrc > 1)
		return -EDEADLK;
	if (loop) {
		/* Nothing of ours runs concurrently on our only reactor. */
		ret = destroy_step(s);
		if (ret)
			return ret;
	} else {
		/* Handlers answer even cancelled calls; connections finish
		 * closing on their reactors.  Both are bounded by the
		 * handlers' own work. */
		for (;;) {
			while (destroy_step(s))
				usleep(1000);
			/* A batch that just cleared its flag may still be
			 * running: let every reactor finish it. */
			for (unsigned i = 0; i < s->nrc; i++)
				(void)zc_reactor_call(s->rcs[i].r, noop_fn,
						      NULL);
			if (!destroy_busy(s))
				break;
		}
	}
	stop_workers(s);
	server_free(s);
	return 0;
}

/* ---- answers ----------------------------------------------------------- */

int zc_rpc_reply(struct zc_rpc_call *call, struct zc_chain *resp)
{
	if (zc_chain_len(resp) > call->sc->peer.max_message) {
		zc_chain_release(resp);
		zc_rpc_reply_error(call, ZC_RPC_TOO_LARGE,
				   "answer exceeds the client's max_message");
		return -E2BIG;
	}
	call->resp = *resp;
	zc_chain_init(resp);
	call->status = ZC_RPC_OK;
	zc__call_finish(call);
	return 0;
}

void zc_rpc_reply_error(struct zc_rpc_call *call, int status, const char *msg)
{
	zc_chain_release(&call->req);
	call->status = status > 0 && status < ZC_RPC_NSTATUS ?
		       status : ZC_RPC_INTERNAL;
	if (msg)
		snprintf(call->msg, sizeof(call->msg), "%s", msg);
	zc__call_finish(call);
}

bool zc_rpc_call_cancelled(const struct zc_rpc_call *call)
{
	if (atomic_load_explicit(&call->cancelled, memory_order_acquire))
		return true;
	return call->deadline && zc__now_ns() >= call->deadline;
}

uint32_t zc_rpc_call_method(const struct zc_rpc_call *call)
{
	return call->m->id;
}

uint64_t zc_rpc_call_id(const struct zc_rpc_call *call)
{
	return call->id;
}

uint64_t zc_rpc_call_deadline(const struct zc_rpc_call *call)
{
	return call->deadline;
}

struct zc_reactor *zc_rpc_call_reactor(const struct zc_rpc_call *call)
{
	return call->sc->rc->r;
}

/* Set on the reactor before the call was admitted, never changed after:
 * safe to read from the worker that handles the call. */
const struct zc_tls_peer *
zc_rpc_call_peer_identity(const struct zc_rpc_call *call)
{
	return call->sc->tls_peer;
}

/* ---- stats ------------------------------------------------------------- */

void zc_rpc_server_stats(const struct zc_rpc_server *s,
			 struct zc_rpc_server_stats *out)
{
	out->conns_accepted = zc__ctr_get(&s->conns_accepted);
	out->conns_open = zc__ctr_get(&s->conns_open);
	out->conns_protocol_error = zc__ctr_get(&s->conns_protocol_error);
	out->requests = zc__ctr_get(&s->requests);
	out->rejected_overload = zc__ctr_get(&s->rejected_overload);
	out->rejected_too_large = zc__ctr_get(&s->rejected_too_large);
	out->rejected_unknown = zc__ctr_get(&s->rejected_unknown);
	out->rejected_draining = zc__ctr_get(&s->rejected_draining);
	out->expired_queued = zc__ctr_get(&s->expired_queued);
	out->cancels = zc__ctr_get(&s->cancels);
	out->dropped_answers = zc__ctr_get(&s->dropped_answers);
	out->tx_budget_stops = zc__ctr_get(&s->tx_budget_stops);
	out->rx_budget_stops = zc__ctr_get(&s->rx_budget_stops);
	out->inflight = zc__ctr_get(&s->inflight);
	out->inflight_bytes = zc__ctr_get(&s->inflight_bytes);
	out->conns_timed_out = zc__ctr_get(&s->conns_timed_out);
	out->expired_reasm = zc__ctr_get(&s->expired_reasm);
	out->lingered = zc__ctr_get(&s->lingered);
	out->drain_cut = zc__ctr_get(&s->drain_cut);
	out->conns_unwritable = zc__ctr_get(&s->conns_unwritable);
	out->rx_copied = zc__ctr_get(&s->rx_copied);
	out->conns_moved = zc__ctr_get(&s->conns_moved);
}

int zc_rpc_server_method_stats(const struct zc_rpc_server *s,
			       uint32_t method,
			       struct zc_rpc_method_stats *out)
{
	const struct zc__method *m = zc__server_method(s, method);

	if (!m)
		return -ENOENT;
	out->name = m->name;
	out->calls = zc__ctr_get(&m->calls);
	out->rx_bytes = zc__ctr_get(&m->rx_bytes);
	out->tx_bytes = zc__ctr_get(&m->tx_bytes);
	out->inflight = zc__ctr_get(&m->inflight);
	for (int i = 0; i < ZC_RPC_NSTATUS; i++)
		out->by_status[i] = zc__ctr_get(&m->by_status[i]);
	return 0;
}

int zc_rpc_server_method_latency(const struct zc_rpc_server *s,
				 uint32_t method, struct zc_rpc_latency *out)
{
	const struct zc__method *m = zc__server_method(s, method);

	if (!m)
		return -ENOENT;
	zc__hist_read(m->lat, s->nrc, out);
	return 0;
}
