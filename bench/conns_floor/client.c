/* SPDX-License-Identifier: MIT */
/*
 * bench/conns_floor/client.c - the client thread of a run: opens every
 * connection, keeps one request in flight on each active one (io_uring or
 * epoll), moves the run's phases on its clock, drains, and closes.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../floor_util.h"
#include "../pin_thread.h"
#include "conns_floor.h"

/* The client stamps each request with its number and checks the echo, so
 * a call counts only when the right bytes came back. */
static void stamp(struct run_ctl *c, struct conn *k, char *buf)
{
	size_t n = c->size < sizeof(k->seq) ? c->size : sizeof(k->seq);

	k->seq++;
	memcpy(buf, &k->seq, n);
	c->cs.sent++;
}

static int check_echo(const struct run_ctl *c, const struct conn *k,
		      const char *buf)
{
	size_t n = c->size < sizeof(k->seq) ? c->size : sizeof(k->seq);

	return memcmp(buf, &k->seq, n) ? -EPROTO : 0;
}

/* The client's clock: warm-up, window, then the drain.  Returns true once
 * no new request may go. */
static bool client_clock(struct run_ctl *c, struct marks *m, double start)
{
	double t = floor_now_s();

	if (m->seen == PHASE_WARM && t >= start + WARMUP_S) {
		cf_mark_start(m, c->cs.total);
		m->seen = PHASE_TIMED;
		atomic_store_explicit(&c->phase, PHASE_TIMED,
				      memory_order_relaxed);
	} else if (m->seen == PHASE_TIMED && t >= m->t0 + c->secs) {
		cf_mark_end(m, c->cs.total, &c->cs);
		m->seen = PHASE_DONE;
		atomic_store_explicit(&c->phase, PHASE_DONE,
				      memory_order_relaxed);
	}
	return m->seen == PHASE_DONE;
}

/* The active connections are the last @active opened. */
static unsigned first_active(const struct run_ctl *c)
{
	return c->open - c->active;
}

/* One answer of @k (whole in @buf) arrived: count it, and send the next
 * request unless @stop.  Returns 1 when the next went, 0 when not, or
 * -EPROTO. */
static int client_answer(struct run_ctl *c, struct conn *k, char *buf,
			 bool stop)
{
	if (check_echo(c, k, buf))
		return -EPROTO;
	c->cs.total++;
	k->got = 0;
	if (stop)
		return 0;
	stamp(c, k, buf);
	return 1;
}

static int client_uring(struct run_ctl *c)
{
	unsigned i, in_flight = 0, a0 = first_active(c);
	struct marks m = {0};
	struct io_uring ring;
	double start, stop_at = 0;
	bool stop = false;
	int ret = cf_ring_init(&ring, 2 * c->active);

	if (ret)
		return ret;
	for (i = a0; !ret && i < c->open; i++, in_flight++) {
		stamp(c, &c->conn[i], c->cbuf + i * c->size);
		ret = cf_queue_send_recv(&ring, &c->conn[i], i,
				      c->cbuf + i * c->size, c->size);
	}
	start = floor_now_s();
	while (!ret && in_flight) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = cf_ring_wait(&ring);
		if (!stop && client_clock(c, &m, start)) {
			stop = true;
			stop_at = floor_now_s();
		}
		if (!ret && stop && floor_now_s() > stop_at + DRAIN_S)
			ret = -ETIMEDOUT;
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned idx = ud_idx(cqe->user_data);
			struct conn *k = &c->conn[idx];
			char *buf = c->cbuf + idx * c->size;

			n++;
			if (ret)
				break;
			if (ud_send(cqe->user_data) || cqe->res <= 0) {
				ret = cqe->res < 0 ? cqe->res : -EPIPE;
				break;
			}
			k->got += (unsigned)cqe->res;
			if (k->got < c->size) {
				ret = cf_queue_recv(&ring, k, idx, buf, c->size);
				continue;
			}
			ret = client_answer(c, k, buf, stop);
			if (ret == 1)
				ret = cf_queue_send_recv(&ring, k, idx, buf,
						      c->size);
			else if (!ret)
				in_flight--;
		}
		io_uring_cq_advance(&ring, n);
	}
	io_uring_queue_exit(&ring);
	return ret;
}

static int client_epoll(struct run_ctl *c)
{
	unsigned i, in_flight = 0, a0 = first_active(c);
	struct epoll_event *ev = calloc(c->active, sizeof(*ev));
	struct marks m = {0};
	double start, stop_at = 0;
	bool stop = false;
	int ep = epoll_create1(EPOLL_CLOEXEC), ret = 0;

	if (!ev || ep < 0) {
		ret = ev ? -errno : -ENOMEM;
		goto out;
	}
	for (i = a0; !ret && i < c->open; i++, in_flight++) {
		ret = cf_epoll_add(ep, c->conn[i].fd, i);
		stamp(c, &c->conn[i], c->cbuf + i * c->size);
		if (!ret)
			ret = floor_send_all(c->conn[i].fd, c->cbuf + i * c->size,
				       c->size);
	}
	start = floor_now_s();
	while (!ret && in_flight) {
		int n = epoll_wait(ep, ev, (int)c->active, WAIT_MS), e;

		if (n < 0 && errno != EINTR)
			ret = -errno;
		if (!stop && client_clock(c, &m, start)) {
			stop = true;
			stop_at = floor_now_s();
		}
		if (!ret && stop && floor_now_s() > stop_at + DRAIN_S)
			ret = -ETIMEDOUT;
		for (e = 0; !ret && e < n; e++) {
			unsigned idx = ev[e].data.u32;
			struct conn *k = &c->conn[idx];
			char *buf = c->cbuf + idx * c->size;

			ret = cf_recv_some(k, buf, c->size);
			if (ret <= 0)
				continue;
			ret = client_answer(c, k, buf, stop);
			if (ret == 1)
				ret = floor_send_all(k->fd, buf, c->size);
			else if (!ret)
				in_flight--;
		}
	}
out:
	if (ep >= 0)
		close(ep);
	free(ev);
	return ret;
}

/* Wait until @flag is set (true) or the echo thread failed (false). */
static bool client_await(struct run_ctl *c, atomic_bool *flag)
{
	double end = floor_now_s() + SETUP_S;

	while (!atomic_load(flag)) {
		if (atomic_load(&c->server_failed) || floor_now_s() > end)
			return false;
		cf_nap_ms(1);
	}
	return true;
}

static int client_connect(struct run_ctl *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	double end = floor_now_s() + SETUP_S;
	int one = 1, port;
	unsigned i;

	while (!(port = atomic_load(&c->port))) {
		if (atomic_load(&c->server_failed) || floor_now_s() > end)
			return -ETIMEDOUT;
		cf_nap_ms(1);
	}
	a.sin_port = htons((uint16_t)port);
	for (i = 0; i < c->open; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		c->conn[i].fd = fd;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return -errno;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return client_await(c, &c->accepted) ? 0 : -ETIMEDOUT;
}

/* Close with a reset: no TIME_WAIT left behind to hold ephemeral ports
 * across runs of 10,000 connections each. */
static void close_reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

void *cf_client_main(void *arg)
{
	struct run_ctl *c = arg;
	unsigned i;

	bench_pin_thread(c->client_cpu);
	/* Named for perf report --comm. */
	pthread_setname_np(pthread_self(), "floor-client");
	/* Before any socket: main.c says why. */
	if (c->own_tables && unshare(CLONE_FILES))
		c->cs.err = -errno;
	if (!c->cs.err)
		c->cs.err = client_connect(c);
	if (!c->cs.err)
		c->cs.err = c->mode == WAIT_URING ? client_uring(c)
						  : client_epoll(c);
	c->cs.retrans = cf_retrans_sum(c->conn, c->open);
	for (i = 0; i < c->open; i++) {
		if (c->conn[i].fd >= 0)
			close_reset(c->conn[i].fd);
	}
	/* The resets end the echo thread's loop; the flag bounds its wait. */
	atomic_store(&c->client_gone, true);
	return NULL;
}
