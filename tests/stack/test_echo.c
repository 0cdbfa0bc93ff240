/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_echo.c - the raw echo server: a plain blocking socket
 * client gets its bytes back and an EOF after them; a thousand concurrent
 * connections each get exactly their own bytes back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

struct srv {
	struct zc_reactor *r;
	struct zc_listener *l;
};

static int echo_listen_fn(void *arg)
{
	struct srv *s = arg;
	struct sockaddr_storage ss;
	socklen_t sl;

	hs_addr(&ss, &sl, 0);
	return zc_echo_listen(s->r, (struct sockaddr *)&ss, sl,
			      ZC_LISTEN_REUSEPORT, &s->l);
}

static void srv_start(struct srv *s, const struct zc_reactor_config *rc)
{
	cr_assert_eq(zc_reactor_spawn(rc, &s->r), 0);
	cr_assert_eq(zc_reactor_call(s->r, echo_listen_fn, s), 0);
}

static void srv_stop(struct srv *s, struct zc_reactor_stats *st)
{
	zc_reactor_stats(s->r, st);
	cr_assert_eq(zc_reactor_destroy(s->r), 0);
}

struct writer {
	int fd;
	size_t total;
	uint64_t seed;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	static char buf[100000];
	size_t off = 0;

	while (off < w->total) {
		size_t n = w->total - off < sizeof(buf) ? w->total - off :
							   sizeof(buf);
		ssize_t k;

		hs_fill(w->seed, off, buf, n);
		k = write(w->fd, buf, n);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

Test(stack_echo, blocking_client_gets_bytes_and_eof)
{
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };
	struct zc_reactor_stats st;
	struct srv s;
	struct writer w = { .total = ZC_TEST_SANITIZED ? (4u << 20) : (32u << 20),
			    .seed = 77 };
	struct sockaddr_storage ss;
	socklen_t sl;
	pthread_t t;
	static char buf[65536];
	size_t got = 0, bad = 0;
	ssize_t k;

	srv_start(&s, &rc);
	hs_addr(&ss, &sl, zc_listener_port(s.l));
	w.fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(w.fd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	while ((k = read(w.fd, buf, sizeof(buf))) > 0) {
		bad += hs_count_bad(w.seed, got, buf, (size_t)k);
		got += (size_t)k;
	}
	cr_assert_eq(k, 0, "EOF expected, got %zd", k);
	pthread_join(t, NULL);
	close(w.fd);
	cr_assert_eq(got, w.total);
	cr_assert_eq(bad, 0);
	srv_stop(&s, &st);
	cr_assert_eq(st.rx_bytes, w.total);
	cr_assert_eq(st.tx_bytes, w.total);
	cr_assert_eq(st.accepted, 1);
	cr_assert_eq(st.conn_errors, 0);
}

/* -------------------------------------------------------------------------
 * Many connections, driven from the test thread's own reactor.
 */

#define MANY_MSG 3000

struct mc {
	struct zc_conn *c;
	uint64_t seed;
	size_t got, bad;
	bool closed;
	int err;
};

struct many {
	unsigned n, connected, closed, errs;
	size_t got, bad;
};

static struct many M;

static void mc_connect(struct zc_conn *c, void *ud)
{
	struct mc *m = ud;
	char msg[MANY_MSG];

	M.connected++;
	hs_fill(m->seed, 0, msg, sizeof(msg));
	cr_assert_eq(zc_conn_send_copy(c, msg, sizeof(msg)), 0);
}

static void mc_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	struct mc *m = ud;

	for (unsigned i = 0; i < zc_chain_nviews(d); i++) {
		const struct zc_view *v = zc_chain_view(d, i);

		m->bad += hs_count_bad(m->seed, m->got, zc_view_data(v), v->len);
		m->got += v->len;
	}
	zc_chain_release(d);
	if (m->got >= MANY_MSG)
		zc_conn_close(c, ZC_CLOSE_GRACEFUL);
}

static void mc_close(struct zc_conn *c, int err, void *ud)
{
	struct mc *m = ud;

	m->closed = true;
	m->err = err;
	M.closed++;
	M.got += m->got;
	M.bad += m->bad;
	if (err)
		M.errs++;
}

static const struct zc_conn_ops mc_ops = {
	.on_connect = mc_connect,
	.on_data = mc_data,
	.on_close = mc_close,
};

Test(stack_echo, thousand_connections)
{
	unsigned n = 1000;
	struct zc_reactor_config rc = { .rxbuf_size = 4096,
					.rx_ring_entries = 256 };
	struct zc_reactor_stats st;
	struct zc_reactor *cr;
	struct srv s;
	struct mc *ms = calloc(n, sizeof(*ms));
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned long lim = hs_raise_nofile();

	cr_assert_not_null(ms);
	cr_assert_geq(lim, 2 * n + 64, "RLIMIT_NOFILE %lu too low for %u "
		      "connections", lim, n);
	memset(&M, 0, sizeof(M));
	srv_start(&s, &rc);
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	hs_addr(&ss, &sl, zc_listener_port(s.l));
	for (unsigned i = 0; i < n; i++) {
		ms[i].seed = 1000 + i;
		cr_assert_eq(zc_connect(cr, (struct sockaddr *)&ss, sl, 10000,
					&mc_ops, &ms[i], &ms[i].c), 0);
	}
	for (int i = 0; i < 4000 && M.closed < n; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	cr_assert_eq(M.closed, n, "closed %u connected %u", M.closed,
		     M.connected);
	cr_assert_eq(M.errs, 0);
	cr_assert_eq(M.bad, 0);
	cr_assert_eq(M.got, (size_t)n * MANY_MSG);
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	/* The server sees each EOF and closes on its own. */
	for (int i = 0; i < 500; i++) {
		zc_reactor_stats(s.r, &st);
		if (st.closed == n)
			break;
		usleep(10000);
	}
	srv_stop(&s, &st);
	cr_assert_eq(st.accepted, n);
	cr_assert_eq(st.closed, n);
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.rx_bytes, (uint64_t)n * MANY_MSG);
	free(ms);
}
