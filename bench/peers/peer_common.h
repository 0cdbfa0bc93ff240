/* SPDX-License-Identifier: MIT */
/*
 * peer_common.h - what the RPC_RR peers of bench/compare share: the command
 * line, a latency histogram and the one JSON result line.
 *
 * The peers (zmq_echo, grpc_echo, capnp_echo) measure the same workload as
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

struct peer_hist;

#define PEER_MAX_DEPTH	 10000u	 /* below every peer's queue limits */
#define PEER_MAX_CONNS	 4096u
#define PEER_MAX_IDLE	 100000u
#define PEER_MAX_THREADS 64u
#define PEER_MAX_MSG	 (64u << 20)

enum peer_arrival {
	PEER_ARRIVAL_CONST,	/* one call every 1/rate s */
	PEER_ARRIVAL_POISSON,	/* exponential gaps of mean 1/rate s */
};

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
	enum peer_arrival arrival;	/* --arrival, open loop only */
	/* --tls: PEM files.  Server: its certificate chain and key; client:
	 * the CA bundle that signs the server's certificate (checked for
	 * the name "localhost").  Peers without TLS refuse --tls. */
	bool tls;
	const char *cert, *key, *ca;
	/* --idle N, client only: N more connections that each complete one
	 * call (the protocol's handshake and a round trip) before the -P
	 * active ones connect, then stay idle until the run has ended. */
	unsigned idle;
	/* --server-pid PID, client only: the server process whose VmRSS the
	 * client samples (struct peer_rss); 0 for none. */
	int server_pid;
};

/*
 * The server's VmRSS in KiB (from /proc/PID/status, --server-pid) at three
 * points of a client's run: before it opens any connection, once the
 * --idle connections have each answered a call (before the active ones
 * connect), and at the end of the window (every connection still open).
 * -1 where not sampled.  The status file is opened once, before the
 * connections, so that a client at its open-file limit can still read it.
 * Owned by the client's thread that runs the run.
 */
struct peer_rss {
	long before_kb, idle_kb, end_kb;
	int fd;			/* /proc/PID/status, or -1 */
};

/* Opens the server's status file for --server-pid (a message is printed
 * when it cannot) and marks every sample -1. */
void peer_rss_init(struct peer_rss *r, const struct peer_opts *o);
/* The server's VmRSS in KiB now, or -1 (no --server-pid, or unreadable). */
long peer_rss_sample(const struct peer_rss *r);
/* Closes the status file. */
void peer_rss_close(struct peer_rss *r);

/*
 * Idle connections are opened and proven in batches of this many: at
 * most this many handshakes are in the server's backlog at once, so no
 * SYN is dropped and no connect waits out a retransmission timeout.
 */
#define PEER_IDLE_BATCH 256u
/* How long the --idle connections may take to answer in all. */
#define PEER_IDLE_DEADLINE_NS (120ull * 1000000000ull)

/*
 * Open loop (--rate), as zcperf's (bench/zcperf/openloop.h): calls go out
 * on a schedule (--arrival const|poisson) whatever the answers do, latency
 * runs from each call's intended send time, and every intended time of the
 * window ends as exactly one of sent (issued within PEER_LATE_NS), late, or
 * failed (not answered, unsent at the end included).
 */
#define PEER_LATE_NS 1000000u

/*
 * One client thread's share of the schedule: --rate / -T calls per second
 * (a sum of Poisson streams is a Poisson stream of the summed rate), with
 * intended times in [start, end).  Each thread has its own seed, fixed, so
 * a run's schedule is repeatable.  Owned by that thread alone.
 */
struct peer_sched {
	double next;		/* intended time of the next call, ns */
	double gap;		/* mean interval, ns */
	uint64_t end_ns;
	uint64_t seed;
	bool poisson;
};

void peer_sched_init(struct peer_sched *s, const struct peer_opts *o,
		     unsigned thread, uint64_t start_ns, uint64_t end_ns);
/* True while intended times remain in the window. */
bool peer_sched_open(const struct peer_sched *s);
/* True when the next intended time is in the window and at or before @now. */
bool peer_sched_due(const struct peer_sched *s, uint64_t now);
/* Takes the next intended time (counted scheduled in @ol) and advances. */
uint64_t peer_sched_take(struct peer_sched *s, struct bench_ol_counts *ol);
/* At the end: every intended time never taken counts scheduled, unsent
 * and failed in @ol. */
void peer_sched_finish(struct peer_sched *s, struct bench_ol_counts *ol);

/*
 * Records an answered open-loop call intended at @intended, issued at
 * @issued and answered at @now: its latency (from @intended) in @h, and
 * sent or late in @ol by how far @issued trailed @intended.
 */
void peer_ol_answered(struct bench_ol_counts *ol, struct peer_hist *h,
		      uint64_t intended, uint64_t issued, uint64_t now);

/* Sleeps until CLOCK_MONOTONIC reaches @ns (timer slack set to 1 ns by
 * peer_parse_opts for clients with --rate). */
void peer_sleep_until_ns(uint64_t ns);


/*
 * Raises this process's open-file limit (RLIMIT_NOFILE) to @need
 * descriptors: the soft limit up to the hard one, and the hard one too
 * where the process may (CAP_SYS_RESOURCE).  Prints on stderr what it set,
 * and a warning when the limit stays below @need.  Returns 0 or -EMFILE
 * when short (the caller may still try).
 */
int peer_raise_nofile(const char *tool, unsigned long need);

/*
 * Parses argv into @o, starting from defaults (@default_port, 64 B, 1
 * connection, depth 1, 5 s, 1 thread).  Prints usage for @tool on stderr.
 * Returns 0, 1 after printing help for -h, or -EINVAL for a bad option.
 */
int peer_parse_opts(int argc, char **argv, const char *tool,
		    uint16_t default_port, struct peer_opts *o);

/*
 * The whole main() of a peer: parses the options (peer_parse_opts), then
 * runs @serve with -s, @client otherwise; each returns 0 or -errno after
 * printing why.  --tls is refused unless @has_tls.  Returns the exit
 * status: 0, 1 when the run failed, 2 for bad options.
 */
int peer_main(int argc, char **argv, const char *tool, uint16_t default_port,
	      bool has_tls, int (*serve)(const struct peer_opts *o),
	      int (*client)(const struct peer_opts *o));

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
 * zcperf --json (test, seconds, transactions_per_s, latency_us{...}); with
 * @ol (open loop, else NULL) the line also carries open_loop{...}; with
 * @rss (else NULL) it carries idle_connections and server_rss{...}.
 */
void peer_print_result_ol(const char *tool, const struct peer_opts *o,
			  double seconds, const struct peer_hist *h,
			  const struct bench_ol_counts *ol,
			  const struct peer_rss *rss);

#ifdef __cplusplus
}

/* A peer_rss closed when it goes out of scope (the C++ peers). */
struct PeerRss : peer_rss {
	explicit PeerRss(const peer_opts &o) { peer_rss_init(this, &o); }
	~PeerRss() { peer_rss_close(this); }
	PeerRss(const PeerRss &) = delete;
	PeerRss &operator=(const PeerRss &) = delete;
};
#endif

#endif
