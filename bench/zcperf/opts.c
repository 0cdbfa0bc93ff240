/* SPDX-License-Identifier: MIT */
/*
 * opts.c - command line parsing and the usage text.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#include "opts.h"

static const char *const test_names[ZP_NTESTS] = {
	[ZP_TCP_STREAM] = "TCP_STREAM",
	[ZP_TCP_MAERTS] = "TCP_MAERTS",
	[ZP_TCP_RR] = "TCP_RR",
	[ZP_RPC_RR] = "RPC_RR",
	[ZP_RPC_STREAM] = "RPC_STREAM",
};

static const char *const send_names[] = {
	[ZP_SEND_AUTO] = "auto",
	[ZP_SEND_COPY] = "copy",
	[ZP_SEND_ZC] = "zc",
};

static const char *const arrival_names[] = {
	[ZP_ARRIVAL_CONST] = "const",
	[ZP_ARRIVAL_POISSON] = "poisson",
};

static const char *const accept_names[] = {
	[ZP_ACCEPT_MULTISHOT] = "multishot",
	[ZP_ACCEPT_ONESHOT] = "oneshot",
};

/* Index of @name in @names (exact match), or -EINVAL. */
static int name_index(const char *const *names, unsigned n, const char *name)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -EINVAL;
}

const char *zp_arrival_name(enum zp_arrival a)
{
	return (unsigned)a <= ZP_ARRIVAL_POISSON ? arrival_names[a] : "?";
}

int zp_arrival_parse(const char *name, enum zp_arrival *out)
{
	int i = name_index(arrival_names, ZP_ARRIVAL_POISSON + 1, name);

	if (i < 0)
		return i;
	*out = (enum zp_arrival)i;
	return 0;
}

const char *zp_accept_name(enum zp_accept a)
{
	return (unsigned)a <= ZP_ACCEPT_ONESHOT ? accept_names[a] : "?";
}

int zp_accept_parse(const char *name, enum zp_accept *out)
{
	int i = name_index(accept_names, ZP_ACCEPT_ONESHOT + 1, name);

	if (i < 0)
		return i;
	*out = (enum zp_accept)i;
	return 0;
}

const char *zp_test_name(enum zp_test t)
{
	return (unsigned)t < ZP_NTESTS ? test_names[t] : "?";
}

int zp_test_parse(const char *name, enum zp_test *out)
{
	unsigned i;

	for (i = 0; i < ZP_NTESTS; i++) {
		if (!strcasecmp(name, test_names[i])) {
			*out = (enum zp_test)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *zp_send_name(enum zp_send s)
{
	return (unsigned)s <= ZP_SEND_ZC ? send_names[s] : "?";
}

int zp_send_parse(const char *name, enum zp_send *out)
{
	int i = name_index(send_names, ZP_SEND_ZC + 1, name);

	if (i < 0)
		return i;
	*out = (enum zp_send)i;
	return 0;
}

int zp_parse_size(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (*end) {
	case 'k': case 'K':
		v = v > ULLONG_MAX >> 10 ? ULLONG_MAX : v << 10;
		end++;
		break;
	case 'm': case 'M':
		v = v > ULLONG_MAX >> 20 ? ULLONG_MAX : v << 20;
		end++;
		break;
	case 'g': case 'G':
		v = v > ULLONG_MAX >> 30 ? ULLONG_MAX : v << 30;
		end++;
		break;
	default:
		break;
	}
	/* Accept the iperf spelling "64KB" / "1MiB" as well. */
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int zp_parse_cpulist(const char *s, cpu_set_t *out)
{
	const char *p = s;

	CPU_ZERO(out);
	if (!*p)
		return -EINVAL;
	while (*p) {
		unsigned long a, b;
		char *end;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		a = strtoul(p, &end, 10);
		b = a;
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			b = strtoul(p, &end, 10);
		}
		if (a > b || b >= CPU_SETSIZE)
			return -EINVAL;
		for (; a <= b; a++)
			CPU_SET(a, out);
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return -EINVAL;
	}
	return 0;
}

int zp_nth_cpu(const cpu_set_t *set, unsigned n)
{
	unsigned seen = 0;
	int i;

	n %= (unsigned)CPU_COUNT(set);
	for (i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, set) && seen++ == n)
			return i;
	return 0;
}

void zp_format_cpulist(const cpu_set_t *set, char *buf, size_t len)
{
	size_t used = 0;
	int i = 0;

	buf[0] = 0;
	while (i < CPU_SETSIZE) {
		int j;

		if (!CPU_ISSET(i, set)) {
			i++;
			continue;
		}
		for (j = i; j + 1 < CPU_SETSIZE && CPU_ISSET(j + 1, set); j++)
			;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used,
						 j > i ? "%s%d-%d" : "%s%d",
						 used ? "," : "", i, j);
		i = j + 1;
	}
	if (!buf[0])
		snprintf(buf, len, "-");
}

void zp_format_size(uint64_t v, char *buf, size_t len)
{
	if (v && !(v & ((1ull << 20) - 1)))
		snprintf(buf, len, "%lluM", (unsigned long long)(v >> 20));
	else if (v && !(v & 1023))
		snprintf(buf, len, "%lluK", (unsigned long long)(v >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

void zp_cfg_defaults(struct zp_test_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->test = ZP_TCP_STREAM;
	cfg->seconds = ZP_DEFAULT_SECONDS;
	cfg->msg_size = 64 * 1024;
	cfg->req_size = 64;
	cfg->resp_size = 64;
	cfg->conns = 1;
	cfg->depth = 1;
	cfg->reactors = 1;
	cfg->send = ZP_SEND_AUTO;
	cfg->free_mode = ZC_FREE_OWNER;
	cfg->consumer_cpu = -1;
}

const char *zp_cfg_check(const struct zp_test_cfg *cfg)
{
	if ((unsigned)cfg->test >= ZP_NTESTS)
		return "unknown test";
	if (!(cfg->seconds >= ZP_MIN_SECONDS) || cfg->seconds > 86400)
		return "-l: a run shorter than 1 second is too short to mean "
		       "anything (and longer than a day is a typo)";
	if (!cfg->msg_size || cfg->msg_size > ZP_MAX_MSG)
		return "-m: message size must be 1 B to 256M";
	if (!cfg->req_size || !cfg->resp_size || cfg->req_size > ZP_MAX_MSG ||
	    cfg->resp_size > ZP_MAX_MSG)
		return "-r: sizes must be 1 B to 256M";
	if (!cfg->conns || cfg->conns > ZP_MAX_CONNS)
		return "-P: connections must be 1 to 4096";
	if (!cfg->depth || cfg->depth > ZP_MAX_DEPTH)
		return "-d: depth must be 1 to 4096";
	if (!cfg->reactors || cfg->reactors > ZP_MAX_REACTORS)
		return "-T: reactors must be 1 to 64";
	if (cfg->rxbuf && (cfg->rxbuf < ZC_BUF_SIZE_MIN ||
			   cfg->rxbuf > ZC_BUF_SIZE_MAX || cfg->rxbuf % 4096))
		return "--rxbuf: a multiple of 4K from 4K to 256K";
	if (cfg->rxring && (cfg->rxring > 32768 ||
			    (cfg->rxring & (cfg->rxring - 1))))
		return "--rxring: a power of two from 1 to 32768";
	if (cfg->sockbuf > (1u << 30))
		return "--sockbuf: at most 1G";
	if (cfg->poll_us > 1000000)
		return "--poll: at most 1000000 us";
	if (cfg->consumer_cpu >= CPU_SETSIZE)
		return "--consumer-cpu: no such CPU";
	if (zc_free_mode_name((enum zc_free_mode)cfg->free_mode) == NULL)
		return "--free: owner, local or locked";
	if (!(cfg->rate >= 0) || cfg->rate > 1e8)
		return "--rate: calls per second, 0 (closed loop) to 1e8";
	if (cfg->rate > 0 && cfg->test != ZP_TCP_RR && cfg->test != ZP_RPC_RR &&
	    cfg->test != ZP_RPC_STREAM)
		return "--rate: TCP_RR, RPC_RR and RPC_STREAM only";
	if (cfg->arrival != ZP_ARRIVAL_CONST &&
	    cfg->arrival != ZP_ARRIVAL_POISSON)
		return "--arrival: const or poisson";
	if (cfg->stall_ms > 60000)
		return "--stall: at most 60000 ms";
	if (cfg->idle > ZP_MAX_IDLE)
		return "--idle: at most 100000 connections";
	if (cfg->idle && !(cfg->test == ZP_RPC_RR || cfg->test == ZP_RPC_STREAM))
		return "--idle: RPC_RR and RPC_STREAM only";
	if (cfg->accept != ZP_ACCEPT_MULTISHOT &&
	    cfg->accept != ZP_ACCEPT_ONESHOT)
		return "--accept: multishot or oneshot";
	return NULL;
}

void zp_usage(FILE *f)
{
	fprintf(f,
"usage: zcperf                          loopback tour (about 30 s, this is `make run`)\n"
"       zcperf -t TEST [options]        one test on loopback, both ends in this process\n"
"       zcperf -s [-p PORT]             server for every test (like netserver)\n"
"       zcperf -H HOST [-p PORT] -t TEST [options]   client\n"
"       zcperf --echo [-p PORT]         raw TCP echo server of the stack\n"
"\n"
"  -s, --server            run the test server\n"
"      --echo              run the stack's raw echo server on PORT (TLS with --tls)\n"
"  -H, --host HOST         server to test against (default: none, loopback in-process)\n"
"  -H, --host H1,H2,...    several servers (host[:port], [v6]:port; -p when no port),\n"
"                          RPC_RR / RPC_STREAM only: each client reactor calls them\n"
"                          through one zc_rpc_balancer, -P connections to each server\n"
"      --lb POLICY         rr | least: the balancer's policy with -H H1,H2 (default least)\n"
"  -p, --port PORT         control port; data uses an ephemeral port (default %u)\n"
"  -t, --test TEST         TCP_STREAM TCP_MAERTS TCP_RR RPC_RR RPC_STREAM (default TCP_STREAM)\n"
"  -l, --length SECONDS    test length, at least 1 (default 10; tour: 3 per test)\n"
"  -m, --msg-size SIZE     STREAM/MAERTS/RPC_STREAM message, K/M suffixes (default 64K)\n"
"  -r, --rr REQ,RESP       TCP_RR/RPC_RR request and response sizes (default 64,64)\n"
"  -P, --conns N           connections (default 1)\n"
"  -d, --depth N           RPC_RR calls in flight per connection; with --rate, the\n"
"                          most outstanding per connection in every test (default 1)\n"
"      --rate N            open loop: N requests per second in all, sent on\n"
"                          schedule whatever the answers do; latency from each\n"
"                          request's intended send time (default 0: closed loop)\n"
"      --arrival KIND      const | poisson gaps between --rate requests (default const)\n"
"      --idle N            RPC tests: N more connections, opened (HELLO done) and\n"
"                          kept idle through the run, beside the -P active ones;\n"
"                          the server reports its accept rate and RSS per\n"
"                          connection (default 0)\n"
"      --stall MS          test aid: the server's handler sleeps MS once, in the\n"
"                          middle of the run, so a stall shows in the percentiles\n"
"                          (default 0)\n"
"  -T, --reactors N        reactors (threads with their own ring) per side (default 1)\n"
"  -C, --cpus LIST         pin this side's reactors, e.g. 0 or 0-1 (default: the\n"
"                          affinity taskset gave, else unpinned; loopback: server 0,\n"
"                          client 1)\n"
"      --server-cpus LIST  ask the server to pin its reactors (default: its own -C)\n"
"      --send MODE         copy | zc | auto: plain send, SEND_ZC, or zc until the\n"
"                          kernel reports it copied (default auto)\n"
"      --free MODE         owner | local | locked: consumed receive buffers go back\n"
"                          to the owner's deferred list, to malloc on the consuming\n"
"                          CPU, or through a locked pool (default owner)\n"
"      --consumer-cpu N    consume received data on a thread on CPU N, not on the\n"
"                          receiving reactor (the RFS case); RPC tests: the\n"
"                          server's handler runs on a worker there (default: off)\n"
"      --rxbuf SIZE        receive buffer size, 4K to 256K (default: stack's)\n"
"      --rxring N          buffers in the receive ring, a power of two\n"
"                          (default: stack's, 1 MiB worth)\n"
"      --sockbuf SIZE      SO_SNDBUF and SO_RCVBUF of every data socket, both\n"
"                          sides, like iperf3 -w (default: kernel autotuning)\n"
"      --poll USEC         busy-poll reactors up to USEC before sleeping (default 0)\n"
"      --accept MODE       server (-s, --echo, loopback): multishot | oneshot: one\n"
"                          multishot accept per listener, or one single-shot\n"
"                          accept re-armed after each connection (what kernels\n"
"                          before 5.19 have); a client reports the server's\n"
"                          (default multishot)\n"
"      --cc NAME           TCP congestion control per socket, e.g. cubic (default: system)\n"
"      --tls               TLS 1.3 on every connection (default off); without --cert,\n"
"                          a throwaway self-signed certificate made with openssl\n"
"      --cert FILE         our certificate chain (PEM), implies --tls\n"
"      --key FILE          its private key (PEM)\n"
"      --ca FILE           CA bundle that signs the peer's certificate (default:\n"
"                          a client checks nothing unless the run is local)\n"
"      --json              one JSON object per test, one per line\n"
"      --csv               a CSV header and one line per test\n"
"  -v, --verbose           progress and per-connection detail on stderr\n"
"  -h, --help              this text\n",
		ZP_DEFAULT_PORT);
}

enum {
	OPT_SERVER_CPUS = 256,
	OPT_SEND,
	OPT_FREE,
	OPT_CONSUMER_CPU,
	OPT_RXBUF,
	OPT_RXRING,
	OPT_SOCKBUF,
	OPT_POLL,
	OPT_CC,
	OPT_TLS,
	OPT_CERT,
	OPT_KEY,
	OPT_CA,
	OPT_ECHO,
	OPT_JSON,
	OPT_CSV,
	OPT_RATE,
	OPT_ARRIVAL,
	OPT_STALL,
	OPT_LB,
	OPT_IDLE,
	OPT_ACCEPT,
};

static const struct option long_opts[] = {
	{ "server", no_argument, NULL, 's' },
	{ "echo", no_argument, NULL, OPT_ECHO },
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "test", required_argument, NULL, 't' },
	{ "length", required_argument, NULL, 'l' },
	{ "msg-size", required_argument, NULL, 'm' },
	{ "rr", required_argument, NULL, 'r' },
	{ "conns", required_argument, NULL, 'P' },
	{ "depth", required_argument, NULL, 'd' },
	{ "reactors", required_argument, NULL, 'T' },
	{ "cpus", required_argument, NULL, 'C' },
	{ "server-cpus", required_argument, NULL, OPT_SERVER_CPUS },
	{ "send", required_argument, NULL, OPT_SEND },
	{ "free", required_argument, NULL, OPT_FREE },
	{ "consumer-cpu", required_argument, NULL, OPT_CONSUMER_CPU },
	{ "rxbuf", required_argument, NULL, OPT_RXBUF },
	{ "rxring", required_argument, NULL, OPT_RXRING },
	{ "sockbuf", required_argument, NULL, OPT_SOCKBUF },
	{ "poll", required_argument, NULL, OPT_POLL },
	{ "cc", required_argument, NULL, OPT_CC },
	{ "tls", no_argument, NULL, OPT_TLS },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "arrival", required_argument, NULL, OPT_ARRIVAL },
	{ "stall", required_argument, NULL, OPT_STALL },
	{ "lb", required_argument, NULL, OPT_LB },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "accept", required_argument, NULL, OPT_ACCEPT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *opt, const char *arg, const char *why)
{
	fprintf(stderr, "zcperf: %s '%s': %s (see zcperf --help)\n", opt, arg,
		why);
	return -EINVAL;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (zp_parse_size(s, max, &v) || v < min)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int parse_rr(const char *s, struct zp_test_cfg *cfg)
{
	char req[32], *comma;
	uint64_t a, b;

	if (strlen(s) >= sizeof(req))
		return -EINVAL;
	strcpy(req, s);
	comma = strchr(req, ',');
	if (comma)
		*comma = 0;
	if (zp_parse_size(req, ZP_MAX_MSG, &a) || !a)
		return -EINVAL;
	b = a;
	if (comma && (zp_parse_size(comma + 1, ZP_MAX_MSG, &b) || !b))
		return -EINVAL;
	cfg->req_size = (uint32_t)a;
	cfg->resp_size = (uint32_t)b;
	return 0;
}

/*
 * A client, server or echo server started under taskset (any affinity
 * narrower than the machine) takes that mask as its -C: its reactors are
 * pinned within it and its CPU use is counted on those CPUs alone, not on
 * the whole machine the other side shares on loopback.
 */
static void inherit_affinity(struct zp_opts *o)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	if (o->cpus_given || o->role == ZP_ROLE_LOCAL ||
	    sched_getaffinity(0, sizeof(set), &set))
		return;
	if (online > 0 && CPU_COUNT(&set) < online) {
		o->cpus = set;
		o->cpus_given = true;
	}
}

int zp_opts_parse(int argc, char **argv, struct zp_opts *o)
{
	struct zp_test_cfg *cfg = &o->cfg;
	bool accept_given = false;
	const char *why;
	uint32_t u;
	int c;

	memset(o, 0, sizeof(*o));
	zp_cfg_defaults(cfg);
	o->lb = ZC_RPC_BALANCE_LEAST_OUTSTANDING;
	o->port = ZP_DEFAULT_PORT;
	/* 0, not 1: glibc then re-initialises its state (tests parse twice). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "sH:p:t:l:m:r:P:d:T:C:vh",
				long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->role = ZP_ROLE_SERVER;
			break;
		case OPT_ECHO:
			o->role = ZP_ROLE_ECHO;
			break;
		case 'H':
			o->host = optarg;
			o->role = ZP_ROLE_CLIENT;
			break;
		case OPT_LB:
			if (!strcmp(optarg, "rr"))
				o->lb = ZC_RPC_BALANCE_ROUND_ROBIN;
			else if (!strcmp(optarg, "least"))
				o->lb = ZC_RPC_BALANCE_LEAST_OUTSTANDING;
			else
				return bad("--lb", optarg, "rr or least");
			break;
		case 'p':
			/* 0 lets a server pick (it prints the port). */
			if (parse_u32(optarg, 0, 65535, &u))
				return bad("-p", optarg, "a port is 0 to 65535");
			o->port = (uint16_t)u;
			break;
		case 't':
			if (zp_test_parse(optarg, &cfg->test))
				return bad("-t", optarg, "unknown test");
			o->test_given = true;
			break;
		case 'l': {
			char *end;

			cfg->seconds = strtod(optarg, &end);
			if (end == optarg || *end)
				return bad("-l", optarg, "seconds, e.g. 10 or 2.5");
			o->seconds_given = true;
			break;
		}
		case 'm':
			if (parse_u32(optarg, 1, ZP_MAX_MSG, &cfg->msg_size))
				return bad("-m", optarg, "1 to 256M, K/M suffixes");
			break;
		case 'r':
			if (parse_rr(optarg, cfg))
				return bad("-r", optarg, "REQ,RESP e.g. 64,64 or 1K,4K");
			break;
		case 'P':
			if (parse_u32(optarg, 1, ZP_MAX_CONNS, &cfg->conns))
				return bad("-P", optarg, "1 to 4096");
			break;
		case 'd':
			if (parse_u32(optarg, 1, ZP_MAX_DEPTH, &cfg->depth))
				return bad("-d", optarg, "1 to 4096");
			break;
		case 'T':
			if (parse_u32(optarg, 1, ZP_MAX_REACTORS, &cfg->reactors))
				return bad("-T", optarg, "1 to 64");
			break;
		case 'C':
			if (zp_parse_cpulist(optarg, &o->cpus))
				return bad("-C", optarg, "a CPU list like 0-1,3");
			o->cpus_given = true;
			break;
		case OPT_SERVER_CPUS:
			if (zp_parse_cpulist(optarg, &o->server_cpus))
				return bad("--server-cpus", optarg,
					   "a CPU list like 0-1,3");
			o->server_cpus_given = true;
			break;
		case OPT_SEND:
			if (zp_send_parse(optarg, &cfg->send))
				return bad("--send", optarg, "copy, zc or auto");
			break;
		case OPT_FREE: {
			enum zc_free_mode m;

			if (zc_free_mode_parse(optarg, &m))
				return bad("--free", optarg,
					   "owner, local or locked");
			cfg->free_mode = (int)m;
			break;
		}
		case OPT_CONSUMER_CPU:
			if (parse_u32(optarg, 0, CPU_SETSIZE - 1, &u))
				return bad("--consumer-cpu", optarg,
					   "a CPU number");
			cfg->consumer_cpu = (int)u;
			break;
		case OPT_RXBUF:
			if (parse_u32(optarg, ZC_BUF_SIZE_MIN, ZC_BUF_SIZE_MAX,
				      &cfg->rxbuf) || cfg->rxbuf % 4096)
				return bad("--rxbuf", optarg,
					   "a multiple of 4K from 4K to 256K");
			break;
		case OPT_RXRING:
			if (parse_u32(optarg, 1, 32768, &cfg->rxring) ||
			    (cfg->rxring & (cfg->rxring - 1)))
				return bad("--rxring", optarg,
					   "a power of two from 1 to 32768");
			break;
		case OPT_SOCKBUF:
			if (parse_u32(optarg, 1, 1u << 30, &cfg->sockbuf))
				return bad("--sockbuf", optarg, "1 B to 1G");
			break;
		case OPT_POLL:
			if (parse_u32(optarg, 0, 1000000, &cfg->poll_us))
				return bad("--poll", optarg, "0 to 1000000 us");
			break;
		case OPT_CC:
			if (!*optarg || strlen(optarg) >= sizeof(cfg->cc))
				return bad("--cc", optarg, "a short name like cubic");
			strcpy(cfg->cc, optarg);
			break;
		case OPT_TLS:
			cfg->tls = true;
			break;
		case OPT_CERT:
			o->tls_cert = optarg;
			cfg->tls = true;
			break;
		case OPT_KEY:
			o->tls_key = optarg;
			break;
		case OPT_CA:
			o->tls_ca = optarg;
			cfg->tls = true;
			break;
		case OPT_JSON:
			o->out = ZP_OUT_JSON;
			break;
		case OPT_CSV:
			o->out = ZP_OUT_CSV;
			break;
		case OPT_RATE: {
			char *end;

			cfg->rate = strtod(optarg, &end);
			if (end == optarg || *end || !(cfg->rate >= 0))
				return bad("--rate", optarg,
					   "calls per second, e.g. 10000");
			break;
		}
		case OPT_ARRIVAL: {
			enum zp_arrival a;

			if (zp_arrival_parse(optarg, &a))
				return bad("--arrival", optarg,
					   "const or poisson");
			cfg->arrival = (int)a;
			break;
		}
		case OPT_IDLE:
			if (parse_u32(optarg, 0, ZP_MAX_IDLE, &cfg->idle))
				return bad("--idle", optarg, "0 to 100000");
			break;
		case OPT_ACCEPT: {
			enum zp_accept a;

			if (zp_accept_parse(optarg, &a))
				return bad("--accept", optarg,
					   "multishot or oneshot");
			cfg->accept = (int)a;
			accept_given = true;
			break;
		}
		case OPT_STALL:
			if (parse_u32(optarg, 0, 60000, &cfg->stall_ms))
				return bad("--stall", optarg, "0 to 60000 ms");
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			zp_usage(stdout);
			return 1;
		default:
			zp_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind], "unexpected");
	if (!o->tls_cert != !o->tls_key)
		return bad("--cert/--key", o->tls_cert ? o->tls_cert : o->tls_key,
			   "both or neither");
	/* The server decides how it accepts; its READY tells the client. */
	if (o->role == ZP_ROLE_CLIENT && accept_given)
		return bad("--accept", zp_accept_name(cfg->accept),
			   "a server option: give it to zcperf -s");
	if (o->role == ZP_ROLE_CLIENT && !o->port)
		return bad("-p", "0", "a client needs the server's port");
	/* One host stays exactly as it was; a list needs the port first. */
	if (o->role == ZP_ROLE_CLIENT && strchr(o->host, ',')) {
		if (zp_hosts_parse(o, o->host))
			return -EINVAL;
		if (cfg->test != ZP_RPC_RR && cfg->test != ZP_RPC_STREAM)
			return bad("-H", o->host,
				   "several servers: RPC_RR or RPC_STREAM only");
	}
	if (o->role == ZP_ROLE_LOCAL && !o->test_given && !o->seconds_given)
		cfg->seconds = 3.0;
	why = zp_cfg_check(cfg);
	if (why) {
		fprintf(stderr, "zcperf: %s\n", why);
		return -EINVAL;
	}
	inherit_affinity(o);
	return 0;
}
