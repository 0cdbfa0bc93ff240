/* SPDX-License-Identifier: MIT */
/*
 * conns_floor - the fastest request/response over many loopback
 * connections on this machine, with no stack: what the kernel itself costs
 * per call with 1,000 active of 10,000 open connections against 16 of 16.
 * This file: the options, the runs and the report; the threads are in
 * client.c and echo.c.
 *
 *   conns_floor                  1,000 active of 10,000, 64 B, 5 runs of 3 s
 *   conns_floor --open 2000 --active 200 --runs 3 --secs 2
 *   conns_floor --client-cpu 0 --server-cpu 1 --wait epoll
 *   conns_floor --runs 1 --secs 1 --json   one JSON line per run, for scripts
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
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../floor_util.h"
#include "../runs_stats.h"
#include "conns_floor.h"

static const char *const mode_label[WAIT_MODES] = {"io_uring", "epoll"};

enum { SHAPE_BASE, SHAPE_MANY, SHAPES };

#define MAX_SIZE 4096u
#define MAX_OPEN 100000u
#define BASE_ACTIVE 16u
/* Descriptors a thread holds beside its sockets: stdio, listener, ring,
 * epoll, and what the C library and sanitizers open. */
#define FD_SPARE 64u

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
	ret = pthread_create(&ts, NULL, cf_echo_main, c);
	if (ret) {
		ret = -ret;
		goto out;
	}
	ret = pthread_create(&tc, NULL, cf_client_main, c);
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
			if (opt == 'w' ? floor_parse_list(optarg, mode_label,
							  WAIT_MODES, o->wait)
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
