/* SPDX-License-Identifier: MIT */
/*
 * peer_common.h - what the RPC_RR peers of bench/compare share: the command
 * line, a latency histogram and the one JSON result line.
 *
 * The peers (zmq_echo, grpc_echo) measure the same workload as
 * `zcperf -t RPC_RR`: -P connections, each keeping -d calls in flight, each
 * call a REQ-byte request answered by a RESP-byte response, for -l seconds.
 * A call's latency runs from just before its request is handed to the
 * library to just after its response is handed back.  Only calls that
 * complete inside the -l window count; calls still in flight at its end are
 * neither counted nor timed.
 *
 * The server answers with RESP bytes when started with -r REQ,RESP and
 * echoes the request otherwise; the client checks every response size, so a
 * server started with other sizes fails the run instead of skewing it.
 */
#ifndef ZC_BENCH_PEER_COMMON_H
#define ZC_BENCH_PEER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ol_counts.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PEER_MAX_DEPTH	 10000u	 /* below every peer's queue limits */
#define PEER_MAX_CONNS	 4096u
#define PEER_MAX_THREADS 64u
#define PEER_MAX_MSG	 (64u << 20)

struct peer_opts {
	bool server;
	const char *host;	/* client: server address; server: bind address */
	uint16_t port;
	size_t req;		/* request bytes */
	size_t resp;		/* response bytes; server: 0 means echo */
	unsigned conns;		/* -P, client only */
	unsigned depth;		/* -d, calls in flight per connection */
	double seconds;		/* -l, measured window */
	unsigned threads;	/* -T, threads driving the connections */
	double rate;		/* --rate: open loop, calls/s in all; 0 closed */
};

/*
 * Open loop (--rate), as zcperf's (bench/zcperf/openloop.h): calls go out
 * at constant intervals whatever the answers do, latency runs from each
 * call's intended send time, and every intended time of the window ends
 * as exactly one of sent (issued within PEER_LATE_NS), late, or failed
 * (not answered, unsent at the end included).
 */
#define PEER_LATE_NS 1000000u


/*
 * Parses argv into @o, starting from defaults (@default_port, 64 B, 1
 * connection, depth 1, 5 s, 1 thread).  Prints usage for @tool on stderr.
 * Returns 0, 1 after printing help for -h, or -EINVAL for a bad option.
 */
int peer_parse_opts(int argc, char **argv, const char *tool,
		    uint16_t default_port, struct peer_opts *o);

/* Monotonic clock in nanoseconds. */
uint64_t peer_now_ns(void);

/*
 * Log-linear latency histogram in the manner of HdrHistogram: exact below
 * 128 ns, then 64 sub-buckets per power of two (under 1.6% error).  The
 * maximum is kept exactly.  One per thread; merge after joining.
 */
#define PEER_HIST_SUB	  128u
#define PEER_HIST_BUCKETS (PEER_HIST_SUB + 40u * (PEER_HIST_SUB / 2u))

struct peer_hist {
	uint64_t count;
	uint64_t max_ns;
	uint64_t bucket[PEER_HIST_BUCKETS];
};

void peer_hist_add(struct peer_hist *h, uint64_t ns);
void peer_hist_merge(struct peer_hist *dst, const struct peer_hist *src);
/* Highest value equivalent to the @q quantile (0 < q <= 1), in ns. */
uint64_t peer_hist_quantile(const struct peer_hist *h, double q);

/*
 * Prints the result as one JSON object on stdout, with the field names of
 * zcperf --json (test, seconds, transactions_per_s, latency_us{...}).
 */
/* With @ol (open loop) the line also carries open_loop{...}. */
void peer_print_result_ol(const char *tool, const struct peer_opts *o,
			  double seconds, const struct peer_hist *h,
			  const struct bench_ol_counts *ol);
void peer_print_result(const char *tool, const struct peer_opts *o,
		       double seconds, const struct peer_hist *h);

#ifdef __cplusplus
}
#endif

#endif
