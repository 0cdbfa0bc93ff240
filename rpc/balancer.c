/* SPDX-License-Identifier: MIT */
/*
 * rpc/balancer.c - one client over several servers: an endpoint per
 * server (a zc_rpc_client each, on one reactor), a policy to pick one per
 * call, health checks that take endpoints out of rotation and put them
 * back, and transparent retries of calls the server cannot have run.
 *
 * Threads: calls and picks on any thread (endpoint state is atomic);
 * completions, retries, health-check results and the calls that waited
 * for ready on the reactor thread; the health thread only starts checks
 * and wakes the reactor while calls wait.  A retry calls zc_rpc_call()
 * from a completion, on the reactor thread: destroy cannot free a client
 * under it, because a client's destroy needs that thread to finish.
 *
 * Wait for ready: a call that may wait, made while no endpoint is ready
 * (in rotation with a connection up), waits here, not in one endpoint's
 * client, and goes to the first endpoint that becomes ready: a connection
 * that completes its HELLO, or an endpoint a health check puts back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

/* The time out of rotation doubles per failed health check up to this
 * many times eject_ms. */
#define EJECT_MAX_FACTOR 8u

struct endpoint {
	struct zc_rpc_balancer *b;
	struct zc_rpc_client *cli;
	atomic_uint inflight;
	/* Out of rotation until this time (ns); 0: in rotation. */
	atomic_uint_fast64_t out_until;
	atomic_uint failures;		/* consecutive, for the backoff */
	atomic_bool probing;		/* a health check in flight */
	uint64_t next_check;		/* ns, health thread only */
	zc__ctr sent, ok, checks, checks_failed;
	atomic_uint_fast64_t rtt_ns;	/* of the last PONG */
};

struct bcall;

struct zc_rpc_balancer {
	struct zc_rpc_balancer_config cfg;
	struct endpoint ep[ZC_RPC_BALANCER_MAX];
	unsigned n;
	uint32_t *idempotent;
	atomic_uint rr;
	atomic_bool closing;
	zc__ctr calls, retries, ejections, waited;
	/* The health-check thread. */
	pthread_t health;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* Calls waiting for a ready endpoint, FIFO, under wlock; nwait is
	 * also read by the health thread. */
	pthread_mutex_t wlock;
	struct bcall *whead, *wtail;
	atomic_uint nwait;
	bool wclosed;
	/* Reactor work: expire waiting calls, send them if one is ready. */
	struct zc_work wwork;
	atomic_bool wwork_queued;
};

/* One call, alive until its final completion. */
struct bcall {
	struct zc_rpc_balancer *b;
	uint32_t method;
	struct zc_chain req;	/* kept for retries: views shared, not copied */
	uint64_t deadline;	/* ns, 0: none */
	bool wait_for_ready;
	zc_rpc_done_fn done;
	void *arg;
	unsigned attempts;
	unsigned ep;		/* endpoint of the send in flight */
	uint32_t tried;		/* endpoints tried, a bit each */
	struct bcall *wnext;	/* waiting list */
};

/* ---- endpoint state --------------------------------------------------- */

static bool in_rotation(struct endpoint *e, uint64_t now)
{
	uint64_t until = atomic_load(&e->out_until);

	return !until || now >= until;
}

/*
 * Take @e out of rotation for eject_ms, doubled per failed health check
 * in a row (@checked: this failure is one), up to EJECT_MAX_FACTOR times.
 * Failed calls do not lengthen it: while an endpoint is down, every call
 * that tries it fails, and that says nothing new.
 */
static void eject(struct zc_rpc_balancer *b, struct endpoint *e, bool checked)
{
	unsigned f = checked ? atomic_fetch_add(&e->failures, 1) + 1 :
			       atomic_load(&e->failures);
	uint64_t ms = (uint64_t)b->cfg.eject_ms << (f < 3 ? f : 3);

	if (ms > (uint64_t)b->cfg.eject_ms * EJECT_MAX_FACTOR)
		ms = (uint64_t)b->cfg.eject_ms * EJECT_MAX_FACTOR;
	if (!atomic_exchange(&e->out_until, zc__now_ns() + ms * 1000000))
		zc__ctr_add(&b->ejections, 1);
}

static void dispatch(struct zc_rpc_balancer *b);

/* Back in rotation: calls waiting for ready may go to it now. */
static void restore(struct endpoint *e)
{
	atomic_store(&e->failures, 0);
	atomic_store(&e->out_until, 0);
	if (atomic_load(&e->b->nwait))
		dispatch(e->b);
}

/* In rotation with a connection that takes calls. */
static bool ready(struct endpoint *e, uint64_t now)
{
	return in_rotation(e, now) && zc__client_usable(e->cli);
}

static uint32_t ready_mask(struct zc_rpc_balancer *b)
{
	uint64_t now = zc__now_ns();
	uint32_t m = 0;

	for (unsigned i = 0; i < b->n; i++)
		if (ready(&b->ep[i], now))
			m |= 1u << i;
	return m;
}

/* ---- picking ---------------------------------------------------------- */

static uint64_t rand64(void)
{
	static _Thread_local uint64_t x;

	if (!x)
		x = zc__now_ns() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* Endpoints worth a send, as a bit mask: in rotation and not tried by this
 * call; else not tried; else all (a call may come back to one).  A call
 * that waits for ready goes to a ready endpoint when there is one. */
static uint32_t candidates(struct zc_rpc_balancer *b, uint32_t tried,
			   bool wfr)
{
	uint64_t now = zc__now_ns();
	uint32_t all = (uint32_t)((1ull << b->n) - 1), up = 0;
	uint32_t rdy = wfr ? ready_mask(b) : 0;

	if (rdy)
		return rdy & ~tried ? rdy & ~tried : rdy;
	for (unsigned i = 0; i < b->n; i++)
		if (in_rotation(&b->ep[i], now))
			up |= 1u << i;
	if (up & ~tried)
		return up & ~tried;
	if (all & ~tried)
		return all & ~tried;
	return up ? up : all;
}

static unsigned nth_bit(uint32_t mask, unsigned k)
{
	for (unsigned i = 0;; i++)
		if ((mask >> i) & 1 && !k--)
			return i;
}

static unsigned pick(struct zc_rpc_balancer *b, uint32_t tried, bool wfr)
{
	uint32_t c = candidates(b, tried, wfr);
	unsigned n = (unsigned)__builtin_popcount(c), x, y;

	if (n == 1)
		return nth_bit(c, 0);
	if (b->cfg.policy == ZC_RPC_BALANCE_ROUND_ROBIN)
		return nth_bit(c, atomic_fetch_add(&b->rr, 1) % n);
	x = nth_bit(c, (unsigned)(rand64() % n));
	do
		y = nth_bit(c, (unsigned)(rand64() % n));
	while (y == x);
	return atomic_load(&b->ep[y].inflight) <
		       atomic_load(&b->ep[x].inflight) ? y : x;
}

/* ---- calls ------------------------------------------------------------ */

static void bcall_free(struct bcall *bc)
{
	zc_chain_release(&bc->req);
	free(bc);
}

static bool idempotent(const struct zc_rpc_balancer *b, uint32_t method)
{
	for (unsigned i = 0; i < b->cfg.nidempotent; i++)
		if (b->idempotent[i] == method)
			return true;
	return false;
}

/*
 * What a failure says about the server and the call.  *@unreached: the
 * endpoint is not serving (take it out); *@unsent: the call never reached
 * a connection.  Returns whether the call may be sent elsewhere: the
 * server cannot have run it, or it may run twice.
 */
static bool may_retry(struct zc_rpc_balancer *b, struct bcall *bc,
		      int status, bool *unreached, bool *unsent)
{
	const struct zc_rpc_error *e = zc_rpc_call_error();
	const char *why = e ? e->reason : "";

	*unsent = !strcmp(why, "no connection");
	*unreached = *unsent ||
		     !strcmp(why, "connection lost") ||
		     !strcmp(why, "server going away") ||
		     !strcmp(why, "deadline exceeded while connecting");
	if (!strcmp(why, "connection lost"))
		return idempotent(b, bc->method);
	return status == ZC_RPC_OVERLOADED || status == ZC_RPC_UNAVAILABLE;
}

/* End @bc with a status the balancer decided (no endpoint answered it):
 * zc_rpc_call_error() in @done says @reason. */
static void finish(struct bcall *bc, int status, const char *reason)
{
	struct zc_rpc_error why = { .status = status, .reason = reason };
	struct zc_chain none = ZC_CHAIN_INIT;
	const struct zc_rpc_error *prev = zc__call_error_enter(&why);

	bc->done(bc->arg, status, &none);
	zc__call_error_leave(prev);
	bcall_free(bc);
}

static int send_once(struct bcall *bc);
static int park(struct bcall *bc);

/* Send @bc, or park it until an endpoint is ready: 0, or an error of
 * send_once() or park(). */
static int route(struct bcall *bc)
{
	if (bc->wait_for_ready) {
		int ret = park(bc);

		if (ret)
			return ret > 0 ? 0 : ret;
	}
	return send_once(bc);
}

static void on_done(void *arg, int status, struct zc_chain *resp)
{
	struct bcall *bc = arg;
	struct zc_rpc_balancer *b = bc->b;
	struct endpoint *e = &b->ep[bc->ep];
	bool unreached = false, unsent = false, retry;

	atomic_fetch_sub(&e->inflight, 1);
	if (status == ZC_RPC_OK) {
		zc__ctr_add(&e->ok, 1);
		if (atomic_load_explicit(&e->failures, memory_order_relaxed))
			restore(e);
	}
	retry = status != ZC_RPC_OK &&
		may_retry(b, bc, status, &unreached, &unsent);
	if (unreached)
		eject(b, e, false);
	/* A call that waits for ready and found no connection was not sent:
	 * it waits again without spending an attempt. */
	if (retry && unsent && bc->wait_for_ready)
		bc->attempts--;
	if (retry && !atomic_load(&b->closing) &&
	    bc->attempts < b->cfg.max_attempts &&
	    (!bc->deadline || zc__now_ns() < bc->deadline)) {
		zc__ctr_add(&b->retries, 1);
		if (!route(bc))
			return;
	}
	bc->done(bc->arg, status, resp);
	bcall_free(bc);
}

/* Send @bc to the next endpoint: 0, or zc_rpc_call()'s error. */
static int send_once(struct bcall *bc)
{
	struct zc_rpc_balancer *b = bc->b;
	struct zc_rpc_call_opts o = { .wait_for_ready = bc->wait_for_ready };
	struct zc_chain req = ZC_CHAIN_INIT;
	struct endpoint *e;
	int ret;

	if (bc->deadline) {
		uint64_t now = zc__now_ns();

		/* At least 1 us: 0 would mean "no deadline" on the wire. */
		o.timeout_us = now < bc->deadline ?
				       (bc->deadline - now + 999) / 1000 : 1;
	}
	ret = zc_chain_append_clone(&req, &bc->req);
	if (ret)
		return ret;
	bc->ep = pick(b, bc->tried, bc->wait_for_ready);
	bc->tried |= 1u << bc->ep;
	bc->attempts++;
	e = &b->ep[bc->ep];
	atomic_fetch_add(&e->inflight, 1);
	ret = zc_rpc_call(e->cli, bc->method, &req, &o, on_done, bc, NULL);
	if (ret) {
		atomic_fetch_sub(&e->inflight, 1);
		zc_chain_release(&req);
		return ret;
	}
	zc__ctr_add(&e->sent, 1);
	return 0;
}

int zc_rpc_balancer_call(struct zc_rpc_balancer *b, uint32_t method,
			 struct zc_chain *req,
			 const struct zc_rpc_call_opts *opts,
			 zc_rpc_done_fn done, void *arg)
{
	struct bcall *bc;
	int ret;

	if (!b || !req || !done || !method)
		return -EINVAL;
	if (atomic_load(&b->closing))
		return -ESHUTDOWN;
	bc = calloc(1, sizeof(*bc));
	if (!bc)
		return -ENOMEM;
	bc->b = b;
	bc->method = method;
	bc->done = done;
	bc->arg = arg;
	bc->wait_for_ready = b->cfg.wait_for_ready ||
			     (opts && opts->wait_for_ready);
	if (opts && opts->timeout_us)
		bc->deadline = zc__now_ns() + opts->timeout_us * 1000;
	bc->req = *req;
	ret = route(bc);
	if (ret) {
		free(bc);	/* the views go back to the caller */
		return ret;
	}
	zc_chain_init(req);
	zc__ctr_add(&b->calls, 1);
	return 0;
}

/* ---- waiting for ready ------------------------------------------------ */

/*
 * Any thread.  Park @bc until an endpoint is ready: 1 parked, 0 an
 * endpoint is ready (send it now), -EAGAIN (max_waiting calls wait
 * already), -ESHUTDOWN.  The check and the push are under wlock, and a
 * connection's readiness is published before its hook takes wlock: a
 * call is never parked after the dispatch that should have sent it.
 */
static int park(struct bcall *bc)
{
	struct zc_rpc_balancer *b = bc->b;
	int ret = 1;

	pthread_mutex_lock(&b->wlock);
	if (b->wclosed) {
		ret = -ESHUTDOWN;
	} else if (ready_mask(b)) {
		ret = 0;
	} else if (atomic_load(&b->nwait) >= b->cfg.max_waiting) {
		ret = -EAGAIN;
	} else {
		bc->wnext = NULL;
		if (b->wtail)
			b->wtail->wnext = bc;
		else
			b->whead = bc;
		b->wtail = bc;
		atomic_fetch_add(&b->nwait, 1);
	}
	pthread_mutex_unlock(&b->wlock);
	if (ret == 1) {
		zc__ctr_add(&b->waited, 1);
		/* The health thread ticks faster while calls wait. */
		pthread_mutex_lock(&b->lock);
		pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
	}
	return ret;
}

/* Under wlock: unlink @bc, whose predecessor is @prev. */
static void unpark(struct zc_rpc_balancer *b, struct bcall *prev,
		   struct bcall *bc)
{
	if (prev)
		prev->wnext = bc->wnext;
	else
		b->whead = bc->wnext;
	if (b->wtail == bc)
		b->wtail = prev;
	atomic_fetch_sub(&b->nwait, 1);
}

/* Reactor thread: send waiting calls, oldest first, while an endpoint is
 * ready. */
static void dispatch(struct zc_rpc_balancer *b)
{
	for (;;) {
		struct bcall *bc = NULL;
		int ret;

		pthread_mutex_lock(&b->wlock);
		if (!b->wclosed && b->whead && ready_mask(b)) {
			bc = b->whead;
			unpark(b, NULL, bc);
		}
		pthread_mutex_unlock(&b->wlock);
		if (!bc)
			return;
		ret = send_once(bc);
		if (ret)
			finish(bc, ret == -EAGAIN ? ZC_RPC_OVERLOADED :
						    ZC_RPC_UNAVAILABLE,
			       ret == -EAGAIN ? "client send budget full" :
						"client closing");
	}
}

/* Reactor thread: end the waiting calls whose deadline passed (all of
 * them with @all, UNAVAILABLE: the balancer is closing). */
static void expire(struct zc_rpc_balancer *b, bool all)
{
	struct bcall *gone = NULL, *prev = NULL, *bc, *next;
	uint64_t now = zc__now_ns();

	pthread_mutex_lock(&b->wlock);
	if (all)
		b->wclosed = true;
	for (bc = b->whead; bc; bc = next) {
		next = bc->wnext;
		if (!all && (!bc->deadline || now < bc->deadline)) {
			prev = bc;
			continue;
		}
		unpark(b, prev, bc);
		bc->wnext = gone;
		gone = bc;
	}
	pthread_mutex_unlock(&b->wlock);
	for (bc = gone; bc; bc = next) {
		next = bc->wnext;
		if (all)
			finish(bc, ZC_RPC_UNAVAILABLE, "client closing");
		else
			finish(bc, ZC_RPC_DEADLINE_EXCEEDED,
			       "deadline exceeded while connecting");
	}
}

static void wwork_fn(struct zc_work *w)
{
	struct zc_rpc_balancer *b = (struct zc_rpc_balancer *)((char *)w -
				    offsetof(struct zc_rpc_balancer, wwork));

	expire(b, false);
	dispatch(b);
	/* Last: destroy waits for this before it frees @b. */
	atomic_store(&b->wwork_queued, false);
}

static int close_waiting(void *arg)
{
	expire(arg, true);
	return 0;
}

/* ---- health checks ------------------------------------------------------ */

static void on_ping(void *arg, int result, uint64_t rtt_ns)
{
	struct endpoint *e = arg;

	zc__ctr_add(&e->checks, 1);
	if (!result) {
		atomic_store(&e->rtt_ns, rtt_ns);
		atomic_store(&e->probing, false);
		restore(e);
		return;
	}
	zc__ctr_add(&e->checks_failed, 1);
	eject(e->b, e, true);
	atomic_store(&e->probing, false);
}

/* A PING with a timeout: it waits for a connection (an endpoint
 * reconnecting passes as soon as one is up, within the timeout), and
 * passes only if the server's reactor reads it and answers. */
static void probe(struct zc_rpc_balancer *b, struct endpoint *e)
{
	if (atomic_exchange(&e->probing, true))
		return;
	if (zc_rpc_ping(e->cli, b->cfg.health_timeout_ms, on_ping, e))
		atomic_store(&e->probing, false);
}

/* Reactor thread: a connection of @arg's client completed its HELLO.  An
 * endpoint out of rotation is checked at once (it comes back on the
 * PONG); one in rotation takes the calls waiting for ready. */
static void on_ready(void *arg)
{
	struct endpoint *e = arg;

	if (!in_rotation(e, zc__now_ns()))
		probe(e->b, e);
	else if (atomic_load(&e->b->nwait))
		dispatch(e->b);
}

/* Checks each endpoint in rotation every health_interval_ms, and one out
 * of rotation once its time out is over. */
static void *health_main(void *arg)
{
	struct zc_rpc_balancer *b = arg;
	const uint64_t interval = (uint64_t)b->cfg.health_interval_ms * 1000000;

	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		uint64_t now = zc__now_ns();
		struct timespec ts;

		for (unsigned i = 0; i < b->n; i++) {
			struct endpoint *e = &b->ep[i];
			uint64_t out = atomic_load(&e->out_until);

			if (out ? now < out : now < e->next_check)
				continue;
			e->next_check = now + interval;
			probe(b, e);
		}
		if (atomic_load(&b->nwait) &&
		    !atomic_exchange(&b->wwork_queued, true))
			zc_reactor_queue(b->cfg.reactor, &b->wwork);
		/* A tick short enough for the shortest time out, and for the
		 * deadlines of waiting calls. */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (atomic_load(&b->nwait) ? 5 : 50) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* ---- lifetime --------------------------------------------------------- */

static void destroy_clients(struct zc_rpc_balancer *b)
{
	atomic_store(&b->closing, true);
	for (unsigned i = 0; i < b->n; i++)
		zc_rpc_client_destroy(b->ep[i].cli);
}

/* The clients, then the balancer itself: the end of create's error path
 * and of destroy. */
static void balancer_free(struct zc_rpc_balancer *b)
{
	destroy_clients(b);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->wlock);
	free(b->idempotent);
	free(b);
}

int zc_rpc_balancer_create(const struct zc_rpc_balancer_config *cfg,
			   struct zc_rpc_balancer **out)
{
	struct zc_rpc_client_config cc = { 0 };
	struct zc_rpc_balancer *b;
	int ret;

	if (!cfg || !out || !cfg->reactor || !cfg->targets ||
	    !cfg->ntargets || cfg->ntargets > ZC_RPC_BALANCER_MAX ||
	    (unsigned)cfg->policy > ZC_RPC_BALANCE_LEAST_OUTSTANDING ||
	    (cfg->nidempotent && !cfg->idempotent))
		return -EINVAL;
	if (zc_reactor_current())
		return -EDEADLK;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cfg = *cfg;
	b->cfg.targets = NULL;
#define DEF(f, v) if (!b->cfg.f) b->cfg.f = (v)
	DEF(health_interval_ms, 1000);
	DEF(health_timeout_ms, 500);
	DEF(eject_ms, 500);
	DEF(max_attempts, 3);
	DEF(max_waiting, 1024);
#undef DEF
	if (cfg->client && cfg->client->wait_for_ready)
		b->cfg.wait_for_ready = true;
	if (cfg->nidempotent) {
		b->idempotent = malloc(cfg->nidempotent * sizeof(uint32_t));
		if (!b->idempotent) {
			free(b);
			return -ENOMEM;
		}
		memcpy(b->idempotent, cfg->idempotent,
		       cfg->nidempotent * sizeof(uint32_t));
	}
	b->cfg.idempotent = b->idempotent;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	pthread_mutex_init(&b->wlock, NULL);
	b->wwork.fn = wwork_fn;
	if (cfg->client)
		cc = *cfg->client;
	/* The balancer waits for ready, not one endpoint's client. */
	cc.wait_for_ready = false;
	cc.reactor = cfg->reactor;
	cc.addr = NULL;
	cc.addrlen = 0;
	cc.addrs = NULL;
	cc.naddrs = 0;
	for (; b->n < cfg->ntargets; b->n++) {
		struct endpoint *e = &b->ep[b->n];

		e->b = b;
		cc.target = cfg->targets[b->n];
		ret = zc__client_create(&cc, on_ready, e, &e->cli);
		if (ret) {
			zc__log("balancer: endpoint %s: %s", cc.target,
				strerror(-ret));
			goto err_clients;
		}
	}
	ret = -pthread_create(&b->health, NULL, health_main, b);
	if (ret)
		goto err_clients;
	*out = b;
	return 0;

err_clients:
	balancer_free(b);
	return ret;
}

int zc_rpc_balancer_destroy(struct zc_rpc_balancer *b)
{
	if (!b)
		return -EINVAL;
	if (zc_reactor_current() == b->cfg.reactor)
		return -EDEADLK;
	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->health, NULL);
	atomic_store(&b->closing, true);
	/* Waiting calls end UNAVAILABLE ("client closing") on the reactor;
	 * then no work of ours may still be queued there. */
	(void)zc_reactor_call(b->cfg.reactor, close_waiting, b);
	while (atomic_load(&b->wwork_queued))
		usleep(100);
	/* Pending calls complete UNAVAILABLE ("client closing"), delivered
	 * as they are: closing stops retries. */
	balancer_free(b);
	return 0;
}

void zc_rpc_balancer_stats(const struct zc_rpc_balancer *b,
			   struct zc_rpc_balancer_stats *out)
{
	uint64_t now = zc__now_ns();

	memset(out, 0, sizeof(*out));
	out->calls = zc__ctr_get(&b->calls);
	out->retries = zc__ctr_get(&b->retries);
	out->ejections = zc__ctr_get(&b->ejections);
	out->waited = zc__ctr_get(&b->waited);
	out->waiting = atomic_load(&b->nwait);
	out->nendpoints = b->n;
	for (unsigned i = 0; i < b->n; i++) {
		struct endpoint *e = (struct endpoint *)&b->ep[i];

		out->endpoint[i].in_rotation = in_rotation(e, now);
		out->endpoint[i].sent = zc__ctr_get(&e->sent);
		out->endpoint[i].ok = zc__ctr_get(&e->ok);
		out->endpoint[i].inflight = atomic_load(&e->inflight);
		out->endpoint[i].ready = ready(e, now);
		out->endpoint[i].checks = zc__ctr_get(&e->checks);
		out->endpoint[i].checks_failed = zc__ctr_get(&e->checks_failed);
		out->endpoint[i].rtt_ns = atomic_load(&e->rtt_ns);
	}
}
