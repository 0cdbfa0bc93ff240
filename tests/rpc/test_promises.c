/* SPDX-License-Identifier: MIT */
/*
 * tests/rpc/test_promises.c - what docs/PROTOCOL.md promises about the
 * life of calls and connections, checked from a raw socket: a drain
 * answers every call up to its GOAWAY id in full, a half-closed client
 * still gets its answers, CANCEL stops an answer being sent, deadlines
 * hold for calls waiting anywhere, and the HELLO, stall and idle timeouts
 * close only the connection they concern while a neighbour is served.
 * Each test failed on the code before its rule (see the commit).
 */
#include <poll.h>
#include <pthread.h>

#include "park.h"
#include "raw.h"

#define M_SIZED	(ZC_RPC_METHOD_USER + 50)	/* answers N bytes, N in req */
#define M_BLOCK	(ZC_RPC_METHOD_USER + 51)	/* WORKER, blocks */
#define MAX_IDS	512

/* Answers as many pattern bytes as the request's first 4 bytes say. */
static void sized_handler(struct zc_rpc_call *call, struct zc_chain *req,
			  void *arg)
{
	struct zc_chain resp;
	uint8_t n[4] = { 0 };

	zc_chain_copyout(req, 0, n, sizeof(n));
	zc_chain_release(req);
	rt_chain(zc_reactor_pool(zc_rpc_call_reactor(call)), &resp,
		 zc__get32(n), 9);
	(void)zc_rpc_reply(call, &resp);
}

static void setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_SIZED, "sized",
					    ZC_RPC_INLINE, 0, sized_handler,
					    NULL), 0);
	if (arg)
		cr_assert_eq(zc_rpc_server_register(s, M_BLOCK, "block",
						    ZC_RPC_WORKER, 0,
						    park_block, NULL), 0);
}

static void raw_sized(int fd, uint64_t id, uint32_t answer_len)
{
	uint8_t n[4];

	zc__put32(n, answer_len);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.method = M_SIZED, .len = 4, .id = id, .msg_len = 4 }, n);
}

/* What a raw reader saw, per request id. */
struct seen {
	size_t bytes[MAX_IDS];
	uint32_t msg_len[MAX_IDS];
	bool done[MAX_IDS];
	int status[MAX_IDS];		/* ERROR status, 0 for RESPONSE */
	bool goaway;
	uint64_t goaway_id;
	bool pong;
};

/* Read one frame into @sn; returns the frame's id (0 for connection
 * frames), or -1 at EOF / error. */
static int64_t seen_read(int fd, struct seen *sn)
{
	static uint8_t p[1 << 17];
	struct zc_frame f;

	if (raw_read(fd, &f, p, sizeof(p)))
		return -1;
	switch (f.type) {
	case ZC_FT_GOAWAY:
		sn->goaway = true;
		sn->goaway_id = f.id;
		return 0;
	case ZC_FT_PONG:
		sn->pong = true;
		return 0;
	case ZC_FT_RESPONSE:
	case ZC_FT_ERROR:
		cr_assert_lt(f.id, MAX_IDS);
		cr_assert_not(sn->done[f.id], "id %llu answered twice",
			      (unsigned long long)f.id);
		sn->bytes[f.id] += f.len;
		sn->msg_len[f.id] = f.msg_len;
		sn->status[f.id] = f.type == ZC_FT_ERROR ? f.status : 0;
		sn->done[f.id] = f.type == ZC_FT_ERROR ||
				 !(f.flags & ZC_FF_MORE);
		return (int64_t)f.id;
	default:
		cr_assert(false, "unexpected frame type %u", f.type);
	}
	return -1;
}

static bool complete_ok(const struct seen *sn, uint64_t id)
{
	return sn->done[id] && !sn->status[id] &&
	       sn->bytes[id] == sn->msg_len[id];
}

/* A fresh server (@o), nothing seen yet, and a raw connection to it. */
static int start_raw(struct rt_env *e, const struct rt_opts *o,
		     struct seen *sn)
{
	memset(sn, 0, sizeof(*sn));
	park_reset();
	rt_start(e, o);
	return raw_open(e->port);
}

/* ---- a neighbour that keeps calling on its own connection -------------- */

struct neighbour {
	struct zc_rpc_client *cli;
	pthread_t th;
	atomic_bool stop;
	atomic_uint ok, bad;
};

static void *neighbour_main(void *arg)
{
	struct neighbour *nb = arg;

	for (unsigned i = 0; i < 100000 && !atomic_load(&nb->stop); i++) {
		struct zc_chain req, resp;
		int st;

		rt_chain(rt_pool, &req, 100 + i % 1000, i);
		zc_chain_init(&resp);
		st = zc_rpc_call_sync(nb->cli, ZC_RPC_METHOD_ECHO, &req, NULL,
				      &resp);
		if (st == ZC_RPC_OK && rt_check(&resp, 100 + i % 1000, i))
			atomic_fetch_add(&nb->ok, 1);
		else
			atomic_fetch_add(&nb->bad, 1);
		zc_chain_release(&resp);
		usleep(2000);
	}
	return NULL;
}

static void neighbour_start(struct neighbour *nb, struct zc_rpc_client *cli)
{
	nb->cli = cli;
	atomic_init(&nb->stop, false);
	atomic_init(&nb->ok, 0);
	atomic_init(&nb->bad, 0);
	cr_assert_eq(pthread_create(&nb->th, NULL, neighbour_main, nb), 0);
	/* Served once before the test goes on: an attack that ends within
	 * milliseconds could otherwise stop a neighbour that, on a loaded
	 * machine, had not made its first call yet (bounded: 10 s). */
	for (unsigned i = 0; i < 1000 && !atomic_load(&nb->ok) &&
			     !atomic_load(&nb->bad); i++)
		usleep(10000);
}

/* Stop it; it must have been answered correctly every time, and at least
 * once. */
static void neighbour_check(struct neighbour *nb)
{
	atomic_store(&nb->stop, true);
	pthread_join(nb->th, NULL);
	cr_assert_gt(atomic_load(&nb->ok), 0);
	cr_assert_eq(atomic_load(&nb->bad), 0);
}

/* ---- item 7: drain ----------------------------------------------------- */

static bool answer_cut(void *arg)
{
	struct zc_rpc_server_stats ss;

	zc_rpc_server_stats(arg, &ss);
	return ss.drain_cut == 1;
}

/* Keeps sending small echo requests after the drain started. */
struct writer {
	int fd;
	uint64_t next_id;
	atomic_bool stop;
	pthread_t th;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[ZC_FRAME_HDR_LEN + 8];

	while (!atomic_load(&w->stop) && w->next_id < MAX_IDS) {
		zc__frame_encode(buf, &(struct zc_frame){
			.type = ZC_FT_REQUEST, .method = ZC_RPC_METHOD_ECHO,
			.len = 8, .id = w->next_id, .msg_len = 8 });
		memcpy(buf + ZC_FRAME_HDR_LEN, "12345678", 8);
		if (send(w->fd, buf, sizeof(buf), MSG_NOSIGNAL) !=
		    (ssize_t)sizeof(buf))
			break;
		w->next_id++;
		usleep(500);
	}
	return NULL;
}

/*
 * GOAWAY names the last call answered, every call up to it is answered in
 * full (4 answers of 4 MiB, 64 fragments each, still queued when the
 * drain starts), while calls keep arriving; then a graceful close.
 */
Test(promises, drain_answers_every_call_in_full, .timeout = 120)
{
	for (int round = 0; round < 3; round++) {
		struct rt_opts o = { .no_client = true, .setup = setup };
		static struct seen sn;
		struct rt_drain d;
		struct writer w;
		pthread_t th;
		struct rt_env e;
		uint64_t last;
		int fd;

		memset(&sn, 0, sizeof(sn));
		rt_start(&e, &o);
		fd = raw_open(e.port);
		for (uint64_t id = 1; id <= 4; id++)
			raw_sized(fd, id, 4u << 20);
		/* The first fragment: the answers are being sent. */
		cr_assert_geq(seen_read(fd, &sn), 1);
		w = (struct writer){ .fd = fd, .next_id = 5 };
		cr_assert_eq(pthread_create(&w.th, NULL, writer_main, &w), 0);
		d = (struct rt_drain){ .s = e.srv, .timeout_ms = 10000 };
		cr_assert_eq(pthread_create(&th, NULL, rt_drain_main, &d), 0);
		/* Read until GOAWAY and every call up to its id is done. */
		for (;;) {
			bool all = sn.goaway;

			for (uint64_t id = 1; all && id <= sn.goaway_id; id++)
				all = sn.done[id];
			if (all)
				break;
			cr_assert_geq(seen_read(fd, &sn), 0,
				      "round %d: closed before every answer "
				      "up to GOAWAY %llu", round,
				      (unsigned long long)sn.goaway_id);
		}
		last = sn.goaway_id;
		/* At least the call being answered; 2-4 may wait unparsed
		 * behind tx_budget and be refused as after the GOAWAY. */
		cr_assert_geq(last, 1);
		for (uint64_t id = 1; id <= last; id++)
			cr_assert(complete_ok(&sn, id), "round %d: id %llu "
				  "not answered in full (%zu of %u bytes)",
				  round, (unsigned long long)id, sn.bytes[id],
				  sn.msg_len[id]);
		/* As a client does: no more requests, then our FIN. */
		atomic_store(&w.stop, true);
		pthread_join(w.th, NULL);
		shutdown(fd, SHUT_WR);
		while (seen_read(fd, &sn) >= 0)
			;
		for (uint64_t id = last + 1; id < w.next_id; id++)
			cr_assert(!sn.done[id] ||
				  sn.status[id] == ZC_RPC_UNAVAILABLE,
				  "id %llu after GOAWAY: status %d",
				  (unsigned long long)id, sn.status[id]);
		pthread_join(th, NULL);
		cr_assert_eq(d.ret, 0, "round %d: drain %d", round, d.ret);
		close(fd);
		rt_stop(&e);
	}
}

/* The drain deadline passes while a 32 MiB answer is being sent to a peer
 * that has stopped reading: the answer is cut and ended by ERROR
 * cancelled, then EOF; the drain reports -ETIMEDOUT. */
Test(promises, drain_deadline_cuts_answer_with_error, .timeout = 60)
{
	struct rt_opts o = { .no_client = true, .setup = setup };
	static struct seen sn;
	struct rt_drain d;
	struct rt_env e;
	pthread_t th;
	int fd;

	fd = start_raw(&e, &o, &sn);
	raw_sized(fd, 1, 32u << 20);
	cr_assert_eq(seen_read(fd, &sn), 1);
	/* We read nothing more until the drain has cut the answer. */
	d = (struct rt_drain){ .s = e.srv, .timeout_ms = 100 };
	cr_assert_eq(pthread_create(&th, NULL, rt_drain_main, &d), 0);
	cr_assert(rt_wait_for(answer_cut, e.srv, 10));
	while (seen_read(fd, &sn) >= 0)
		;
	pthread_join(th, NULL);
	cr_assert_eq(d.ret, -ETIMEDOUT);
	cr_assert(sn.goaway);
	cr_assert_eq(sn.goaway_id, 1);
	cr_assert(sn.done[1], "the cut answer was not ended");
	cr_assert_eq(sn.status[1], ZC_RPC_CANCELLED);
	cr_assert_lt(sn.bytes[1], 32u << 20);
	raw_expect_eof(fd, "after the cut answer");
	close(fd);
	rt_stop(&e);
}

/* ---- item 6: half-close ------------------------------------------------ */

struct hc_writer {
	int fd;
	pthread_t th;
};

static void *hc_main(void *arg)
{
	struct hc_writer *w = arg;

	for (uint64_t id = 1; id <= 20; id++)
		raw_request(w->fd, id, ZC_RPC_METHOD_ECHO, 0, 1u << 20, 65536);
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

/* 20 x 1 MiB echo requests, then our FIN: all 20 answers arrive whole,
 * then the server's EOF; a neighbour is served meanwhile. */
Test(promises, half_close_still_answered, .timeout = 60)
{
	struct rt_opts o = { .cc = { .conns = 1 }, .setup = setup };
	static struct seen sn;
	struct neighbour nb;
	struct hc_writer w;
	struct rt_env e;

	memset(&sn, 0, sizeof(sn));
	rt_start(&e, &o);
	neighbour_start(&nb, e.cli);
	w.fd = raw_open(e.port);
	cr_assert_eq(pthread_create(&w.th, NULL, hc_main, &w), 0);
	while (seen_read(w.fd, &sn) >= 0)
		;
	pthread_join(w.th, NULL);
	for (uint64_t id = 1; id <= 20; id++)
		cr_assert(complete_ok(&sn, id) && sn.bytes[id] == 1u << 20,
			  "id %llu: %zu bytes", (unsigned long long)id,
			  sn.bytes[id]);
	/* It ended with EOF (seen_read returned -1 on recv 0 or error). */
	raw_expect_eof(w.fd, "after the answers");
	close(w.fd);
	neighbour_check(&nb);
	rt_stop(&e);
}

/* ---- item 4: CANCEL ---------------------------------------------------- */

/* A 32 MiB answer, CANCEL on its first fragment: what the server had
 * handed to the kernel still arrives, the last fragment never does, and
 * nothing of it follows the PONG sent after the CANCEL. */
Test(promises, cancel_stops_answer, .timeout = 60)
{
	struct rt_opts o = { .no_client = true, .setup = setup };
	static struct seen sn;
	struct zc_rpc_server_stats ss;
	struct rt_env e;
	int fd;

	fd = start_raw(&e, &o, &sn);
	raw_sized(fd, 1, 32u << 20);
	cr_assert_eq(seen_read(fd, &sn), 1);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_CANCEL, .id = 1 },
		  NULL);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_PING, .len = 8,
					  .msg_len = 8 }, "12345678");
	while (!sn.pong)
		cr_assert_geq(seen_read(fd, &sn), 0);
	cr_assert_not(sn.done[1], "the cancelled answer completed");
	/* After the PONG: only the answer to id 2. */
	raw_request(fd, 2, ZC_RPC_METHOD_ECHO, 0, 10, 10);
	cr_assert_eq(seen_read(fd, &sn), 2, "a fragment of id 1 followed");
	cr_assert(complete_ok(&sn, 2));
	cr_assert_not(sn.done[1]);
	cr_assert_lt(sn.bytes[1], 32u << 20);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.cancels, 1);
	cr_assert_eq(ss.conns_protocol_error, 0);
	close(fd);
	rt_stop(&e);
}

/* ---- item 9: deadlines ------------------------------------------------- */

/* A 1 us budget has run out before the server could run anything; a call
 * waiting in the worker queue behind a busy worker, or for fragments that
 * never come, is answered at its deadline, not when the worker frees or
 * the message completes. */
Test(promises, deadlines_in_every_queue, .timeout = 60)
{
	struct rt_opts o = { .sc = { .workers = 1 }, .no_client = true,
			     .setup = setup, .setup_arg = (void *)1 };
	static uint8_t frag[ZC_FRAG_MIN];
	struct zc_rpc_server_stats ss;
	static struct seen sn;
	struct rt_env e;
	int fd;

	fd = start_raw(&e, &o, &sn);
	raw_request(fd, 1, ZC_RPC_METHOD_ECHO, 1, 10, 10);
	cr_assert_eq(seen_read(fd, &sn), 1);
	cr_assert_eq(sn.status[1], ZC_RPC_DEADLINE_EXCEEDED);

	/* The worker blocks on id 2; id 3 (100 ms budget) waits for it. */
	raw_request(fd, 2, M_BLOCK, 0, 10, 10);
	while (atomic_load(&park.runs) < 1)
		usleep(1000);
	raw_request(fd, 3, M_BLOCK, 100000, 10, 10);
	cr_assert_eq(seen_read(fd, &sn), 3, "no answer at the deadline");
	cr_assert_eq(sn.status[3], ZC_RPC_DEADLINE_EXCEEDED);
	cr_assert_not(atomic_load(&park.open));
	atomic_store(&park.open, true);
	cr_assert_eq(seen_read(fd, &sn), 2);
	cr_assert(complete_ok(&sn, 2));

	/* Half a message with a 100 ms budget: answered at the deadline
	 * though its second fragment never comes; the connection lives. */
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.flags = ZC_FF_MORE, .method = ZC_RPC_METHOD_ECHO,
		.len = ZC_FRAG_MIN, .id = 4, .deadline_us = 100000,
		.msg_len = 2 * ZC_FRAG_MIN }, frag);
	cr_assert_eq(seen_read(fd, &sn), 4, "no answer at the deadline");
	cr_assert_eq(sn.status[4], ZC_RPC_DEADLINE_EXCEEDED);
	raw_request(fd, 5, ZC_RPC_METHOD_ECHO, 0, 10, 10);
	cr_assert_eq(seen_read(fd, &sn), 5);
	cr_assert(complete_ok(&sn, 5));
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.expired_queued, 2);
	cr_assert_eq(ss.expired_reasm, 1);
	close(fd);
	rt_stop(&e);
}

#define M_PARK	(ZC_RPC_METHOD_USER + 52)

static void park_setup(struct zc_rpc_server *s, void *arg)
{
	cr_assert_eq(zc_rpc_server_register(s, M_PARK, "park", ZC_RPC_INLINE,
					    0, park_handler, NULL), 0);
}

/* A request left unread because max_inflight_bytes is held by a parked
 * call is refused at its deadline, not when the room comes back. */
Test(promises, deadline_while_waiting_for_room, .timeout = 60)
{
	struct rt_opts o = { .sc = { .max_message = 65536,
				     .max_inflight_bytes = 100000 },
			     .no_client = true, .setup = park_setup };
	struct zc_rpc_server_stats ss;
	static struct seen sn;
	struct zc_chain empty;
	struct rt_env e;
	int fd;

	fd = start_raw(&e, &o, &sn);
	raw_request(fd, 1, M_PARK, 0, 60000, 60000);
	cr_assert(rt_wait_for(park_has, (void *)1, 10));
	raw_request(fd, 2, ZC_RPC_METHOD_ECHO, 100000, 60000, 60000);
	cr_assert_eq(seen_read(fd, &sn), 2, "no answer at the deadline");
	cr_assert_eq(sn.status[2], ZC_RPC_DEADLINE_EXCEEDED);
	zc_chain_init(&empty);
	cr_assert_eq(zc_rpc_reply(park_get(0), &empty), 0);
	cr_assert_eq(seen_read(fd, &sn), 1);
	cr_assert(complete_ok(&sn, 1));
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_geq(ss.rx_budget_stops, 1);
	cr_assert_eq(ss.expired_queued, 1);
	close(fd);
	rt_stop(&e);
}

/* ---- item 9: timeouts -------------------------------------------------- */

/* Wait (bounded by SO_RCVTIMEO) for the server's reset, sending one byte
 * every 50 ms meanwhile (a slowloris); false if it never came. */
static bool trickle_until_reset(int fd)
{
	for (int i = 0; i < 200; i++) {
		uint8_t b = 0x5a;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 50) == 1) {
			ssize_t n = recv(fd, &b, 1, 0);

			return n < 0 && errno == ECONNRESET;
		}
		if (send(fd, &b, 1, MSG_NOSIGNAL) != 1)
			return errno == ECONNRESET || errno == EPIPE;
	}
	return false;
}

Test(promises, timeouts_close_only_their_connection, .timeout = 90)
{
	struct rt_opts o = {
		.sc = { .hello_timeout_ms = 200, .stall_timeout_ms = 300,
			.idle_timeout_ms = 400, .linger_ms = 300 },
		.cc = { .conns = 1 }, .setup = setup };
	static uint8_t frag[ZC_FRAG_MIN];
	struct zc_rpc_server_stats ss;
	struct neighbour nb;
	uint8_t p[64];
	struct zc_frame f;
	struct rt_env e;
	int fd;

	memset(frag, 'q', sizeof(frag));
	rt_start(&e, &o);
	neighbour_start(&nb, e.cli);

	/* No HELLO: reset. */
	fd = raw_connect(e.port);
	raw_expect_hello(fd);
	raw_expect_reset(fd, "no hello");

	/* A frame header trickled one byte per 50 ms: reset. */
	fd = raw_open(e.port);
	cr_assert(trickle_until_reset(fd), "slowloris frame not reset");
	close(fd);

	/* A message whose second fragment never comes: reset. */
	fd = raw_open(e.port);
	raw_frame(fd, &(struct zc_frame){ .type = ZC_FT_REQUEST,
		.flags = ZC_FF_MORE, .method = ZC_RPC_METHOD_ECHO,
		.len = ZC_FRAG_MIN, .id = 1, .msg_len = 2 * ZC_FRAG_MIN },
		frag);
	raw_expect_reset(fd, "stalled message");

	/* Idle: GOAWAY, then a graceful close. */
	fd = raw_open(e.port);
	cr_assert_eq(raw_read(fd, &f, p, sizeof(p)), 0, "no GOAWAY");
	cr_assert_eq(f.type, ZC_FT_GOAWAY);
	cr_assert_eq(f.status, ZC_RPC_OK);
	raw_expect_eof(fd, "idle");
	close(fd);

	neighbour_check(&nb);
	zc_rpc_server_stats(e.srv, &ss);
	cr_assert_eq(ss.conns_timed_out, 4);
	cr_assert_eq(ss.conns_protocol_error, 0);
	rt_stop(&e);
}
