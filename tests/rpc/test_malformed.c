/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_malformed.c - a raw socket speaks the protocol by hand
 * (as a client in another language would, from docs/PROTOCOL.md), breaks
 * it in every way the server must catch, and each time only that
 * connection is reset by us (the raw peer never closes first), with its
 * counter, while a real client keeps calling.
 * Also by hand: ping/pong, a too-large request skipped on a live
 * connection, fragments of two calls interleaved, and a peer that never
 * reads its answers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "frame.h"
#include "rpc_test.h"

static int raw_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	/* Only bounds a failing test: a live connection then reads EAGAIN. */
	struct timeval tv = { .tv_sec = 10 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void raw_send(int fd, const void *p, size_t len)
{
	cr_assert_eq(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void raw_frame(int fd, const struct zc_frame *f, const void *payload)
{
	uint8_t hdr[ZC_FRAME_HDR_LEN];

	zc__frame_encode(hdr, f);
	raw_send(fd, hdr, sizeof(hdr));
	if (f->len)
		raw_send(fd, payload, f->len);
}

static void raw_hello(int fd)
{
	uint8_t p[ZC_FRAME_HELLO_LEN];

	zc__hello_encode(p, &(struct zc_hello){ .max_message = 1 << 20,
						.max_frame = 65536 });
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_HELLO, .len = 16,
					  .msg_len = 16 }, p);
}

/* Read one frame; returns 0, or -1 at EOF / error / timeout. */
static int raw_read(int fd, struct zc_frame *f, uint8_t *payload, size_t cap)
{
	static const struct zc_frame_limits lim = { .max_frame = 1 << 20 };
	uint8_t hdr[ZC_FRAME_HDR_LEN];
	size_t got = 0;

	while (got < sizeof(hdr)) {
		ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	cr_assert_eq(zc__frame_decode_hdr(hdr, &lim, f), 0);
	cr_assert_leq(f->len, cap);
	for (got = 0; got < f->len;) {
		ssize_t n = recv(fd, payload + got, f->len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Expect the server's HELLO first. */
static void raw_expect_hello(int fd)
{
	uint8_t p[64];
	struct zc_frame f;
	struct zc_hello h;

	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert_eq(f.type, ZC_FT_HELLO);
	cr_assert_eq(zc__hello_decode(p, f.len, &h), 0);
	cr_assert_eq(h.max_frame, ZC_RPC_MAX_FRAME_DEFAULT);
}

/*
 * The server must reset the connection itself, with nothing sent first:
 * we never close nor shut down our side, so a graceful close would leave
 * the recv below waiting (and failing with EAGAIN at SO_RCVTIMEO) or
 * returning EOF, while an abort makes it fail with ECONNRESET.
 */
static void raw_expect_reset(int fd, const char *what)
{
	uint8_t b;
	ssize_t n;

	errno = 0;
	n = recv(fd, &b, 1, 0);
	cr_assert_eq(n, -1, "%s: got %zd instead of a reset", what, n);
	cr_assert_eq(errno, ECONNRESET, "%s: %s instead of a reset", what,
		     strerror(errno));
	close(fd);
}

struct bad_case {
	const char *what;
	bool hello_first;
	uint8_t bytes[64];
	size_t len;
};

#define HDR(magic, ver, type, flags, status, method, len, id, dl, ml)	\
	(magic) & 0xff, (magic) >> 8, ver, type, (flags) & 0xff, (flags) >> 8, \
	(status) & 0xff, (status) >> 8, (method) & 0xff, ((method) >> 8) & 0xff, \
	0, 0, (len) & 0xff, ((len) >> 8) & 0xff, ((len) >> 16) & 0xff,	\
	((len) >> 24) & 0xff, id, 0, 0, 0, 0, 0, 0, 0, (dl) & 0xff, 0, 0, 0, \
	(ml) & 0xff, ((ml) >> 8) & 0xff, ((ml) >> 16) & 0xff, ((ml) >> 24) & 0xff

static const struct bad_case bads[] = {
	{ "bad magic", true, { HDR(0x1234, 1, 2, 0, 0, 1, 0, 1, 0, 0) }, 32 },
	{ "bad version", true, { HDR(0x525a, 9, 2, 0, 0, 1, 0, 1, 0, 0) }, 32 },
	{ "unknown type", true, { HDR(0x525a, 1, 42, 0, 0, 1, 0, 1, 0, 0) },
	  32 },
	{ "frame over max_frame", true,
	  { HDR(0x525a, 1, 2, 0, 0, 1, 0x10000001, 1, 0, 0x10000001) }, 32 },
	{ "request without hello", false,
	  { HDR(0x525a, 1, 2, 0, 0, 1, 0, 1, 0, 0) }, 32 },
	{ "response from a client", true,
	  { HDR(0x525a, 1, 3, 0, 0, 0, 0, 1, 0, 0) }, 32 },
	{ "second hello", true,
	  { HDR(0x525a, 1, 1, 0, 0, 0, 16, 0, 0, 16), 0, 0, 1, 0, 0, 0, 1, 0,
	    0, 0, 0, 0, 0, 0, 0, 0 }, 48 },
	{ "request id 0", true, { HDR(0x525a, 1, 2, 0, 0, 1, 0, 0, 0, 0) },
	  32 },
	{ "short last fragment", true,
	  { HDR(0x525a, 1, 2, 0, 0, 1, 2, 1, 0, 5), 'a', 'b' }, 34 },
};

static struct rt_tally t;

Test(malformed, each_closes_only_its_connection, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 2 } };
	const size_t nbad = sizeof(bads) / sizeof(bads[0]);
	struct zc_rpc_server_stats ss;
	struct rt_env e;
	unsigned issued = 0;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	for (size_t i = 0; i < nbad; i++) {
		int fd = raw_connect(e.port);

		/* The real client keeps going around each broken peer. */
		for (int k = 0; k < 20; k++, issued++)
			cr_assert_eq(rt_echo_async(e.cli, &t, 100 + k, issued,
						   0, NULL), 0);
		raw_expect_hello(fd);
		if (bads[i].hello_first)
			raw_hello(fd);
		raw_send(fd, bads[i].bytes, bads[i].len);
		raw_expect_reset(fd, bads[i].what);
		zc_rpc_server_stats(e.srv, &ss);
		cr_assert_eq(ss.conns_protocol_error, i + 1, "%s",
			     bads[i].what);
	}
	cr_assert(rt_wait(&t, issued, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), issued);
	cr_assert_eq(atomic_load(&t.bad), 0);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_protocol_error, nbad);
	rt_stop(&e);
}

Test(malformed, by_hand_ping_too_large_interleaved, .timeout = 60)
{
	struct rt_opts o = { .sc = { .max_message = 100000 }, .no_client = true };
	static uint8_t big[65536], p[65536];
	struct zc_rpc_server_stats ss;
	struct zc_frame f;
	struct rt_env e;
	int fd;

	rt_start(&e, &o);
	fd = raw_connect(e.port);
	raw_hello(fd);
	raw_expect_hello(fd);

	/* PING answered by PONG with the same 8 bytes. */
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_PING, .len = 8,
					  .msg_len = 8 }, "12345678");
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert_eq(f.type, ZC_FT_PONG);
	cr_assert(memcmp(p, "12345678", 8) == 0);

	/* 120000 bytes (> max_message 100000) in two fragments: refused at
	 * the first, the second skipped, the connection lives. */
	memset(big, 'x', sizeof(big));
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.flags = ZC_FF_MORE, .len = 60000, .id = 1, .msg_len = 120000 },
		big);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 60000, .id = 1, .msg_len = 120000 }, big);
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert_eq(f.type, ZC_FT_ERROR);
	cr_assert_eq(f.id, 1);
	cr_assert_eq(f.status, ZC_RPC_TOO_LARGE);

	/* Two echo calls whose fragments interleave: A1 B1 A2 B2. */
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.flags = ZC_FF_MORE, .len = 3, .id = 2, .msg_len = 6 }, "abc");
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.flags = ZC_FF_MORE, .len = 2, .id = 3, .msg_len = 4 }, "WX");
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 3, .id = 2, .msg_len = 6 }, "def");
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 2, .id = 3, .msg_len = 4 }, "YZ");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
		cr_assert_eq(f.type, ZC_FT_RESPONSE);
		if (f.id == 2)
			cr_assert(f.len == 6 && !memcmp(p, "abcdef", 6));
		else
			cr_assert(f.id == 3 && f.len == 4 &&
				  !memcmp(p, "WXYZ", 4));
	}
	/* CANCEL of an unknown id is not an error. */
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_CANCEL, .id = 99 },
		  NULL);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 2, .id = 4, .msg_len = 2 }, "ok");
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert(f.type == ZC_FT_RESPONSE && f.id == 4);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.rejected_too_large, 1);
	cr_assert_eq(ss.conns_protocol_error, 0);
	close(fd);
	rt_stop(&e);
}

/* ---- a hand-written server, to break the client side ------------------ */

struct raw_srv {
	int lfd;
	uint16_t port;
	pthread_t th;
	int end_errno;	/* how the connection ended for us: ECONNRESET */
};

static void *raw_srv_main(void *arg)
{
	struct raw_srv *rs = arg;
	static uint8_t p[1 << 17];
	struct zc_frame f;
	struct timeval tv = { .tv_sec = 10 };
	int fd = accept(rs->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (raw_read(fd, &f, p, sizeof(p)) || f.type != ZC_FT_HELLO)
		goto out;
	raw_hello(fd);
	errno = 0;
	while (raw_read(fd, &f, p, sizeof(p)) == 0) {
		if (f.type != ZC_FT_REQUEST)
			continue;
		if (f.id == 1) {
			/* 100000 bytes: over the client's 50000. */
			memset(p, 'z', 50000);
			raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_RESPONSE,
				.flags = ZC_FF_MORE, .len = 50000, .id = 1,
				.msg_len = 100000 }, p);
			raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_RESPONSE,
				.len = 50000, .id = 1, .msg_len = 100000 }, p);
		} else if (f.id == 2) {
			raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_RESPONSE,
				.len = f.len, .id = 2, .msg_len = f.len }, p);
		} else {
			raw_send(fd, "garbage garbage garbage garbage!", 32);
		}
		errno = 0;
	}
	rs->end_errno = errno;
out:
	close(fd);
	return NULL;
}

static void raw_srv_start(struct raw_srv *rs)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	rs->end_errno = 0;
	rs->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(rs->lfd, 0);
	cr_assert_eq(bind(rs->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(rs->lfd, 8), 0);
	cr_assert_eq(getsockname(rs->lfd, (struct sockaddr *)&sin, &len), 0);
	rs->port = ntohs(sin.sin_port);
}

static int sync_echo(struct zc_rpc_client *cli, size_t len, uint32_t seed)
{
	struct zc_chain req, resp;
	int st;

	rt_chain(rt_pool, &req, len, seed);
	zc_chain_init(&resp);
	st = zc_rpc_call_sync(cli, ZC_RPC_METHOD_ECHO, &req, NULL, &resp);
	if (st == ZC_RPC_OK)
		cr_assert(rt_check(&resp, len, seed));
	zc_chain_release(&resp);
	return st;
}

Test(malformed, client_side, .timeout = 60)
{
	struct rt_opts o = { .no_client = true };
	struct zc_rpc_client_stats cs;
	struct zc_rpc_client *cli;
	struct raw_srv rs;
	struct rt_env e;

	rt_start(&e, &o);
	raw_srv_start(&rs);
	cr_assert_eq(pthread_create(&rs.th, NULL, raw_srv_main, &rs), 0);
	e.port = rs.port;
	cli = rt_client(&e, &(struct zc_rpc_client_config){
		.conns = 1, .max_message = 50000, .backoff_min_ms = 1000 });
	/* An answer over our max_message fails that call only. */
	cr_assert_eq(sync_echo(cli, 10, 1), ZC_RPC_TOO_LARGE);
	cr_assert_eq(sync_echo(cli, 1000, 2), ZC_RPC_OK);
	/* Garbage closes the connection: the call is not known to have been
	 * processed, so it fails retryable. */
	cr_assert_eq(sync_echo(cli, 10, 3), ZC_RPC_UNAVAILABLE);
	zc_rpc_client_stats(cli, &cs);
	cr_assert_eq(cs.protocol_errors, 1);
	cr_assert_eq(cs.connects, 1);
	/* Reset by the client before its destroy, our side still open. */
	pthread_join(rs.th, NULL);
	cr_assert_eq(rs.end_errno, ECONNRESET, "raw server saw %s",
		     strerror(rs.end_errno));
	zc_rpc_client_destroy(cli);

	/* A listener that never speaks: no HELLO within the connect timeout
	 * closes the attempt and the waiting call fails retryable. */
	cli = rt_client(&e, &(struct zc_rpc_client_config){
		.conns = 1, .connect_timeout_ms = 100,
		.backoff_min_ms = 1000 });
	cr_assert_eq(sync_echo(cli, 10, 4), ZC_RPC_UNAVAILABLE);
	zc_rpc_client_stats(cli, &cs);
	cr_assert_eq(cs.connects, 0);
	cr_assert_geq(cs.protocol_errors, 1);
	zc_rpc_client_destroy(cli);
	close(rs.lfd);
	rt_stop(&e);
}

/* Send echo calls of 64 KiB on @fd, never reading, until the server
 * resets the connection or @seconds pass; true on the reset.  Between
 * writes a real client's call must still be answered. */
static bool flood_until_reset(struct rt_env *e, int fd, unsigned seconds)
{
	static uint8_t msg[ZC_FRAME_HDR_LEN + 65536];
	struct timespec ts;
	uint64_t end, id = 1;
	size_t off = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (uint64_t)ts.tv_sec + seconds;
	cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		struct rt_tally nb;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec >= end)
			return false;
		if (!off)
			zc__frame_encode(msg, &(struct zc_frame){
				.type = ZC_FT_REQUEST, .method = 1, .id = id++,
				.len = 65536, .msg_len = 65536 });
		n = send(fd, msg + off, sizeof(msg) - off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return true;
		if (n > 0)
			off = (off + (size_t)n) % sizeof(msg);
		memset(&nb, 0, sizeof(nb));
		cr_assert_eq(rt_echo_async(e->cli, &nb, 100, (uint32_t)id, 0,
					   NULL), 0);
		cr_assert(rt_wait(&nb, 1, 5), "the neighbour's call stalled");
		cr_assert_eq(atomic_load(&nb.by_status[ZC_RPC_OK]), 1);
		poll(&pfd, 1, 10);
	}
}

Test(malformed, non_reader_stops_only_itself, .timeout = 60)
{
	/* The peer's receive buffer is small, so the server's send queue
	 * fills at once: past tx_budget the server stops reading it, and
	 * 300 ms of zero window later the kernel resets it. */
	struct rt_opts o = { .sc = { .unwritable_timeout_ms = 300,
				     .tx_budget = 1 << 20 },
			     .cc = { .conns = 1 } };
	struct zc_rpc_server_stats ss;
	int small = 4096, fd;
	struct rt_env e;

	rt_start(&e, &o);
	fd = raw_connect(e.port);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	raw_expect_hello(fd);
	raw_hello(fd);
	cr_assert(flood_until_reset(&e, fd, 30), "never reset");
	close(fd);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_unwritable, 1);
	cr_assert_gt(ss.tx_budget_stops, 0);
	cr_assert_eq(ss.conns_protocol_error, 0);
	rt_stop(&e);
}
