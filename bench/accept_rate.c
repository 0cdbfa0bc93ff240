/* SPDX-License-Identifier: MIT */
/*
 * accept_rate - how fast one reactor accepts connections, with one
 * multishot accept and with one single-shot accept at a time
 * (ZC_LISTEN_ONESHOT_ACCEPT), the client out of the loop.
 *
 *   accept_rate                          defaults: 4000 connections, 9 runs
 *   accept_rate --conns 1000 --runs 5 --cpu 0
 *
 * Each run fills a listening socket's accept queue with --conns
 * connections from plain blocking connect()s (on loopback each handshake
 * completes into the queue without an accept), then starts a reactor's
 * listener on that socket (zc_listen_fd()) and runs the reactor, on this
 * thread, until on_accept has seen every connection.  Timed, from
 * zc_listen_fd() to the last on_accept: wall clock and this thread's CPU
 * clock.  That is the reactor's whole per-connection work (the accept, the
 * socket options, the connection object, its first receive armed, the
 * user's on_accept) and nothing of the client: no handshake, no connect.
 * The queue holds at most net.core.somaxconn connections (4096 by
 * default), hence the bound on --conns.
 *
 * Modes run interleaved (multishot, oneshot, oneshot, multishot, ...) so
 * the drift of a noisy machine hits both alike.  Prints one key=value
 * line per run, then per mode the median accepts/s with min and max and
 * the median CPU microseconds per accept, then the ratio of the medians.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#include "pin_thread.h"
#include "runs_stats.h"

#define MAX_CONNS 4096u
#define MAX_RUNS 99u
/* A run that has not accepted everything by then is broken. */
#define RUN_DEADLINE_NS (30ull * 1000000000)

enum { MULTISHOT, ONESHOT, NMODES };

static const char *const mode_name[NMODES] = { "multishot", "oneshot" };

struct run {
	struct zc_conn **conns;  /* accepted, closed at the end of the run */
	unsigned accepted, closed, want;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_data(struct zc_conn *c, struct zc_chain *d, void *ud)
{
	zc_conn_recv_done(c, zc_chain_len(d));
	zc_chain_release(d);
}

static void on_close(struct zc_conn *c, int err, void *ud)
{
	((struct run *)ud)->closed++;
}

static const struct zc_conn_ops ops = {
	.on_data = on_data,
	.on_close = on_close,
};

/* Keep the connection (a server keeps what it accepts). */
static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct run *run = ud;

	zc_conn_set_ops(c, &ops, run);
	if (run->accepted < run->want)
		run->conns[run->accepted] = c;
	run->accepted++;
}

/*
 * connect() @fd to @sa, waiting up to 2 s.  The reactor's io_uring task
 * work (left by the previous run's teardown) can interrupt a blocking
 * connect with EINTR while the handshake goes on: then wait for it.
 */
static int connect_wait(int fd, const struct sockaddr_in *sa)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t el = sizeof(int);
	int err = 0, n;

	if (!connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return 0;
	if (errno != EINTR)
		return -errno;
	while ((n = poll(&p, 1, 2000)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return n ? -errno : -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
		return -errno;
	return -err;
}

/* A listening socket on 127.0.0.1 whose queue holds @n connections, whose
 * client ends go to @cli.  Returns it, or -errno after printing why. */
static int fill_queue(unsigned n, int *cli)
{
	struct timeval tv = { .tv_sec = 2 };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd, ret;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sl) ||
	    listen(lfd, (int)n) || getsockname(lfd, (struct sockaddr *)&sa, &sl))
		goto err;
	for (unsigned i = 0; i < n; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		/* A full queue would make connect() wait for a retransmit:
		 * give up after 2 s instead (SO_SNDTIMEO bounds it). */
		ret = cli[i] < 0 || setsockopt(cli[i], SOL_SOCKET, SO_SNDTIMEO,
					       &tv, sizeof(tv))
			      ? -errno
			      : connect_wait(cli[i], &sa);
		if (ret) {
			fprintf(stderr, "accept_rate: connect %u of %u: %s "
					"(a full queue: net.core.somaxconn?)\n",
				i + 1, n, strerror(-ret));
			if (cli[i] >= 0)
				close(cli[i]);
			while (i--)
				close(cli[i]);
			close(lfd);
			return ret;
		}
	}
	return lfd;
err:
	ret = -errno;
	fprintf(stderr, "accept_rate: listen: %s\n", strerror(errno));
	if (lfd >= 0)
		close(lfd);
	return ret;
}

/* One run: 0 and the rate and CPU per accept, or -errno. */
static int one_run(int mode, unsigned n, double *per_s, double *cpu_us,
		   struct zc_reactor_stats *st)
{
	struct zc_reactor_config rc = { 0 };
	struct zc_listener *l = NULL;
	struct zc_reactor *r;
	struct run run = { .want = n };
	uint64_t t0, c0, t1, c1;
	int lfd, ret, *cli;

	memset(st, 0, sizeof(*st));
	cli = calloc(n, sizeof(*cli));
	run.conns = calloc(n, sizeof(*run.conns));
	if (!cli || !run.conns) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = zc_reactor_create(&rc, &r);
	if (ret) {
		fprintf(stderr, "accept_rate: reactor: %s\n", strerror(-ret));
		goto out_free;
	}
	lfd = fill_queue(n, cli);
	if (lfd < 0) {
		ret = lfd;
		goto out_reactor;
	}
	t0 = clock_ns(CLOCK_MONOTONIC);
	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	ret = zc_listen_fd(r, lfd, mode == ONESHOT ? ZC_LISTEN_ONESHOT_ACCEPT : 0,
			   on_accept, &run, &l);
	while (!ret && run.accepted < n &&
	       clock_ns(CLOCK_MONOTONIC) - t0 < RUN_DEADLINE_NS)
		ret = zc_reactor_run_once(r, 10000) < 0 ? -EIO : 0;
	c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t1 = clock_ns(CLOCK_MONOTONIC);
	if (!ret && run.accepted < n)
		ret = -ETIMEDOUT;
	if (ret)
		fprintf(stderr, "accept_rate: %u of %u accepted: %s\n",
			run.accepted, n, strerror(-ret));
	zc_reactor_stats(r, st);
	*per_s = (double)n / ((double)(t1 - t0) / 1e9);
	*cpu_us = (double)(c1 - c0) / 1e3 / n;

	/* Tear down, untimed: our ends reset, the clients' closed. */
	if (l)
		zc_listener_close(l);
	for (unsigned i = 0; i < run.accepted && i < n; i++)
		zc_conn_close(run.conns[i], ZC_CLOSE_ABORT);
	for (unsigned i = 0; i < n; i++)
		close(cli[i]);
	close(lfd);
	t0 = clock_ns(CLOCK_MONOTONIC);
	while (run.closed < run.accepted &&
	       clock_ns(CLOCK_MONOTONIC) - t0 < RUN_DEADLINE_NS)
		if (zc_reactor_run_once(r, 10000) < 0)
			break;
	for (int i = 0; i < 10; i++)
		(void)zc_reactor_run_once(r, 1000);
out_reactor:
	if (zc_reactor_destroy(r)) {
		fprintf(stderr, "accept_rate: reactor destroy failed\n");
		ret = ret ? ret : -EBUSY;
	}
out_free:
	free(cli);
	free(run.conns);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: accept_rate [options]\n"
"  --conns N   connections queued, then accepted, per run, 1 to %u\n"
"              (at most net.core.somaxconn) (default 4000)\n"
"  --runs N    runs of each mode, interleaved, 1 to %u (default 9)\n"
"  --cpu N     pin the thread (connects and reactor) to CPU N (default:\n"
"              where taskset put it)\n"
"  -h, --help  this text\n",
		MAX_CONNS, MAX_RUNS);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "conns", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double rate[NMODES][MAX_RUNS], cpu[NMODES][MAX_RUNS], med[NMODES];
	unsigned long conns = 4000, runs = 9;
	long pin = -1;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			conns = strtoul(optarg, &end, 10);
			if (*end || !conns || conns > MAX_CONNS)
				goto bad;
			break;
		case 'r':
			runs = strtoul(optarg, &end, 10);
			if (*end || !runs || runs > MAX_RUNS)
				goto bad;
			break;
		case 'c':
			pin = strtol(optarg, &end, 10);
			if (*end || pin < 0 || pin >= CPU_SETSIZE)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc)
		goto bad;
	bench_pin_thread((int)pin);
	for (unsigned i = 0; i < runs; i++) {
		for (unsigned k = 0; k < NMODES; k++) {
			/* ABBA: each mode goes first every other run. */
			int m = i % 2 ? NMODES - 1 - (int)k : (int)k;
			struct zc_reactor_stats st;

			if (one_run(m, (unsigned)conns, &rate[m][i], &cpu[m][i],
				    &st))
				return 1;
			/* Batches and sleeps say whether the reactor
			 * waited for the kernel between accepts. */
			printf("run=%u mode=%s conns=%lu accepts_per_s=%.0f "
			       "cpu_us_per_accept=%.3f accept_arms=%llu "
			       "loops=%llu sleeps=%llu\n",
			       i + 1, mode_name[m], conns, rate[m][i],
			       cpu[m][i], (unsigned long long)st.accept_arms,
			       (unsigned long long)st.loops,
			       (unsigned long long)st.sleeps);
		}
	}
	for (int m = 0; m < NMODES; m++) {
		double cmed;

		med[m] = runs_sort_median(rate[m], (unsigned)runs);
		cmed = runs_sort_median(cpu[m], (unsigned)runs);
		printf("mode=%s runs=%lu conns=%lu median_accepts_per_s=%.0f "
		       "min=%.0f max=%.0f median_cpu_us_per_accept=%.3f\n",
		       mode_name[m], runs, conns, med[m], rate[m][0],
		       rate[m][runs - 1], cmed);
	}
	printf("ratio oneshot/multishot=%.3f\n", med[ONESHOT] / med[MULTISHOT]);
	return 0;
bad:
	usage(stderr);
	return 2;
}
