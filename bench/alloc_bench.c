/* SPDX-License-Identifier: MIT */
/*
 * alloc_bench - cost of freeing a buffer on another CPU than the one that
 * allocated it, for three strategies, through one code path.
 *
 *   alloc_bench                       defaults: 4 KiB buffers, 5 runs each
 *   alloc_bench --runs 9 --count 2000000 --size 65536
 *   alloc_bench --json
 *   perf record alloc_bench --only owner   profile one strategy alone
 *
 * An owner thread (CPU 0) allocates a buffer, writes its first cache line
 * (as a receive path fills a header) and hands it to a consumer thread
 * (CPU 1) through a single-producer ring.  The consumer reads that line and
 * drops the last reference.  After each batch the owner calls
 * zc_pool_drain(), as a reactor does at the end of a completion batch.
 * The strategies differ only in the pool's free mode:
 *
 *   owner  - ZC_FREE_OWNER: the consumer pushes onto the owner's lock-free
 *            defer list; the owner takes it back in one exchange.
 *   malloc - ZC_FREE_LOCAL: every buffer comes from the C allocator
 *            (tcmalloc when linked) and is freed on the consumer's CPU.
 *   locked - ZC_FREE_LOCKED: one pool behind a mutex, both sides lock.
 *
 * Runs are interleaved (owner, malloc, locked, owner, ...) so drift on a
 * noisy machine hits all three alike; the table gives the median with min
 * and max, and ratios of medians.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zcrpc/alloc.h>

#include "pin_thread.h"
#include "runs_stats.h"

#define RING_SIZE 1024u /* power of two */
#define CACHELINE 64

struct handoff_ring {
	_Alignas(CACHELINE) _Atomic uint64_t head; /* written by the owner */
	_Alignas(CACHELINE) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(CACHELINE) struct zc_buf *slot[RING_SIZE];
};

struct run_ctx {
	struct zc_pool *pool;
	struct handoff_ring ring;
	uint64_t count;
	int consumer_cpu;
	uint64_t checksum; /* consumer's reads, so they are not optimised out */
};

struct bench_opts {
	unsigned runs;
	uint64_t count;
	size_t size;
	unsigned batch;
	int owner_cpu, consumer_cpu;
	bool json;
	int only; /* index into strategies[] to run alone (profiling), or -1 */
};

static const enum zc_free_mode strategies[] = {
	ZC_FREE_OWNER, ZC_FREE_LOCAL, ZC_FREE_LOCKED,
};
static const char *const strategy_label[] = {"owner", "malloc", "locked"};
#define NSTRATEGIES (sizeof(strategies) / sizeof(strategies[0]))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *consumer_main(void *arg)
{
	struct run_ctx *ctx = arg;
	struct handoff_ring *r = &ctx->ring;
	uint64_t tail = 0, sum = 0;

	bench_pin_thread(ctx->consumer_cpu);
	while (tail < ctx->count) {
		/* acquire: the owner's writes to the buffer and the slot are
		 * visible once head says the slot is filled */
		uint64_t head = atomic_load_explicit(&r->head,
						     memory_order_acquire);
		if (head == tail) {
			sched_yield();
			continue;
		}
		for (; tail < head; tail++) {
			struct zc_buf *b = r->slot[tail & (RING_SIZE - 1)];
			const volatile uint64_t *line = zc_buf_data(b);

			sum += line[0] + line[7];
			zc_buf_put(b); /* the last reference: the release */
		}
		/* release: the slots may be reused once tail moved past */
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
	ctx->checksum = sum;
	return NULL;
}

static struct zc_buf *alloc_or_drain(struct zc_pool *pool)
{
	struct zc_buf *b;

	/* A pool at its cap recovers once the consumer's releases are
	 * drained: exactly what a reactor does when its ring runs dry. */
	while (zc_buf_alloc(pool, &b) != 0)
		zc_pool_drain(pool);
	return b;
}

/* One timed run; returns ns per buffer round trip, or 0 on failure. */
static double run_once(const struct bench_opts *o, enum zc_free_mode mode,
		       struct zc_pool_stats *stats_out)
{
	struct zc_pool_config cfg = {
		.buf_size = o->size,
		/* Room for the ring's worth in flight plus batches: the pool
		 * must recycle, not grow, for the measure to be fair. */
		.max_bytes = (size_t)(RING_SIZE + 4 * o->batch) * o->size,
		.free_mode = mode,
	};
	struct run_ctx *ctx;
	pthread_t consumer;
	uint64_t head = 0, t0, t1;
	double ns = 0;

	ctx = aligned_alloc(CACHELINE, sizeof(*ctx));
	if (!ctx)
		return 0;
	memset(ctx, 0, sizeof(*ctx));
	ctx->count = o->count;
	ctx->consumer_cpu = o->consumer_cpu;
	if (zc_pool_create(&cfg, &ctx->pool) != 0)
		goto out_free;

	bench_pin_thread(o->owner_cpu);
	if (pthread_create(&consumer, NULL, consumer_main, ctx) != 0)
		goto out_pool;

	t0 = now_ns();
	while (head < o->count) {
		uint64_t tail = atomic_load_explicit(&ctx->ring.tail,
						     memory_order_acquire);
		uint64_t room = RING_SIZE - (head - tail);
		uint64_t n = o->batch < room ? o->batch : room;

		if (n > o->count - head)
			n = o->count - head;
		for (uint64_t i = 0; i < n; i++, head++) {
			struct zc_buf *b = alloc_or_drain(ctx->pool);
			uint64_t *line = zc_buf_data(b);

			line[0] = head;
			line[7] = ~head;
			ctx->ring.slot[head & (RING_SIZE - 1)] = b;
		}
		atomic_store_explicit(&ctx->ring.head, head,
				      memory_order_release);
		/* End of the owner's batch: take back what was released. */
		zc_pool_drain(ctx->pool);
		if (n == 0)
			sched_yield();
	}
	pthread_join(consumer, NULL);
	t1 = now_ns();
	ns = (double)(t1 - t0) / (double)o->count;

	zc_pool_drain(ctx->pool);
	zc_pool_stats(ctx->pool, stats_out);
out_pool:
	if (zc_pool_destroy(ctx->pool) != 0) {
		fprintf(stderr, "alloc_bench: pool still busy after run\n");
		ns = 0;
	}
out_free:
	free(ctx);
	return ns;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: alloc_bench [options]\n"
		"  --runs N          interleaved runs per strategy (default 5, min 1)\n"
		"  --count N         buffers per run (default 1000000)\n"
		"  --size BYTES      buffer size, 4096..262144 (default 4096)\n"
		"  --batch N         buffers per owner batch (default 32)\n"
		"  --owner-cpu N     CPU of the owner thread (default 0)\n"
		"  --consumer-cpu N  CPU of the consumer thread (default 1)\n"
		"  --json            one JSON object instead of the table\n"
		"  --only NAME       run one strategy alone (owner, malloc, locked),\n"
		"                    for profiling; prints its time, no ratios\n");
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lopts[] = {
		{"runs", required_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"batch", required_argument, NULL, 'b'},
		{"owner-cpu", required_argument, NULL, 'o'},
		{"consumer-cpu", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"only", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	*o = (struct bench_opts){.runs = 5, .count = 1000000, .size = 4096,
				 .batch = 32, .owner_cpu = 0,
				 .consumer_cpu = 1, .only = -1};
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		o->consumer_cpu = 0;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'r': o->runs = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'n': o->count = strtoull(optarg, NULL, 0); break;
		case 's': o->size = strtoul(optarg, NULL, 0); break;
		case 'b': o->batch = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'o': o->owner_cpu = atoi(optarg); break;
		case 'c': o->consumer_cpu = atoi(optarg); break;
		case 'j': o->json = true; break;
		case 'O':
			for (size_t s = 0; s < NSTRATEGIES; s++)
				if (!strcmp(optarg, strategy_label[s]))
					o->only = (int)s;
			if (o->only < 0) {
				usage(stderr);
				return -EINVAL;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (o->runs < 1 || o->count < 10000 || o->batch < 1 ||
	    o->batch > RING_SIZE || o->size < ZC_BUF_SIZE_MIN ||
	    o->size > ZC_BUF_SIZE_MAX || o->size % 4096) {
		fprintf(stderr, "alloc_bench: bad option (count >= 10000, "
				"size a multiple of 4096 in 4096..262144, "
				"1 <= batch <= %u)\n", RING_SIZE);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	double ns[NSTRATEGIES][64], med[NSTRATEGIES];
	struct zc_pool_stats last[NSTRATEGIES];

	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	if (o.runs > 64)
		o.runs = 64;
	if (o.only >= 0) {
		struct zc_pool_stats st;
		double one = run_once(&o, strategies[o.only], &st);

		printf("alloc_bench %s: %.1f ns/buf\n", strategy_label[o.only],
		       one);
		return one > 0 ? 0 : 1;
	}

	if (!o.json)
		printf("alloc_bench: %zu-byte buffers, %llu per run, batch %u, "
		       "owner cpu %d, consumer cpu %d, %u interleaved runs\n",
		       o.size, (unsigned long long)o.count, o.batch,
		       o.owner_cpu, o.consumer_cpu, o.runs);
	/* One untimed warm-up of each, so page faults of first use are
	 * not charged to whichever strategy runs first. */
	for (size_t s = 0; s < NSTRATEGIES; s++)
		run_once(&o, strategies[s], &last[s]);
	for (unsigned r = 0; r < o.runs; r++) {
		for (size_t s = 0; s < NSTRATEGIES; s++) {
			ns[s][r] = run_once(&o, strategies[s], &last[s]);
			if (ns[s][r] == 0) {
				fprintf(stderr, "alloc_bench: %s run failed\n",
					strategy_label[s]);
				return 1;
			}
		}
		if (!o.json)
			fprintf(stderr, "\rrun %u/%u", r + 1, o.runs);
	}
	if (!o.json)
		fprintf(stderr, "\r%*s\r", 20, "");

	for (size_t s = 0; s < NSTRATEGIES; s++) {
		med[s] = runs_sort_median(ns[s], o.runs);
	}

	if (o.json) {
		printf("{\"buf_size\":%zu,\"count\":%llu,\"runs\":%u,\"strategies\":[",
		       o.size, (unsigned long long)o.count, o.runs);
		for (size_t s = 0; s < NSTRATEGIES; s++)
			printf("%s{\"name\":\"%s\",\"ns_per_buf_median\":%.2f,"
			       "\"ns_min\":%.2f,\"ns_max\":%.2f,\"mops\":%.3f,"
			       "\"deferred\":%llu,\"drained\":%llu,\"kicks\":%llu}",
			       s ? "," : "", strategy_label[s], med[s], ns[s][0],
			       ns[s][o.runs - 1], 1e3 / med[s],
			       (unsigned long long)last[s].deferred,
			       (unsigned long long)last[s].drained,
			       (unsigned long long)last[s].kicks);
		printf("],\"owner_vs_malloc\":%.2f,\"owner_vs_locked\":%.2f}\n",
		       med[1] / med[0], med[2] / med[0]);
		return 0;
	}
	printf("\n%-8s %14s %22s %10s %12s\n", "strategy", "ns/buf median",
	       "min - max", "Mops/s", "owner is");
	for (size_t s = 0; s < NSTRATEGIES; s++)
		printf("%-8s %14.1f %10.1f - %-10.1f %10.2f %11.2fx\n",
		       strategy_label[s], med[s], ns[s][0], ns[s][o.runs - 1],
		       1e3 / med[s], med[s] / med[0]);
	printf("\nowner run counters (last run): deferred=%llu drained=%llu "
	       "kicks=%llu released_owner=%llu\n",
	       (unsigned long long)last[0].deferred,
	       (unsigned long long)last[0].drained,
	       (unsigned long long)last[0].kicks,
	       (unsigned long long)last[0].released_owner);
	printf("alloc_bench owner_vs_malloc=%.2f owner_vs_locked=%.2f\n",
	       med[1] / med[0], med[2] / med[0]);
	return 0;
}
