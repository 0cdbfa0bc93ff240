/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_wake.c - the reactor's wake-up protocol, sleeper by
 * sleeper (docs/ARCHITECTURE.md, "Wake-ups"): nothing another thread does
 * (post, remote release, receive credit) is ever left waiting while the
 * reactor sleeps, whether it sleeps in the ring, in an embedder's loop or
 * parked after a busy destroy; and a connection reference outlives its
 * reactor safely.
 *
 * Race windows are widened with the stack's test seam: this file defines
 * zc__test_point(), which the reactor calls where a window opens, and
 * runs another thread's releases inside it.  Every wait is bounded: a
 * wake-up that does not come within WAIT_MS fails the test.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "internal.h"

/* Longest a wake-up may take before the test calls it lost. */
#define WAIT_MS 2000
#define ROUNDS (ZC_TEST_SANITIZED ? 3000 : 10000)

/* -------------------------------------------------------------------------
 * The seam: run tp.fn once, the first time @r reaches tp.point.
 */
static struct {
	_Atomic(struct zc_reactor *) r;
	enum zc__test_point point;
	void (*fn)(void *arg);
	void *arg;
} tp;

void zc__test_point(struct zc_reactor *r, enum zc__test_point p)
{
	struct zc_reactor *want = r;

	if (p == tp.point &&
	    atomic_compare_exchange_strong(&tp.r, &want, NULL))
		tp.fn(tp.arg);
}

static void tp_arm(struct zc_reactor *r, enum zc__test_point p,
		   void (*fn)(void *), void *arg)
{
	tp.point = p;
	tp.fn = fn;
	tp.arg = arg;
	atomic_store(&tp.r, r);
}

/* Releases made on a thread of their own, joined before returning: in
 * the seam, they land exactly inside the window. */
struct releases {
	struct zc_buf *bufs[8];
	unsigned n;
};

static void *put_all(void *arg)
{
	struct releases *rel = arg;

	for (unsigned i = 0; i < rel->n; i++)
		zc_buf_put(rel->bufs[i]);
	return NULL;
}

static void release_elsewhere(void *arg)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, put_all, arg), 0);
	pthread_join(t, NULL);
}

static uint64_t pool_drained(struct zc_pool *pool)
{
	struct zc_pool_stats st;

	zc_pool_stats(pool, &st);
	return st.drained;
}

static bool readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

/* -------------------------------------------------------------------------
 * Bug 1: a release that reaches defer_max while run_once is finishing its
 * batch (after the drain, before the embedder sleeps) must still wake the
 * embedder's fd.
 */
Test(stack_wake, embed_release_inside_the_batch_wakes_the_fd)
{
	struct zc_reactor *r;
	struct zc_pool *pool;
	struct releases rel = { .n = 4 };
	int fd;

	cr_assert_eq(zc_reactor_create(&(struct zc_reactor_config){
			.defer_max = 4 }, &r), 0);
	pool = zc_reactor_pool(r);
	fd = zc_reactor_fd(r);
	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < rel.n; i++)
		cr_assert_eq(zc_buf_alloc(pool, &rel.bufs[i]), 0);
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);

	tp_arm(r, ZC__TP_EMBED_PRE_SLEEP, release_elsewhere, &rel);
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);
	cr_assert_null(atomic_load(&tp.r), "the window was never reached");
	cr_assert(readable(fd, WAIT_MS),
		  "4 buffers deferred, the embedder's fd never woke");
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);
	cr_assert_eq(pool_drained(pool), 4);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * Bug 2, and the bound on releases below the cap: an embedder's loop with
 * the default flags (epoll on zc_reactor_fd()) while another thread posts
 * work and releases views one at a time, each waiting for the previous
 * one to be seen; and network completions through an echo connection in
 * the same loop.  Every step must be seen within WAIT_MS.
 */
struct feeder {
	struct zc_reactor *r;
	atomic_uint posts_run;
	atomic_uint released;
	_Atomic(struct zc_view *) handoff; /* a view for the feeder */
	atomic_bool failed;
};

static void count_post(void *arg)
{
	struct feeder *f = arg;

	atomic_fetch_add(&f->posts_run, 1);
}

/* Wait (bounded) until *@ctr reaches @want. */
static bool wait_for(atomic_uint *ctr, unsigned want)
{
	for (int i = 0; i < WAIT_MS * 10; i++) {
		if (atomic_load(ctr) >= want)
			return true;
		usleep(100);
	}
	return false;
}

static void *feed(void *arg)
{
	struct feeder *f = arg;

	for (unsigned i = 0; i < ROUNDS; i++) {
		struct zc_view *v;
		int spins = 0;

		if (zc_reactor_post(f->r, count_post, f) ||
		    !wait_for(&f->posts_run, i + 1))
			goto fail;
		/* The loop hands over one view per round. */
		while (!(v = atomic_exchange(&f->handoff, NULL))) {
			if (++spins > WAIT_MS * 10)
				goto fail;
			usleep(100);
		}
		zc_view_release(v);
		atomic_fetch_add(&f->released, 1);
	}
	return NULL;
fail:
	atomic_store(&f->failed, true);
	return NULL;
}

static int connect_echo(struct zc_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	hs_addr(&ss, &sl, zc_listener_port(l));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	cr_assert(connect(fd, (struct sockaddr *)&ss, sl) == 0 ||
		  errno == EINPROGRESS);
	return fd;
}

Test(stack_wake, embedded_epoll_loop_with_default_flags, .timeout = 120)
{
	static struct zc_view views[2];
	struct feeder f = { 0 };
	struct zc_reactor *r;
	struct zc_listener *l;
	struct zc_pool *pool;
	struct sockaddr_storage ss;
	struct epoll_event ev, evs[4];
	char msg[64], in[64];
	size_t got = 0, sent_rounds = 0, echoed = 0;
	unsigned handed = 0, stalls = 0, loops = 0;
	bool in_flight = false;
	socklen_t sl;
	pthread_t t;
	int ep, rfd, cfd;

	cr_assert_eq(zc_reactor_create(NULL, &r), 0);
	pool = zc_reactor_pool(r);
	f.r = r;
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_echo_listen(r, (struct sockaddr *)&ss, sl, 0, &l), 0);
	rfd = zc_reactor_fd(r);
	cr_assert_geq(rfd, 0);
	cfd = connect_echo(l);

	ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = rfd };
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev), 0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = cfd };
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev), 0);
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, feed, &f), 0);

	while ((pool_drained(pool) < ROUNDS || echoed < ROUNDS) &&
	       !atomic_load(&f.failed)) {
		int n;

		cr_assert_lt(++loops, 40 * ROUNDS, "the loop does not end");
		/* One view out at a time: allocated here (the owner), released
		 * by the feeder (a remote release), handed on once the last
		 * one came home through the defer list. */
		if (handed == pool_drained(pool) && handed < ROUNDS) {
			struct zc_buf *b;
			struct zc_view *v = &views[handed % 2];

			cr_assert_eq(zc_buf_alloc(pool, &b), 0);
			cr_assert_eq(zc_view_adopt(v, b, 0, 64), 0);
			handed++;
			atomic_store(&f.handoff, v);
		}
		if (!in_flight && sent_rounds < ROUNDS) {
			hs_fill(sent_rounds, 0, msg, sizeof(msg));
			if (send(cfd, msg, sizeof(msg), MSG_NOSIGNAL) ==
			    (ssize_t)sizeof(msg)) {
				in_flight = true;
				sent_rounds++;
			}
		}
		n = epoll_wait(ep, evs, 4, WAIT_MS);
		if (n == 0) {
			stalls++;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == rfd) {
				cr_assert_geq(zc_reactor_run_once(r, 0), 0);
				continue;
			}
			for (ssize_t k; got < sizeof(in) &&
			     (k = recv(cfd, in + got, sizeof(in) - got, 0)) > 0;)
				got += (size_t)k;
			if (got == sizeof(in)) {
				hs_fill(echoed, 0, msg, sizeof(msg));
				cr_assert_eq(memcmp(in, msg, sizeof(in)), 0);
				echoed++;
				got = 0;
				in_flight = false;
			}
		}
	}
	atomic_store(&f.failed, true); /* let the feeder go if it waits */
	pthread_join(t, NULL);
	cr_assert_eq(stalls, 0, "the loop slept %d ms with work pending "
		     "(posts %u, releases %u, drained %lu, echoes %zu of %u)",
		     WAIT_MS, atomic_load(&f.posts_run),
		     atomic_load(&f.released),
		     (unsigned long)pool_drained(pool), echoed, ROUNDS);
	cr_assert_eq(atomic_load(&f.posts_run), ROUNDS);
	cr_assert_eq(atomic_load(&f.released), ROUNDS);
	cr_assert_eq(pool_drained(pool), ROUNDS);
	cr_assert_eq(echoed, ROUNDS);

	/* Teardown from the loop thread. */
	close(cfd);
	close(ep);
	zc_listener_close(l);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * Bug 3: a spawned reactor whose destroy answered -EBUSY parks; releases
 * that land between its teardown's drain and its parking must still come
 * home, their release callbacks run, without another destroy call.
 */
static atomic_uint callbacks;

static void count_release(void *arg, void *data)
{
	(void)arg;
	(void)data;
	atomic_fetch_add(&callbacks, 1);
}

static struct zc_buf *held;

static int alloc_held(void *arg)
{
	return zc_buf_alloc(arg, &held);
}

static int put_held(void *arg)
{
	(void)arg;
	zc_buf_put(held);
	return 0;
}

Test(stack_wake, park_after_busy_destroy_sees_late_releases)
{
	static char mem[4][256];
	struct releases rel = { .n = 4 };
	struct zc_reactor *r;
	struct zc_pool *pool;

	callbacks = 0;
	cr_assert_eq(zc_reactor_spawn(&(struct zc_reactor_config){
			.defer_max = 4 }, &r), 0);
	pool = zc_reactor_pool(r);
	/* One pool buffer held on: the destroy answers -EBUSY. */
	cr_assert_eq(zc_reactor_call(r, alloc_held, pool), 0);
	for (unsigned i = 0; i < rel.n; i++)
		cr_assert_eq(zc_buf_wrap(pool, mem[i], sizeof(mem[i]),
					 count_release, NULL, &rel.bufs[i]), 0);

	tp_arm(r, ZC__TP_PRE_PARK, release_elsewhere, &rel);
	cr_assert_eq(zc_reactor_destroy(r), -EBUSY);
	cr_assert(wait_for(&callbacks, 4),
		  "%u of 4 release callbacks ran while parked",
		  atomic_load(&callbacks));
	cr_assert_null(atomic_load(&tp.r), "the window was never reached");
	cr_assert_eq(zc_reactor_call(r, put_held, NULL), 0);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * The bound below the cap: one release of wrapped memory while a spawned
 * reactor sleeps runs its callback without waiting for anything else.
 */
Test(stack_wake, one_release_wakes_a_sleeping_owner)
{
	static char mem[256];
	struct zc_reactor *r;
	struct zc_buf *b;

	callbacks = 0;
	cr_assert_eq(zc_reactor_spawn(NULL, &r), 0);
	for (unsigned i = 0; i < 20; i++) {
		cr_assert_eq(zc_buf_wrap(zc_reactor_pool(r), mem, sizeof(mem),
					 count_release, NULL, &b), 0);
		usleep(2000); /* let the reactor fall asleep */
		zc_buf_put(b);
		cr_assert(wait_for(&callbacks, i + 1),
			  "release %u: callback not run while the owner slept",
			  i);
	}
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * Bug 4: zc_conn_recv_done() through a zc_conn_get() reference after the
 * reactor is destroyed touches only the connection.  The connection is
 * stopped by its receive budget (so the resume path is live) when the
 * reactor goes.
 */
struct budget_srv {
	struct zc_conn *conn;   /* our reference */
	struct zc_listener *l;
	struct zc_chain held;   /* received, not given back */
};

static struct budget_srv BS;

static void bs_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	(void)c;
	(void)ud;
	cr_assert_eq(zc_chain_cut(data, zc_chain_len(data), &BS.held), 0);
}

static const struct zc_conn_ops bs_ops = { .on_data = bs_data };

static void bs_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	(void)l;
	(void)ud;
	zc_conn_get(c);
	BS.conn = c;
	zc_conn_set_ops(c, &bs_ops, NULL);
}

static int bs_listen(void *arg)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	hs_addr(&ss, &sl, 0);
	return zc_listen(arg, (struct sockaddr *)&ss, sl, 0, bs_accept, NULL,
			 &BS.l);
}

static int bs_release_held(void *arg)
{
	(void)arg;
	zc_chain_release(&BS.held);
	return 0;
}

Test(stack_wake, recv_done_after_reactor_destroy_is_safe)
{
	static char chunk[64 * 1024];
	struct zc_reactor_stats st;
	struct zc_reactor *r;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, i;

	zc_chain_init(&BS.held);
	cr_assert_eq(zc_reactor_spawn(&(struct zc_reactor_config){
			.rx_budget = 64 * 1024 }, &r), 0);
	cr_assert_eq(zc_reactor_call(r, bs_listen, r), 0);
	hs_addr(&ss, &sl, zc_listener_port(BS.l));
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, sl), 0);
	/* Send until the server stops reading at its budget. */
	for (i = 0; i < 2000; i++) {
		zc_reactor_stats(r, &st);
		if (st.rx_budget_stops)
			break;
		if (send(fd, chunk, sizeof(chunk), MSG_DONTWAIT) < 0)
			usleep(1000);
	}
	cr_assert_gt(st.rx_budget_stops, 0, "the budget never stopped reading");
	cr_assert_eq(zc_reactor_call(r, bs_release_held, NULL), 0);
	cr_assert_eq(zc_reactor_destroy(r), 0);

	/* The reactor is gone; our reference is not. */
	zc_conn_recv_done(BS.conn, SIZE_MAX); /* all of it back */
	zc_conn_put(BS.conn);
	close(fd);
}
