/* SPDX-License-Identifier: MIT */
/*
 * bench/conns_floor/echo.c - the echo thread of a run: accepts every
 * connection, watches them all (it cannot tell the idle ones), echoes each
 * whole message, and follows the client's phases.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../floor_util.h"
#include "../pin_thread.h"
#include "conns_floor.h"

/* The echo thread follows the client's phase. */
static void follow_phase(struct run_ctl *c, struct marks *m,
			 unsigned long echoes)
{
	int p = atomic_load_explicit(&c->phase, memory_order_relaxed);

	if (p == m->seen)
		return;
	if (m->seen == PHASE_WARM)
		cf_mark_start(m, echoes);
	if (p == PHASE_DONE)
		cf_mark_end(m, echoes, &c->ss);
	m->seen = p;
}

/* A connection of the echo thread is gone: 0, or -errno for a real error
 * (the client's reset is the normal end). */
static int srv_gone(struct conn *k, int res, unsigned *open_left)
{
	close(k->fd);
	k->fd = -1;
	(*open_left)--;
	return res == 0 || res == -EPIPE || res == -ECONNRESET ? 0 : res;
}

/* The echo thread sleeps at most WAIT_MS; once the client has closed
 * everything, DRAIN_S more is a hang. */
static int srv_waited(struct run_ctl *c, double *gone_at)
{
	if (!atomic_load(&c->client_gone))
		return 0;
	if (*gone_at == 0)
		*gone_at = floor_now_s();
	return floor_now_s() > *gone_at + DRAIN_S ? -ETIMEDOUT : 0;
}

static int server_uring(struct run_ctl *c)
{
	unsigned i, open_left = c->open;
	unsigned long echoes = 0;
	struct marks m = {0};
	struct io_uring ring;
	double gone_at = 0;
	int ret = cf_ring_init(&ring, 2 * c->open);

	if (ret)
		return ret;
	for (i = 0; !ret && i < c->open; i++)
		ret = cf_queue_recv(&ring, &c->srv[i], i, c->sbuf + i * c->size,
				 c->size);
	while (!ret && open_left) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = cf_ring_wait(&ring);
		follow_phase(c, &m, echoes);
		if (!ret)
			ret = srv_waited(c, &gone_at);
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned idx = ud_idx(cqe->user_data);
			struct conn *k = &c->srv[idx];
			char *buf = c->sbuf + idx * c->size;

			n++;
			if (ret)
				break;
			/* A failed echo: its recv ends the connection. */
			if (ud_send(cqe->user_data)) {
				if (cqe->res != -EPIPE &&
				    cqe->res != -ECONNRESET)
					ret = cqe->res < 0 ? cqe->res : -EIO;
				continue;
			}
			if (cqe->res <= 0) {
				ret = srv_gone(k, cqe->res, &open_left);
				continue;
			}
			k->got += (unsigned)cqe->res;
			if (k->got < c->size) {
				ret = cf_queue_recv(&ring, k, idx, buf, c->size);
				continue;
			}
			echoes++;
			ret = cf_queue_send_recv(&ring, k, idx, buf, c->size);
		}
		io_uring_cq_advance(&ring, n);
	}
	/* Cancels what is still armed before the sockets close. */
	io_uring_queue_exit(&ring);
	c->ss.total = echoes;
	return ret;
}

static int server_epoll(struct run_ctl *c)
{
	unsigned i, open_left = c->open, max = c->open;
	unsigned long echoes = 0;
	struct epoll_event *ev;
	struct marks m = {0};
	double gone_at = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), ret = 0;

	if (max > RING_SQ_MAX)
		max = RING_SQ_MAX;
	ev = calloc(max, sizeof(*ev));
	if (!ev || ep < 0) {
		ret = ev ? -errno : -ENOMEM;
		goto out;
	}
	for (i = 0; !ret && i < c->open; i++)
		ret = cf_epoll_add(ep, c->srv[i].fd, i);
	while (!ret && open_left) {
		int n = epoll_wait(ep, ev, (int)max, WAIT_MS), e;

		if (n < 0 && errno != EINTR)
			ret = -errno;
		follow_phase(c, &m, echoes);
		if (!ret)
			ret = srv_waited(c, &gone_at);
		for (e = 0; !ret && e < n; e++) {
			unsigned idx = ev[e].data.u32;
			struct conn *k = &c->srv[idx];
			char *buf = c->sbuf + idx * c->size;

			ret = cf_recv_some(k, buf, c->size);
			if (ret < 0) {
				ret = srv_gone(k, ret, &open_left);
				continue;
			}
			if (!ret)
				continue;
			echoes++;
			k->got = 0;
			ret = floor_send_all(k->fd, buf, c->size);
		}
	}
out:
	if (ep >= 0)
		close(ep);
	free(ev);
	c->ss.total = echoes;
	return ret;
}

/* Listen on an ephemeral loopback port and accept every connection. */
static int server_accept(struct run_ctl *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	double end = floor_now_s() + SETUP_S;
	unsigned n = 0;
	int l, one = 1, ret = 0;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, (int)(c->open < 4096 ? c->open : 4096)) ||
	    getsockname(l, (struct sockaddr *)&a, &alen)) {
		ret = -errno;
		goto out;
	}
	atomic_store(&c->port, ntohs(a.sin_port));
	while (n < c->open) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			c->srv[n++].fd = fd;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (atomic_load(&c->client_gone) || floor_now_s() > end) {
			ret = -ETIMEDOUT;
			break;
		}
		poll(&p, 1, WAIT_MS);
	}
out:
	close(l);
	return ret;
}

void *cf_echo_main(void *arg)
{
	struct run_ctl *c = arg;
	unsigned i;

	bench_pin_thread(c->server_cpu);
	pthread_setname_np(pthread_self(), "floor-echo");
	/* Before the listener: main.c says why. */
	if (c->own_tables && unshare(CLONE_FILES))
		c->ss.err = -errno;
	if (!c->ss.err)
		c->ss.err = server_accept(c);
	if (!c->ss.err) {
		atomic_store(&c->accepted, true);
		c->ss.err = c->mode == WAIT_URING ? server_uring(c)
						  : server_epoll(c);
	}
	if (c->ss.err)
		atomic_store(&c->server_failed, true);
	/* The client has reset them all by now: what is left open is idle. */
	c->ss.retrans = cf_retrans_sum(c->srv, c->open);
	for (i = 0; i < c->open; i++) {
		if (c->srv[i].fd >= 0)
			close(c->srv[i].fd);
	}
	return NULL;
}
