/* SPDX-License-Identifier: MIT */
/*
 * zmq_echo - the RPC_RR workload of zcperf on ZeroMQ (libzmq), the peer
 * bench/compare measures against.
 *
 *   zmq_echo -s -p 7002                          server (ROUTER)
 *   zmq_echo -p 7002 -r 64,64 -P 16 -d 16 -l 5   client (DEALER per connection)
 *
 * Each client connection is its own DEALER socket, hence its own TCP
 * connection, and keeps -d requests in flight (pipelined, no REQ/REP
 * lockstep).  The server is one ROUTER socket answering in arrival order, so
 * the replies on a connection come back in the order of its requests: the
 * client keeps a ring of send times per connection instead of tagging
 * payloads.  Both sides run -T I/O threads in their context; the client also
 * splits its connections over -T application threads.
 *
 * --rate R (open loop, peer_common.h): each application thread sends R/T
 * calls per second (--arrival const or poisson) on its connections with room
 * (fewer than -d outstanding), latency from the intended time; calls with
 * no room wait and count late.  zmq_poll() sleeps in milliseconds, so a
 * wait shorter than one is a clock_nanosleep() followed by a poll that
 * does not block: replies that arrive meanwhile are timed when it ends,
 * at most one interval late.  At the end of the window the thread waits
 * (up to OL_DRAIN_NS) for the calls still in flight.
 *
 * --idle N: before the active connections, the main thread opens N more
 * DEALER sockets (in batches of PEER_IDLE_BATCH), each sends one request
 * and takes its reply (so the ZMTP handshake is done and the server holds
 * the peer), then leaves them idle until the run has ended.  The context
 * allows every socket (ZMQ_MAX_SOCKETS, 1,023 by default); each socket
 * holds a TCP descriptor and a mailbox eventfd.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "peer_common.h"

#define PEER_PORT	 7002

struct conn {
	void *sock;
	uint64_t *sent;		/* ring of send times, depth entries */
	uint64_t *issued;	/* --rate: when each really went out */
	unsigned head, tail;
	unsigned n;		/* --rate: outstanding */
};

#define OL_DRAIN_NS 5000000000ull

struct client_thread {
	pthread_t tid;
	const struct peer_opts *o;
	void *ctx;
	const char *endpoint;
	const char *payload;
	unsigned nconns;
	uint64_t end_ns;
	struct peer_hist hist;
	struct bench_ol_counts ol;	/* --rate */
	uint64_t start_ns;
	unsigned index;		/* --rate: picks this thread's seed */
	int err;		/* 0 or -errno, with a message printed */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static int set_hwm(void *sock, int hwm)
{
	if (zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)))
		return -zmq_errno();
	return 0;
}

/*
 * Our depth already bounds what a connection queues, so the high-water
 * mark must never bite; it is generous because a pipe's reader reports
 * progress to its writer only in batches, so the writer's count lags.
 */
static int client_hwm(unsigned depth)
{
	return 4 * (int)depth + 1000;
}

/* ---- server ------------------------------------------------------------ */

static int serve(const struct peer_opts *o)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char endpoint[300];
	void *ctx, *router;
	char *fixed = NULL;
	zmq_msg_t id, body;
	int linger = 0, backlog = 4096, ret = 0;

	/* No SA_RESTART: a signal makes zmq_msg_recv() return EINTR. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (o->resp) {
		fixed = calloc(1, o->resp);
		if (!fixed)
			return -ENOMEM;
	}
	ctx = zmq_ctx_new();
	if (!ctx || zmq_ctx_set(ctx, ZMQ_IO_THREADS, (int)o->threads)) {
		fprintf(stderr, "zmq_echo: context: %s\n", zmq_strerror(zmq_errno()));
		free(fixed);
		return -ENOMEM;
	}
	router = zmq_socket(ctx, ZMQ_ROUTER);
	snprintf(endpoint, sizeof(endpoint), "tcp://%s:%u",
		 o->host ? o->host : "*", o->port);
	/* Clients bound their own depth at PEER_MAX_DEPTH; stay above it.
	 * The backlog (100 by default) as the kernel's somaxconn here, so
	 * a burst of connects is not dropped and retried. */
	if (!router || set_hwm(router, client_hwm(PEER_MAX_DEPTH)) ||
	    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(router, ZMQ_BACKLOG, &backlog, sizeof(backlog)) ||
	    zmq_bind(router, endpoint)) {
		fprintf(stderr, "zmq_echo: bind %s: %s\n", endpoint,
			zmq_strerror(zmq_errno()));
		ret = -zmq_errno();
		goto out;
	}
	fprintf(stderr, "zmq_echo: serving on %s (%s)\n", endpoint,
		o->resp ? "fixed response" : "echo");

	zmq_msg_init(&id);
	zmq_msg_init(&body);
	while (!stop_requested) {
		if (zmq_msg_recv(&id, router, 0) < 0 ||
		    zmq_msg_recv(&body, router, 0) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			ret = -zmq_errno();
			fprintf(stderr, "zmq_echo: recv: %s\n", zmq_strerror(-ret));
			break;
		}
		/* A vanished client makes these fail; ROUTER drops silently. */
		zmq_msg_send(&id, router, ZMQ_SNDMORE);
		if (fixed)
			zmq_send(router, fixed, o->resp, 0);
		else
			zmq_msg_send(&body, router, 0);
	}
	zmq_msg_close(&id);
	zmq_msg_close(&body);
out:
	if (router)
		zmq_close(router);
	zmq_ctx_term(ctx);
	free(fixed);
	return ret;
}

/* ---- client ------------------------------------------------------------ */

static int conn_send(struct client_thread *t, struct conn *c)
{
	c->sent[c->tail] = peer_now_ns();
	c->tail = (c->tail + 1) % t->o->depth;
	if (zmq_send(c->sock, t->payload, t->o->req, ZMQ_DONTWAIT) < 0)
		return -zmq_errno();
	return 0;
}

/* Takes every reply waiting on @c; sends the next call while in window. */
static int conn_receive(struct client_thread *t, struct conn *c,
			unsigned *inflight, zmq_msg_t *msg)
{
	uint64_t now;
	int n, ret;

	for (;;) {
		n = zmq_msg_recv(msg, c->sock, ZMQ_DONTWAIT);
		if (n < 0)
			return zmq_errno() == EAGAIN ? 0 : -zmq_errno();
		now = peer_now_ns();
		if ((size_t)n != t->o->resp) {
			fprintf(stderr, "zmq_echo: response of %d bytes, expected %zu "
				"(server started with other -r?)\n", n, t->o->resp);
			return -EPROTO;
		}
		(*inflight)--;
		if (now >= t->end_ns)
			continue;
		peer_hist_add(&t->hist, now - c->sent[c->head]);
		c->head = (c->head + 1) % t->o->depth;
		ret = conn_send(t, c);
		if (ret)
			return ret;
		(*inflight)++;
	}
}

static int client_loop(struct client_thread *t, struct conn *conns,
		       zmq_pollitem_t *items)
{
	unsigned inflight = 0;
	zmq_msg_t msg;
	uint64_t now;
	long timeout_ms;
	int ret = 0;

	for (unsigned i = 0; i < t->nconns; i++) {
		for (unsigned k = 0; k < t->o->depth; k++) {
			ret = conn_send(t, &conns[i]);
			if (ret)
				return ret;
			inflight++;
		}
	}
	zmq_msg_init(&msg);
	/*
	 * Stop at the end of the window: replies still in flight are not
	 * counted and are dropped with the sockets (linger 0).
	 */
	while ((now = peer_now_ns()) < t->end_ns) {
		timeout_ms = (long)((t->end_ns - now) / 1000000u) + 1;
		if (zmq_poll(items, (int)t->nconns, timeout_ms) < 0) {
			ret = -zmq_errno();
			break;
		}
		for (unsigned i = 0; i < t->nconns && !ret; i++)
			if (items[i].revents & ZMQ_POLLIN)
				ret = conn_receive(t, &conns[i], &inflight, &msg);
		if (ret)
			break;
	}
	zmq_msg_close(&msg);
	return ret;
}

/* ---- client, open loop (--rate) ----------------------------------------- */

static int ol_receive(struct client_thread *t, struct conn *c, zmq_msg_t *msg)
{
	for (;;) {
		int n = zmq_msg_recv(msg, c->sock, ZMQ_DONTWAIT);

		if (n < 0)
			return zmq_errno() == EAGAIN ? 0 : -zmq_errno();
		if ((size_t)n != t->o->resp || !c->n)
			return -EPROTO;
		peer_ol_answered(&t->ol, &t->hist, c->sent[c->head],
				 c->issued[c->head], peer_now_ns());
		c->head = (c->head + 1) % t->o->depth;
		c->n--;
	}
}

static int client_loop_open(struct client_thread *t, struct conn *conns,
			    zmq_pollitem_t *items, struct peer_sched *sched)
{
	uint64_t now, deadline = t->end_ns + OL_DRAIN_NS;
	unsigned rr = 0;
	zmq_msg_t msg;
	int ret = 0;

	zmq_msg_init(&msg);
	while ((now = peer_now_ns()) < deadline) {
		struct conn *room = NULL;
		long timeout_ms;

		/* Everything due goes out while a connection has room. */
		while (peer_sched_due(sched, now)) {
			room = NULL;
			for (unsigned k = 0; k < t->nconns && !room; k++) {
				struct conn *c = &conns[(rr + k) % t->nconns];

				if (c->n < t->o->depth) {
					room = c;
					rr = (rr + k + 1) % t->nconns;
				}
			}
			if (!room)
				break;
			room->sent[room->tail] = peer_sched_take(sched, &t->ol);
			room->issued[room->tail] = now;
			room->tail = (room->tail + 1) % t->o->depth;
			room->n++;
			if (zmq_send(room->sock, t->payload, t->o->req, ZMQ_DONTWAIT) < 0) {
				ret = -zmq_errno();
				break;
			}
		}
		if (ret)
			break;
		if (!peer_sched_open(sched)) {
			unsigned left = 0;

			for (unsigned i = 0; i < t->nconns; i++)
				left += conns[i].n;
			if (!left)
				break;
		}
		/* Wait for replies, or for the next intended time. */
		if (peer_sched_open(sched) && (double)now < sched->next) {
			uint64_t wait = (uint64_t)(sched->next - (double)now);

			if (wait < 1000000u) {
				peer_sleep_until_ns((uint64_t)sched->next);
				timeout_ms = 0;
			} else {
				timeout_ms = (long)(wait / 1000000u);
			}
		} else {
			timeout_ms = 1;
		}
		if (zmq_poll(items, (int)t->nconns, timeout_ms) < 0) {
			ret = -zmq_errno();
			break;
		}
		for (unsigned i = 0; i < t->nconns && !ret; i++)
			if (items[i].revents & ZMQ_POLLIN)
				ret = ol_receive(t, &conns[i], &msg);
		if (ret)
			break;
	}
	zmq_msg_close(&msg);
	/* Intended times never sent, and calls never answered. */
	peer_sched_finish(sched, &t->ol);
	for (unsigned i = 0; i < t->nconns; i++)
		t->ol.failed += conns[i].n;
	return ret;
}

static void *client_thread_main(void *arg)
{
	struct client_thread *t = arg;
	struct conn *conns = calloc(t->nconns, sizeof(*conns));
	zmq_pollitem_t *items = calloc(t->nconns, sizeof(*items));
	int linger = 0;

	if (!conns || !items) {
		t->err = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < t->nconns; i++) {
		struct conn *c = &conns[i];

		c->sent = calloc(t->o->depth, sizeof(*c->sent));
		c->issued = calloc(t->o->depth, sizeof(*c->issued));
		c->sock = zmq_socket(t->ctx, ZMQ_DEALER);
		if (!c->sent || !c->issued || !c->sock ||
		    set_hwm(c->sock, client_hwm(t->o->depth)) ||
		    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
		    zmq_connect(c->sock, t->endpoint)) {
			t->err = c->sock ? -zmq_errno() : -ENOMEM;
			fprintf(stderr, "zmq_echo: connect %s: %s\n", t->endpoint,
				zmq_strerror(-t->err));
			goto out;
		}
		items[i] = (zmq_pollitem_t){ .socket = c->sock, .events = ZMQ_POLLIN };
	}
	if (t->o->rate > 0) {
		struct peer_sched sched;

		peer_sched_init(&sched, t->o, t->index, t->start_ns, t->end_ns);
		t->err = client_loop_open(t, conns, items, &sched);
	} else {
		t->err = client_loop(t, conns, items);
	}
	if (t->err && t->err != -EPROTO)
		fprintf(stderr, "zmq_echo: send/recv: %s\n", zmq_strerror(-t->err));
out:
	for (unsigned i = 0; conns && i < t->nconns; i++) {
		if (conns[i].sock)
			zmq_close(conns[i].sock);
		free(conns[i].sent);
		free(conns[i].issued);
	}
	free(conns);
	free(items);
	return NULL;
}

/* ---- client, idle connections (--idle) --------------------------------- */

/*
 * Sockets [@first, @n) of @socks each send one request; waits until each
 * has its reply, or until @deadline.  Returns 0 or -errno.
 */
static int idle_prove(const struct peer_opts *o, void **socks, unsigned first,
		      unsigned n, const char *payload, uint64_t deadline)
{
	zmq_pollitem_t items[PEER_IDLE_BATCH];
	unsigned left = n - first;
	zmq_msg_t msg;
	int ret = 0;

	for (unsigned i = first; i < n; i++) {
		items[i - first] = (zmq_pollitem_t){ .socket = socks[i],
						     .events = ZMQ_POLLIN };
		if (zmq_send(socks[i], payload, o->req, ZMQ_DONTWAIT) < 0)
			return -zmq_errno();
	}
	zmq_msg_init(&msg);
	while (left && !ret) {
		if (peer_now_ns() >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		if (zmq_poll(items, (int)(n - first), 100) < 0) {
			ret = -zmq_errno();
			break;
		}
		for (unsigned i = 0; i < n - first; i++) {
			if (!(items[i].revents & ZMQ_POLLIN))
				continue;
			if (zmq_msg_recv(&msg, items[i].socket, ZMQ_DONTWAIT) < 0) {
				ret = -zmq_errno();
				break;
			}
			items[i].events = 0;	/* answered: poll it no more */
			left--;
		}
	}
	zmq_msg_close(&msg);
	return ret;
}

/* Opens o->idle DEALER sockets into @socks, each through one call. */
static int idle_open(const struct peer_opts *o, void *ctx, const char *endpoint,
		     const char *payload, void **socks)
{
	uint64_t deadline = peer_now_ns() + PEER_IDLE_DEADLINE_NS;
	int linger = 0, ret;

	for (unsigned first = 0; first < o->idle; first += PEER_IDLE_BATCH) {
		unsigned n = first + PEER_IDLE_BATCH < o->idle ?
			first + PEER_IDLE_BATCH : o->idle;

		for (unsigned i = first; i < n; i++) {
			socks[i] = zmq_socket(ctx, ZMQ_DEALER);
			if (!socks[i] ||
			    zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof(linger)) ||
			    zmq_connect(socks[i], endpoint)) {
				ret = -zmq_errno();
				fprintf(stderr, "zmq_echo: idle connection %u: %s\n",
					i, zmq_strerror(-ret));
				return ret;
			}
		}
		ret = idle_prove(o, socks, first, n, payload, deadline);
		if (ret) {
			fprintf(stderr, "zmq_echo: idle connections %u-%u: %s\n",
				first, n - 1, zmq_strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int run_client(const struct peer_opts *o)
{
	struct client_thread *threads;
	struct peer_hist *total;
	struct bench_ol_counts ol = { 0 };
	struct peer_rss rss;
	void **idle = NULL;
	char endpoint[300];
	char *payload;
	uint64_t start, end;
	unsigned started;
	void *ctx;
	int ret = 0;

	peer_rss_init(&rss, o);
	snprintf(endpoint, sizeof(endpoint), "tcp://%s:%u", o->host, o->port);
	threads = calloc(o->threads, sizeof(*threads));
	total = calloc(1, sizeof(*total));
	payload = calloc(1, o->req);
	idle = calloc(o->idle + 1u, sizeof(*idle));
	ctx = zmq_ctx_new();
	if (!threads || !total || !payload || !idle || !ctx ||
	    zmq_ctx_set(ctx, ZMQ_IO_THREADS, (int)o->threads) ||
	    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)(o->conns + o->idle + 16u))) {
		ret = -ENOMEM;
		goto out;
	}
	memset(payload, 'z', o->req);
	rss.before_kb = peer_rss_sample(&rss);
	ret = idle_open(o, ctx, endpoint, payload, idle);
	if (ret)
		goto out;
	rss.idle_kb = peer_rss_sample(&rss);
	start = peer_now_ns();
	end = start + (uint64_t)(o->seconds * 1e9);
	for (started = 0; started < o->threads; started++) {
		struct client_thread *t = &threads[started];
		unsigned first = started * o->conns / o->threads;

		*t = (struct client_thread){
			.o = o, .ctx = ctx, .endpoint = endpoint,
			.payload = payload, .end_ns = end, .start_ns = start,
			.index = started,
			.nconns = (started + 1) * o->conns / o->threads - first,
		};
		if (pthread_create(&t->tid, NULL, client_thread_main, t)) {
			fprintf(stderr, "zmq_echo: cannot start thread %u\n", started);
			ret = -EAGAIN;
			break;
		}
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(threads[i].tid, NULL);
		if (threads[i].err && !ret)
			ret = threads[i].err;
		peer_hist_merge(total, &threads[i].hist);
		bench_ol_counts_add(&ol, &threads[i].ol);
	}
	rss.end_kb = peer_rss_sample(&rss);
	if (!ret && !total->count) {
		fprintf(stderr, "zmq_echo: no reply from %s in %.1f s\n",
			endpoint, o->seconds);
		ret = -ETIMEDOUT;
	}
	if (!ret)
		peer_print_result_ol("zmq", o, (end - start) / 1e9, total,
				     o->rate > 0 ? &ol : NULL,
				     o->idle || o->server_pid ? &rss : NULL);
out:
	for (unsigned i = 0; idle && i < o->idle && idle[i]; i++)
		zmq_close(idle[i]);
	free(idle);
	peer_rss_close(&rss);
	if (ctx)
		zmq_ctx_term(ctx);
	free(payload);
	free(total);
	free(threads);
	return ret;
}

int main(int argc, char **argv)
{
	return peer_main(argc, argv, "zmq_echo", PEER_PORT, false, serve, run_client);
}
