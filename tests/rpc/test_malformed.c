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

#include "raw.h"

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
	/* Section 7 order: the sequence rules come before admission, so
	 * these are malformed, not refused (unknown method, too large). */
	{ "unfragmented msg_len > length, unknown method", true,
	  { HDR(0x525a, 1, 2, 0, 0, 7, 2, 1, 0, 5), 'a', 'b' }, 34 },
	{ "unfragmented msg_len > length, over max_message", true,
	  { HDR(0x525a, 1, 2, 0, 0, 1, 2, 1, 0, 0x7fffffff), 'a', 'b' }, 34 },
	/* Section 6: fragments but the last carry >= 4096 bytes. */
	{ "1-byte fragment", true,
	  { HDR(0x525a, 1, 2, 1, 0, 1, 1, 1, 0, 10), 'a' }, 33 },
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

/*
 * Section 4: a peer speaking another version gets GOAWAY protocol_error
 * in version 1, then a graceful close (EOF); before, it got a reset.
 * Fails on the code before this rule (ECONNRESET, no GOAWAY).
 */
Test(malformed, version_mismatch_gets_goaway, .timeout = 60)
{
	static const uint8_t v2[32] = { HDR(0x525a, 2, 2, 0, 0, 1, 0, 1, 0, 0) };
	struct rt_opts o = { .cc = { .conns = 1 } };
	struct zc_rpc_server_stats ss;
	uint8_t p[128];
	struct zc_frame f;
	struct rt_env e;
	int fd;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	fd = raw_connect(e.port);
	raw_expect_hello(fd);
	raw_hello(fd);
	raw_send(fd, v2, sizeof(v2));
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0, "no GOAWAY");
	cr_assert_eq(f.type, ZC_FT_GOAWAY);
	cr_assert_eq(f.status, ZC_RPC_PROTOCOL_ERROR);
	raw_expect_eof(fd, "after GOAWAY");
	close(fd);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_protocol_error, 1);
	/* Others are served. */
	cr_assert_eq(rt_echo_async(e.cli, &t, 1000, 1, 0, NULL), 0);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
	rt_stop(&e);
}

#define M_BIG	(ZC_RPC_METHOD_USER + 40)
#define BIG_LEN	(32u << 20)

/* Answers BIG_LEN pattern bytes: long enough to still be streaming when
 * the peer reacts to its first fragment. */
static void big_handler(struct zc_rpc_call *call, struct zc_chain *req,
			void *arg)
{
	struct zc_chain resp;

	zc_chain_release(req);
	rt_chain(zc_reactor_pool(zc_rpc_call_reactor(call)), &resp, BIG_LEN,
		 7);
	(void)zc_rpc_reply(call, &resp);
}

static void big_setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_BIG, "big", ZC_RPC_INLINE,
					    0, big_handler, NULL), 0);
}

/*
 * Sections 6 and 7: an id still in use (its answer streaming) or already
 * used is malformed: the connection is reset and counted, and the answer
 * does not go on with two messages under one id.  Fails on the code
 * before (the server answered both: 64 MiB arrive, no reset).
 */
Test(malformed, reused_id_resets, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 1 }, .setup = big_setup };
	struct zc_rpc_server_stats ss;
	static uint8_t p[1 << 17];
	size_t got = 0;
	struct zc_frame f;
	struct rt_env e;
	int fd;

	memset(&t, 0, sizeof(t));
	rt_start(&e, &o);
	fd = raw_open(e.port);
	raw_request(fd, 1, M_BIG, 0, 0, 0);
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert(f.type == ZC_FT_RESPONSE && f.id == 1 &&
		  (f.flags & ZC_FF_MORE));
	raw_request(fd, 1, M_BIG, 0, 0, 0);	/* same id, still streaming */
	/* What was sent before the reuse arrived still comes; then the
	 * reset, well before both answers (64 MiB) could. */
	errno = 0;
	while (raw_read(fd, &f, p, sizeof(p)) == 0) {
		cr_assert_neq(f.flags & ZC_FF_MORE, 0, "an answer completed");
		got += f.len;
		cr_assert_lt(got, 2 * (size_t)BIG_LEN);
	}
	cr_assert_eq(errno, ECONNRESET, "%s", strerror(errno));
	close(fd);

	/* Reused after its answer: ids must increase. */
	fd = raw_open(e.port);
	raw_request(fd, 5, ZC_RPC_METHOD_ECHO, 0, 10, 10);
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
	cr_assert(f.type == ZC_FT_RESPONSE && f.id == 5);
	raw_request(fd, 5, ZC_RPC_METHOD_ECHO, 0, 10, 10);
	raw_expect_reset(fd, "id 5 again");
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_protocol_error, 2);
	cr_assert_eq(rt_echo_async(e.cli, &t, 1000, 1, 0, NULL), 0);
	cr_assert(rt_wait(&t, 1, 10));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 1);
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
	fd = raw_open(e.port);

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

	/* Two echo calls whose fragments interleave: A1 B1 A2 B2 (each
	 * non-final fragment of ZC_FRAG_MIN bytes, the least allowed). */
	memset(big, 'a', ZC_FRAG_MIN);
	memset(big + ZC_FRAG_MIN, 'W', ZC_FRAG_MIN);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.flags = ZC_FF_MORE, .len = ZC_FRAG_MIN, .id = 2,
		.msg_len = ZC_FRAG_MIN + 3 }, big);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.flags = ZC_FF_MORE, .len = ZC_FRAG_MIN, .id = 3,
		.msg_len = ZC_FRAG_MIN + 2 }, big + ZC_FRAG_MIN);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 3, .id = 2, .msg_len = ZC_FRAG_MIN + 3 }, "def");
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST, .method = 1,
		.len = 2, .id = 3, .msg_len = ZC_FRAG_MIN + 2 }, "YZ");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0);
		cr_assert_eq(f.type, ZC_FT_RESPONSE);
		if (f.id == 2)
			cr_assert(f.len == ZC_FRAG_MIN + 3 && p[0] == 'a' &&
				  !memcmp(p + ZC_FRAG_MIN, "def", 3));
		else
			cr_assert(f.id == 3 && f.len == ZC_FRAG_MIN + 2 &&
				  p[0] == 'W' &&
				  !memcmp(p + ZC_FRAG_MIN, "YZ", 2));
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
	 * a second of zero window later the kernel resets it.  (300 ms was
	 * too short under load: the flood, a neighbour call per round, had
	 * not yet filled the socket buffer and tx_budget when the reset
	 * came, and tx_budget_stops stayed 0 once in a full parallel run.) */
	struct rt_opts o = { .sc = { .unwritable_timeout_ms = 1000,
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
