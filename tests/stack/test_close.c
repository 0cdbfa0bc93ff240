/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_close.c - closes in every order: peer reset in the
 * middle of zero-copy sends, abort while notifications are pending,
 * graceful close flushing its queue, failed and timed-out connects.
 *
 * One reactor on the test thread holds both ends, driven by
 * zc_reactor_run_once(), so every step is deterministic.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

struct end {
	struct zc_conn *c;
	bool connected, closed;
	int err;
	unsigned sends, dones, done_errs;
	unsigned dones_at_close;
	uint64_t rx;
	bool hold;                /* never give receive credit back */
};

struct world {
	struct zc_reactor *r;
	struct zc_listener *l;
	struct end cli, srv;
};

static void e_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	struct end *e = ud;

	e->rx += zc_chain_len(d);
	if (!e->hold)
		zc_conn_recv_done(c, zc_chain_len(d));
	zc_chain_release(d);
}

static void e_connect(struct zc_conn *c, void *ud)
{
	((struct end *)ud)->connected = true;
}

static void e_close(struct zc_conn *c, int err, void *ud)
{
	struct end *e = ud;

	cr_assert_not(e->closed, "on_close twice");
	e->closed = true;
	e->err = err;
	e->dones_at_close = e->dones;
}

static const struct zc_conn_ops e_ops = {
	.on_connect = e_connect,
	.on_data = e_data,
	.on_close = e_close,
};

static void e_done(void *arg, int err)
{
	struct end *e = arg;

	cr_assert_not(e->closed, "done after on_close");
	e->dones++;
	if (err)
		e->done_errs++;
}

static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct world *w = ud;

	w->srv.c = c;
	zc_conn_set_ops(c, &e_ops, &w->srv);
	if (w->srv.hold)
		zc_conn_set_rx_budget(c, 64 * 1024);
}

static void spin(struct world *w, bool *flag)
{
	for (int i = 0; i < 3000 && !*flag; i++)
		cr_assert_geq(zc_reactor_run_once(w->r, 10000), 0);
	cr_assert(*flag, "condition not reached");
}

static void setup(struct world *w, enum zc_send_mode mode, bool hold)
{
	struct zc_reactor_config rc = { .send_mode = mode,
					.sndq_max = 16u << 20 };
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(w, 0, sizeof(*w));
	w->srv.hold = hold;
	cr_assert_eq(zc_reactor_create(&rc, &w->r), 0);
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_listen(w->r, (struct sockaddr *)&ss, sl, 0, on_accept,
			       w, &w->l), 0);
	hs_addr(&ss, &sl, zc_listener_port(w->l));
	cr_assert_eq(zc_connect(w->r, (struct sockaddr *)&ss, sl, 2000, &e_ops,
				&w->cli, &w->cli.c), 0);
	spin(w, &w->cli.connected);
	while (!w->srv.c)
		zc_reactor_run_once(w->r, 10000);
}

/* Memory the test owns; freed by the release callback. */
static void free_release(void *arg, void *data)
{
	free(data);
}

static int send_big(struct world *w, struct end *e, size_t len)
{
	struct zc_chain ch;
	struct zc_buf *b;
	struct zc_view v;
	char *mem = malloc(len);
	int ret;

	cr_assert_not_null(mem);
	memset(mem, 0x5a, len);
	cr_assert_eq(zc_buf_wrap(zc_reactor_pool(w->r), mem, len, free_release,
				 NULL, &b), 0);
	cr_assert_eq(zc_view_adopt(&v, b, 0, len), 0);
	zc_chain_init(&ch);
	cr_assert_eq(zc_chain_append(&ch, &v), 0);
	ret = zc_conn_send(e->c, &ch, e_done, e);
	if (ret)
		zc_chain_release(&ch);
	else
		e->sends++;
	return ret;
}

static void finish(struct world *w)
{
	struct zc_reactor_stats st;

	zc_reactor_stats(w->r, &st);
	cr_assert_eq(st.notifs, st.tx_zc, "every zero-copy send notified");
	zc_listener_close(w->l);
	cr_assert_eq(zc_reactor_destroy(w->r), 0);
}

Test(stack_close, peer_reset_during_zc_sends)
{
	struct world w;

	setup(&w, ZC_SEND_ZC, true);
	/* The server stops reading at 64 KiB: most of this stays queued. */
	for (int i = 0; i < 8; i++)
		cr_assert_eq(send_big(&w, &w.cli, 1u << 20), 0);
	for (int i = 0; i < 50; i++)
		zc_reactor_run_once(w.r, 1000);
	zc_conn_close(w.srv.c, ZC_CLOSE_ABORT); /* RST to the client */
	spin(&w, &w.cli.closed);
	spin(&w, &w.srv.closed);
	cr_assert_eq(w.srv.err, -ECANCELED);
	cr_assert(w.cli.err == -ECONNRESET || w.cli.err == -EPIPE,
		  "client err %d", w.cli.err);
	/* Every send completed exactly once, before on_close. */
	cr_assert_eq(w.cli.dones, w.cli.sends);
	cr_assert_eq(w.cli.dones_at_close, w.cli.sends);
	cr_assert_gt(w.cli.done_errs, 0);
	finish(&w);
}

Test(stack_close, abort_with_notifications_pending)
{
	struct world w;
	struct zc_reactor_stats st;

	setup(&w, ZC_SEND_ZC, true);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(send_big(&w, &w.cli, 1u << 20), 0);
	for (int i = 0; i < 20; i++)
		zc_reactor_run_once(w.r, 1000);
	zc_reactor_stats(w.r, &st);
	cr_assert_gt(st.tx_zc, 0);
	cr_assert_gt(zc_conn_sndq_bytes(w.cli.c), 0);
	zc_conn_close(w.cli.c, ZC_CLOSE_ABORT);
	cr_assert_not(w.cli.closed, "on_close never runs inside close");
	spin(&w, &w.cli.closed);
	cr_assert_eq(w.cli.err, -ECANCELED);
	cr_assert_eq(w.cli.dones_at_close, w.cli.sends);
	cr_assert_gt(w.cli.done_errs, 0);
	spin(&w, &w.srv.closed);
	finish(&w);
}

Test(stack_close, graceful_flushes_queue)
{
	struct world w;
	size_t total = 0;

	setup(&w, ZC_SEND_AUTO, false);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(send_big(&w, &w.cli, 1u << 20), 0);
		total += 1u << 20;
	}
	cr_assert_eq(zc_conn_send_copy(w.cli.c, "tail", 4), 0);
	total += 4;
	zc_conn_close(w.cli.c, ZC_CLOSE_GRACEFUL);
	cr_assert_eq(zc_conn_send_copy(w.cli.c, "late", 4), -EPIPE);
	spin(&w, &w.srv.closed); /* EOF: the server closes after its flush */
	spin(&w, &w.cli.closed);
	cr_assert_eq(w.srv.rx, total);
	cr_assert_eq(w.cli.err, 0);
	cr_assert_eq(w.srv.err, 0);
	cr_assert_eq(w.cli.dones, w.cli.sends);
	cr_assert_eq(w.cli.done_errs, 0);
	finish(&w);
}

Test(stack_close, connect_refused)
{
	struct zc_reactor *r;
	struct end e = { 0 };
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct world w = { 0 };

	/* A port nobody listens on: bind without listen. */
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	cr_assert_eq(zc_reactor_create(NULL, &r), 0);
	w.r = r;
	cr_assert_eq(zc_connect(r, (struct sockaddr *)&ss, sl, 2000, &e_ops, &e,
				NULL), 0);
	spin(&w, &e.closed);
	cr_assert_not(e.connected);
	cr_assert_eq(e.err, -ECONNREFUSED);
	close(fd);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

Test(stack_close, connect_timeout)
{
	struct zc_reactor *r;
	struct end e = { 0 };
	struct sockaddr_storage ss;
	socklen_t sl;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[4];
	struct world w = { 0 };

	/* A listener whose accept queue is full drops new SYNs: the connect
	 * hangs until our linked timeout cancels it. */
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(listen(lfd, 0), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&ss, &sl), 0);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&ss, sl);
	}
	usleep(20000);
	cr_assert_eq(zc_reactor_create(NULL, &r), 0);
	w.r = r;
	cr_assert_eq(zc_connect(r, (struct sockaddr *)&ss, sl, 200, &e_ops, &e,
				NULL), 0);
	spin(&w, &e.closed);
	cr_assert_not(e.connected);
	cr_assert_eq(e.err, -ETIMEDOUT, "err %d", e.err);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}
