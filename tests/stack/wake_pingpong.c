/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/wake_pingpong.c - how fast can one thread wake another that
 * sleeps in io_uring_enter()?  Two threads, each with its own ring
 * (SINGLE_ISSUER|DEFER_TASKRUN like a reactor), bounce a token N times.
 *
 *   eventfd:  the sleeper keeps a read of its eventfd armed on its ring;
 *             the waker write()s the eventfd (works from any thread).
 *   msg_ring: the waker posts a CQE straight into the sleeper's ring with
 *             IORING_OP_MSG_RING from its own ring (needs a ring).
 *
 * Not a test (it measures time): the numbers go into docs/ARCHITECTURE.md.
 * Usage: zc_wake_pingpong [ROUNDS] [CPU_A CPU_B]
 */
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { EVENTFD, MSG_RING };

struct side {
	struct io_uring ring;
	int efd;
	uint64_t val;
	int cpu;
	struct side *peer;
	int mode, rounds, first;
	pthread_barrier_t *bar;
};

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void arm(struct side *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	io_uring_prep_read(sqe, s->efd, &s->val, sizeof(s->val), 0);
	io_uring_sqe_set_data64(sqe, 1);
}

static void wake_peer(struct side *s)
{
	uint64_t one = 1;
	struct io_uring_sqe *sqe;

	if (s->mode == EVENTFD) {
		if (write(s->peer->efd, &one, sizeof(one)) != sizeof(one))
			abort();
		return;
	}
	sqe = io_uring_get_sqe(&s->ring);
	io_uring_prep_msg_ring(sqe, s->peer->ring.ring_fd, 0, 2, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, 3);
	io_uring_submit(&s->ring);
}

static void wait_token(struct side *s)
{
	struct io_uring_cqe *cqe;

	for (;;) {
		if (io_uring_wait_cqe(&s->ring, &cqe))
			abort();
		uint64_t ud = cqe->user_data;

		io_uring_cqe_seen(&s->ring, cqe);
		if (ud == 1) {
			arm(s);
			io_uring_submit(&s->ring);
			return;
		}
		if (ud == 2)
			return;
	}
}

static void *side_main(void *arg)
{
	struct side *s = arg;
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN };

	pin(s->cpu);
	if (io_uring_queue_init_params(64, &s->ring, &p))
		abort();
	s->efd = eventfd(0, EFD_CLOEXEC);
	arm(s);
	io_uring_submit(&s->ring);
	pthread_barrier_wait(s->bar);
	for (int i = 0; i < s->rounds; i++) {
		if (s->first) {
			wake_peer(s);
			wait_token(s);
		} else {
			wait_token(s);
			wake_peer(s);
		}
	}
	pthread_barrier_wait(s->bar);
	io_uring_queue_exit(&s->ring);
	close(s->efd);
	return NULL;
}

static double run(int mode, int rounds, int cpu_a, int cpu_b)
{
	pthread_barrier_t bar;
	struct side a = { .mode = mode, .rounds = rounds, .first = 1,
			  .cpu = cpu_a, .bar = &bar };
	struct side b = { .mode = mode, .rounds = rounds, .cpu = cpu_b,
			  .bar = &bar };
	struct timespec t0, t1;
	pthread_t ta, tb;

	a.peer = &b;
	b.peer = &a;
	pthread_barrier_init(&bar, NULL, 3);
	pthread_create(&ta, NULL, side_main, &a);
	pthread_create(&tb, NULL, side_main, &b);
	pthread_barrier_wait(&bar);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_barrier_wait(&bar);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	return ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	       rounds / 1000.0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20000;
	int ca = argc > 3 ? atoi(argv[2]) : 0, cb = argc > 3 ? atoi(argv[3]) : 1;

	/* Interleaved, so drift on a shared machine hits both alike. */
	for (int rep = 0; rep < 3; rep++) {
		printf("eventfd  round trip %.2f us\n", run(EVENTFD, rounds, ca, cb));
		printf("msg_ring round trip %.2f us\n", run(MSG_RING, rounds, ca, cb));
	}
	return 0;
}
