/* SPDX-License-Identifier: MIT */
/*
 * bench/conns_floor/io.c - what both threads of conns_floor use: the
 * window marks with their clocks, the io_uring queueing and wait, and the
 * epoll receive.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "../floor_util.h"
#include "conns_floor.h"

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
void cf_nap_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};

	nanosleep(&ts, NULL);
}

void cf_mark_start(struct marks *m, unsigned long calls)
{
	m->t0 = floor_now_s();
	m->cpu0 = thread_cpu_s();
	m->runq0 = runq_wait_s();
	m->calls0 = calls;
}

void cf_mark_end(const struct marks *m, unsigned long calls,
		     struct side_stats *st)
{
	st->secs = floor_now_s() - m->t0;
	st->cpu_s = thread_cpu_s() - m->cpu0;
	st->runq_s = m->runq0 < 0 ? -1 : runq_wait_s() - m->runq0;
	st->calls = calls - m->calls0;
}

/* ---- io_uring ------------------------------------------------------- */

int cf_ring_init(struct io_uring *ring, unsigned want)
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
int cf_queue_recv(struct io_uring *ring, struct conn *k, unsigned idx,
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
int cf_queue_send_recv(struct io_uring *ring, struct conn *k,
			   unsigned idx, char *buf, size_t size)
{
	struct io_uring_sqe *sqe = ring_sqe(ring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, k->fd, buf, size, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, ud_pack(idx, true));
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	k->got = 0;
	return cf_queue_recv(ring, k, idx, buf, size);
}

/* Submit what is queued and sleep for at least one completion, at most
 * WAIT_MS.  0 (also when the time ran out), or -errno. */
int cf_ring_wait(struct io_uring *ring)
{
	struct __kernel_timespec ts = {.tv_nsec = WAIT_MS * 1000000LL};
	struct io_uring_cqe *cqe;
	int ret = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);

	return ret == -ETIME || ret == -EINTR || ret > 0 ? 0 : ret;
}

/* epoll: read what @k has; 1 when its message is whole, 0 when not yet,
 * -EPIPE at EOF, or -errno. */
int cf_recv_some(struct conn *k, char *buf, size_t size)
{
	ssize_t n = recv(k->fd, buf + k->got, size - k->got, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (!n)
		return -EPIPE;
	k->got += (unsigned)n;
	return k->got == size;
}

int cf_epoll_add(int ep, int fd, unsigned idx)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = idx};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/*
 * The segments @k[0..n) sent again.  Loopback drops when a CPU's backlog
 * overflows (netdev_max_backlog, /proc/net/softnet_stat), and a lost
 * segment stalls its connection for a retransmission timeout: a run with
 * retransmissions says so instead of hiding it in the rate.
 */
unsigned long cf_retrans_sum(const struct conn *k, unsigned n)
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
