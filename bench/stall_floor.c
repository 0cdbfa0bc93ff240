/* SPDX-License-Identifier: MIT */
/*
 * stall_floor - how much of the time each CPU is taken away from a thread
 * that never sleeps: the machine's floor under every latency percentile.
 *
 *   stall_floor                          every CPU of the affinity mask, 5 s
 *   stall_floor --cpus 0,1 --secs 10
 *   stall_floor --cpus 0-3 --secs 3 --json   one JSON object, for scripts
 *
 * One thread per CPU given, pinned to it, all started together, reads
 * CLOCK_MONOTONIC in a tight loop.  Two consecutive reads are tens of
 * nanoseconds apart; a gap of more than 50 us is time the thread was not
 * running: an interrupt, a kernel thread preempting it, the hypervisor
 * running another vCPU.  A request due at that moment waits for the gap to
 * end, whatever the program serving it does, so when gaps over 1 ms cover
 * about 1% of the time a p99 <= 1 ms is decided by the machine.
 *
 * Per CPU it reports, for gaps over 50 us, 100 us, 500 us, 1 ms, 2 ms and
 * 5 ms, their count and the share of the time they cover, and the longest
 * gap; and "any CPU": the share of the wall time during which at least one
 * of the CPUs was in a gap over 1 ms (a request needs both ends, client and
 * server, on their CPUs).  The threads run at the caller's priority and
 * niceness: run it as the measured tools run.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pin_thread.h"

/* The thresholds of the report, in ns; THR_ANY is the one merged across
 * CPUs. */
static const int64_t thr_ns[] = {50000, 100000, 500000, 1000000, 2000000,
				 5000000};
static const char *const thr_label[] = {"50us", "100us", "500us", "1ms",
					"2ms", "5ms"};
#define THRESHOLDS (sizeof(thr_ns) / sizeof(thr_ns[0]))
#define THR_ANY 3

/* Gaps over 1 ms kept per CPU for the "any CPU" merge: 16,384 of them,
 * 256 KiB per CPU, far more than a 10 s run on an idle machine needs (tens;
 * under 2,000 on a busy one).  Past the
 * cap gaps are still counted per CPU, but not merged: the "any CPU" share
 * is then a lower bound, and the report says how many were dropped. */
#define MAX_KEPT (1u << 14)

struct interval {
	int64_t start, end; /* ns, CLOCK_MONOTONIC */
};

/*
 * The start line: 0 while main creates the spinners, then the
 * CLOCK_MONOTONIC ns at which they all stop (stored with release, so a
 * spinner that sees it sees its struct too), or -1 when one could not be
 * created and they all stop at once.  The spinners wait on it spinning,
 * yielding to main, which may be on their CPU.
 */
static _Atomic int64_t stop_at;

/* One spinning thread.  Set up by main, written by the thread alone until
 * main joins it, read by main after; aligned so that no two spinners share
 * a cache line. */
struct spinner {
	_Alignas(64) pthread_t tid;
	int cpu;
	int64_t first, last;   /* ns: the first and last read */
	uint64_t reads;
	uint64_t count[THRESHOLDS];
	int64_t sum[THRESHOLDS]; /* ns covered by gaps over each threshold */
	int64_t max_gap;
	struct interval *kept; /* MAX_KEPT, owned by main */
	unsigned nkept;
	uint64_t dropped;      /* gaps over 1 ms not kept */
	int err;               /* 0 or -errno */
};

struct stall_opts {
	double secs;
	bool json;
	cpu_set_t cpus;
	char cpu_list[256]; /* as given, or as found in the mask */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void record_gap(struct spinner *s, int64_t from, int64_t to)
{
	int64_t gap = to - from;
	unsigned t;

	if (gap > s->max_gap)
		s->max_gap = gap;
	for (t = 0; t < THRESHOLDS && gap > thr_ns[t]; t++) {
		s->count[t]++;
		s->sum[t] += gap;
	}
	if (gap <= thr_ns[THR_ANY])
		return;
	if (s->nkept == MAX_KEPT) {
		s->dropped++;
		return;
	}
	s->kept[s->nkept++] = (struct interval){from, to};
}

static void *spin(void *arg)
{
	struct spinner *s = arg;
	int64_t prev, now, stop;
	uint64_t reads = 0;

	bench_pin_thread(s->cpu);
	/* pin_thread is best effort; a spinner elsewhere would measure the
	 * wrong CPU, so it says so instead. */
	if (sched_getcpu() != s->cpu)
		s->err = -EINVAL;
	while (!(stop = atomic_load_explicit(&stop_at, memory_order_acquire)))
		sched_yield(); /* main may share this CPU */
	if (s->err || stop < 0)
		return NULL;
	prev = s->first = now_ns();
	do {
		now = now_ns();
		reads++;
		if (now - prev > thr_ns[0])
			record_gap(s, prev, now);
		prev = now;
	} while (now < stop);
	s->last = now;
	s->reads = reads;
	return NULL;
}

static int cmp_interval(const void *a, const void *b)
{
	const struct interval *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* The ns covered by the union of the @n intervals of @all (sorted here). */
static int64_t union_ns(struct interval *all, size_t n)
{
	int64_t covered = 0, start = 0, end = 0;
	size_t i;

	qsort(all, n, sizeof(*all), cmp_interval);
	for (i = 0; i < n; i++) {
		if (i == 0 || all[i].start > end) {
			covered += end - start;
			start = all[i].start;
			end = all[i].end;
		} else if (all[i].end > end) {
			end = all[i].end;
		}
	}
	return covered + (end - start);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stall_floor [--cpus LIST] [--secs S] [--json]\n"
		"  one thread per CPU, pinned, all at once, reading\n"
		"  CLOCK_MONOTONIC in a tight loop; per CPU the count and the\n"
		"  share of time of gaps between reads over 50 us, 100 us,\n"
		"  500 us, 1 ms, 2 ms and 5 ms, and the longest gap; and the\n"
		"  share of time at least one CPU was away for over 1 ms.\n"
		"  --cpus LIST  e.g. 0,1 or 0-3 (default: every CPU this\n"
		"               process may run on)\n"
		"  --secs S     how long (default 5, 0.1 to 3600)\n"
		"  --json       one JSON object instead of the table\n");
}

/* "0,2-3" -> @set, every CPU of it in @allowed.  0 or -EINVAL. */
static int parse_cpus(const char *list, const cpu_set_t *allowed,
		      cpu_set_t *set)
{
	const char *p = list;

	CPU_ZERO(set);
	while (*p) {
		char *end;
		long lo, hi;

		errno = 0;
		lo = hi = strtol(p, &end, 10);
		if (!errno && end != p && *end == '-') {
			p = end + 1;
			hi = strtol(p, &end, 10);
		}
		if (errno || end == p || (*end && *end != ',') || lo < 0 ||
		    hi < lo || hi >= CPU_SETSIZE)
			return -EINVAL;
		for (; lo <= hi; lo++) {
			if (!CPU_ISSET(lo, allowed))
				return -EINVAL;
			CPU_SET(lo, set);
		}
		p = end + (*end == ',');
	}
	return CPU_COUNT(set) ? 0 : -EINVAL;
}

/* @set as "0,1,3" into @buf. */
static void format_cpus(const cpu_set_t *set, char *buf, size_t len)
{
	size_t n = 0;
	int c;

	buf[0] = 0;
	for (c = 0; c < CPU_SETSIZE && n < len; c++) {
		if (CPU_ISSET(c, set))
			n += (size_t)snprintf(buf + n, len - n, "%s%d",
					      n ? "," : "", c);
	}
}

/* 0, 1 after --help, or -EINVAL (the reason printed). */
static int parse_opts(int argc, char **argv, struct stall_opts *o)
{
	static const struct option lopts[] = {
		{"cpus", required_argument, NULL, 'c'},
		{"secs", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	cpu_set_t allowed;
	const char *cpus = NULL;
	char *end;
	int opt;

	*o = (struct stall_opts){.secs = 5};
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			return 1;
		case 'j':
			o->json = true;
			break;
		case 'c':
			cpus = optarg;
			break;
		case 's':
			errno = 0;
			o->secs = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(o->secs >= 0.1 && o->secs <= 3600)) {
				fprintf(stderr, "stall_floor: bad --secs '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "stall_floor: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
		fprintf(stderr, "stall_floor: sched_getaffinity: %s\n",
			strerror(errno));
		return -errno;
	}
	if (!cpus) {
		o->cpus = allowed;
	} else if (parse_cpus(cpus, &allowed, &o->cpus)) {
		fprintf(stderr, "stall_floor: bad --cpus '%s' (CPUs this "
			"process may run on, e.g. 0,1 or 0-3)\n", cpus);
		return -EINVAL;
	}
	format_cpus(&o->cpus, o->cpu_list, sizeof(o->cpu_list));
	return 0;
}

static double pct(int64_t part, int64_t whole)
{
	return whole > 0 ? 100.0 * (double)part / (double)whole : 0;
}

/* "any CPU": the share of the wall time (first start to last stop) in a
 * gap over 1 ms on at least one CPU, and how many gaps were not merged. */
struct any_cpu {
	double pct;
	int64_t wall; /* ns */
	uint64_t kept, dropped;
};

static int any_cpu(const struct spinner *sp, unsigned n, struct any_cpu *a)
{
	int64_t first = sp[0].first, last = sp[0].last;
	struct interval *all;
	size_t total = 0;
	unsigned i;

	*a = (struct any_cpu){0};
	for (i = 0; i < n; i++) {
		total += sp[i].nkept;
		a->dropped += sp[i].dropped;
		if (sp[i].first < first)
			first = sp[i].first;
		if (sp[i].last > last)
			last = sp[i].last;
	}
	a->kept = total;
	a->wall = last - first;
	if (!total)
		return 0;
	all = malloc(total * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (total = 0, i = 0; i < n; i++) {
		memcpy(all + total, sp[i].kept, sp[i].nkept * sizeof(*all));
		total += sp[i].nkept;
	}
	a->pct = pct(union_ns(all, total), a->wall);
	free(all);
	return 0;
}

static void report_table(const struct stall_opts *o,
			 const struct spinner *sp, unsigned n,
			 const struct any_cpu *a)
{
	unsigned i, t;

	printf("stall_floor: %u CPU(s) (%s), %.1f s; gaps between two reads "
	       "of CLOCK_MONOTONIC: count / %% of the time\n", n, o->cpu_list,
	       o->secs);
	printf("%4s %12s", "cpu", "reads/s");
	for (t = 0; t < THRESHOLDS; t++)
		printf(" %15s", thr_label[t]);
	printf(" %10s\n", "max ms");
	for (i = 0; i < n; i++) {
		const struct spinner *s = &sp[i];
		int64_t span = s->last - s->first;

		printf("%4d %12.0f", s->cpu, span > 0 ?
		       (double)s->reads * 1e9 / (double)span : 0);
		for (t = 0; t < THRESHOLDS; t++)
			printf(" %6llu /%6.3f%%", (unsigned long long)s->count[t],
			       pct(s->sum[t], span));
		printf(" %10.3f\n", (double)s->max_gap / 1e6);
	}
	printf("any CPU away > 1 ms: %.3f%% of the wall time", a->pct);
	if (a->dropped)
		printf(" (at least: %llu gaps not merged)",
		       (unsigned long long)a->dropped);
	printf("\n");
}

static void report_json(const struct stall_opts *o,
			const struct spinner *sp, unsigned n,
			const struct any_cpu *a)
{
	unsigned i, t;

	printf("{\"tool\":\"stall_floor\",\"secs\":%.3f,\"cpus\":\"%s\","
	       "\"per_cpu\":{", o->secs, o->cpu_list);
	for (i = 0; i < n; i++) {
		const struct spinner *s = &sp[i];
		int64_t span = s->last - s->first;

		printf("%s\"%d\":{\"span_s\":%.6f,\"reads\":%llu,"
		       "\"max_gap_us\":%.1f", i ? "," : "", s->cpu,
		       (double)span / 1e9, (unsigned long long)s->reads,
		       (double)s->max_gap / 1e3);
		for (t = 0; t < THRESHOLDS; t++)
			printf(",\"over_%s\":{\"count\":%llu,\"pct\":%.4f}",
			       thr_label[t], (unsigned long long)s->count[t],
			       pct(s->sum[t], span));
		printf("}");
	}
	printf("},\"any_cpu\":{\"wall_s\":%.6f,\"over_1ms_pct\":%.4f,"
	       "\"gaps_merged\":%llu,\"gaps_not_merged\":%llu}}\n",
	       (double)a->wall / 1e9, a->pct,
	       (unsigned long long)a->kept, (unsigned long long)a->dropped);
}

/* Start one spinner per CPU of @o together, wait for them all.  0 or
 * -errno; on success @sp[0..n) hold the results. */
static int run(const struct stall_opts *o, struct spinner *sp, unsigned n)
{
	unsigned i, started;
	int c, ret = 0;

	for (i = 0, c = 0; i < n; c++) {
		if (!CPU_ISSET(c, &o->cpus))
			continue;
		sp[i] = (struct spinner){.cpu = c, .kept = sp[i].kept};
		i++;
	}
	atomic_store(&stop_at, 0);
	for (started = 0; started < n; started++) {
		ret = -pthread_create(&sp[started].tid, NULL, spin, &sp[started]);
		if (ret)
			break;
	}
	atomic_store_explicit(&stop_at, ret ? -1 :
			      now_ns() + (int64_t)(o->secs * 1e9),
			      memory_order_release);
	for (i = 0; i < started; i++)
		pthread_join(sp[i].tid, NULL);
	if (ret) {
		fprintf(stderr, "stall_floor: pthread_create: %s\n",
			strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		if (sp[i].err) {
			fprintf(stderr, "stall_floor: could not run on CPU %d\n",
				sp[i].cpu);
			return sp[i].err;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stall_opts o;
	struct spinner *sp;
	struct any_cpu a;
	unsigned i, n;
	int ret = parse_opts(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	n = (unsigned)CPU_COUNT(&o.cpus);
	/* aligned_alloc: calloc would not honour the spinners' alignment
	 * (sizeof is a multiple of it). */
	sp = aligned_alloc(_Alignof(struct spinner), n * sizeof(*sp));
	if (!sp)
		return 1;
	memset(sp, 0, n * sizeof(*sp));
	for (i = 0; i < n; i++) {
		sp[i].kept = malloc(MAX_KEPT * sizeof(struct interval));
		if (!sp[i].kept) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = run(&o, sp, n);
	if (!ret)
		ret = any_cpu(sp, n, &a);
	if (!ret) {
		if (o.json)
			report_json(&o, sp, n, &a);
		else
			report_table(&o, sp, n, &a);
	}
out:
	for (i = 0; i < n; i++)
		free(sp[i].kept);
	free(sp);
	return ret ? 1 : 0;
}
