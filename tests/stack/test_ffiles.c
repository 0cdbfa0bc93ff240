/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_ffiles.c - connections on registered file slots
 * (stack/ffiles.c): data both ways on a slot, closes the peer sees (a slot
 * holds the socket: a close that left it there would send no RST), slots
 * reused past the table's size, a table smaller than the connections
 * (mixed slots and plain fds), the feature turned off, and a table the
 * kernel refuses.
 *
 * One reactor on the test thread, driven by zc_reactor_run_once(); the
 * peers are plain non-blocking sockets the test reads between batches.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define MAXC 8

struct srv {
	struct zc_reactor *r;
	struct zc_listener *l;
	struct zc_conn *c[MAXC];
	unsigned accepted, closed;
	int close_err[MAXC];
	uint64_t rx[MAXC];
};

static unsigned idx_of(struct srv *s, struct zc_conn *c)
{
	for (unsigned i = 0; i < s->accepted; i++)
		if (s->c[i] == c)
			return i;
	cr_assert_fail("unknown connection");
	return 0;
}

/* Echo what comes in. */
static void s_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	struct srv *s = ud;

	s->rx[idx_of(s, c)] += zc_chain_len(d);
	cr_assert_eq(zc_conn_send(c, d, NULL, NULL), 0);
}

static void s_close(struct zc_conn *c, int err, void *ud)
{
	struct srv *s = ud;

	s->close_err[idx_of(s, c)] = err;
	s->closed++;
}

static const struct zc_conn_ops s_ops = {
	.on_data = s_data,
	.on_close = s_close,
};

static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct srv *s = ud;

	cr_assert_lt(s->accepted, MAXC);
	s->c[s->accepted++] = c;
	zc_conn_set_ops(c, &s_ops, s);
}

static void setup(struct srv *s, unsigned slots, unsigned flags)
{
	struct zc_reactor_config rc = { .fixed_files = slots, .flags = flags };
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(s, 0, sizeof(*s));
	cr_assert_eq(zc_reactor_create(&rc, &s->r), 0);
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_listen(s->r, (struct sockaddr *)&ss, sl, 0, on_accept,
			       s, &s->l), 0);
}

static void teardown(struct srv *s)
{
	cr_assert_eq(zc_reactor_destroy(s->r), 0);
}

static void run(struct srv *s)
{
	cr_assert_geq(zc_reactor_run_once(s->r, 1000), 0);
}

/* Batches until the listener accepted @n in all (bounded: 5,000 x 1 ms). */
static void run_until_accepted(struct srv *s, unsigned n)
{
	for (int i = 0; i < 5000 && s->accepted < n; i++)
		run(s);
	cr_assert_eq(s->accepted, n, "accepted %u of %u", s->accepted, n);
}

static void run_until_closed(struct srv *s, unsigned n)
{
	for (int i = 0; i < 5000 && s->closed < n; i++)
		run(s);
	cr_assert_eq(s->closed, n, "closed %u of %u", s->closed, n);
}

/* A non-blocking peer connected to the listener. */
static int peer_connect(struct srv *s)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	hs_addr(&ss, &sl, zc_listener_port(s->l));
	if (connect(fd, (struct sockaddr *)&ss, sl))
		cr_assert_eq(errno, EINPROGRESS);
	return fd;
}

/*
 * Run batches until the peer's recv() answers something other than
 * EAGAIN; returns its result (bytes, 0 for EOF, -errno).  Bounded:
 * 5,000 batches of at most 1 ms (a liveness guard, not a timing).
 */
static ssize_t peer_recv(struct srv *s, int fd, void *buf, size_t len)
{
	for (int i = 0; i < 5000; i++) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

		if (n >= 0)
			return n;
		if (errno != EAGAIN)
			return -errno;
		run(s);
	}
	return -EAGAIN;
}

/* Send @len bytes from the peer and read the echo back. */
static void echo_once(struct srv *s, int fd, size_t len)
{
	char out[4096], in[4096];
	size_t got = 0;

	cr_assert_leq(len, sizeof(out));
	for (size_t i = 0; i < len; i++)
		out[i] = (char)(i * 7 + (size_t)fd);
	cr_assert_eq(send(fd, out, len, MSG_NOSIGNAL), (ssize_t)len);
	while (got < len) {
		ssize_t n = peer_recv(s, fd, in + got, len - got);

		cr_assert_gt(n, 0, "echo: recv answered %zd", n);
		got += (size_t)n;
	}
	cr_assert_eq(memcmp(in, out, len), 0, "echo differs");
}

static struct zc_reactor_stats stats(struct srv *s)
{
	struct zc_reactor_stats st;

	zc_reactor_stats(s->r, &st);
	return st;
}

Test(ffiles, conn_on_slot_sends_and_receives, .timeout = 60)
{
	struct zc_reactor_stats st;
	struct srv s;
	int fd;

	setup(&s, 16, 0);
	st = stats(&s);
	cr_assert_eq(st.fixed_slots, 16);
	fd = peer_connect(&s);
	run_until_accepted(&s, 1);
	echo_once(&s, fd, 1000);
	echo_once(&s, fd, 4096);
	st = stats(&s);
	cr_assert_eq(st.fixed_files, 1, "the connection is not on a slot");
	cr_assert_eq(st.fixed_fallbacks, 0);
	cr_assert_eq(s.rx[0], 5096);
	/* Its fd is still the socket: options go through it. */
	{
		int one = 0;
		socklen_t ol = sizeof(one);

		cr_assert_eq(getsockopt(zc_conn_fd(s.c[0]), SOL_SOCKET,
					SO_TYPE, &one, &ol), 0);
		cr_assert_eq(one, SOCK_STREAM);
	}
	close(fd);
	run_until_closed(&s, 1);
	cr_assert_eq(stats(&s).fixed_files, 0);
	teardown(&s);
}

/*
 * Close connection @k the way @how says and check the peer @fd sees it:
 * ECONNRESET for an abort, EOF for a graceful close (then the peer's own
 * EOF lets the close finish).  The abort is the close a slot would break:
 * without its clearing the socket stays open after close(fd) and the peer
 * never sees the reset.
 */
static void close_seen(struct srv *s, unsigned k, int fd,
		       enum zc_close_how how)
{
	unsigned closed = s->closed;
	char b[64];

	zc_conn_close(s->c[k], how);
	if (how == ZC_CLOSE_ABORT) {
		run_until_closed(s, closed + 1);
		cr_assert_eq(peer_recv(s, fd, b, sizeof(b)), -ECONNRESET,
			     "connection %u: the peer saw no reset", k);
	} else {
		cr_assert_eq(peer_recv(s, fd, b, sizeof(b)), 0,
			     "connection %u: no EOF at the peer", k);
		cr_assert_eq(shutdown(fd, SHUT_WR), 0);
		run_until_closed(s, closed + 1);
		cr_assert_eq(s->close_err[k], 0);
	}
}

/* One peer, its connection on a slot, closed @how. */
static void one_closed(enum zc_close_how how)
{
	struct srv s;
	int fd;

	setup(&s, 16, 0);
	fd = peer_connect(&s);
	run_until_accepted(&s, 1);
	echo_once(&s, fd, 10);
	cr_assert_eq(stats(&s).fixed_files, 1);
	close_seen(&s, 0, fd, how);
	cr_assert_eq(stats(&s).fixed_files, 0);
	close(fd);
	teardown(&s);
}

Test(ffiles, abort_resets_peer, .timeout = 60)
{
	one_closed(ZC_CLOSE_ABORT);
}

Test(ffiles, graceful_close_is_seen, .timeout = 60)
{
	one_closed(ZC_CLOSE_GRACEFUL);
}

/* More connections over time than slots: each one gets a slot, so the
 * slots of closed ones come back. */
Test(ffiles, slots_are_reused, .timeout = 120)
{
	struct zc_reactor_stats st;
	struct srv s;

	setup(&s, 2, 0);
	for (unsigned i = 0; i < 12; i++) {
		int fd = peer_connect(&s);
		unsigned k = i % MAXC;

		if (k == 0) {
			s.accepted = 0;
			s.closed = 0;
		}
		run_until_accepted(&s, k + 1);
		echo_once(&s, fd, 100);
		cr_assert_eq(stats(&s).fixed_files, 1, "round %u: no slot", i);
		close_seen(&s, k, fd, i % 2 ? ZC_CLOSE_ABORT :
					      ZC_CLOSE_GRACEFUL);
		close(fd);
	}
	st = stats(&s);
	cr_assert_eq(st.fixed_files, 0);
	cr_assert_eq(st.fixed_fallbacks, 0);
	teardown(&s);
}

/* A table of 2 and 6 connections: 2 on slots, 4 on plain fds, all work,
 * and every close is seen. */
Test(ffiles, mixed_slots_and_fds, .timeout = 60)
{
	struct zc_reactor_stats st;
	struct srv s;
	int fd[6];

	setup(&s, 2, 0);
	for (unsigned i = 0; i < 6; i++) {
		fd[i] = peer_connect(&s);
		run_until_accepted(&s, i + 1);
	}
	for (unsigned i = 0; i < 6; i++)
		echo_once(&s, fd[i], 500);
	st = stats(&s);
	cr_assert_eq(st.fixed_files, 2);
	cr_assert_eq(st.fixed_fallbacks, 4);
	for (unsigned i = 0; i < 6; i++) {
		close_seen(&s, i, fd[i], i % 2 ? ZC_CLOSE_ABORT :
						 ZC_CLOSE_GRACEFUL);
		close(fd[i]);
	}
	cr_assert_eq(stats(&s).fixed_files, 0);
	teardown(&s);
}

Test(ffiles, feature_off, .timeout = 60)
{
	struct zc_reactor_stats st;
	struct srv s;
	int fd;

	setup(&s, 0, ZC_REACTOR_NO_FIXED_FILES);
	fd = peer_connect(&s);
	run_until_accepted(&s, 1);
	echo_once(&s, fd, 3000);
	st = stats(&s);
	cr_assert_eq(st.fixed_slots, 0);
	cr_assert_eq(st.fixed_files, 0);
	cr_assert_eq(st.fixed_fallbacks, 0);
	close_seen(&s, 0, fd, ZC_CLOSE_ABORT);
	close(fd);
	teardown(&s);
}

/* A table the kernel refuses (more slots than RLIMIT_NOFILE): the reactor
 * is created all the same and serves on plain fds. */
Test(ffiles, refused_table_uses_plain_fds, .timeout = 60)
{
	struct rlimit rl;
	struct srv s;
	int fd;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	cr_assert_lt(rl.rlim_cur, UINT_MAX);
	setup(&s, (unsigned)rl.rlim_cur + 1, 0);
	cr_assert_eq(stats(&s).fixed_slots, 0);
	fd = peer_connect(&s);
	run_until_accepted(&s, 1);
	echo_once(&s, fd, 2000);
	cr_assert_eq(stats(&s).fixed_files, 0);
	close_seen(&s, 0, fd, ZC_CLOSE_ABORT);
	close(fd);
	teardown(&s);
}

/* A stack client (zc_connect) takes a slot too: both ends on slots. */
static void c_connect(struct zc_conn *c, void *ud)
{
	(void)c;
	*(bool *)ud = true;
}

static void c_close(struct zc_conn *c, int err, void *ud)
{
	(void)c;
	(void)err;
	(void)ud;
}

Test(ffiles, connected_conn_takes_a_slot, .timeout = 60)
{
	static const struct zc_conn_ops c_ops = { .on_connect = c_connect,
						  .on_close = c_close };
	struct sockaddr_storage ss;
	struct zc_conn *cc;
	bool connected = false;
	struct srv s;
	socklen_t sl;

	setup(&s, 0, 0); /* the default size */
	cr_assert_gt(stats(&s).fixed_slots, 1);
	hs_addr(&ss, &sl, zc_listener_port(s.l));
	cr_assert_eq(zc_connect(s.r, (struct sockaddr *)&ss, sl, 5000, &c_ops,
				&connected, &cc), 0);
	run_until_accepted(&s, 1);
	for (int i = 0; i < 5000 && !connected; i++)
		run(&s);
	cr_assert(connected);
	run(&s);
	cr_assert_eq(stats(&s).fixed_files, 2);
	zc_conn_close(cc, ZC_CLOSE_ABORT);
	run_until_closed(&s, 1);
	cr_assert_eq(s.close_err[0], -ECONNRESET);
	cr_assert_eq(stats(&s).fixed_files, 0);
	teardown(&s);
}
