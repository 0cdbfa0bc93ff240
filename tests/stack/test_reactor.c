/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/test_reactor.c - the reactor itself: work posted from many
 * threads runs once each, in order, on the reactor thread; an embedder's
 * poll() on zc_reactor_fd() wakes for posted work and for network
 * completions; busy-polling reactors serve correctly; zero-copy sends of
 * single pool buffers use registered (fixed) buffers; configured socket
 * buffers reach accepted and connected sockets; the default receive ring
 * is sized by bytes; small receives share a ring buffer where the kernel
 * can fill one over several.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <liburing.h>

#include "harness.h"

#define POSTERS 4
#define POSTS (ZC_TEST_SANITIZED ? 2000 : 20000)

struct item {
	struct zc_work w;
	unsigned thread, seq;
};

struct post_ctx {
	struct zc_reactor *r;
	struct item *items[POSTERS];
	unsigned next[POSTERS];   /* reactor thread only */
	unsigned ran, out_of_order, off_thread;
};

static struct post_ctx P;

static void item_run(struct zc_work *w)
{
	struct item *it = (struct item *)w;

	if (zc_reactor_current() != P.r)
		P.off_thread++;
	if (it->seq != P.next[it->thread])
		P.out_of_order++;
	P.next[it->thread] = it->seq + 1;
	P.ran++;
}

static void *poster(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;

	for (unsigned i = 0; i < POSTS; i++) {
		struct item *it = &P.items[t][i];

		it->w.fn = item_run;
		it->thread = t;
		it->seq = i;
		zc_reactor_queue(P.r, &it->w);
	}
	return NULL;
}

static int read_ran(void *arg)
{
	return (int)P.ran;
}

Test(stack_reactor, queue_from_many_threads)
{
	pthread_t t[POSTERS];
	struct zc_reactor_stats st;

	memset(&P, 0, sizeof(P));
	cr_assert_eq(zc_reactor_spawn(NULL, &P.r), 0);
	for (unsigned i = 0; i < POSTERS; i++) {
		P.items[i] = calloc(POSTS, sizeof(struct item));
		cr_assert_eq(pthread_create(&t[i], NULL, poster,
					    (void *)(uintptr_t)i), 0);
	}
	for (unsigned i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	/* A call is queued behind every earlier post. */
	cr_assert_eq(zc_reactor_call(P.r, read_ran, NULL), POSTERS * POSTS);
	cr_assert_eq(P.out_of_order, 0);
	cr_assert_eq(P.off_thread, 0);
	/* Counters of a batch land after its work ran: one more call. */
	zc_reactor_call(P.r, read_ran, NULL);
	zc_reactor_stats(P.r, &st);
	cr_assert_geq(st.posts, POSTERS * POSTS);
	cr_assert_eq(zc_reactor_destroy(P.r), 0);
	for (unsigned i = 0; i < POSTERS; i++)
		free(P.items[i]);
}

/* -------------------------------------------------------------------------
 * A destroy that answers -EBUSY leaves a spawned reactor serving posted
 * work and taking back buffers, so a thread that still holds views can ask
 * it for things and then release them.
 */

#define HELD 4

static struct zc_buf *held[HELD];

static int alloc_held(void *arg)
{
	struct zc_pool *pool = arg;

	for (unsigned i = 0; i < HELD; i++)
		if (zc_buf_alloc(pool, &held[i]))
			return -1;
	return 0;
}

static int on_reactor(void *arg)
{
	return zc_reactor_current() == arg;
}

static int in_use(void *arg)
{
	struct zc_pool_stats st;

	zc_pool_stats(arg, &st);
	return (int)st.in_use;
}

Test(stack_reactor, busy_destroy_keeps_serving_posts)
{
	struct zc_reactor *r;
	struct zc_pool *pool;

	/* defer_max 2: releasing two buffers here kicks the parked thread
	 * (the kick path must not touch the closed ring). */
	cr_assert_eq(zc_reactor_spawn(&(struct zc_reactor_config){
			.defer_max = 2 }, &r), 0);
	pool = zc_reactor_pool(r);
	cr_assert_eq(zc_reactor_call(r, alloc_held, pool), 0);
	cr_assert_eq(zc_reactor_destroy(r), -EBUSY);
	/* Would block forever if the parked thread ignored posted work. */
	cr_assert_eq(zc_reactor_call(r, on_reactor, r), 1);
	cr_assert_eq(zc_reactor_call(r, in_use, pool), HELD);
	zc_buf_put(held[0]);
	zc_buf_put(held[1]);	/* reaches defer_max: kick */
	/* Woken, the parked thread takes them back before the next work. */
	cr_assert_eq(zc_reactor_call(r, in_use, pool), HELD - 2);
	cr_assert_eq(zc_reactor_destroy(r), -EBUSY);
	zc_buf_put(held[2]);
	zc_buf_put(held[3]);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * Embedding
 */

static int flag;

static void set_flag(void *arg)
{
	flag = 1;
}

static void *late_post(void *arg)
{
	usleep(20000);
	if (zc_reactor_post(arg, set_flag, NULL))
		abort();
	return NULL;
}

/* Poll the reactor's fd like an embedder, then run what is ready. */
static void embed_step(struct zc_reactor *r)
{
	struct pollfd pfd = { .fd = zc_reactor_fd(r), .events = POLLIN };

	cr_assert_eq(poll(&pfd, 1, 5000), 1, "reactor fd never woke");
	cr_assert_geq(zc_reactor_run_once(r, 0), 0);
}

Test(stack_reactor, embedded_fd_wakes)
{
	struct zc_reactor *r;
	struct zc_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl;
	pthread_t t;
	char out[5000], in[5000];
	size_t got = 0;
	int fd;

	cr_assert_eq(zc_reactor_create(NULL, &r), 0);
	cr_assert_geq(zc_reactor_fd(r), 0);
	zc_reactor_run_once(r, 0);

	/* Work posted by another thread while the embedder sleeps. */
	flag = 0;
	cr_assert_eq(pthread_create(&t, NULL, late_post, r), 0);
	while (!flag)
		embed_step(r);
	pthread_join(t, NULL);

	/* Network completions. */
	hs_addr(&ss, &sl, 0);
	cr_assert_eq(zc_echo_listen(r, (struct sockaddr *)&ss, sl, 0, &l), 0);
	zc_reactor_run_once(r, 0);
	hs_addr(&ss, &sl, zc_listener_port(l));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(fd, (struct sockaddr *)&ss, sl);
	hs_fill(5, 0, out, sizeof(out));
	while (got < sizeof(out)) {
		ssize_t k;

		if (got == 0 && send(fd, out, sizeof(out), 0) < 0)
			continue;
		embed_step(r);
		while ((k = recv(fd, in + got, sizeof(in) - got, 0)) > 0)
			got += (size_t)k;
	}
	cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	close(fd);
	zc_listener_close(l);
	cr_assert_eq(zc_reactor_destroy(r), 0);
}

/* -------------------------------------------------------------------------
 * Busy poll and fixed buffers, through the echo server.
 */

static int listen_fn(void *arg)
{
	void **a = arg;
	struct sockaddr_storage ss;
	socklen_t sl;

	hs_addr(&ss, &sl, 0);
	return zc_echo_listen(a[0], (struct sockaddr *)&ss, sl, 0, a[1]);
}

static void ping_pong(const struct zc_reactor_config *rc, size_t msg,
		      unsigned rounds, struct zc_reactor_stats *st)
{
	struct zc_reactor *r;
	struct zc_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl;
	void *args[2];
	char *out = malloc(msg), *in = malloc(msg);
	int fd;

	cr_assert_eq(zc_reactor_spawn(rc, &r), 0);
	args[0] = r;
	args[1] = &l;
	cr_assert_eq(zc_reactor_call(r, listen_fn, args), 0);
	hs_addr(&ss, &sl, zc_listener_port(l));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, sl), 0);
	for (unsigned i = 0; i < rounds; i++) {
		size_t got = 0;

		hs_fill(i, 0, out, msg);
		cr_assert_eq(write(fd, out, msg), (ssize_t)msg);
		while (got < msg) {
			ssize_t k = read(fd, in + got, msg - got);

			cr_assert_gt(k, 0);
			got += (size_t)k;
		}
		cr_assert_eq(memcmp(in, out, msg), 0, "round %u", i);
	}
	close(fd);
	/* The server closes at our EOF, after its last notification. */
	for (int i = 0; i < 500; i++) {
		zc_reactor_stats(r, st);
		if (st->closed == 1)
			break;
		usleep(10000);
	}
	cr_assert_eq(st->closed, 1);
	cr_assert_eq(zc_reactor_destroy(r), 0);
	free(out);
	free(in);
}

Test(stack_reactor, busy_poll_serves)
{
	struct zc_reactor_config rc = { .busy_poll_us = 200 };
	struct zc_reactor_stats st;

	ping_pong(&rc, 64, 300, &st);
	cr_log_info("busy poll: spins %llu misses %llu sleeps %llu",
		    (unsigned long long)st.spins,
		    (unsigned long long)st.spin_misses,
		    (unsigned long long)st.sleeps);
	cr_assert_gt(st.spins + st.spin_misses, 0);
	cr_assert_eq(st.rx_bytes, 64 * 300);
}

Test(stack_reactor, zc_send_uses_fixed_buffers)
{
	struct zc_reactor_config rc = { .send_mode = ZC_SEND_ZC,
					.rxbuf_size = 65536 };
	struct zc_reactor_stats st;

	ping_pong(&rc, 60000, 50, &st);
	cr_log_info("zc: tx_zc %llu fixed %llu notifs %llu",
		    (unsigned long long)st.tx_zc,
		    (unsigned long long)st.tx_zc_fixed,
		    (unsigned long long)st.notifs);
	cr_assert_gt(st.tx_zc, 0);
	cr_assert_eq(st.notifs, st.tx_zc);
	cr_assert_gt(st.tx_zc_fixed, 0);
}

/* -------------------------------------------------------------------------
 * Socket buffers: accepted and connected sockets both get them.
 */

struct sockbuf_ctx {
	struct zc_reactor *r;
	struct zc_listener *l;
	int accepted_rcv, accepted_snd, connected_rcv, connected_snd;
	atomic_int seen;
};

static void sockbufs_of(struct zc_conn *c, int *rcv, int *snd)
{
	socklen_t len = sizeof(int);

	getsockopt(zc_conn_fd(c), SOL_SOCKET, SO_RCVBUF, rcv, &len);
	len = sizeof(int);
	getsockopt(zc_conn_fd(c), SOL_SOCKET, SO_SNDBUF, snd, &len);
}

static void sb_on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct sockbuf_ctx *x = ud;

	sockbufs_of(c, &x->accepted_rcv, &x->accepted_snd);
	atomic_fetch_add(&x->seen, 1);
	/* No ops: the stack closes it on return. */
}

static void sb_on_connect(struct zc_conn *c, void *ud)
{
	struct sockbuf_ctx *x = ud;

	sockbufs_of(c, &x->connected_rcv, &x->connected_snd);
	atomic_fetch_add(&x->seen, 1);
	zc_conn_close(c, ZC_CLOSE_ABORT);
}

static const struct zc_conn_ops sb_ops = { .on_connect = sb_on_connect };

static int sockbuf_setup(void *arg)
{
	struct sockbuf_ctx *x = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int ret;

	hs_addr(&ss, &sl, 0);
	ret = zc_listen(x->r, (struct sockaddr *)&ss, sl, 0, sb_on_accept, x,
			&x->l);
	if (ret)
		return ret;
	hs_addr(&ss, &sl, zc_listener_port(x->l));
	return zc_connect(x->r, (struct sockaddr *)&ss, sl, 5000, &sb_ops, x,
			  NULL);
}

static int sockbuf_teardown(void *arg)
{
	zc_listener_close(((struct sockbuf_ctx *)arg)->l);
	return 0;
}

Test(stack_reactor, socket_buffers_apply)
{
	/* Below the default net.core.{r,w}mem_max (212992), so the kernel
	 * keeps it; getsockopt() reports twice the value. */
	struct zc_reactor_config rc = { .sock_sndbuf = 65536,
					.sock_rcvbuf = 98304 };
	struct zc_reactor_config bad = { .sock_rcvbuf = (size_t)INT_MAX + 1 };
	struct sockbuf_ctx x = { 0 };

	cr_assert_eq(zc_reactor_spawn(&bad, &x.r), -EINVAL);
	cr_assert_eq(zc_reactor_spawn(&rc, &x.r), 0);
	cr_assert_eq(zc_reactor_call(x.r, sockbuf_setup, &x), 0);
	for (int i = 0; i < 500 && atomic_load(&x.seen) < 2; i++)
		usleep(10000);
	cr_assert_eq(atomic_load(&x.seen), 2);
	cr_assert_eq(x.connected_rcv, 2 * 98304);
	cr_assert_eq(x.connected_snd, 2 * 65536);
	cr_assert_eq(x.accepted_rcv, 2 * 98304);
	cr_assert_eq(x.accepted_snd, 2 * 65536);
	zc_reactor_call(x.r, sockbuf_teardown, &x);
	cr_assert_eq(zc_reactor_destroy(x.r), 0);
}

/* The reactor thread's niceness, read on that thread (the caller's does
 * not change). */
static int thread_nice(void *arg)
{
	(void)arg;
	return getpriority(PRIO_PROCESS, 0);
}

Test(stack_reactor, nice_lowers_only_the_reactor_thread)
{
	struct zc_reactor_config rc = { .nice = 5 };
	struct zc_reactor_config bad = { .nice = 40 };
	int mine = getpriority(PRIO_PROCESS, 0);
	struct zc_reactor *r, *plain;

	cr_assert_eq(zc_reactor_spawn(&bad, &r), -EINVAL);
	cr_assert_eq(zc_reactor_spawn(&rc, &r), 0);
	cr_assert_eq(zc_reactor_spawn(&(struct zc_reactor_config){ 0 }, &plain),
		     0);
	/* setpriority() clamps at 19. */
	cr_assert_eq(zc_reactor_call(r, thread_nice, NULL),
		     mine + 5 > 19 ? 19 : mine + 5);
	cr_assert_eq(zc_reactor_call(plain, thread_nice, NULL), mine);
	cr_assert_eq(getpriority(PRIO_PROCESS, 0), mine);
	cr_assert_eq(zc_reactor_destroy(r), 0);
	cr_assert_eq(zc_reactor_destroy(plain), 0);
}

/* The default ring holds 1 MiB of buffers, at least 8: the ring is filled
 * once at creation, so the refill counter says how many it holds. */
Test(stack_reactor, default_ring_depth_by_bytes)
{
	static const struct {
		size_t rxbuf;
		unsigned entries;
	} cases[] = { { 4096, 256 }, { 65536, 16 }, { 262144, 8 } };

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zc_reactor_config rc = { .rxbuf_size = cases[i].rxbuf };
		struct zc_reactor_stats st;
		struct zc_reactor *r;

		cr_assert_eq(zc_reactor_create(&rc, &r), 0);
		zc_reactor_stats(r, &st);
		cr_assert_eq(st.rx_ring_refills, cases[i].entries,
			     "rxbuf %zu: %llu buffers in the ring",
			     cases[i].rxbuf,
			     (unsigned long long)st.rx_ring_refills);
		cr_assert_eq(zc_reactor_destroy(r), 0);
	}
}

/* Can this kernel fill one ring buffer over several receives?  Asked of a
 * bare ring, independently of the stack. */
static bool kernel_has_inc_bufs(void)
{
	struct io_uring ring;
	struct io_uring_buf_reg reg = { 0 };
	void *mem;
	int ret;

	cr_assert_eq(io_uring_queue_init(4, &ring, 0), 0);
	mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	cr_assert_neq(mem, MAP_FAILED);
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = 4;
#ifdef IOU_PBUF_RING_MMAP
	reg.flags = 2;	/* IOU_PBUF_RING_INC */
#else
	reg.pad = 2;
#endif
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	io_uring_queue_exit(&ring);
	munmap(mem, 4096);
	return ret == 0;
}

/* 300 small requests: with an incremental ring they pack into one buffer,
 * without it each takes a whole one. */
Test(stack_reactor, small_receives_share_a_buffer)
{
	struct zc_reactor_config inc = { 0 };
	struct zc_reactor_config whole = { .flags = ZC_REACTOR_NO_INC_BUFS };
	struct zc_reactor_stats st;
	bool has_inc = kernel_has_inc_bufs();

	ping_pong(&inc, 64, 300, &st);
	cr_log_info("incremental ring %s: %llu receives shared a buffer, "
		    "%llu ring refills", has_inc ? "on" : "unsupported",
		    (unsigned long long)st.rx_buf_shared,
		    (unsigned long long)st.rx_ring_refills);
	if (has_inc) {
		cr_assert_geq(st.rx_buf_shared, 299);
		cr_assert_lt(st.rx_ring_refills, 300);
	} else {
		cr_assert_eq(st.rx_buf_shared, 0);
	}
	ping_pong(&whole, 64, 300, &st);
	cr_assert_eq(st.rx_buf_shared, 0);
	cr_assert_geq(st.rx_ring_refills, 300);
}
