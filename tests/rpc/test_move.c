/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_move.c - bulk_reactors: a connection whose request
 * crosses bulk_message_bytes moves to the bulk reactor and every answer
 * comes back intact, calls pipelined around the move and calls still being
 * received when it happens included; a connection of small calls never
 * moves; a peer that resets or half-closes during a move loses nothing it
 * was promised and leaves nothing behind (rt_stop checks every buffer came
 * home; ASan checks the rest).
 *
 * Server: one accepting reactor, one bulk reactor, two workers (a WORKER
 * echo answers through the inbox of the reactor the connection is on).
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "raw.h"

#define WECHO ZC_RPC_METHOD_USER	/* echo on a worker, slowly */
#define BIG (2u << 20)

static void slow_echo(struct zc_rpc_call *call, struct zc_chain *req,
		      void *arg)
{
	usleep(500);	/* still running when the big request arrives */
	(void)zc_rpc_reply(call, req);
}

static void reg(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, WECHO, "wecho", ZC_RPC_WORKER,
					    0, slow_echo, NULL), 0);
}

/* @raw: the test speaks the protocol itself (no rt client). */
static void start(struct rt_env *e, bool raw)
{
	struct rt_opts o = {
		.server_reactors = 2,
		.sc = { .nbulk = 1, .workers = 2 },
		.cc = { .conns = 1 },
		.no_client = raw,
		.setup = reg,
	};

	rt_start(e, &o);
}

static void stats(struct rt_env *e, struct zc_rpc_server_stats *ss,
		  struct zc_reactor_stats *acc, struct zc_reactor_stats *bulk)
{
	zc_rpc_server_stats(e->srv, ss);
	zc_reactor_stats(e->srv_r[0], acc);
	zc_reactor_stats(e->srv_r[1], bulk);
}

/*
 * Small calls (inline and worker), then a big one, then small ones again,
 * all pipelined on one connection; meanwhile a second connection makes
 * small calls.  The big one moves its connection; the other stays.
 */
Test(move, pipelined_around_the_move, .timeout = 60)
{
	enum { K = 24 };
	struct zc_rpc_server_stats ss;
	struct zc_reactor_stats sa, sb;
	struct zc_rpc_client *small;
	static struct rt_tally t, n;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	memset(&n, 0, sizeof(n));
	start(&e, false);
	small = rt_client(&e, &(struct zc_rpc_client_config){ .conns = 1 });
	cr_assert_eq(rt_echo_async(small, &n, 64, 5, 0, NULL), 0);
	cr_assert(rt_wait(&n, 1, 10));
	for (unsigned i = 0; i < 2 * K + 1; i++) {
		uint32_t m = i % 3 ? ZC_RPC_METHOD_ECHO : WECHO;
		size_t len = i == K ? BIG : 100 + i;

		cr_assert_eq(rt_call_async(e.cli, m, &t, len, i, len, 0, i,
					   NULL), 0);
		/* The neighbour keeps calling on its own connection. */
		cr_assert_eq(rt_echo_async(small, &n, 64, 5, 0, NULL), 0);
	}
	cr_assert(rt_wait(&t, 2 * K + 1, 30), "%u of %u answered",
		  atomic_load(&t.done), 2 * K + 1);
	cr_assert(rt_wait(&n, 2 * K + 2, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 2 * K + 1);
	cr_assert_eq(atomic_load(&t.bad), 0, "answers not byte-identical");
	cr_assert_eq(atomic_load(&n.by_status[ZC_RPC_OK]), 2 * K + 2);
	cr_assert_eq(atomic_load(&n.bad), 0);
	/* Everything asked before the big call was answered before it
	 * (the move waited for those answers). */
	for (unsigned i = 0; i < K; i++)
		cr_assert_lt(atomic_load(&t.order[i]), atomic_load(&t.order[K]),
			     "call %u answered after the big one", i);
	stats(&e, &ss, &sa, &sb);
	cr_assert_eq(ss.conns_moved, 1);
	cr_assert_eq(sa.moved_out, 1);
	cr_assert_eq(sb.moved_in, 1);
	/* The neighbour's connection (and the client's own) stayed. */
	cr_assert_eq(sa.conns_open, 1);
	cr_assert_eq(sb.conns_open, 1);
	/* The moved connection keeps serving from the bulk reactor. */
	cr_assert_eq(rt_echo_async(e.cli, &t, 100, 77, 0, NULL), 0);
	cr_assert(rt_wait(&t, 2 * K + 2, 10));
	cr_assert_eq(atomic_load(&t.bad), 0);
	cr_assert_eq(zc_rpc_client_destroy(small), 0);
	rt_stop(&e);
}

Test(move, small_calls_never_move, .timeout = 60)
{
	struct zc_rpc_server_stats ss;
	struct zc_reactor_stats sa, sb;
	static struct rt_tally t;
	struct rt_env e;

	memset(&t, 0, sizeof(t));
	start(&e, false);
	/* Up to one byte under the threshold (1 MiB by default). */
	for (unsigned i = 0; i < 64; i++) {
		size_t len = i % 8 ? 100 : (1u << 20) - 1;

		cr_assert_eq(rt_echo_async(e.cli, &t, len, i, 0, NULL), 0);
	}
	cr_assert(rt_wait(&t, 64, 30));
	cr_assert_eq(atomic_load(&t.by_status[ZC_RPC_OK]), 64);
	cr_assert_eq(atomic_load(&t.bad), 0);
	stats(&e, &ss, &sa, &sb);
	cr_assert_eq(ss.conns_moved, 0);
	cr_assert_eq(sa.moved_out, 0);
	cr_assert_eq(sb.moved_in + sb.conns_open, 0);
	rt_stop(&e);
}

/* Byte @i of a message raw_request() sent in fragments of @frag. */
static uint8_t raw_byte(size_t i, size_t frag)
{
	return (uint8_t)('a' + i % frag % 23);
}

struct answer {
	size_t got;
	bool done, bad;
};

/* Read RESPONSE frames until every id in 1..@n is answered in full;
 * @len[id] and @frag[id] say what was asked. */
static void read_answers(int fd, unsigned n, const size_t *len,
			 const size_t *frag)
{
	static uint8_t p[1 << 17];
	struct answer a[8] = { 0 };
	unsigned left = n;

	cr_assert_leq(n, 7);
	while (left) {
		struct zc_frame f;

		cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0,
			     "connection ended with %u answers missing", left);
		cr_assert_eq(f.type, ZC_FT_RESPONSE, "frame type %u", f.type);
		cr_assert(f.id >= 1 && f.id <= n && !a[f.id].done);
		cr_assert_eq(f.msg_len, len[f.id]);
		for (uint32_t i = 0; i < f.len; i++)
			a[f.id].bad |= p[i] !=
				       raw_byte(a[f.id].got + i, frag[f.id]);
		a[f.id].got += f.len;
		if (!(f.flags & ZC_FF_MORE)) {
			cr_assert_eq(a[f.id].got, len[f.id]);
			cr_assert_not(a[f.id].bad, "answer %lu differs",
				      (unsigned long)f.id);
			a[f.id].done = true;
			left--;
		}
	}
}

/* One fragment of @n bytes (the raw_request() pattern) of message @id. */
static void send_frag(int fd, uint64_t id, size_t n, size_t msg_len,
		      bool more)
{
	static uint8_t buf[1 << 16];

	cr_assert_leq(n, sizeof(buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)('a' + i % 23);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.flags = more ? ZC_FF_MORE : 0, .method = ZC_RPC_METHOD_ECHO,
		.len = (uint32_t)n, .id = id, .msg_len = (uint32_t)msg_len },
		buf);
}

/*
 * A message half received (its first fragment only) when the big one
 * arrives: it moves along with the connection, its views of the old ring
 * are copied out there, and its remaining fragments complete it on the
 * bulk reactor.  A small request after the big one is answered too.
 */
Test(move, message_in_reassembly_moves_along, .timeout = 60)
{
	size_t len[4] = { 0, 200000, BIG, 300 };
	size_t frag[4] = { 0, 50000, 65536, 300 };
	struct zc_rpc_server_stats ss;
	struct rt_env e;
	int fd;

	start(&e, true);
	fd = raw_open(e.port);
	send_frag(fd, 1, frag[1], len[1], true);
	raw_request(fd, 2, ZC_RPC_METHOD_ECHO, 0, len[2], frag[2]);
	raw_request(fd, 3, ZC_RPC_METHOD_ECHO, 0, len[3], frag[3]);
	for (size_t off = frag[1]; off < len[1]; off += frag[1])
		send_frag(fd, 1, frag[1], len[1], off + frag[1] < len[1]);
	read_answers(fd, 3, len, frag);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_moved, 1);
	close(fd);
	rt_stop(&e);
}

static void reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static bool server_idle(void *arg)
{
	struct zc_rpc_server_stats ss;

	zc_rpc_server_stats(arg, &ss);
	return !ss.conns_open && !ss.inflight && !ss.inflight_bytes;
}

/*
 * Worker calls still running, then the start of a big request, then the
 * peer goes: by reset (nothing is owed: the connection just ends, on
 * whichever reactor it is by then), or by half-close (the calls whose
 * request arrived whole are still answered, the big one, never finished,
 * is not).  Rounds vary the moment, so the move is caught waiting for the
 * workers, under way in the stack, and done.
 */
Test(move, peer_goes_during_the_move, .timeout = 120)
{
	unsigned rounds = 24;
	size_t len[6] = { 0, 100, 100, 100, 100, 0 };
	size_t frag[6] = { 0, 100, 100, 100, 100, 1 };
	struct zc_rpc_server_stats ss;
	struct rt_env e;

	start(&e, true);
	for (unsigned r = 0; r < rounds; r++) {
		int fd = raw_open(e.port);

		for (uint64_t id = 1; id <= 4; id++)
			raw_request(fd, id, id % 2 ? WECHO : ZC_RPC_METHOD_ECHO,
				    0, len[id], frag[id]);
		/* Message 5: the big one, only its first 256 KiB. */
		for (int k = 0; k < 4; k++)
			send_frag(fd, 5, 65536, BIG, true);
		usleep(300 * (r % 4));
		if (r % 2) {
			reset(fd);
			continue;
		}
		cr_assert_eq(shutdown(fd, SHUT_WR), 0);
		read_answers(fd, 4, len, frag);
		raw_expect_eof(fd, "after the answers of a half-close");
		close(fd);
	}
	if (!rt_wait_for(server_idle, e.srv, 10)) {
		zc_rpc_server_stats(e.srv, &ss);
		struct zc_reactor_stats sa, sb;

		zc_reactor_stats(e.srv_r[0], &sa);
		zc_reactor_stats(e.srv_r[1], &sb);
		cr_assert_fail("left behind: %lu conns (%lu on A, %lu on B, "
			       "%lu moved), %lu calls, %lu bytes",
			       (unsigned long)ss.conns_open,
			       (unsigned long)sa.conns_open,
			       (unsigned long)sb.conns_open,
			       (unsigned long)ss.conns_moved,
			       (unsigned long)ss.inflight,
			       (unsigned long)ss.inflight_bytes);
	}
	zc_rpc_server_stats(e.srv, &ss);
	cr_log_info("moved: %lu of %u", (unsigned long)ss.conns_moved,
		    rounds);
	rt_stop(&e);
}
