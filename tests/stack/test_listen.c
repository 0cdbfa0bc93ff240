/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_listen.c - listeners (stack/listen.c), with multishot
 * accept and with ZC_LISTEN_ONESHOT_ACCEPT: every connection reaches
 * on_accept exactly once, a listener closes with its accept pending or
 * from inside on_accept, accepting resumes after running out of fds, and
 * bad flags are refused.
 *
 * One reactor on the test thread, driven by zc_reactor_run_once(); the
 * clients are plain blocking sockets, whose connects complete into the
 * listen backlog before the reactor runs.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define NCLIENTS 256

struct lt {
	struct zc_reactor *r;
	struct zc_listener *l;
	unsigned accepted, closed;
	bool close_in_accept;          /* close the listener at the first */
	uint16_t cli_port[NCLIENTS];   /* each client's local port */
	unsigned seen[NCLIENTS];       /* on_accept calls per client */
	unsigned nclients;
};

static void lt_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	zc_conn_recv_done(c, zc_chain_len(d));
	zc_chain_release(d);
}

static void lt_close(struct zc_conn *c, int err, void *ud)
{
	((struct lt *)ud)->closed++;
}

static const struct zc_conn_ops lt_ops = {
	.on_data = lt_data,
	.on_close = lt_close,
};

/* The client whose local port is @c's peer port. */
static void lt_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct lt *t = ud;
	char peer[ZC_PEER_MAX], *colon;
	unsigned long port;
	unsigned i;

	cr_assert_gt(zc_conn_peer(c, peer, sizeof(peer)), 0);
	colon = strrchr(peer, ':');
	cr_assert_not_null(colon);
	port = strtoul(colon + 1, NULL, 10);
	for (i = 0; i < t->nclients && t->cli_port[i] != port; i++)
		;
	cr_assert_lt(i, t->nclients, "unknown peer %s", peer);
	t->seen[i]++;
	t->accepted++;
	zc_conn_set_ops(c, &lt_ops, t);
	if (t->close_in_accept)
		zc_listener_close(l);
}

static void lt_setup(struct lt *t, unsigned flags)
{
	struct zc_reactor_config rc = { 0 };
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(t, 0, sizeof(*t));
	cr_assert_eq(zc_reactor_create(&rc, &t->r), 0);
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_listen(t->r, (struct sockaddr *)&ss, sl, flags,
			       lt_accept, t, &t->l), 0);
}

/* @n more plain clients, connected (into the backlog); their fds in @fds. */
static void lt_connect(struct lt *t, unsigned n, int *fds)
{
	struct sockaddr_storage ss;
	struct sockaddr_in me;
	socklen_t sl, ml = sizeof(me);

	hs_addr(&ss, &sl, zc_listener_port(t->l));
	for (unsigned i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(connect(fds[i], (struct sockaddr *)&ss, sl), 0,
			     "connect %u: %s", i, strerror(errno));
		cr_assert_eq(getsockname(fds[i], (struct sockaddr *)&me, &ml),
			     0);
		t->cli_port[t->nclients++] = ntohs(me.sin_port);
	}
}

/* Run the reactor until *@count reaches @want (3000 rounds of at most
 * 10 ms at most). */
static void lt_spin(struct lt *t, const unsigned *count, unsigned want)
{
	for (int i = 0; i < 3000 && *count < want; i++)
		cr_assert_geq(zc_reactor_run_once(t->r, 10000), 0);
	cr_assert_eq(*count, want, "reached %u of %u", *count, want);
}

/* Close every client, wait for the server's ends, free everything. */
static void lt_finish(struct lt *t, int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	lt_spin(t, &t->closed, t->accepted);
	zc_listener_close(t->l);
	/* The listener's cancelled accept completes before destroy. */
	for (int i = 0; i < 10; i++)
		cr_assert_geq(zc_reactor_run_once(t->r, 1000), 0);
	cr_assert_eq(zc_reactor_destroy(t->r), 0);
}

static void accept_many(unsigned flags)
{
	struct zc_reactor_stats st;
	int fds[NCLIENTS];
	struct lt t;

	lt_setup(&t, flags);
	lt_connect(&t, NCLIENTS, fds);
	lt_spin(&t, &t.accepted, NCLIENTS);
	for (unsigned i = 0; i < NCLIENTS; i++)
		cr_assert_eq(t.seen[i], 1, "client %u accepted %u times", i,
			     t.seen[i]);
	zc_reactor_stats(t.r, &st);
	cr_assert_eq(st.accepted, NCLIENTS);
	cr_assert_eq(st.conns_open, NCLIENTS);
	if (flags & ZC_LISTEN_ONESHOT_ACCEPT)
		/* One armed at listen, one more after each completion. */
		cr_assert_eq(st.accept_arms, NCLIENTS + 1);
	else
		cr_assert_lt(st.accept_arms, NCLIENTS / 2,
			     "multishot re-armed %llu times",
			     (unsigned long long)st.accept_arms);
	lt_finish(&t, fds, NCLIENTS);
}

Test(stack_listen, multishot_accepts_each_once)
{
	accept_many(0);
}

Test(stack_listen, oneshot_accepts_each_once)
{
	accept_many(ZC_LISTEN_ONESHOT_ACCEPT);
}

/* Closed with its accept armed and nothing arriving; a connect after the
 * close is refused. */
static void close_pending(unsigned flags)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct lt t;
	int fd;

	lt_setup(&t, flags);
	for (int i = 0; i < 5; i++)
		cr_assert_geq(zc_reactor_run_once(t.r, 1000), 0);
	hs_addr(&ss, &sl, zc_listener_port(t.l));
	zc_listener_close(t.l);
	for (int i = 0; i < 10; i++)
		cr_assert_geq(zc_reactor_run_once(t.r, 1000), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_neq(connect(fd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(errno, ECONNREFUSED);
	close(fd);
	cr_assert_eq(t.accepted, 0);
	cr_assert_eq(zc_reactor_destroy(t.r), 0);
}

Test(stack_listen, multishot_close_with_accept_pending)
{
	close_pending(0);
}

Test(stack_listen, oneshot_close_with_accept_pending)
{
	close_pending(ZC_LISTEN_ONESHOT_ACCEPT);
}

/* on_accept closes the listener with a second connection queued: that one
 * never reaches on_accept, and nothing leaks. */
static void close_in_accept(unsigned flags)
{
	struct zc_reactor_stats st;
	int fds[2];
	struct lt t;

	lt_setup(&t, flags);
	t.close_in_accept = true;
	lt_connect(&t, 2, fds);
	lt_spin(&t, &t.accepted, 1);
	for (int i = 0; i < 20; i++)
		cr_assert_geq(zc_reactor_run_once(t.r, 1000), 0);
	cr_assert_eq(t.accepted, 1);
	zc_reactor_stats(t.r, &st);
	cr_assert_eq(st.accepted, 1);
	close(fds[0]);
	close(fds[1]);
	lt_spin(&t, &t.closed, 1);
	cr_assert_eq(zc_reactor_destroy(t.r), 0);
}

Test(stack_listen, multishot_close_in_on_accept)
{
	close_in_accept(0);
}

Test(stack_listen, oneshot_close_in_on_accept)
{
	close_in_accept(ZC_LISTEN_ONESHOT_ACCEPT);
}

/* Log sink: counts "accept failed" warnings. */
static atomic_uint accept_failed;

static void count_log(void *arg, const struct zc_log_record *rec)
{
	if (!strcmp(rec->reason, "accept failed"))
		atomic_fetch_add(&accept_failed, 1);
}

static const struct zc_log_sink count_sink = {
	.fn = count_log,
	.level = ZC_LOG_WARN,
};

/*
 * Out of fds (RLIMIT_NOFILE at the lowest free fd): the accept fails
 * with EMFILE, is logged and retried after 10 ms; once fds are allowed
 * again every queued connection is accepted, each once.
 */
static void retry_emfile(unsigned flags)
{
	enum { N = 4 };
	struct rlimit rl, low;
	int fds[N], lowest;
	struct lt t;

	lt_setup(&t, flags);
	lt_connect(&t, N, fds);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	lowest = dup(0);
	cr_assert_geq(lowest, 0);
	close(lowest);
	low = rl;
	low.rlim_cur = (rlim_t)lowest;
	atomic_store(&accept_failed, 0);
	zc_log_set(&count_sink);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (int i = 0; i < 300 && atomic_load(&accept_failed) < 2; i++)
		cr_assert_geq(zc_reactor_run_once(t.r, 10000), 0);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	cr_assert_geq(atomic_load(&accept_failed), 2,
		      "retried after EMFILE, and failed again");
	cr_assert_eq(t.accepted, 0);
	lt_spin(&t, &t.accepted, N);
	zc_log_set(NULL);
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(t.seen[i], 1);
	lt_finish(&t, fds, N);
}

Test(stack_listen, multishot_retries_after_emfile)
{
	retry_emfile(0);
}

Test(stack_listen, oneshot_retries_after_emfile)
{
	retry_emfile(ZC_LISTEN_ONESHOT_ACCEPT);
}

static void nop_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
}

Test(stack_listen, bad_flags_refused)
{
	struct zc_reactor_config rc = { 0 };
	struct zc_listener *l = NULL;
	struct sockaddr_storage ss;
	struct zc_reactor *r;
	struct zc_addr ua;
	char name[64];
	socklen_t sl;
	int fd;

	cr_assert_eq(zc_reactor_create(&rc, &r), 0);
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_listen(r, (struct sockaddr *)&ss, sl, 1u << 7,
			       nop_accept, NULL, &l), -EINVAL);
	cr_assert_eq(zc_listen(r, (struct sockaddr *)&ss, sl,
			       ZC_LISTEN_ONESHOT_ACCEPT | (1u << 7),
			       nop_accept, NULL, &l), -EINVAL);
	/* Unix: oneshot yes, REUSEPORT still no, with or without it. */
	snprintf(name, sizeof(name), "unix:@zc-test-listen-%d", (int)getpid());
	cr_assert_eq(zc_addr_resolve(name, 0, &ua, 1), 1);
	cr_assert_eq(zc_listen(r, (struct sockaddr *)&ua.ss, ua.len,
			       ZC_LISTEN_ONESHOT_ACCEPT | ZC_LISTEN_REUSEPORT,
			       nop_accept, NULL, &l), -EINVAL);
	cr_assert_eq(zc_listen(r, (struct sockaddr *)&ua.ss, ua.len,
			       ZC_LISTEN_ONESHOT_ACCEPT, nop_accept, NULL,
			       &l), 0);
	zc_listener_close(l);
	/* zc_listen_fd: the socket's options are the caller's. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(zc_listen_fd(r, fd, ZC_LISTEN_REUSEPORT, nop_accept,
				  NULL, &l), -EINVAL);
	cr_assert_eq(zc_listen_fd(r, fd, 1u << 7, nop_accept, NULL, &l),
		     -EINVAL);
	cr_assert_eq(zc_listen_fd(r, fd, ZC_LISTEN_ONESHOT_ACCEPT, nop_accept,
				  NULL, &l), 0);
	zc_listener_close(l);
	close(fd);
	for (int i = 0; i < 10; i++)
		cr_assert_geq(zc_reactor_run_once(r, 1000), 0);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* zc_listen_fd() with the flag: accepts on the caller's socket, one
 * single-shot accept per connection. */
Test(stack_listen, listen_fd_oneshot_accepts)
{
	struct zc_reactor_config rc = { 0 };
	struct zc_reactor_stats st;
	struct sockaddr_storage ss;
	struct sockaddr_in bound;
	socklen_t sl, bl = sizeof(bound);
	int lfd, fds[8];
	struct lt t;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(zc_reactor_create(&rc, &t.r), 0);
	hs_addr(&ss, &sl, 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(listen(lfd, 64), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&bound, &bl), 0);
	cr_assert_eq(zc_listen_fd(t.r, lfd, ZC_LISTEN_ONESHOT_ACCEPT,
				  lt_accept, &t, &t.l), 0);
	cr_assert_eq(zc_listener_port(t.l), ntohs(bound.sin_port));
	lt_connect(&t, 8, fds);
	lt_spin(&t, &t.accepted, 8);
	zc_reactor_stats(t.r, &st);
	cr_assert_eq(st.accept_arms, 8 + 1);
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(t.seen[i], 1);
	lt_finish(&t, fds, 8);
	close(lfd);
}
