/* SPDX-License-Identifier: MIT */
/*
 * peer_common.c - command line, latency histogram and JSON output of the
 * RPC_RR peers.  See peer_common.h for the workload they measure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../ol_gap.h"
#include "peer_common.h"

static void usage(const char *tool, uint16_t port)
{
	fprintf(stderr,
		"usage: %s -s [-H ADDR] [-p PORT] [-r REQ,RESP] [-T N]\n"
		"       %s [-H HOST] [-p PORT] [-r REQ,RESP] [-P N] [-d N] [-l SECS] [-T N]\n"
		"  -s            run the server (until SIGINT or SIGTERM)\n"
		"  -H HOST       server address (default 127.0.0.1; server: bind address, default any)\n"
		"  -p PORT       TCP port (default %u)\n"
		"  -r REQ,RESP   request and response bytes, K/M suffixes (default 64,64;\n"
		"                server: respond with RESP bytes, default echo)\n"
		"  -P N          connections (default 1)\n"
		"  -d N          calls in flight per connection (default 1)\n"
		"  -l SECS       measured seconds (default 5)\n"
		"  -T N          threads driving the connections (default 1)\n"
		"  --rate N      open loop: N calls/s in all on a schedule, latency from\n"
		"                each call's intended send time (default: closed loop)\n"
		"  --arrival A   open loop schedule: const (default) or poisson\n"
		"  --tls         TLS (peers that have it; grpc_echo): the server needs\n"
		"                --cert and --key, the client --ca (its name: localhost)\n"
		"  --cert FILE   server: PEM certificate chain\n"
		"  --key FILE    server: PEM private key\n"
		"  --ca FILE     client: PEM CA bundle the server's certificate verifies against\n"
		"  --idle N      client: N more connections, each through one call, idle\n"
		"                through the run beside the -P active ones\n"
		"  --server-pid PID  client: report the server's VmRSS before the\n"
		"                connections, with the idle ones, and at the end\n"
		"Prints one JSON object: calls/s and latency percentiles in us.\n",
		tool, tool, port);
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	default: break;
	}
	if (*end || v == 0 || v > PEER_MAX_MSG)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max,
		      unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_sizes(const char *s, size_t *req, size_t *resp)
{
	char buf[64];
	char *comma;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	comma = strchr(buf, ',');
	if (!comma)
		return -EINVAL;
	*comma = '\0';
	if (parse_size(buf, req) || parse_size(comma + 1, resp))
		return -EINVAL;
	return 0;
}

int peer_parse_opts(int argc, char **argv, const char *tool,
		    uint16_t default_port, struct peer_opts *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "rate", required_argument, NULL, 'R' },
		{ "arrival", required_argument, NULL, 'A' },
		{ "tls", no_argument, NULL, 'S' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'a' },
		{ "idle", required_argument, NULL, 'I' },
		{ "server-pid", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned port = default_port, pid;
	bool sizes_given = false;
	char *end;
	int c;

	*o = (struct peer_opts){
		.port = default_port, .req = 64, .resp = 64, .conns = 1,
		.depth = 1, .seconds = 5.0, .threads = 1,
	};
	while ((c = getopt_long(argc, argv, "sH:p:r:P:d:l:T:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			o->server = true;
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65535, &port))
				goto bad;
			o->port = port;
			break;
		case 'r':
			if (parse_sizes(optarg, &o->req, &o->resp))
				goto bad;
			sizes_given = true;
			break;
		case 'P':
			if (parse_uint(optarg, 1, PEER_MAX_CONNS, &o->conns))
				goto bad;
			break;
		case 'd':
			if (parse_uint(optarg, 1, PEER_MAX_DEPTH, &o->depth))
				goto bad;
			break;
		case 'l':
			o->seconds = strtod(optarg, &end);
			if (*end || !(o->seconds > 0.0 && o->seconds <= 86400.0))
				goto bad;
			break;
		case 'T':
			if (parse_uint(optarg, 1, PEER_MAX_THREADS, &o->threads))
				goto bad;
			break;
		case 'R':
			o->rate = strtod(optarg, &end);
			if (*end || !(o->rate > 0.0 && o->rate <= 1e8))
				goto bad;
			break;
		case 'A':
			if (!strcmp(optarg, "const"))
				o->arrival = PEER_ARRIVAL_CONST;
			else if (!strcmp(optarg, "poisson"))
				o->arrival = PEER_ARRIVAL_POISSON;
			else
				goto bad;
			break;
		case 'S':
			o->tls = true;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'I':
			if (parse_uint(optarg, 0, PEER_MAX_IDLE, &o->idle))
				goto bad;
			break;
		case 'D':
			if (parse_uint(optarg, 1, INT_MAX, &pid))
				goto bad;
			o->server_pid = (int)pid;
			break;
		case 'h':
			usage(tool, default_port);
			return 1;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (o->server && !sizes_given)
		o->resp = 0;
	if (o->tls && (o->server ? !o->cert || !o->key : !o->ca)) {
		fprintf(stderr, "%s: --tls needs %s\n", tool,
			o->server ? "--cert and --key" : "--ca");
		goto bad;
	}
	if (!o->server && !o->host)
		o->host = "127.0.0.1";
	if (o->threads > o->conns && !o->server)
		o->threads = o->conns;
	/* The default 50 us timer slack would be a floor under every
	 * intended time's error (as in zcperf's pacer). */
	if (o->rate > 0 && !o->server)
		prctl(PR_SET_TIMERSLACK, 1UL);
	return 0;
bad:
	usage(tool, default_port);
	return -EINVAL;
}

int peer_main(int argc, char **argv, const char *tool, uint16_t default_port,
	      bool has_tls, int (*serve)(const struct peer_opts *o),
	      int (*client)(const struct peer_opts *o))
{
	struct peer_opts o;
	int ret = peer_parse_opts(argc, argv, tool, default_port, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (o.tls && !has_tls) {
		fprintf(stderr, "%s: no TLS mode\n", tool);
		return 2;
	}
	/* A server takes what it may; a client knows what it opens (both
	 * peers' sockets use up to two descriptors each: socket, wakeup). */
	peer_raise_nofile(tool, o.server ? 0 : 2ul * (o.conns + o.idle) + 256u);
	ret = o.server ? serve(&o) : client(&o);
	return ret ? 1 : 0;
}

int peer_raise_nofile(const char *tool, unsigned long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (need > rl.rlim_max) {
		struct rlimit up = { .rlim_cur = need, .rlim_max = need };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (need > 1024u)
		fprintf(stderr, "%s: open-file limit %llu (%lu needed)\n", tool,
			(unsigned long long)rl.rlim_cur, need);
	if (rl.rlim_cur < need) {
		fprintf(stderr, "%s: warning: cannot raise the open-file limit "
			"to %lu; connections past it may fail\n", tool, need);
		return -EMFILE;
	}
	return 0;
}

void peer_rss_init(struct peer_rss *r, const struct peer_opts *o)
{
	char path[64];

	*r = (struct peer_rss){ .before_kb = -1, .idle_kb = -1, .end_kb = -1,
				.fd = -1 };
	if (!o->server_pid)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", o->server_pid);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		fprintf(stderr, "peer: %s: %s\n", path, strerror(errno));
}

long peer_rss_sample(const struct peer_rss *r)
{
	char buf[4096];
	const char *line;
	ssize_t n;
	long kb;

	if (r->fd < 0)
		return -1;
	n = pread(r->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	line = strstr(buf, "\nVmRSS:");
	if (!line || sscanf(line + 1, "VmRSS: %ld kB", &kb) != 1)
		return -1;
	return kb;
}

void peer_rss_close(struct peer_rss *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

uint64_t peer_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void peer_sleep_until_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- open-loop schedule ------------------------------------------------ */

static double sched_gap(struct peer_sched *s)
{
	return bench_ol_gap(&s->seed, s->gap, s->poisson);
}

void peer_sched_init(struct peer_sched *s, const struct peer_opts *o,
		     unsigned thread, uint64_t start_ns, uint64_t end_ns)
{
	*s = (struct peer_sched){
		.next = (double)start_ns,
		.gap = 1e9 * o->threads / o->rate,
		.end_ns = end_ns,
		.seed = 0x9E3779B97F4A7C15ull * (thread + 1u),
		.poisson = o->arrival == PEER_ARRIVAL_POISSON,
	};
	/* Poisson starts one random gap in, as zcperf's pacer does. */
	if (s->poisson)
		s->next += sched_gap(s);
}

bool peer_sched_open(const struct peer_sched *s)
{
	return s->next < (double)s->end_ns;
}

bool peer_sched_due(const struct peer_sched *s, uint64_t now)
{
	return peer_sched_open(s) && s->next <= (double)now;
}

uint64_t peer_sched_take(struct peer_sched *s, struct bench_ol_counts *ol)
{
	uint64_t t = (uint64_t)s->next;

	ol->scheduled++;
	s->next += sched_gap(s);
	return t;
}

void peer_sched_finish(struct peer_sched *s, struct bench_ol_counts *ol)
{
	while (peer_sched_open(s)) {
		peer_sched_take(s, ol);
		ol->unsent++;
		ol->failed++;
	}
}

void peer_ol_answered(struct bench_ol_counts *ol, struct peer_hist *h,
		      uint64_t intended, uint64_t issued, uint64_t now)
{
	uint64_t lag = issued > intended ? issued - intended : 0;

	peer_hist_add(h, now - intended);
	if (lag > ol->max_lag_ns)
		ol->max_lag_ns = lag;
	if (lag > PEER_LATE_NS)
		ol->late++;
	else
		ol->sent++;
}

/*
 * Below PEER_HIST_SUB a bucket per nanosecond.  Above, the exponent e
 * (value >> e falls in [SUB/2, SUB)) picks a row of SUB/2 buckets and the
 * remaining top bits pick the bucket in it.
 */
static unsigned hist_index(uint64_t v)
{
	unsigned half = PEER_HIST_SUB / 2, msb, e, idx;

	if (v < PEER_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	e = msb - 6u;
	idx = PEER_HIST_SUB + (e - 1u) * half + (unsigned)(v >> e) - half;
	if (idx >= PEER_HIST_BUCKETS)
		idx = PEER_HIST_BUCKETS - 1u;
	return idx;
}

/* Highest value that lands in bucket @idx. */
static uint64_t hist_bucket_top(unsigned idx)
{
	unsigned half = PEER_HIST_SUB / 2, e, m;

	if (idx < PEER_HIST_SUB)
		return idx;
	e = (idx - PEER_HIST_SUB) / half + 1u;
	m = (idx - PEER_HIST_SUB) % half + half;
	return (((uint64_t)m + 1u) << e) - 1u;
}

void peer_hist_add(struct peer_hist *h, uint64_t ns)
{
	h->bucket[hist_index(ns)]++;
	h->count++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void peer_hist_merge(struct peer_hist *dst, const struct peer_hist *src)
{
	for (unsigned i = 0; i < PEER_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t peer_hist_quantile(const struct peer_hist *h, double q)
{
	uint64_t rank, seen = 0, top;

	if (!h->count)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < PEER_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			top = hist_bucket_top(i);
			return top < h->max_ns ? top : h->max_ns;
		}
	}
	return h->max_ns;
}

void peer_print_result_ol(const char *tool, const struct peer_opts *o,
			  double seconds, const struct peer_hist *h,
			  const struct bench_ol_counts *ol,
			  const struct peer_rss *rss)
{
	double rate = seconds > 0.0 ? (double)h->count / seconds : 0.0;

	printf("{\"tool\":\"%s\",\"test\":\"RPC_RR\",\"seconds\":%.3f,"
	       "\"request_bytes\":%zu,\"response_bytes\":%zu,"
	       "\"connections\":%u,\"depth\":%u,\"threads\":%u,"
	       "\"calls\":%llu,\"bytes\":%llu,\"transactions_per_s\":%.1f,"
	       "\"latency_us\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,"
	       "\"p999\":%.2f,\"max\":%.2f}",
	       tool, seconds, o->req, o->resp, o->conns, o->depth, o->threads,
	       (unsigned long long)h->count,
	       (unsigned long long)(h->count * (o->req + o->resp)), rate,
	       peer_hist_quantile(h, 0.50) / 1e3,
	       peer_hist_quantile(h, 0.90) / 1e3,
	       peer_hist_quantile(h, 0.99) / 1e3,
	       peer_hist_quantile(h, 0.999) / 1e3, h->max_ns / 1e3);
	if (ol)
		printf(",\"open_loop\":{\"rate\":%.3f,\"arrival\":\"%s\","
		       "\"offered_per_s\":%.2f,\"achieved_per_s\":%.2f,"
		       "\"scheduled\":%llu,\"sent\":%llu,\"late\":%llu,"
		       "\"failed\":%llu,\"unsent\":%llu,"
		       "\"max_send_lag_us\":%.3f,\"late_threshold_us\":%u}",
		       o->rate,
		       o->arrival == PEER_ARRIVAL_POISSON ? "poisson" : "const",
		       (double)ol->scheduled / o->seconds, rate,
		       (unsigned long long)ol->scheduled,
		       (unsigned long long)ol->sent,
		       (unsigned long long)ol->late,
		       (unsigned long long)ol->failed,
		       (unsigned long long)ol->unsent, ol->max_lag_ns / 1e3,
		       PEER_LATE_NS / 1000u);
	if (rss)
		printf(",\"idle_connections\":%u,\"server_rss_kb\":{\"before\":%ld,"
		       "\"idle\":%ld,\"end\":%ld}", o->idle, rss->before_kb,
		       rss->idle_kb, rss->end_kb);
	/* Growth over the connections that caused it, in bytes. */
	if (rss && o->idle && rss->before_kb >= 0 && rss->idle_kb >= 0)
		printf(",\"server_rss_per_idle_b\":%.0f",
		       (rss->idle_kb - rss->before_kb) * 1024.0 / o->idle);
	if (rss && rss->idle_kb >= 0 && rss->end_kb >= 0)
		printf(",\"server_rss_per_active_b\":%.0f",
		       (rss->end_kb - rss->idle_kb) * 1024.0 / o->conns);
	printf("}\n");
	fflush(stdout);
}
