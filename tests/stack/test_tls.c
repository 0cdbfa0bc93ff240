/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_tls.c - TLS connections of the stack (stack/tls*.c):
 * byte streams both ways over TLS, verified byte by byte with memory
 * scribbled on release, also with an empty pool (with and without a
 * receive budget), with records cut across receive batches
 * (rx_batch_bytes) and with a KeyUpdate of ours every 2 records; each handshake refusal ends with its error on the
 * refused side and a counter on the server, nothing leaked (every reactor
 * destroys to 0); a flood of stalled handshakes is capped and timed out
 * while an established connection keeps being served; a reset mid-record
 * closes that connection only.  Certificates are made at test time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "tls_certs.h"

static struct tc T;

static void certs(void)
{
	cr_assert_eq(tc_make(&T), 0, "making certificates");
}

static void certs_drop(void)
{
	tc_drop(&T);
}

static struct zc_tls_ctx *server_ctx(const char *leaf,
				     enum zc_tls_verify verify,
				     unsigned timeout_ms, unsigned max_hs)
{
	struct zc_tls_ctx *ctx;

	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_SERVER, .verify = verify,
				.handshake_timeout_ms = timeout_ms,
				.max_handshakes = max_hs },
			    leaf, "ca", &ctx), 0);
	return ctx;
}

/* @leaf: client certificate or NULL; @ca: the bundle it trusts. */
static struct zc_tls_ctx *client_ctx(const char *leaf, const char *ca,
				     const char *host)
{
	struct zc_tls_ctx *ctx;

	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_CLIENT, .server_name = host },
			    leaf, ca, &ctx), 0);
	return ctx;
}

/* -------------------------------------------------------------------------
 * Streams
 */

/* One stream run's shape; zeroed fields take the harness's defaults. */
struct sopt {
	size_t max_msg, total;
	bool consumer;     /* verify and release on a consumer thread */
	/* The pool has @spare buffers beyond the receive ring, and the
	 * consumer is slow: it holds far more plaintext than the pool has. */
	unsigned spare;
	bool no_budget;    /* rx_budget 0, else 8 MiB */
	size_t rx_batch_bytes;
	unsigned rxbuf_size; /* [64 KiB] */
	uint64_t key_update_records; /* both contexts [default] */
};

static struct hs_result stream(const struct sopt *o)
{
	struct zc_tls_ctx *s, *c;
	struct hs_cfg cfg = {
		/* A receive budget bounds what consumers hold; opened
		 * records then go to memory of their own when the pool is
		 * empty.  Without one, an empty pool stops the reading
		 * until buffers come back (see docs/SECURITY.md). */
		.rc = { .rxbuf_size = o->rxbuf_size ? o->rxbuf_size : 65536,
			.rx_budget = o->no_budget ? 0 : 8u << 20,
			.rx_batch_bytes = o->rx_batch_bytes,
			.rx_ring_entries = o->spare ? 16 : 0,
			.pool_bytes = o->spare ? (16 + o->spare) * 65536 : 0 },
		.consumer_delay_us = o->spare ? 200 : 0,
		.conns = 2,
		.total = o->total,
		.max_msg = o->max_msg,
		.server_sends = true,
		.consumer_thread = o->consumer,
		/* Sent from wrapped malloc memory that is overwritten once
		 * the stack releases it: a plaintext byte read after its
		 * release would reach the peer corrupted. */
		.wrap = o->consumer,
		.scribble = o->consumer,
		.timeout_s = 60,
	};
	struct hs_result res;

	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_SERVER,
				.verify = ZC_TLS_VERIFY_REQUIRE,
				.key_update_records = o->key_update_records },
			    "server", "ca", &s), 0);
	cr_assert_eq(tc_ctx(&T, (struct zc_tls_config){
				.role = ZC_TLS_CLIENT, .server_name = "localhost",
				.key_update_records = o->key_update_records },
			    "client", "ca", &c), 0);
	cfg.tls_server = s;
	cfg.tls_client = c;
	hs_run(&cfg, &res);
	zc_tls_ctx_put(s);
	zc_tls_ctx_put(c);
	cr_assert_null(res.failed, "%s", res.failed);
	cr_assert(!res.timed_out);
	cr_assert_eq(res.bytes_bad, 0, "corrupted bytes: %llu",
		     (unsigned long long)res.bytes_bad);
	cr_assert_eq(res.bytes_rx, 2 * cfg.conns * o->total);
	cr_assert_eq(res.close_errs, 0);
	cr_assert_eq(res.st[0].tls_handshakes, cfg.conns);
	cr_assert_eq(res.st[1].tls_handshakes, cfg.conns);
	cr_assert_eq(res.st[0].tls_failed, 0);
	cr_assert_eq(res.st[0].tls_bad_records + res.st[1].tls_bad_records, 0);
	/* Ciphertext is larger than the plaintext it carries. */
	cr_assert_gt(res.st[1].tx_bytes, cfg.conns * o->total);
	return res;
}

Test(stack_tls, small_messages_both_ways, .init = certs, .fini = certs_drop)
{
	stream(&(struct sopt){ .max_msg = 300,
			       .total = ZC_TEST_SANITIZED ? (1u << 20) : (8u << 20) });
}

/* Messages up to 16 MiB, verified and released on another thread, the
 * memory scribbled once released: a buffer reused too early shows. */
Test(stack_tls, large_messages_scribbled, .init = certs, .fini = certs_drop)
{
	stream(&(struct sopt){ .max_msg = 16u << 20, .consumer = true,
			       .total = ZC_TEST_SANITIZED ? (24u << 20) : (96u << 20) });
}

/* An empty pool does not fail a session with a receive budget (it was
 * closed with -ENOBUFS): records are opened and sealed into memory of
 * their own while the pool is dry, and every byte still arrives. */
Test(stack_tls, empty_pool_does_not_fail_the_session, .init = certs,
     .fini = certs_drop)
{
	struct hs_result res = stream(&(struct sopt){
		.max_msg = 256u << 10, .consumer = true, .spare = 2,
		.total = ZC_TEST_SANITIZED ? (1u << 20) : (4u << 20) });

	/* The pool did run dry. */
	cr_assert_gt(res.st[0].pool.pool_empty + res.st[1].pool.pool_empty, 0);
}

/* Nor without a budget (then it was closed with -ENOBUFS): nothing bounds
 * memory of its own there, so the session stops reading while the pool is
 * dry and opens the waiting records once the consumer gives buffers back;
 * every byte arrives, in order. */
Test(stack_tls, empty_pool_without_budget_waits, .init = certs,
     .fini = certs_drop)
{
	struct hs_result res = stream(&(struct sopt){
		.max_msg = 256u << 10, .consumer = true, .spare = 2,
		.no_budget = true,
		.total = ZC_TEST_SANITIZED ? (1u << 20) : (4u << 20) });

	cr_assert_gt(res.st[0].tls_rx_stalls + res.st[1].tls_rx_stalls, 0);
}

/* The smallest pool a reactor takes, its ring and one buffer: whenever the
 * ring held all but what waiting ciphertext holds, an opening found no
 * buffer, and none came back (no connection reads while it waits to open,
 * and the consumers held nothing).  The ring leaves the openings their
 * reserve, so the streams complete. */
Test(stack_tls, pool_of_ring_and_one_buffer_still_opens, .init = certs,
     .fini = certs_drop)
{
	struct hs_result res = stream(&(struct sopt){
		.max_msg = 256u << 10, .consumer = true, .spare = 1,
		.no_budget = true,
		.total = ZC_TEST_SANITIZED ? (1u << 20) : (4u << 20) });

	cr_assert_gt(res.st[0].tls_rx_stalls + res.st[1].tls_rx_stalls, 0);
}

/* Both sides send a KeyUpdate after every 2 records they seal (our
 * record layer reading our own): messages of every size up to 1 MiB
 * still arrive byte-identical across thousands of keys, both ways. */
Test(stack_tls, key_updates_of_ours_both_ways, .init = certs,
     .fini = certs_drop)
{
	size_t total = ZC_TEST_SANITIZED ? (2u << 20) : (16u << 20);
	struct hs_result res = stream(&(struct sopt){
		.max_msg = 1u << 20, .consumer = true, .total = total,
		.key_update_records = 2 });

	for (int i = 0; i < 2; i++) {
		uint64_t sent = res.st[!i].tls_key_updates_sent,
			 got = res.st[i].tls_key_updates;

		/* At least total / 2^14 records per connection, one key for
		 * each two. */
		cr_assert_geq(sent, (total >> 14) - 2);
		/* Every one sent was received, but for one before each
		 * close_notify the peer may have closed without reading. */
		cr_assert(got <= sent && got + 2 >= sent, "got %llu sent %llu",
			  (unsigned long long)got, (unsigned long long)sent);
	}
}

/* The per-batch receive limit (rx_batch_bytes) far below a record: each
 * record arrives over several batches, and messages of every size from
 * 1 B to 1 MiB come through byte-identical, both ways. */
Test(stack_tls, records_across_receive_batches, .init = certs,
     .fini = certs_drop)
{
	struct hs_result res = stream(&(struct sopt){
		.max_msg = 1u << 20, .consumer = true, .rxbuf_size = 4096,
		.rx_batch_bytes = 6000,
		.total = ZC_TEST_SANITIZED ? (2u << 20) : (16u << 20) });

	/* The limit did cut receives (as in test_fair.c). */
	cr_assert_gt(res.st[0].rx_batch_limits, 0);
	cr_assert_gt(res.st[1].rx_batch_limits, 0);
}

/* -------------------------------------------------------------------------
 * One client connection driven from the test thread, against a spawned
 * server reactor.
 */

struct srv {
	struct zc_reactor *r;
	struct zc_listener *l;
	struct zc_tls_ctx *tls;
	bool echo_plain;
};

static int srv_listen_fn(void *arg)
{
	struct srv *s = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int ret;

	hs_addr(&ss, &sl, 0);
	ret = zc_echo_listen(s->r, (struct sockaddr *)&ss, sl, 0, &s->l);
	if (!ret && s->tls)
		ret = zc_listener_set_tls(s->l, s->tls);
	return ret;
}

static void srv_start(struct srv *s, struct zc_tls_ctx *tls)
{
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };

	memset(s, 0, sizeof(*s));
	s->tls = tls;
	cr_assert_eq(zc_reactor_spawn(&rc, &s->r), 0);
	cr_assert_eq(zc_reactor_call(s->r, srv_listen_fn, s), 0);
}

static void srv_stop(struct srv *s, struct zc_reactor_stats *st)
{
	zc_reactor_stats(s->r, st);
	cr_assert_eq(zc_reactor_destroy(s->r), 0);
	zc_tls_ctx_put(s->tls);
}

struct one {
	size_t want, got, bad;
	bool connected, closed;
	bool keep; /* stay open after the echo */
	int err;
	uint64_t seed;
};

static void one_connect(struct zc_conn *c, void *ud)
{
	struct one *o = ud;
	char msg[4000];

	o->connected = true;
	hs_fill(o->seed, 0, msg, o->want);
	cr_assert_eq(zc_conn_send_copy(c, msg, o->want), 0);
}

static void one_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	struct one *o = ud;

	for (unsigned i = 0; i < zc_chain_nviews(d); i++) {
		const struct zc_view *v = zc_chain_view(d, i);

		o->bad += hs_count_bad(o->seed, o->got, zc_view_data(v), v->len);
		o->got += v->len;
	}
	zc_chain_release(d);
	if (o->got >= o->want && !o->keep)
		zc_conn_close(c, ZC_CLOSE_GRACEFUL);
}

static void one_close(struct zc_conn *c, int err, void *ud)
{
	struct one *o = ud;

	o->closed = true;
	o->err = err;
}

static const struct zc_conn_ops one_ops = {
	.on_connect = one_connect,
	.on_data = one_data,
	.on_close = one_close,
};

/* Echo @o->want bytes over a new client connection; returns when it is
 * closed (or after ~10 s: o->closed stays false). */
static void one_run(struct zc_reactor *cr, uint16_t port,
		    struct zc_tls_ctx *ctx, struct one *o)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zc_conn *c;

	hs_addr(&ss, &sl, port);
	cr_assert_eq(zc_connect(cr, (struct sockaddr *)&ss, sl, 5000, &one_ops,
				o, &c), 0);
	if (ctx)
		cr_assert_eq(zc_conn_start_tls(c, ctx, NULL), 0);
	for (int i = 0; i < 1000 && !o->closed; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
}

/* A client with @cctx against a TLS echo server with @sctx. */
static void refused(struct zc_tls_ctx *sctx, struct zc_tls_ctx *cctx,
		    int want_err, struct zc_reactor_stats *st)
{
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };
	struct zc_reactor *cr;
	struct srv s;
	struct one o = { .want = 100, .seed = 5 };

	srv_start(&s, sctx);
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	one_run(cr, zc_listener_port(s.l), cctx, &o);
	cr_assert(o.closed, "client connection never closed");
	cr_assert_eq(o.err, want_err, "client err %d (%s), want %d", o.err,
		     strerror(-o.err), want_err);
	cr_assert_eq(o.got, 0, "no byte may pass a refused handshake");
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	zc_tls_ctx_put(cctx);
	/* The server's side has closed too by now, or does shortly. */
	for (int i = 0; i < 200; i++) {
		zc_reactor_stats(s.r, st);
		if (!st->conns_open)
			break;
		usleep(10000);
	}
	srv_stop(&s, st);
	cr_assert_eq(st->conns_open, 0);
	cr_assert_eq(st->tls_running, 0);
}

Test(stack_tls, echo_over_mtls, .init = certs, .fini = certs_drop)
{
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };
	struct zc_tls_ctx *cctx = client_ctx("client", "ca", "localhost");
	struct zc_reactor_stats st;
	struct zc_reactor *cr;
	struct srv s;
	struct one o = { .want = 3000, .seed = 9 };

	srv_start(&s, server_ctx("server", ZC_TLS_VERIFY_REQUIRE, 0, 0));
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	one_run(cr, zc_listener_port(s.l), cctx, &o);
	cr_assert(o.closed && o.connected);
	cr_assert_eq(o.err, 0, "%s", strerror(-o.err));
	cr_assert_eq(o.got, o.want);
	cr_assert_eq(o.bad, 0);
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	zc_tls_ctx_put(cctx);
	srv_stop(&s, &st);
	cr_assert_eq(st.tls_handshakes, 1);
	cr_assert_eq(st.tls_failed, 0);
}

/* A handshake the server counts as failed, with @want_err on the client. */
static void refused_by_tls(const char *leaf, enum zc_tls_verify verify,
			   const char *ca, const char *host, int want_err)
{
	struct zc_reactor_stats st;

	refused(server_ctx(leaf, verify, 0, 0), client_ctx(NULL, ca, host),
		want_err, &st);
	cr_assert_eq(st.tls_failed, 1);
	cr_assert_eq(st.tls_handshakes, 0);
}

Test(stack_tls, refuses_wrong_ca, .init = certs, .fini = certs_drop)
{
	refused_by_tls("server", ZC_TLS_VERIFY_NONE, "ca2", "localhost",
		       -EKEYREJECTED);
}

Test(stack_tls, refuses_expired_certificate, .init = certs,
     .fini = certs_drop)
{
	refused_by_tls("expired", ZC_TLS_VERIFY_NONE, "ca", "localhost",
		       -EKEYREJECTED);
}

Test(stack_tls, refuses_host_name_mismatch, .init = certs,
     .fini = certs_drop)
{
	refused_by_tls("server", ZC_TLS_VERIFY_NONE, "ca", "db.example.org",
		       -EKEYREJECTED);
}

/* TLS 1.3: the client finishes first, then learns from the server's
 * alert that its missing certificate was required. */
Test(stack_tls, refuses_missing_client_certificate, .init = certs,
     .fini = certs_drop)
{
	refused_by_tls("server", ZC_TLS_VERIFY_REQUIRE, "ca", "localhost",
		       -EKEYREJECTED);
}

/* The plaintext echo server sends our ClientHello back: not TLS. */
Test(stack_tls, tls_client_to_plaintext_server, .init = certs,
     .fini = certs_drop)
{
	struct zc_reactor_stats st;

	refused(NULL, client_ctx(NULL, "ca", "localhost"), -EPROTO, &st);
	cr_assert_eq(st.tls_failed, 0);
}

/* -------------------------------------------------------------------------
 * Raw sockets against a TLS server
 */

/* A blocking connect.  The machine is shared with other loopback-heavy
 * jobs, so a connect that fails for want of local resources (ports,
 * backlog) is tried again, at most 3 times: the server's behaviour is
 * what is tested, not the client's luck.  Retries counts the attempts
 * that failed, some of which (a reset: accepted, then refused by the
 * handshake cap) the server saw. */
static unsigned raw_retries;

static int raw_connect(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err = 0;

	hs_addr(&ss, &sl, port);
	for (int i = 0; i < 3; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
		if (!connect(fd, (struct sockaddr *)&ss, sl))
			return fd;
		err = errno;
		raw_retries++;
		fprintf(stderr, "connect to port %u: %s, again\n", port,
			strerror(err));
		close(fd);
		usleep(10000);
	}
	cr_assert_fail("connect to port %u: %s", port, strerror(err));
	return -1;
}

/* Read until EOF or reset, bounded by SO_RCVTIMEO; true if it ended. */
static bool raw_ends(int fd, unsigned timeout_s)
{
	struct timeval tv = { .tv_sec = timeout_s };
	char buf[4096];
	ssize_t k;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		;
	return k == 0 || (k < 0 && errno == ECONNRESET);
}

Test(stack_tls, plaintext_client_closed, .init = certs, .fini = certs_drop)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	struct zc_reactor_stats st;
	struct srv s;
	int fd;

	srv_start(&s, server_ctx("server", ZC_TLS_VERIFY_NONE, 0, 0));
	fd = raw_connect(zc_listener_port(s.l));
	cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	cr_assert(raw_ends(fd, 10), "server kept a plaintext client");
	close(fd);
	srv_stop(&s, &st);
	cr_assert_eq(st.tls_failed, 1);
	cr_assert_eq(st.tls_handshakes, 0);
}

Test(stack_tls, stalled_handshake_times_out, .init = certs,
     .fini = certs_drop)
{
	/* Half a ClientHello record header, then silence. */
	static const char part[] = { 0x16, 0x03, 0x01 };
	struct zc_reactor_stats st;
	struct srv s;
	int fd;

	srv_start(&s, server_ctx("server", ZC_TLS_VERIFY_NONE, 300, 0));
	fd = raw_connect(zc_listener_port(s.l));
	cr_assert_eq(write(fd, part, sizeof(part)), (ssize_t)sizeof(part));
	cr_assert(raw_ends(fd, 10), "stalled handshake never timed out");
	close(fd);
	srv_stop(&s, &st);
	cr_assert_eq(st.tls_timeouts, 1);
	cr_assert_eq(st.tls_failed, 1);
}

/*
 * An established TLS connection, then a flood of connections that never
 * speak: beyond the cap they are closed at accept, the others at their
 * deadline, and the established one is served throughout.  Afterwards a
 * new handshake succeeds.
 */
struct live {
	struct one o;
	struct zc_conn *c;
};

Test(stack_tls, handshake_flood_capped, .init = certs, .fini = certs_drop)
{
	enum { FLOOD = 1000, CAP = 16 };
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };
	struct zc_tls_ctx *cctx = client_ctx(NULL, "ca", "localhost");
	struct zc_reactor_stats st;
	struct zc_reactor *cr;
	struct srv s;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zc_conn *c;
	struct one o = { .want = 1000, .seed = 11 }, o2 = { .want = 10,
							     .seed = 12 };
	static int fds[FLOOD];
	unsigned long lim = hs_raise_nofile();
	unsigned ended = 0;

	cr_assert_geq(lim, 2 * FLOOD + 64, "RLIMIT_NOFILE %lu too low", lim);
	srv_start(&s, server_ctx("server", ZC_TLS_VERIFY_NONE, 1000, CAP));
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	hs_addr(&ss, &sl, zc_listener_port(s.l));
	/* The neighbour: connected before the flood, it echoes later. */
	cr_assert_eq(zc_connect(cr, (struct sockaddr *)&ss, sl, 5000, &one_ops,
				&o, &c), 0);
	cr_assert_eq(zc_conn_start_tls(c, cctx, NULL), 0);
	o.want = 1000;
	for (int i = 0; i < 1000 && !o.connected; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	cr_assert(o.connected);
	raw_retries = 0;
	for (unsigned i = 0; i < FLOOD; i++)
		fds[i] = raw_connect(zc_listener_port(s.l));
	/* The neighbour's echo completes while the flood is held. */
	for (int i = 0; i < 1000 && !o.closed; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	cr_assert(o.closed);
	cr_assert_eq(o.err, 0);
	cr_assert_eq(o.got, o.want);
	cr_assert_eq(o.bad, 0);
	zc_reactor_stats(s.r, &st);
	cr_assert_leq(st.tls_running, CAP);
	for (unsigned i = 0; i < FLOOD; i++) {
		ended += raw_ends(fds[i], 10);
		close(fds[i]);
	}
	cr_assert_eq(ended, FLOOD, "only %u of the flood closed", ended);
	/* Capacity is back: a new client gets through. */
	one_run(cr, zc_listener_port(s.l), cctx, &o2);
	cr_assert_eq(o2.err, 0);
	cr_assert_eq(o2.got, o2.want);
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	zc_tls_ctx_put(cctx);
	srv_stop(&s, &st);
	/* Every connection of the flood ended refused or timed out; so did
	 * any retried attempt the server had accepted. */
	cr_assert_geq(st.tls_refused + st.tls_timeouts, FLOOD);
	cr_assert_leq(st.tls_refused + st.tls_timeouts, FLOOD + raw_retries);
	cr_assert_geq(st.tls_refused, FLOOD - CAP);
	cr_assert_eq(st.tls_handshakes, 2);
}

/* A client that resets in the middle of its records (a megabyte queued,
 * part of it sent): that connection closes, the server goes on and gives
 * every buffer back. */
Test(stack_tls, reset_mid_record, .init = certs, .fini = certs_drop)
{
	struct zc_reactor_config rc = { .rxbuf_size = 16384 };
	struct zc_tls_ctx *cctx = client_ctx(NULL, "ca", "localhost");
	struct zc_reactor_stats st;
	struct zc_reactor *cr;
	struct srv s;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct zc_conn *c;
	struct one o = { .want = 100, .seed = 13, .keep = true },
		   o2 = { .want = 500, .seed = 14 };
	static char big[1u << 20];
	int i;

	srv_start(&s, server_ctx("server", ZC_TLS_VERIFY_NONE, 0, 0));
	cr_assert_eq(zc_reactor_create(&rc, &cr), 0);
	hs_addr(&ss, &sl, zc_listener_port(s.l));
	cr_assert_eq(zc_connect(cr, (struct sockaddr *)&ss, sl, 5000, &one_ops,
				&o, &c), 0);
	cr_assert_eq(zc_conn_start_tls(c, cctx, NULL), 0);
	/* Keep the connection past the first echo: no close on data. */
	zc_conn_get(c);
	for (i = 0; i < 1000 && o.got < 100 && !o.closed; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	cr_assert_eq(o.got, 100);
	cr_assert_eq(zc_conn_send_copy(c, big, sizeof(big)), 0);
	for (i = 0; i < 1000 && zc_conn_sndq_bytes(c) > sizeof(big) / 2; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	zc_conn_close(c, ZC_CLOSE_ABORT);
	for (i = 0; i < 1000 && !o.closed; i++)
		cr_assert_geq(zc_reactor_run_once(cr, 10000), 0);
	cr_assert(o.closed);
	zc_conn_put(c);
	/* Another client is served after it. */
	one_run(cr, zc_listener_port(s.l), cctx, &o2);
	cr_assert_eq(o2.err, 0);
	cr_assert_eq(o2.got, o2.want);
	cr_assert_eq(zc_reactor_destroy(cr), 0);
	zc_tls_ctx_put(cctx);
	for (i = 0; i < 200; i++) {
		zc_reactor_stats(s.r, &st);
		if (!st.conns_open)
			break;
		usleep(10000);
	}
	srv_stop(&s, &st);
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.tls_handshakes, 2);
	cr_assert_geq(st.conn_errors, 1, "the reset was not seen");
}

Test(stack_tls, ctx_errors, .init = certs, .fini = certs_drop)
{
	struct zc_tls_config cfg = { .role = ZC_TLS_SERVER };
	struct zc_tls_ctx *ctx;

	/* A server needs a certificate; a key alone is refused. */
	cr_assert_eq(zc_tls_ctx_new(&cfg, &ctx), -EINVAL);
	cfg.key_file = tc_file(&T, "server.key");
	cr_assert_eq(zc_tls_ctx_new(&cfg, &ctx), -EINVAL);
	cfg.cert_file = tc_file(&T, "missing.pem");
	cr_assert_eq(zc_tls_ctx_new(&cfg, &ctx), -ENOENT);
	/* A key that is not the certificate's. */
	cfg.cert_file = tc_file(&T, "server.pem");
	cfg.key_file = tc_file(&T, "client.key");
	cr_assert_eq(zc_tls_ctx_new(&cfg, &ctx), -EKEYREJECTED);
}
