/* SPDX-License-Identifier: MIT */
/*
 * conns_floor - the fastest request/response over many loopback
 * connections on this machine, with no stack: what the kernel itself costs
 * per call with 1,000 active of 10,000 open connections against 16 of 16.
 *
 *   conns_floor                         1,000 active of 10,000, 64 B, 5 runs of 3 s
 *   conns_floor --open 2000 --active 200 --runs 3 --secs 2
 *   conns_floor --client-cpu 0 --server-cpu 1 --wait epoll
 *   conns_floor --runs 1 --secs 1 --json        one JSON line per run, for scripts
 *
 * A client thread and an echo thread, pinned to two CPUs, over loopback TCP
 * (TCP_NODELAY).  The client opens --open connections, the echo thread
 * accepts them all before any timing (the connect storm is not measured),
 * then --active of them (the last ones opened, as zcperf --idle opens its
 * idle connections first) each carry one --size request at a time, echoed
 * whole; the others stay open, never read or written.  The echo thread
 * cannot tell them apart: it watches every connection, as a server does.
 * Messages have a fixed size, so there is no framing, and nothing is
 * allocated per call.  Both threads sleep the same way:
 *
 *   io_uring - one ring per thread (DEFER_TASKRUN where the kernel has it);
 *              a plain recv per watched connection (simpler than a
 *              multishot recv with a buffer ring, and as few system calls:
 *              the send and the next recv of a call go in the same
 *              submission), sends with MSG_WAITALL and CQE_SKIP_SUCCESS;
 *              for every completion of a batch the sends are prepared and
 *              all go in one io_uring_submit_and_wait_timeout();
 *   epoll    - level-triggered epoll_wait(), then recv() and send() per
 *              ready socket.
 *
 * Each run times both shapes, "16 active of 16 open" and "A of N", in each
 * way of sleeping, interleaved run by run (16/io_uring, 16/epoll,
 * A/io_uring, A/epoll, 16/io_uring, ...) so that a noisy machine's drift
 * hits all four alike.  A run is a fresh pair of threads and connections,
 * a warm-up, then --secs timed: calls/s, and the CPU time of each thread
 * (CLOCK_THREAD_CPUTIME_ID; loopback TCP runs the receiver's protocol work
 * in the sender's softirq, so each thread's time holds kernel work done on
 * behalf of the other).  The table gives medians with min-max, CPU us per
 * call per side, and the ratio (A of N) / (16 of 16) per way of sleeping.
 *
 * Descriptors: both ends live in this process, two per connection, so
 * 10,000 connections would want 20,000 descriptors in one table, the hard
 * limit of many machines.  Then each thread takes a descriptor table of its
 * own (unshare(CLONE_FILES)), for every shape of the invocation alike, so
 * each needs --open plus a few (--tables own forces it, --tables shared
 * forbids it).  The tool raises RLIMIT_NOFILE to what it needs and stops
 * when the hard limit is short.  A table of one thread is also the
 * kernel's cheapest: its lookups take no reference on the file (fdget's
 * fast path), as a one-thread server's do; a shared table's take one.
 * ThreadSanitizer models one table per process, so under it own tables
 * read as races on descriptors: leave them to the other builds.
 */
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pin_thread.h"
#include "runs_stats.h"

enum wait_mode { WAIT_URING, WAIT_EPOLL, WAIT_MODES };

static const char *const mode_label[WAIT_MODES] = {"io_uring", "epoll"};

enum { SHAPE_BASE, SHAPE_MANY, SHAPES };

/* The phases of a run, set by the client, read by the echo thread. */
enum { PHASE_WARM, PHASE_TIMED, PHASE_DONE };

#define MAX_SIZE 4096u
#define MAX_OPEN 100000u
#define BASE_ACTIVE 16u
/* Descriptors a thread holds beside its sockets: stdio, listener, ring,
 * epoll, and what the C library and sanitizers open. */
#define FD_SPARE 64u
#define WARMUP_S 0.5
/* Opening and accepting every connection; longer is a hang. */
#define SETUP_S 120.0
/* The client's last answers after the window, and the echo thread's wait
 * for the client's close: longer is a hang. */
#define DRAIN_S 5.0
/* The longest either thread sleeps before looking at the clock again. */
#define WAIT_MS 200
#define RING_SQ_MAX 4096u

enum tables { TABLES_AUTO, TABLES_OWN, TABLES_SHARED };

static const char *const tables_label[] = {"auto", "own", "shared"};

struct conns_opts {
	unsigned open, active, runs;
	enum tables tables; /* resolved by main(): own or shared */
	double secs;
	size_t size;
	int client_cpu, server_cpu;
	bool wait[WAIT_MODES]; /* the ways of sleeping to run */
	bool json;
};

/* One connection as one side sees it: @got bytes of the message held. */
struct conn {
	int fd;
	unsigned got;
	uint64_t seq; /* client: the number of the request in flight */
};

/* What one thread counted: @calls (client: answers; echo thread: echoes)
 * and CPU seconds between the marks it saw, and its totals. */
struct side_stats {
	unsigned long calls, total;
	unsigned long sent; /* client: requests sent in all */
	unsigned long retrans; /* segments its sockets sent again */
	double cpu_s, secs;
	double runq_s;      /* runnable, waiting for its CPU (-1: unknown) */
	int err;            /* 0 or -errno */
};

/* The two threads of one run.  The client owns @conn[] and its sockets,
 * the echo thread @srv[] and its sockets (in its own descriptor table). */
struct run_ctl {
	enum wait_mode mode;
	unsigned open, active;
	size_t size;
	int client_cpu, server_cpu;
	bool own_tables;        /* each thread unshares its descriptors */
	double secs;
	atomic_int port;        /* echo thread -> client: listening (0: not yet) */
	atomic_bool accepted;   /* echo thread -> client: all accepted */
	atomic_int phase;       /* client -> echo thread: PHASE_* */
	atomic_bool client_gone;   /* client: every socket closed */
	atomic_bool server_failed; /* echo thread: gave up */
	struct conn *conn, *srv;
	char *cbuf, *sbuf;      /* @size bytes per connection, each side */
	struct side_stats cs, ss;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The seconds this thread has waited on a run queue, runnable but not
 * running (/proc/thread-self/schedstat: run, wait, slices), or -1.  On a
 * shared machine this is where a run's time went when its CPU was not
 * its own.
 */
static double runq_wait_s(void)
{
	unsigned long long run, wait;
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	int n = f ? fscanf(f, "%llu %llu", &run, &wait) : 0;

	if (f)
		fclose(f);
	return n == 2 ? (double)wait / 1e9 : -1;
}

/* Sleep @ms (bounded waits on the other thread). */
static void nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* Both sides: the window marks.  The client moves the phase on its clock;
 * the echo thread takes its marks when it first sees a phase, so each
 * side's CPU and count cover the same span of its own work. */
struct marks {
	double t0, cpu0, runq0;
	unsigned long calls0;
	int seen;
};

static void mark_start(struct marks *m, unsigned long calls)
{
	m->t0 = now_s();
	m->cpu0 = thread_cpu_s();
	m->runq0 = runq_wait_s();
	m->calls0 = calls;
}

static void mark_end(const struct marks *m, unsigned long calls,
		     struct side_stats *st)
{
	st->secs = now_s() - m->t0;
	st->cpu_s = thread_cpu_s() - m->cpu0;
	st->runq_s = m->runq0 < 0 ? -1 : runq_wait_s() - m->runq0;
	st->calls = calls - m->calls0;
}

/* The echo thread follows the client's phase. */
static void follow_phase(struct run_ctl *c, struct marks *m,
			 unsigned long echoes)
{
	int p = atomic_load_explicit(&c->phase, memory_order_relaxed);

	if (p == m->seen)
		return;
	if (m->seen == PHASE_WARM)
		mark_start(m, echoes);
	if (p == PHASE_DONE)
		mark_end(m, echoes, &c->ss);
	m->seen = p;
}

/* ---- io_uring ------------------------------------------------------- */

/*
 * user_data: the connection's index shifted left by one, and the low bit
 * set for a send.  Sends succeed silently (CQE_SKIP_SUCCESS): a send
 * completion is always a failure.
 */
static inline uint64_t ud_pack(unsigned idx, bool send)
{
	return (uint64_t)idx << 1 | send;
}

static inline unsigned ud_idx(uint64_t ud)
{
	return (unsigned)(ud >> 1);
}

static inline bool ud_send(uint64_t ud)
{
	return ud & 1;
}

static int ring_init(struct io_uring *ring, unsigned want)
{
	unsigned sq = 8;
	int ret;

	while (sq < want && sq < RING_SQ_MAX)
		sq <<= 1;
	ret = io_uring_queue_init(sq, ring, IORING_SETUP_SINGLE_ISSUER |
					    IORING_SETUP_DEFER_TASKRUN);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(sq, ring, 0);
	return ret;
}

/* A free SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *ring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe && io_uring_submit(ring) >= 0)
		sqe = io_uring_get_sqe(ring);
	return sqe;
}

/* Queue the receive of the rest of @k's message into @buf. */
static int queue_recv(struct io_uring *ring, struct conn *k, unsigned idx,
		      char *buf, size_t size)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, k->fd, buf + k->got, size - k->got, 0);
	io_uring_sqe_set_data64(sqe, ud_pack(idx, false));
	return 0;
}

/*
 * Queue the send of @buf and the receive of the next message into the same
 * @buf: at depth 1 the peer's next message (request or answer) cannot come
 * before this one has been read whole, so the send is done with @buf first.
 * MSG_WAITALL: io_uring finishes a short send itself.
 */
static int queue_send_recv(struct io_uring *ring, struct conn *k,
			   unsigned idx, char *buf, size_t size)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, k->fd, buf, size, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, ud_pack(idx, true));
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	k->got = 0;
	return queue_recv(ring, k, idx, buf, size);
}

/* Submit what is queued and sleep for at least one completion, at most
 * WAIT_MS.  0 (also when the time ran out), or -errno. */
static int ring_wait(struct io_uring *ring)
{
	struct __kernel_timespec ts = {.tv_nsec = WAIT_MS * 1000000LL};
	struct io_uring_cqe *cqe;
	int ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);

	return ret == -ETIME || ret == -EINTR || ret > 0 ? 0 : ret;
}

/* ---- the client ----------------------------------------------------- */

/* The client stamps each request with its number and checks the echo, so
 * a call counts only when the right bytes came back. */
static void stamp(struct run_ctl *c, struct conn *k, char *buf)
{
	size_t n = c->size < sizeof(k->seq) ? c->size : sizeof(k->seq);

	k->seq++;
	memcpy(buf, &k->seq, n);
	c->cs.sent++;
}

static int check_echo(const struct run_ctl *c, const struct conn *k,
		      const char *buf)
{
	size_t n = c->size < sizeof(k->seq) ? c->size : sizeof(k->seq);

	return memcmp(buf, &k->seq, n) ? -EPROTO : 0;
}

/* The client's clock: warm-up, window, then the drain.  Returns true once
 * no new request may go. */
static bool client_clock(struct run_ctl *c, struct marks *m, double start)
{
	double t = now_s();

	if (m->seen == PHASE_WARM && t >= start + WARMUP_S) {
		mark_start(m, c->cs.total);
		m->seen = PHASE_TIMED;
		atomic_store_explicit(&c->phase, PHASE_TIMED,
				      memory_order_relaxed);
	} else if (m->seen == PHASE_TIMED && t >= m->t0 + c->secs) {
		mark_end(m, c->cs.total, &c->cs);
		m->seen = PHASE_DONE;
		atomic_store_explicit(&c->phase, PHASE_DONE,
				      memory_order_relaxed);
	}
	return m->seen == PHASE_DONE;
}

/* The active connections are the last @active opened. */
static unsigned first_active(const struct run_ctl *c)
{
	return c->open - c->active;
}

/* One answer of @k (whole in @buf) arrived: count it, and send the next
 * request unless @stop.  Returns 1 when the next went, 0 when not, or
 * -EPROTO. */
static int client_answer(struct run_ctl *c, struct conn *k, char *buf,
			 bool stop)
{
	if (check_echo(c, k, buf))
		return -EPROTO;
	c->cs.total++;
	k->got = 0;
	if (stop)
		return 0;
	stamp(c, k, buf);
	return 1;
}

static int client_uring(struct run_ctl *c)
{
	unsigned i, in_flight = 0, a0 = first_active(c);
	struct marks m = {0};
	struct io_uring ring;
	double start, stop_at = 0;
	bool stop = false;
	int ret = ring_init(&ring, 2 * c->active);

	if (ret)
		return ret;
	for (i = a0; !ret && i < c->open; i++, in_flight++) {
		stamp(c, &c->conn[i], c->cbuf + i * c->size);
		ret = queue_send_recv(&ring, &c->conn[i], i,
				      c->cbuf + i * c->size, c->size);
	}
	start = now_s();
	while (!ret && in_flight) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = ring_wait(&ring);
		if (!stop && client_clock(c, &m, start)) {
			stop = true;
			stop_at = now_s();
		}
		if (!ret && stop && now_s() > stop_at + DRAIN_S)
			ret = -ETIMEDOUT;
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned idx = ud_idx(cqe->user_data);
			struct conn *k = &c->conn[idx];
			char *buf = c->cbuf + idx * c->size;

			n++;
			if (ret)
				break;
			if (ud_send(cqe->user_data) || cqe->res <= 0) {
				ret = cqe->res < 0 ? cqe->res : -EPIPE;
				break;
			}
			k->got += (unsigned)cqe->res;
			if (k->got < c->size) {
				ret = queue_recv(&ring, k, idx, buf, c->size);
				continue;
			}
			ret = client_answer(c, k, buf, stop);
			if (ret == 1)
				ret = queue_send_recv(&ring, k, idx, buf,
						      c->size);
			else if (!ret)
				in_flight--;
		}
		io_uring_cq_advance(&ring, n);
	}
	io_uring_queue_exit(&ring);
	return ret;
}

/* Blocking sockets: @len bytes from @buf, or -errno. */
static int send_all(int fd, const char *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = send(fd, buf + put, len - put, MSG_NOSIGNAL);

		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

/* epoll: read what @k has; 1 when its message is whole, 0 when not yet,
 * -EPIPE at EOF, or -errno. */
static int recv_some(struct conn *k, char *buf, size_t size)
{
	ssize_t n = recv(k->fd, buf + k->got, size - k->got, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!n)
		return -EPIPE;
	k->got += (unsigned)n;
	return k->got == size;
}

static int epoll_add(int ep, int fd, unsigned idx)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int client_epoll(struct run_ctl *c)
{
	unsigned i, in_flight = 0, a0 = first_active(c);
	struct epoll_event *ev = calloc(c->active, sizeof(*ev));
	struct marks m = {0};
	double start, stop_at = 0;
	bool stop = false;
	int ep = epoll_create1(EPOLL_CLOEXEC), ret = 0;

	if (!ev || ep < 0) {
		ret = ev ? -errno : -ENOMEM;
		goto out;
	}
	for (i = a0; !ret && i < c->open; i++, in_flight++) {
		ret = epoll_add(ep, c->conn[i].fd, i);
		stamp(c, &c->conn[i], c->cbuf + i * c->size);
		if (!ret)
			ret = send_all(c->conn[i].fd, c->cbuf + i * c->size,
				       c->size);
	}
	start = now_s();
	while (!ret && in_flight) {
		int n = epoll_wait(ep, ev, (int)c->active, WAIT_MS), e;

		if (n < 0 && errno != EINTR)
			ret = -errno;
		if (!stop && client_clock(c, &m, start)) {
			stop = true;
			stop_at = now_s();
		}
		if (!ret && stop && now_s() > stop_at + DRAIN_S)
			ret = -ETIMEDOUT;
		for (e = 0; !ret && e < n; e++) {
			unsigned idx = ev[e].data.u32;
			struct conn *k = &c->conn[idx];
			char *buf = c->cbuf + idx * c->size;

			ret = recv_some(k, buf, c->size);
			if (ret <= 0)
				continue;
			ret = client_answer(c, k, buf, stop);
			if (ret == 1)
				ret = send_all(k->fd, buf, c->size);
			else if (!ret)
				in_flight--;
		}
	}
out:
	if (ep >= 0)
		close(ep);
	free(ev);
	return ret;
}

/* Wait until @flag is set (true) or the echo thread failed (false). */
static bool client_await(struct run_ctl *c, atomic_bool *flag)
{
	double end = now_s() + SETUP_S;

	while (!atomic_load(flag)) {
		if (atomic_load(&c->server_failed) || now_s() > end)
			return false;
		nap_ms(1);
	}
	return true;
}

static int client_connect(struct run_ctl *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	double end = now_s() + SETUP_S;
	int one = 1, port;
	unsigned i;

	while (!(port = atomic_load(&c->port))) {
		if (atomic_load(&c->server_failed) || now_s() > end)
			return -ETIMEDOUT;
		nap_ms(1);
	}
	a.sin_port = htons((uint16_t)port);
	for (i = 0; i < c->open; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		c->conn[i].fd = fd;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return -errno;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return client_await(c, &c->accepted) ? 0 : -ETIMEDOUT;
}

/* Close with a reset: no TIME_WAIT left behind to hold ephemeral ports
 * across runs of 10,000 connections each. */
static void close_reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/*
 * The segments @k[0..n) sent again.  Loopback drops when a CPU's backlog
 * overflows (netdev_max_backlog, /proc/net/softnet_stat), and a lost
 * segment stalls its connection for a retransmission timeout: a run with
 * retransmissions says so instead of hiding it in the rate.
 */
static unsigned long retrans_sum(const struct conn *k, unsigned n)
{
	unsigned long sum = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (k[i].fd >= 0 &&
		    !getsockopt(k[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
			sum += ti.tcpi_total_retrans;
	}
	return sum;
}

static void *client_main(void *arg)
{
	struct run_ctl *c = arg;
	unsigned i;

	bench_pin_thread(c->client_cpu);
	/* Named for perf report --comm. */
	pthread_setname_np(pthread_self(), "floor-client");
	/* Before any socket: see the top of the file. */
	if (c->own_tables && unshare(CLONE_FILES))
		c->cs.err = -errno;
	if (!c->cs.err)
		c->cs.err = client_connect(c);
	if (!c->cs.err)
		c->cs.err = c->mode == WAIT_URING ? client_uring(c)
						  : client_epoll(c);
	c->cs.retrans = retrans_sum(c->conn, c->open);
	for (i = 0; i < c->open; i++) {
		if (c->conn[i].fd >= 0)
			close_reset(c->conn[i].fd);
	}
	/* The resets end the echo thread's loop; the flag bounds its wait. */
	atomic_store(&c->client_gone, true);
	return NULL;
}

/* ---- the echo thread ------------------------------------------------ */

/* A connection of the echo thread is gone: 0, or -errno for a real error
 * (the client's reset is the normal end). */
static int srv_gone(struct conn *k, int res, unsigned *open_left)
{
	close(k->fd);
	k->fd = -1;
	(*open_left)--;
	return res == 0 || res == -EPIPE || res == -ECONNRESET ? 0 : res;
}

/* The echo thread sleeps at most WAIT_MS; once the client has closed
 * everything, DRAIN_S more is a hang. */
static int srv_waited(struct run_ctl *c, double *gone_at)
{
	if (!atomic_load(&c->client_gone))
		return 0;
	if (*gone_at == 0)
		*gone_at = now_s();
	return now_s() > *gone_at + DRAIN_S ? -ETIMEDOUT : 0;
}

static int server_uring(struct run_ctl *c)
{
	unsigned i, open_left = c->open;
	unsigned long echoes = 0;
	struct marks m = {0};
	struct io_uring ring;
	double gone_at = 0;
	int ret = ring_init(&ring, 2 * c->open);

	if (ret)
		return ret;
	for (i = 0; !ret && i < c->open; i++)
		ret = queue_recv(&ring, &c->srv[i], i, c->sbuf + i * c->size,
				 c->size);
	while (!ret && open_left) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = ring_wait(&ring);
		follow_phase(c, &m, echoes);
		if (!ret)
			ret = srv_waited(c, &gone_at);
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned idx = ud_idx(cqe->user_data);
			struct conn *k = &c->srv[idx];
			char *buf = c->sbuf + idx * c->size;

			n++;
			if (ret)
				break;
			/* A failed echo: its recv ends the connection. */
			if (ud_send(cqe->user_data)) {
				if (cqe->res != -EPIPE &&
				    cqe->res != -ECONNRESET)
					ret = cqe->res < 0 ? cqe->res : -EIO;
				continue;
			}
			if (cqe->res <= 0) {
				ret = srv_gone(k, cqe->res, &open_left);
				continue;
			}
			k->got += (unsigned)cqe->res;
			if (k->got < c->size) {
				ret = queue_recv(&ring, k, idx, buf, c->size);
				continue;
			}
			echoes++;
			ret = queue_send_recv(&ring, k, idx, buf, c->size);
		}
		io_uring_cq_advance(&ring, n);
	}
	/* Cancels what is still armed before the sockets close. */
	io_uring_queue_exit(&ring);
	c->ss.total = echoes;
	return ret;
}

static int server_epoll(struct run_ctl *c)
{
	unsigned i, open_left = c->open, max = c->open;
	unsigned long echoes = 0;
	struct epoll_event *ev;
	struct marks m = {0};
	double gone_at = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), ret = 0;

	if (max > RING_SQ_MAX)
		max = RING_SQ_MAX;
	ev = calloc(max, sizeof(*ev));
	if (!ev || ep < 0) {
		ret = ev ? -errno : -ENOMEM;
		goto out;
	}
	for (i = 0; !ret && i < c->open; i++)
		ret = epoll_add(ep, c->srv[i].fd, i);
	while (!ret && open_left) {
		int n = epoll_wait(ep, ev, (int)max, WAIT_MS), e;

		if (n < 0 && errno != EINTR)
			ret = -errno;
		follow_phase(c, &m, echoes);
		if (!ret)
			ret = srv_waited(c, &gone_at);
		for (e = 0; !ret && e < n; e++) {
			unsigned idx = ev[e].data.u32;
			struct conn *k = &c->srv[idx];
			char *buf = c->sbuf + idx * c->size;

			ret = recv_some(k, buf, c->size);
			if (ret < 0) {
				ret = srv_gone(k, ret, &open_left);
				continue;
			}
			if (!ret)
				continue;
			echoes++;
			k->got = 0;
			ret = send_all(k->fd, buf, c->size);
		}
	}
out:
	if (ep >= 0)
		close(ep);
	free(ev);
	c->ss.total = echoes;
	return ret;
}

/* Listen on an ephemeral loopback port and accept every connection. */
static int server_accept(struct run_ctl *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	double end = now_s() + SETUP_S;
	unsigned n = 0;
	int l, one = 1, ret = 0;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, (int)(c->open < 4096 ? c->open : 4096)) ||
	    getsockname(l, (struct sockaddr *)&a, &alen)) {
		ret = -errno;
		goto out;
	}
	atomic_store(&c->port, ntohs(a.sin_port));
	while (n < c->open) {
		struct pollfd p = {.fd = l, .events = POLLIN};
		int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			c->srv[n++].fd = fd;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (atomic_load(&c->client_gone) || now_s() > end) {
			ret = -ETIMEDOUT;
			break;
		}
		poll(&p, 1, WAIT_MS);
	}
out:
	close(l);
	return ret;
}

static void *server_main(void *arg)
{
	struct run_ctl *c = arg;
	unsigned i;

	bench_pin_thread(c->server_cpu);
	pthread_setname_np(pthread_self(), "floor-echo");
	/* Before the listener: see the top of the file. */
	if (c->own_tables && unshare(CLONE_FILES))
		c->ss.err = -errno;
	if (!c->ss.err)
		c->ss.err = server_accept(c);
	if (!c->ss.err) {
		atomic_store(&c->accepted, true);
		c->ss.err = c->mode == WAIT_URING ? server_uring(c)
						  : server_epoll(c);
	}
	if (c->ss.err)
		atomic_store(&c->server_failed, true);
	/* The client has reset them all by now: what is left open is idle. */
	c->ss.retrans = retrans_sum(c->srv, c->open);
	for (i = 0; i < c->open; i++) {
		if (c->srv[i].fd >= 0)
			close(c->srv[i].fd);
	}
	return NULL;
}

/* ---- runs ----------------------------------------------------------- */

/* What one run measured. */
struct run_result {
	double rate;          /* answers/s in the client's window */
	double client_cpu_s, server_cpu_s, secs;
	double client_runq_s, server_runq_s; /* -1: unknown */
	double client_us, server_us; /* CPU per call, 0 without calls */
	unsigned long calls, sent, answers, echoes;
	unsigned long retrans; /* both sides, over the whole run */
};

static struct conn *conns_new(unsigned n)
{
	struct conn *k = calloc(n, sizeof(*k));
	unsigned i;

	for (i = 0; k && i < n; i++)
		k[i].fd = -1;
	return k;
}

/* One run of @open connections, @active of them active: 0 and @res filled,
 * or -errno. */
static int run_once(const struct conns_opts *o, enum wait_mode mode,
		    unsigned active, unsigned open, struct run_result *res)
{
	struct run_ctl *c = calloc(1, sizeof(*c));
	pthread_t tc, ts;
	int ret = -ENOMEM;

	if (!c)
		return ret;
	*c = (struct run_ctl){.mode = mode, .open = open, .active = active,
			      .size = o->size, .secs = o->secs,
			      .client_cpu = o->client_cpu,
			      .server_cpu = o->server_cpu,
			      .own_tables = o->tables == TABLES_OWN,
			      .conn = conns_new(open), .srv = conns_new(open),
			      .cbuf = calloc(open, o->size),
			      .sbuf = calloc(open, o->size)};
	if (!c->conn || !c->srv || !c->cbuf || !c->sbuf)
		goto out;
	ret = pthread_create(&ts, NULL, server_main, c);
	if (ret) {
		ret = -ret;
		goto out;
	}
	ret = pthread_create(&tc, NULL, client_main, c);
	if (ret) {
		/* The echo thread gives up after SETUP_S without a client. */
		atomic_store(&c->client_gone, true);
		pthread_join(ts, NULL);
		ret = -ret;
		goto out;
	}
	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	ret = c->cs.err ? c->cs.err : c->ss.err;
	if (!ret) {
		*res = (struct run_result){
			.rate = (double)c->cs.calls / c->cs.secs,
			.client_cpu_s = c->cs.cpu_s,
			.server_cpu_s = c->ss.cpu_s, .secs = c->cs.secs,
			.client_runq_s = c->cs.runq_s,
			.server_runq_s = c->ss.runq_s,
			.client_us = c->cs.calls ?
				c->cs.cpu_s * 1e6 / (double)c->cs.calls : 0,
			.server_us = c->ss.calls ?
				c->ss.cpu_s * 1e6 / (double)c->ss.calls : 0,
			.calls = c->cs.calls, .sent = c->cs.sent,
			.answers = c->cs.total, .echoes = c->ss.total,
			.retrans = c->cs.retrans + c->ss.retrans};
	}
out:
	free(c->conn);
	free(c->srv);
	free(c->cbuf);
	free(c->sbuf);
	free(c);
	return ret;
}

/*
 * Resolve o->tables (auto: own tables when one cannot hold both ends of
 * every connection under the hard limit) and raise the soft limit to what
 * a table then needs.  0, or -EMFILE (said) when the hard limit is short.
 */
static int raise_nofile(struct conns_opts *o)
{
	rlim_t own = (rlim_t)o->open + FD_SPARE, shared = own + o->open, need;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (o->tables == TABLES_AUTO)
		o->tables = rl.rlim_max < shared ? TABLES_OWN : TABLES_SHARED;
	need = o->tables == TABLES_OWN ? own : shared;
	if (rl.rlim_max < need) {
		fprintf(stderr, "conns_floor: --open %u wants %llu descriptors "
			"in %s table, the hard limit is %llu\n", o->open,
			(unsigned long long)need,
			o->tables == TABLES_OWN ? "each thread's" : "one",
			(unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	if (rl.rlim_cur >= need)
		return 0;
	if (!o->json)
		fprintf(stderr, "conns_floor: open-file limit raised from %llu "
			"to %llu\n", (unsigned long long)rl.rlim_cur,
			(unsigned long long)need);
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: conns_floor [--open N] [--active A] [--size BYTES]\n"
		"                   [--runs R] [--secs S]\n"
		"                   [--client-cpu N] [--server-cpu N]\n"
		"                   [--wait io_uring,epoll]\n"
		"                   [--tables auto|own|shared] [--json]\n"
		"  request/response at depth 1 over loopback TCP, client and\n"
		"  echo threads pinned apart, no stack: A active of N open\n"
		"  connections against 16 of 16, in io_uring and in epoll,\n"
		"  runs interleaved; per run calls/s and each thread's CPU,\n"
		"  then medians, CPU per call and the ratio (A of N) / 16.\n"
		"  --json: one object per run, one per line.\n"
		"  --tables own: a descriptor table per thread (auto: when\n"
		"  one table cannot hold both ends under the hard limit).\n"
		"  defaults: 1000 active of 10000 open, 64 bytes (at most\n"
		"  %u), 5 runs of 3 s after %.1f s of warm-up, client CPU 1,\n"
		"  server CPU 0\n", MAX_SIZE, WARMUP_S);
}

/* "io_uring,epoll" -> o->wait[].  0 or -EINVAL. */
static int parse_waits(const char *list, struct conns_opts *o)
{
	const char *p = list;
	unsigned m;

	memset(o->wait, 0, sizeof(o->wait));
	while (*p) {
		size_t n = strcspn(p, ",");

		for (m = 0; m < WAIT_MODES; m++) {
			if (n == strlen(mode_label[m]) &&
			    !strncmp(p, mode_label[m], n))
				break;
		}
		if (m == WAIT_MODES)
			return -EINVAL;
		o->wait[m] = true;
		p += n + (p[n] == ',');
	}
	return p == list ? -EINVAL : 0;
}

/* "auto", "own" or "shared" -> o->tables.  0 or -EINVAL. */
static int parse_tables(const char *arg, struct conns_opts *o)
{
	unsigned t;

	for (t = TABLES_AUTO; t <= TABLES_SHARED; t++) {
		if (!strcmp(arg, tables_label[t])) {
			o->tables = t;
			return 0;
		}
	}
	return -EINVAL;
}

/* One numeric option into @o: 0, or -EINVAL when out of range. */
static int set_opt(int opt, long v, double d, struct conns_opts *o)
{
	switch (opt) {
	case 'n':
		if (v < 1 || v > 1000)
			return -EINVAL;
		o->runs = (unsigned)v;
		return 0;
	case 's':
		if (!(d >= 0.1 && d <= 3600))
			return -EINVAL;
		o->secs = d;
		return 0;
	case 'm':
		if (v < 1 || v > (long)MAX_SIZE)
			return -EINVAL;
		o->size = (size_t)v;
		return 0;
	case 'o':
	case 'a':
		if (v < 1 || v > (long)MAX_OPEN)
			return -EINVAL;
		*(opt == 'o' ? &o->open : &o->active) = (unsigned)v;
		return 0;
	default: /* 'c', 'S' */
		if (v < 0 || v >= CPU_SETSIZE)
			return -EINVAL;
		*(opt == 'c' ? &o->client_cpu : &o->server_cpu) = (int)v;
		return 0;
	}
}

static int parse_opts(int argc, char **argv, struct conns_opts *o)
{
	static const struct option lopts[] = {
		{"open", required_argument, NULL, 'o'},
		{"active", required_argument, NULL, 'a'},
		{"runs", required_argument, NULL, 'n'},
		{"secs", required_argument, NULL, 's'},
		{"size", required_argument, NULL, 'm'},
		{"client-cpu", required_argument, NULL, 'c'},
		{"server-cpu", required_argument, NULL, 'S'},
		{"wait", required_argument, NULL, 'w'},
		{"tables", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char *end;
	int opt;

	*o = (struct conns_opts){.open = 10000, .active = 1000, .runs = 5,
				 .secs = 3, .size = 64, .client_cpu = 1,
				 .server_cpu = 0, .wait = {true, true}};
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		long v = 0;
		double d = 0;

		if (opt == 'h') {
			usage(stdout);
			return 1;
		}
		if (opt == '?') {
			usage(stderr);
			return -EINVAL;
		}
		if (opt == 'j') {
			o->json = true;
			continue;
		}
		if (opt == 'w' || opt == 't') {
			if (opt == 'w' ? parse_waits(optarg, o)
				       : parse_tables(optarg, o))
				goto bad;
			continue;
		}
		errno = 0;
		if (opt == 's')
			d = strtod(optarg, &end);
		else
			v = strtol(optarg, &end, 10);
		if (errno || end == optarg || *end || set_opt(opt, v, d, o))
			goto bad;
	}
	if (optind < argc) {
		fprintf(stderr, "conns_floor: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (o->active > o->open) {
		fprintf(stderr, "conns_floor: --active %u > --open %u\n",
			o->active, o->open);
		return -EINVAL;
	}
	return 0;
bad:
	fprintf(stderr, "conns_floor: bad value '%s' (see conns_floor --help)\n",
		optarg);
	return -EINVAL;
}

/* The runs of one shape in one way of sleeping, one value per run. */
struct cell {
	unsigned active, open;
	double *rate, *client_us, *server_us, *client_cpu, *server_cpu;
};

static void print_run(const struct conns_opts *o, unsigned r,
		      enum wait_mode mode, const struct cell *cl,
		      const struct run_result *res)
{
	if (o->json) {
		printf("{\"run\":%u,\"wait\":\"%s\",\"active\":%u,\"open\":%u,"
		       "\"tables\":\"%s\",\"size\":%zu,\"secs\":%.3f,\"calls\":%lu,"
		       "\"calls_per_s\":%.2f,\"client_cpu_s\":%.4f,"
		       "\"server_cpu_s\":%.4f,\"client_runq_s\":%.4f,"
		       "\"server_runq_s\":%.4f,\"client_us_per_call\":%.3f,"
		       "\"server_us_per_call\":%.3f,\"requests_total\":%lu,"
		       "\"answers_total\":%lu,\"echoes_total\":%lu,"
		       "\"retrans\":%lu}\n",
		       r + 1, mode_label[mode], cl->active, cl->open,
		       tables_label[o->tables], o->size,
		       res->secs, res->calls, res->rate, res->client_cpu_s,
		       res->server_cpu_s, res->client_runq_s,
		       res->server_runq_s, res->client_us, res->server_us,
		       res->sent, res->answers, res->echoes, res->retrans);
		fflush(stdout);
		return;
	}
	printf("run %u %-8s %5u of %-5u %9.0f calls/s  CPU s: client %.2f "
	       "server %.2f, waited for a CPU s: %.2f %.2f, in %.2f s, %lu "
	       "retransmitted\n", r + 1, mode_label[mode], cl->active,
	       cl->open, res->rate, res->client_cpu_s, res->server_cpu_s,
	       res->client_runq_s, res->server_runq_s, res->secs,
	       res->retrans);
	fflush(stdout);
}

static double med(double *v, unsigned n)
{
	return runs_sort_median(v, n);
}

static void report(const struct conns_opts *o, struct cell cl[][SHAPES])
{
	unsigned m, s, n = o->runs;

	printf("\n%zu B request/response, depth 1, client CPU %d, server CPU "
	       "%d, %u runs of %.1f s, descriptor tables: %s (medians, "
	       "min - max)\n", o->size, o->client_cpu, o->server_cpu, n,
	       o->secs, tables_label[o->tables]);
	printf("%-8s %13s %10s %21s %12s %12s %8s %8s\n", "wait",
	       "active/open", "calls/s", "min - max", "client us", "server us",
	       "cl. CPU", "sv. CPU");
	for (m = 0; m < WAIT_MODES; m++) {
		for (s = 0; o->wait[m] && s < SHAPES; s++) {
			struct cell *c = &cl[m][s];
			double rate = med(c->rate, n);
			char shape[32];

			snprintf(shape, sizeof(shape), "%u/%u", c->active,
				 c->open);
			printf("%-8s %13s %10.0f %10.0f - %-8.0f %12.2f %12.2f "
			       "%7.0f%% %7.0f%%\n", mode_label[m], shape, rate,
			       c->rate[0], c->rate[n - 1],
			       med(c->client_us, n), med(c->server_us, n),
			       med(c->client_cpu, n) * 100 / o->secs,
			       med(c->server_cpu, n) * 100 / o->secs);
		}
	}
	for (m = 0; m < WAIT_MODES; m++) {
		struct cell *b = &cl[m][SHAPE_BASE], *a = &cl[m][SHAPE_MANY];

		if (!o->wait[m])
			continue;
		/* The arrays are sorted now: medians are read again. */
		printf("%s: (%u of %u) / (%u of %u): calls/s %.2fx, client "
		       "us/call %.2fx, server us/call %.2fx\n", mode_label[m],
		       a->active, a->open, b->active, b->open,
		       med(a->rate, n) / med(b->rate, n),
		       med(a->client_us, n) / med(b->client_us, n),
		       med(a->server_us, n) / med(b->server_us, n));
	}
}

static void cell_free(struct cell *c)
{
	free(c->rate);
	free(c->client_us);
	free(c->server_us);
	free(c->client_cpu);
	free(c->server_cpu);
}

static int cell_init(struct cell *c, unsigned active, unsigned open,
		     unsigned runs)
{
	*c = (struct cell){.active = active, .open = open,
			   .rate = calloc(runs, sizeof(double)),
			   .client_us = calloc(runs, sizeof(double)),
			   .server_us = calloc(runs, sizeof(double)),
			   .client_cpu = calloc(runs, sizeof(double)),
			   .server_cpu = calloc(runs, sizeof(double))};
	return c->rate && c->client_us && c->server_us && c->client_cpu &&
	       c->server_cpu ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
	bool progress = isatty(STDERR_FILENO);
	struct cell cl[WAIT_MODES][SHAPES] = {{{0}}};
	unsigned base, r, m, s;
	struct conns_opts o;
	int ret = parse_opts(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (raise_nofile(&o))
		return 1;
	base = o.active < BASE_ACTIVE ? o.active : BASE_ACTIVE;
	for (m = 0; !ret && m < WAIT_MODES; m++) {
		ret = cell_init(&cl[m][SHAPE_BASE], base, base, o.runs);
		if (!ret)
			ret = cell_init(&cl[m][SHAPE_MANY], o.active, o.open,
					o.runs);
	}
	for (r = 0; !ret && r < o.runs; r++) {
		for (s = 0; !ret && s < SHAPES; s++) {
			for (m = 0; !ret && m < WAIT_MODES; m++) {
				struct cell *c = &cl[m][s];
				struct run_result res = {0};

				if (!o.wait[m])
					continue;
				ret = run_once(&o, m, c->active, c->open, &res);
				if (ret) {
					fprintf(stderr, "conns_floor: %s run, %u "
						"of %u: %s\n", mode_label[m],
						c->active, c->open,
						strerror(-ret));
					break;
				}
				c->rate[r] = res.rate;
				c->client_us[r] = res.client_us;
				c->server_us[r] = res.server_us;
				c->client_cpu[r] = res.client_cpu_s;
				c->server_cpu[r] = res.server_cpu_s;
				print_run(&o, r, m, c, &res);
			}
		}
		if (progress && !ret)
			fprintf(stderr, "conns_floor: run %u/%u done\n", r + 1,
				o.runs);
	}
	if (!ret && !o.json)
		report(&o, cl);
	for (m = 0; m < WAIT_MODES; m++) {
		cell_free(&cl[m][SHAPE_BASE]);
		cell_free(&cl[m][SHAPE_MANY]);
	}
	return ret ? 1 : 0;
}
