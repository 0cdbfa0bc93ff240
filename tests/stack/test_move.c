/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_move.c - zc_conn_move(): a connection echoing a byte
 * stream moves from reactor A to reactor B in the middle of it, with
 * receives, sends and a receive budget under way; every byte comes back
 * in order, every callback runs on the reactor that owns the connection,
 * and the counters follow.  Refusals, and a peer reset during the move.
 *
 * The peer is a plain socket on the test thread; the server end lives on
 * two spawned reactors.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define BUDGET (64u << 10)

struct srv {
	struct zc_reactor *a, *b;
	struct zc_listener *l;
	struct zc_conn *c;		/* its owning reactor's thread */
	atomic_int accepted, closed, close_err;
	atomic_int moved, move_err, done_wrong_thread;
	atomic_int data_on_a, data_on_b, wrong_thread, send_errs;
};

/* One echoed delivery: its receive credit goes back once it is sent. */
struct echo_done {
	struct zc_conn *c;
	size_t n;
};

static void echo_sent(void *arg, int err)
{
	struct echo_done *d = arg;

	zc_conn_recv_done(d->c, d->n);
	free(d);
}

static void s_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct srv *s = ud;
	struct zc_reactor *cur = zc_reactor_current();
	struct echo_done *d = malloc(sizeof(*d));

	if (cur != zc_conn_reactor(c))
		atomic_fetch_add(&s->wrong_thread, 1);
	atomic_fetch_add(cur == s->a ? &s->data_on_a : &s->data_on_b, 1);
	cr_assert(d);
	d->c = c;
	d->n = zc_chain_len(data);
	if (zc_conn_send(c, data, echo_sent, d)) {
		atomic_fetch_add(&s->send_errs, 1);
		zc_conn_recv_done(c, d->n);
		zc_chain_release(data);
		free(d);
	}
}

static void s_close(struct zc_conn *c, int err, void *ud)
{
	struct srv *s = ud;

	if (zc_reactor_current() != zc_conn_reactor(c))
		atomic_fetch_add(&s->wrong_thread, 1);
	atomic_store(&s->close_err, err);
	atomic_fetch_add(&s->closed, 1);
}

static const struct zc_conn_ops s_ops = {
	.on_data = s_data,
	.on_close = s_close,
};

static void s_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct srv *s = ud;

	s->c = c;
	zc_conn_set_ops(c, &s_ops, s);
	atomic_fetch_add(&s->accepted, 1);
}

static void s_moved(struct zc_conn *c, int err, void *arg)
{
	struct srv *s = arg;

	/* 0: on the new reactor, which owns it now; else it stayed. */
	if (zc_reactor_current() != (err ? s->a : s->b) ||
	    zc_conn_reactor(c) != zc_reactor_current())
		atomic_fetch_add(&s->done_wrong_thread, 1);
	atomic_store(&s->move_err, err);
	atomic_fetch_add(&s->moved, 1);
}

static int do_move(void *arg)
{
	struct srv *s = arg;

	return zc_conn_move(s->c, s->b, s_moved, s);
}

static int do_listen(void *arg)
{
	struct srv *s = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	return zc_listen(s->a, (struct sockaddr *)&sa, sizeof(sa), 0,
			 s_accept, s, &s->l);
}

static int do_unlisten(void *arg)
{
	zc_listener_close(((struct srv *)arg)->l);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait (bounded) until *@v reaches @want. */
static bool wait_for(atomic_int *v, int want, double secs)
{
	double end = now_s() + secs;

	while (atomic_load(v) < want && now_s() < end)
		usleep(1000);
	return atomic_load(v) >= want;
}

/* @sndbuf: the server's SO_SNDBUF (0: the kernel's), small to make its
 * echo wait for the peer. */
static void setup(struct srv *s, unsigned sndbuf)
{
	struct zc_reactor_config rc = { .rx_budget = BUDGET,
					.sock_sndbuf = sndbuf };

	memset(s, 0, sizeof(*s));
	cr_assert_eq(zc_reactor_spawn(&rc, &s->a), 0);
	cr_assert_eq(zc_reactor_spawn(&rc, &s->b), 0);
	cr_assert_eq(zc_reactor_call(s->a, do_listen, s), 0);
}

static void teardown(struct srv *s)
{
	cr_assert_eq(zc_reactor_call(s->a, do_unlisten, s), 0);
	cr_assert_eq(zc_reactor_destroy(s->a), 0);
	cr_assert_eq(zc_reactor_destroy(s->b), 0);
}

static int peer_connect(struct srv *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(zc_listener_port(s->l)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void peer_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * Stream @total bytes through the echo, reading as it writes; once
 * @move_at bytes came back, move the server's end to B (the stream goes
 * on meanwhile).  Returns the bytes read; *@bad counts wrong ones.
 */
static size_t stream(struct srv *s, int fd, size_t total, size_t move_at,
		     uint64_t *bad)
{
	static char out[64 << 10], in[64 << 10];
	size_t sent = 0, got = 0;
	bool move_asked = false;
	double end = now_s() + 30;

	*bad = 0;
	while (got < total && now_s() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (sent < total)
			p.events |= POLLOUT;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((p.revents & POLLOUT) && sent < total) {
			size_t len = total - sent < sizeof(out) ?
					     total - sent : sizeof(out);

			hs_fill(7, sent, out, len);
			n = send(fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			if (n == 0)
				break;
			if (n > 0) {
				*bad += hs_count_bad(7, got, in, (size_t)n);
				got += (size_t)n;
			}
		}
		if (!move_asked && got >= move_at) {
			move_asked = true;
			cr_assert_eq(zc_reactor_call(s->a, do_move, s), 0);
		}
	}
	return got;
}

Test(move, stream_moves_midway, .timeout = 60)
{
	size_t total = ZC_TEST_SANITIZED ? (8u << 20) : (32u << 20);
	struct zc_reactor_stats sa, sb;
	struct srv s;
	uint64_t bad;
	size_t got;
	int fd;

	setup(&s, 0);
	fd = peer_connect(&s);
	cr_assert(wait_for(&s.accepted, 1, 10));
	got = stream(&s, fd, total, 1u << 20, &bad);
	cr_assert_eq(got, total, "echoed %zu of %zu bytes", got, total);
	cr_assert_eq(bad, 0, "%llu bytes wrong", (unsigned long long)bad);
	cr_assert(wait_for(&s.moved, 1, 10));
	cr_assert_eq(atomic_load(&s.move_err), 0);
	cr_assert_eq(atomic_load(&s.done_wrong_thread), 0);
	cr_assert_eq(atomic_load(&s.wrong_thread), 0);
	cr_assert_eq(atomic_load(&s.send_errs), 0);
	cr_assert_gt(atomic_load(&s.data_on_a), 0);
	cr_assert_gt(atomic_load(&s.data_on_b), 0, "no byte read on B");
	zc_reactor_stats(s.a, &sa);
	zc_reactor_stats(s.b, &sb);
	cr_assert_eq(sa.moved_out, 1);
	cr_assert_eq(sb.moved_in, 1);
	cr_assert_eq(sa.conns_open, 0);
	cr_assert_eq(sb.conns_open, 1);
	/* Registered file slots (on by default): it left A's, took B's. */
	cr_assert_gt(sb.fixed_slots, 0);
	cr_assert_eq(sa.fixed_files, 0);
	cr_assert_eq(sb.fixed_files, 1);
	close(fd);
	cr_assert(wait_for(&s.closed, 1, 10));
	cr_assert_eq(atomic_load(&s.close_err), 0);
	cr_assert_eq(atomic_load(&s.wrong_thread), 0);
	zc_reactor_stats(s.b, &sb);
	cr_assert_eq(sb.conns_open, 0);
	cr_assert_eq(sb.fixed_files, 0);
	teardown(&s);
}

static int try_refusals(void *arg)
{
	struct srv *s = arg;

	cr_expect_eq(zc_conn_move(s->c, s->a, s_moved, s), -EINVAL);
	cr_expect_eq(zc_conn_move(s->c, s->b, NULL, s), -EINVAL);
	cr_expect_eq(zc_conn_move(NULL, s->b, s_moved, s), -EINVAL);
	cr_expect_eq(zc_conn_move(s->c, s->b, s_moved, s), 0);
	cr_expect_eq(zc_conn_move(s->c, s->b, s_moved, s), -EALREADY);
	return 0;
}

static int try_on_b(void *arg)
{
	struct srv *s = arg;

	/* Its own reactor now: no move there; closing: none at all. */
	cr_expect_eq(zc_conn_move(s->c, s->b, s_moved, s), -EINVAL);
	zc_conn_close(s->c, ZC_CLOSE_GRACEFUL);
	cr_expect_eq(zc_conn_move(s->c, s->a, s_moved, s), -EPIPE);
	return 0;
}

Test(move, refusals, .timeout = 30)
{
	struct srv s;
	int fd;

	setup(&s, 0);
	fd = peer_connect(&s);
	cr_assert(wait_for(&s.accepted, 1, 10));
	cr_assert_eq(zc_reactor_call(s.a, try_refusals, &s), 0);
	cr_assert(wait_for(&s.moved, 1, 10));
	cr_assert_eq(atomic_load(&s.move_err), 0);
	cr_assert_eq(zc_reactor_call(s.b, try_on_b, &s), 0);
	close(fd);
	cr_assert(wait_for(&s.closed, 1, 10));
	cr_assert_eq(atomic_load(&s.moved), 1, "done ran more than once");
	teardown(&s);
}

/*
 * The peer writes without reading (so the echo's sends back up and are
 * in flight), the move starts, and the peer resets at once or a little
 * later: the move ends either way (done exactly once, on B with 0 or on A
 * with the error), on_close runs exactly once, nothing leaks (ASan) and
 * both reactors tear down cleanly.
 */
Test(move, peer_reset_during_move, .timeout = 120)
{
	static char out[256 << 10];
	unsigned rounds = ZC_TEST_SANITIZED ? 8 : 24;
	unsigned on_b = 0, on_a = 0;
	struct srv s;

	setup(&s, 16u << 10);
	hs_fill(3, 0, out, sizeof(out));
	for (unsigned i = 0; i < rounds; i++) {
		int fd = peer_connect(&s);

		cr_assert(wait_for(&s.accepted, (int)i + 1, 10));
		/* Even rounds fill both directions until the server's echo
		 * send waits for room, so the move is still waiting for it
		 * when the reset comes; odd rounds send a little. */
		for (int k = 0; k < (i % 2 ? 1 : 3); k++) {
			for (int j = 0; j < (i % 2 ? 1 : 256); j++)
				if (send(fd, out, i % 2 ? 4096 : sizeof(out),
					 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
					break;
			usleep(5000);
		}
		cr_assert_eq(zc_reactor_call(s.a, do_move, &s), 0);
		if (i % 3)
			usleep(200 * (i % 5));
		peer_reset(fd);
		cr_assert(wait_for(&s.closed, (int)i + 1, 10),
			  "round %u: no on_close", i);
		cr_assert(wait_for(&s.moved, (int)i + 1, 10),
			  "round %u: move never ended", i);
		cr_assert_eq(atomic_load(&s.moved), (int)i + 1);
		cr_assert_eq(atomic_load(&s.closed), (int)i + 1);
		on_b += atomic_load(&s.move_err) == 0;
		on_a += atomic_load(&s.move_err) != 0;
	}
	/* Both ends of the race were run. */
	cr_assert_gt(on_a, 0, "no move was abandoned");
	cr_assert_gt(on_b, 0, "no move ended before the reset");
	cr_assert_eq(atomic_load(&s.done_wrong_thread), 0);
	cr_assert_eq(atomic_load(&s.wrong_thread), 0);
	cr_log_info("moved before the reset: %u of %u", on_b, rounds);
	teardown(&s);
}

/*
 * A consumer thread owns what arrives: it checks the bytes, releases them
 * (to A's or B's pool, from its own thread) and gives the receive budget
 * back with zc_conn_recv_done(), which resumes a paused connection through
 * its reactor's queue.  The connection moves while those resumes come in:
 * none may reach the reactor it left (TSan, and the byte count).
 */
struct citem {
	struct citem *next;
	struct zc_conn *c;	/* one zc_conn_get() reference */
	struct zc_chain ch;
};

struct consumer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct citem *head, **tail;
	bool stop;
	pthread_t th;
	atomic_uint_fast64_t pos, bad;
};

static struct consumer cons;

static void *consume(void *arg)
{
	struct consumer *k = arg;
	unsigned n = 0;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		struct citem *it = k->head;

		if (!it) {
			if (k->stop)
				break;
			pthread_cond_wait(&k->cond, &k->lock);
			continue;
		}
		k->head = it->next;
		if (!k->head)
			k->tail = &k->head;
		pthread_mutex_unlock(&k->lock);
		for (uint32_t i = 0; i < it->ch.n; i++) {
			const struct zc_view *v = zc_chain_view(&it->ch, i);
			uint64_t pos = atomic_load(&k->pos);

			atomic_fetch_add(&k->bad, hs_count_bad(9, pos,
					 zc_view_data(v), v->len));
			atomic_store(&k->pos, pos + v->len);
		}
		/* Slower than the sender now and then: the budget fills. */
		if (++n % 16 == 0)
			usleep(200);
		zc_conn_recv_done(it->c, zc_chain_len(&it->ch));
		zc_chain_release(&it->ch);
		zc_conn_put(it->c);
		free(it);
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static void c_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct srv *s = ud;
	struct citem *it = malloc(sizeof(*it));

	if (zc_reactor_current() != zc_conn_reactor(c))
		atomic_fetch_add(&s->wrong_thread, 1);
	atomic_fetch_add(zc_reactor_current() == s->a ? &s->data_on_a :
						     &s->data_on_b, 1);
	cr_assert(it);
	it->c = c;
	it->ch = *data;
	zc_conn_get(c);
	pthread_mutex_lock(&cons.lock);
	it->next = NULL;
	*cons.tail = it;
	cons.tail = &it->next;
	pthread_cond_signal(&cons.cond);
	pthread_mutex_unlock(&cons.lock);
}

static const struct zc_conn_ops c_ops = {
	.on_data = c_data,
	.on_close = s_close,
};

static int use_consumer(void *arg)
{
	struct srv *s = arg;

	zc_conn_set_ops(s->c, &c_ops, s);
	return 0;
}

Test(move, consumer_thread_gives_budget_back, .timeout = 60)
{
	static char out[64 << 10];
	size_t total = ZC_TEST_SANITIZED ? (8u << 20) : (32u << 20);
	size_t sent = 0;
	bool asked = false;
	double end = now_s() + 30;
	struct zc_reactor_stats sa, sb;
	struct srv s;
	int fd;

	memset(&cons, 0, sizeof(cons));
	pthread_mutex_init(&cons.lock, NULL);
	pthread_cond_init(&cons.cond, NULL);
	cons.tail = &cons.head;
	cr_assert_eq(pthread_create(&cons.th, NULL, consume, &cons), 0);
	setup(&s, 0);
	fd = peer_connect(&s);
	cr_assert(wait_for(&s.accepted, 1, 10));
	cr_assert_eq(zc_reactor_call(s.a, use_consumer, &s), 0);
	while (sent < total && now_s() < end) {
		size_t len = total - sent < sizeof(out) ? total - sent :
							  sizeof(out);
		ssize_t n;

		hs_fill(9, sent, out, len);
		n = send(fd, out, len, MSG_NOSIGNAL);
		cr_assert_gt(n, 0);
		sent += (size_t)n;
		if (!asked && sent >= total / 4) {
			asked = true;
			cr_assert_eq(zc_reactor_call(s.a, do_move, &s), 0);
		}
	}
	while (atomic_load(&cons.pos) < total && now_s() < end)
		usleep(1000);
	cr_assert_eq(atomic_load(&cons.pos), total, "consumed %lu of %zu",
		     (unsigned long)atomic_load(&cons.pos), total);
	cr_assert_eq(atomic_load(&cons.bad), 0);
	cr_assert(wait_for(&s.moved, 1, 10));
	cr_assert_eq(atomic_load(&s.move_err), 0);
	cr_assert_gt(atomic_load(&s.data_on_b), 0);
	cr_assert_eq(atomic_load(&s.wrong_thread), 0);
	/* The premise: the budget did stop the connection (and the
	 * consumer resumed it). */
	zc_reactor_stats(s.a, &sa);
	zc_reactor_stats(s.b, &sb);
	cr_assert_gt(sa.rx_budget_stops + sb.rx_budget_stops, 0);
	cr_log_info("budget stops: %lu on A, %lu on B",
		    (unsigned long)sa.rx_budget_stops,
		    (unsigned long)sb.rx_budget_stops);
	close(fd);
	cr_assert(wait_for(&s.closed, 1, 10));
	pthread_mutex_lock(&cons.lock);
	cons.stop = true;
	pthread_cond_signal(&cons.cond);
	pthread_mutex_unlock(&cons.lock);
	pthread_join(cons.th, NULL);
	teardown(&s);
}
