/* SPDX-License-Identifier: MIT */
/*
 * rr_floor - the fastest a sleeping request/response loop can go on this
 * machine, for each way a thread can sleep on a socket, with no stack.
 *
 *   rr_floor                              defaults: 64 B, 9 runs of 2 s
 *   rr_floor --runs 15 --secs 1.5 --size 4096
 *   rr_floor --client-cpu 0 --server-cpu 1
 *   rr_floor --runs 1 --secs 5 --wait io_uring --json   one run, for scripts
 *
 * A client thread and an echo thread, pinned to two CPUs, play ping-pong
 * over one loopback TCP connection (TCP_NODELAY), both sleeping the same
 * way:
 *
 *   blocking - send() and a blocking recv(), as sockperf's client does;
 *   epoll    - epoll_wait() then recv() and send(), as sockperf's server;
 *   io_uring - one io_uring_submit_and_wait() per step (the send and the
 *              next recv in one submission, a DEFER_TASKRUN ring when the
 *              kernel has it), as a zcrpc reactor sleeps.
 *
 * Each round trip wakes both threads once.  Where waking a sleeping CPU
 * costs more than the work done (a VM whose idle vCPUs halt), this loop is
 * the ceiling of every sleeping TCP_RR, zcperf's and sockperf's alike, and
 * the ratios between the three say what the way of sleeping costs by
 * itself.  Modes run interleaved (blocking, epoll, io_uring, blocking,
 * ...) so the drift of a noisy machine hits all three alike; the table
 * gives the median round trips/s with min and max, and ratios of medians.
 *
 * It also splits the round trip in two legs, each ending in one wake-up:
 * the request leg, from the client's send to the echo thread holding the
 * request, and the response leg, from the echo thread's send to the client
 * holding the answer.  The echo thread writes its two times into the
 * answer (messages of at least 24 bytes); both threads read the same
 * CLOCK_MONOTONIC.  The table gives the median over runs of each run's
 * median leg.
 */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "floor_util.h"
#include "pin_thread.h"
#include "runs_stats.h"

enum wait_mode { WAIT_BLOCKING, WAIT_EPOLL, WAIT_URING, WAIT_MODES };

static const char *const mode_label[WAIT_MODES] = {"blocking", "epoll",
						   "io_uring"};

#define MAX_SIZE (64u * 1024)
/* Legs kept per run: enough for a 5 s run at 50k round trips/s. */
#define MAX_LEGS (1u << 18)

/* The head of every message: the client's round-trip number, then, in
 * answers, when the echo thread had the request and when it answered. */
struct msg_head {
	uint64_t trip;
	double held, answered;
};

struct floor_opts {
	unsigned runs;
	double secs;
	size_t size;
	int client_cpu, server_cpu;
	bool wait[WAIT_MODES]; /* the ways of sleeping to run */
	bool json;
};

/* One side of one run.  @fd is the side's socket; the side owns it. */
struct side {
	enum wait_mode mode;
	int fd;
	int cpu;
	size_t size;
	double deadline;      /* client: stop at this CLOCK_MONOTONIC time */
	unsigned long trips;  /* client: round trips completed */
	double *req_leg, *resp_leg; /* client: us, first MAX_LEGS trips */
	int err;              /* 0 or -errno */
	char buf[MAX_SIZE];
};

/* What one run measured: the rate, and the median legs (0: not timed). */
struct run_result {
	double rate;
	double req_leg_us, resp_leg_us;
};

/* Blocking and epoll: the whole message, or -errno (-EPIPE at EOF). */
static int recv_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

static int ring_init(struct io_uring *ring)
{
	int ret = io_uring_queue_init(8, ring, IORING_SETUP_SINGLE_ISSUER |
					       IORING_SETUP_DEFER_TASKRUN);

	if (ret == -EINVAL)
		ret = io_uring_queue_init(8, ring, 0);
	return ret;
}

/*
 * io_uring: queue a send of @out bytes (0: none) and a receive of the whole
 * @in bytes, submit both and sleep until they are done: one system call per
 * step when the message arrives whole, as it does on loopback.  MSG_WAITALL
 * makes io_uring finish a short send itself, as a blocking send() would.
 * @buf holds the message to send and takes the answer: the answer cannot
 * come before the whole message has gone.
 */
static int ring_step(struct io_uring *ring, int fd, char *buf, size_t out,
		     size_t in)
{
	struct io_uring_sqe *sqe;
	size_t got = 0, sent = out;
	unsigned want;

	if (out) {
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_send(sqe, fd, buf, out,
				   MSG_NOSIGNAL | MSG_WAITALL);
		io_uring_sqe_set_data64(sqe, 0);
	}
	while (got < in) {
		struct io_uring_cqe *cqe;
		int ret;

		sqe = io_uring_get_sqe(ring);
		io_uring_prep_recv(sqe, fd, buf + got, in - got, 0);
		io_uring_sqe_set_data64(sqe, 1);
		want = out ? 2 : 1;
		out = 0;
		ret = io_uring_submit_and_wait(ring, want);
		if (ret < 0)
			return ret;
		while (want--) {
			ret = io_uring_wait_cqe(ring, &cqe);
			if (ret)
				return ret;
			ret = cqe->res;
			if (ret > 0 && cqe->user_data == 1)
				got += (size_t)ret;
			else if (ret > 0 && (size_t)ret != sent)
				ret = -EIO;
			io_uring_cqe_seen(ring, cqe);
			if (ret <= 0)
				return ret < 0 ? ret : -EPIPE;
		}
	}
	return 0;
}

static bool timed(const struct side *s)
{
	return s->size >= sizeof(struct msg_head);
}

/* The client stamps each request with its number and checks the echo, so
 * a round trip counts only when the right bytes came back. */
static void stamp(struct side *s)
{
	size_t n = s->size < sizeof(s->trips) ? s->size : sizeof(s->trips);

	memcpy(s->buf, &s->trips, n);
}

static int check_echo(const struct side *s)
{
	size_t n = s->size < sizeof(s->trips) ? s->size : sizeof(s->trips);

	return memcmp(s->buf, &s->trips, n) ? -EPROTO : 0;
}

/* Client: the legs of the round trip that started at @sent and ended now. */
static void record_legs(struct side *s, double sent)
{
	struct msg_head h;

	if (!timed(s) || s->trips >= MAX_LEGS)
		return;
	memcpy(&h, s->buf, sizeof(h));
	s->req_leg[s->trips] = (h.held - sent) * 1e6;
	s->resp_leg[s->trips] = (floor_now_s() - h.answered) * 1e6;
}

/* Echo thread: the times that record_legs() reads. */
static void stamp_held(struct side *s)
{
	double t = floor_now_s();

	if (timed(s))
		memcpy(s->buf + offsetof(struct msg_head, held), &t, sizeof(t));
}

static void stamp_answered(struct side *s)
{
	double t = floor_now_s();

	if (timed(s))
		memcpy(s->buf + offsetof(struct msg_head, answered), &t,
		       sizeof(t));
}

static int client_loop(struct side *s)
{
	struct io_uring ring;
	int ret = 0;

	if (s->mode == WAIT_URING && (ret = ring_init(&ring)))
		return ret;
	while (!ret && floor_now_s() < s->deadline) {
		double sent;

		stamp(s);
		sent = floor_now_s();
		if (s->mode == WAIT_URING) {
			ret = ring_step(&ring, s->fd, s->buf, s->size, s->size);
		} else {
			ret = floor_send_all(s->fd, s->buf, s->size);
			if (!ret)
				ret = recv_all(s->fd, s->buf, s->size);
		}
		if (!ret)
			ret = check_echo(s);
		if (!ret) {
			record_legs(s, sent);
			s->trips++;
		}
	}
	if (s->mode == WAIT_URING)
		io_uring_queue_exit(&ring);
	return ret;
}

/* Echo until the client closes: EOF (-EPIPE) is the normal end. */
static int server_loop(struct side *s)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct io_uring ring;
	int ep = -1, ret = 0;
	size_t out = 0;

	if (s->mode == WAIT_URING && (ret = ring_init(&ring)))
		return ret;
	if (s->mode == WAIT_EPOLL) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev))
			ret = -errno;
	}
	while (!ret) {
		switch (s->mode) {
		case WAIT_URING:
			if (out)
				stamp_answered(s);
			ret = ring_step(&ring, s->fd, s->buf, out, s->size);
			stamp_held(s);
			out = s->size;
			continue;
		case WAIT_EPOLL:
			if (epoll_wait(ep, &ev, 1, -1) < 0) {
				ret = errno == EINTR ? 0 : -errno;
				continue;
			}
			break;
		default:
			break;
		}
		ret = recv_all(s->fd, s->buf, s->size);
		if (ret)
			break;
		stamp_held(s);
		stamp_answered(s);
		ret = floor_send_all(s->fd, s->buf, s->size);
	}
	if (ep >= 0)
		close(ep);
	if (s->mode == WAIT_URING)
		io_uring_queue_exit(&ring);
	return ret == -EPIPE || ret == -ECONNRESET ? 0 : ret;
}

static void *side_main(void *arg)
{
	struct side *s = arg;
	int one = 1;

	bench_pin_thread(s->cpu);
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->err = s->deadline > 0 ? client_loop(s) : server_loop(s);
	/* The client's close is the server's EOF. */
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* A connected loopback TCP pair: fds[0] the client's, fds[1] the server's. */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int l, ret = 0;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen) ||
	    connect(fds[0], (struct sockaddr *)&a, sizeof(a)))
		ret = -errno;
	if (!ret) {
		fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (fds[1] < 0)
			ret = -errno;
	}
	if (ret && fds[0] >= 0)
		close(fds[0]);
	close(l);
	return ret;
}

static double leg_median(double *leg, unsigned long n)
{
	if (n > MAX_LEGS)
		n = MAX_LEGS;
	return n ? runs_sort_median(leg, (unsigned)n) : 0;
}

/* One run: 0 and @res filled, or -errno. */
static int run_once(const struct floor_opts *o, enum wait_mode mode,
		    struct run_result *res)
{
	struct side *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	double *legs = calloc(2 * (size_t)MAX_LEGS, sizeof(double));
	int fds[2] = {-1, -1}, ret = -ENOMEM;
	pthread_t tc, ts;
	double t0;

	if (!c || !s || !legs)
		goto out;
	ret = tcp_pair(fds);
	if (ret)
		goto out;
	*c = (struct side){.mode = mode, .fd = fds[0], .cpu = o->client_cpu,
			   .size = o->size, .req_leg = legs,
			   .resp_leg = legs + MAX_LEGS};
	*s = (struct side){.mode = mode, .fd = fds[1], .cpu = o->server_cpu,
			   .size = o->size};
	t0 = floor_now_s();
	c->deadline = t0 + o->secs;
	pthread_create(&ts, NULL, side_main, s);
	pthread_create(&tc, NULL, side_main, c);
	pthread_join(tc, NULL);
	pthread_join(ts, NULL);
	ret = c->err ? c->err : s->err;
	if (!ret) {
		res->rate = (double)c->trips / (floor_now_s() - t0);
		res->req_leg_us = leg_median(c->req_leg, c->trips);
		res->resp_leg_us = leg_median(c->resp_leg, c->trips);
	}
	close(fds[0]);
	close(fds[1]);
out:
	free(legs);
	free(c);
	free(s);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rr_floor [--runs N] [--secs S] [--size BYTES]\n"
		"                [--client-cpu N] [--server-cpu N]\n"
		"                [--wait blocking,epoll,io_uring] [--json]\n"
		"  ping-pong over loopback TCP, client and echo threads pinned\n"
		"  apart, sleeping in a blocking recv, in epoll_wait or in\n"
		"  io_uring_submit_and_wait; runs interleaved; medians of the\n"
		"  rate and of the two legs (client send to echo holding the\n"
		"  request, echo send to client holding the answer).\n"
		"  --json: one object per way of sleeping, one per line.\n"
		"  defaults: 9 runs of 2 s, 64 bytes, client CPU 0, server CPU 1\n");
}

static int parse_opts(int argc, char **argv, struct floor_opts *o)
{
	static const struct option lopts[] = {
		{"runs", required_argument, NULL, 'n'},
		{"secs", required_argument, NULL, 's'},
		{"size", required_argument, NULL, 'm'},
		{"client-cpu", required_argument, NULL, 'c'},
		{"server-cpu", required_argument, NULL, 'S'},
		{"wait", required_argument, NULL, 'w'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char *end;
	int opt;

	*o = (struct floor_opts){.runs = 9, .secs = 2, .size = 64,
				 .client_cpu = 0, .server_cpu = 1,
				 .wait = {true, true, true}};
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
		if (opt == 'w') {
			if (floor_parse_list(optarg, mode_label, WAIT_MODES,
					     o->wait))
				goto bad;
			continue;
		}
		errno = 0;
		if (opt == 's')
			d = strtod(optarg, &end);
		else
			v = strtol(optarg, &end, 10);
		if (errno || end == optarg || *end)
			goto bad;
		switch (opt) {
		case 'n':
			if (v < 1 || v > 1000)
				goto bad;
			o->runs = (unsigned)v;
			break;
		case 's':
			if (!(d >= 0.1 && d <= 3600))
				goto bad;
			o->secs = d;
			break;
		case 'm':
			if (v < 1 || v > (long)MAX_SIZE)
				goto bad;
			o->size = (size_t)v;
			break;
		default: /* 'c', 'S' */
			if (v < 0 || v >= CPU_SETSIZE)
				goto bad;
			*(opt == 'c' ? &o->client_cpu : &o->server_cpu) = (int)v;
			break;
		}
	}
	if (optind == argc)
		return 0;
	fprintf(stderr, "rr_floor: unexpected argument '%s'\n", argv[optind]);
	return -EINVAL;
bad:
	fprintf(stderr, "rr_floor: bad value '%s' (see rr_floor --help)\n",
		optarg);
	return -EINVAL;
}

/* The runs of one way of sleeping: rates and median legs, one per run. */
struct mode_runs {
	double *rate, *req_leg, *resp_leg;
};

static void report(const struct floor_opts *o, struct mode_runs *mr)
{
	double base = 0;
	unsigned m;

	if (!o->json) {
		printf("%zu B ping-pong, client CPU %d, server CPU %d, "
		       "%u runs of %.1f s\n", o->size, o->client_cpu,
		       o->server_cpu, o->runs, o->secs);
		printf("%-9s %14s %20s %11s %22s\n", "sleep in",
		       "round trips/s", "min - max", "/ blocking",
		       "legs p50 us: req resp");
	}
	for (m = 0; m < WAIT_MODES; m++) {
		double med, req, resp;
		double *rate = mr[m].rate;

		if (!o->wait[m])
			continue;
		med = runs_sort_median(rate, o->runs);
		req = runs_sort_median(mr[m].req_leg, o->runs);
		resp = runs_sort_median(mr[m].resp_leg, o->runs);
		if (m == WAIT_BLOCKING)
			base = med;
		if (o->json) {
			/* Legs only where they were timed (size >= 24). */
			printf("{\"wait\":\"%s\",\"size\":%zu,\"runs\":%u,"
			       "\"secs\":%.3f,\"transactions_per_s\":%.2f,"
			       "\"min\":%.2f,\"max\":%.2f", mode_label[m],
			       o->size, o->runs, o->secs, med, rate[0],
			       rate[o->runs - 1]);
			if (req > 0)
				printf(",\"request_leg_p50_us\":%.2f,"
				       "\"response_leg_p50_us\":%.2f", req, resp);
			printf("}\n");
			continue;
		}
		printf("%-9s %14.0f %9.0f - %-8.0f ", mode_label[m], med,
		       rate[0], rate[o->runs - 1]);
		if (base > 0)
			printf("%10.2fx", med / base);
		else
			printf("%11s", "-");
		if (req > 0)
			printf(" %13.1f %8.1f\n", req, resp);
		else
			printf(" %22s\n", "- (size < 24)");
	}
}

int main(int argc, char **argv)
{
	bool progress = isatty(STDERR_FILENO);
	struct mode_runs mr[WAIT_MODES] = {{0}};
	struct floor_opts o;
	unsigned r, m;
	int ret = parse_opts(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	for (m = 0; m < WAIT_MODES; m++) {
		mr[m].rate = calloc(o.runs, sizeof(double));
		mr[m].req_leg = calloc(o.runs, sizeof(double));
		mr[m].resp_leg = calloc(o.runs, sizeof(double));
		if (!mr[m].rate || !mr[m].req_leg || !mr[m].resp_leg)
			return 1;
	}
	for (r = 0; r < o.runs; r++) {
		for (m = 0; m < WAIT_MODES; m++) {
			struct run_result res;

			if (!o.wait[m])
				continue;
			ret = run_once(&o, m, &res);
			if (ret) {
				fprintf(stderr, "rr_floor: %s run: %s\n",
					mode_label[m], strerror(-ret));
				return 1;
			}
			mr[m].rate[r] = res.rate;
			mr[m].req_leg[r] = res.req_leg_us;
			mr[m].resp_leg[r] = res.resp_leg_us;
		}
		if (progress)
			fprintf(stderr, "\rrr_floor: run %u/%u", r + 1, o.runs);
	}
	if (progress)
		fprintf(stderr, "\n");
	report(&o, mr);
	for (m = 0; m < WAIT_MODES; m++) {
		free(mr[m].rate);
		free(mr[m].req_leg);
		free(mr[m].resp_leg);
	}
	return 0;
}
