/* SPDX-License-Identifier: MIT */
/*
 * tests/hosts/rpc_fault.c - both ends of the network-fault tests
 * (tests/hosts/test_faults.sh), run in two test hosts of the bed.
 *
 *   rpc_fault serve ADDR PORT [--zc] [--inflight-bytes N]
 *       An RPC server on ADDR:PORT answering method HOLD_ECHO with the
 *       request (views sent back, zero-copy with --zc; N: the server's
 *       max_inflight_bytes).  SIGUSR1: stop
 *       answering and hold every request (the server stops reading once
 *       its budgets fill); SIGUSR2: answer everything held, and go on
 *       answering.  SIGTERM: drain, destroy, and exit 0 only if the
 *       reactor took every buffer back.  Prints "ready" when listening.
 *
 *   rpc_fault call ADDR PORT [--seconds S] [--deadline-ms D] [--size N]
 *                  [--inflight K] [--recover-ms R] [--rss-max-mb M]
 *                  [--max-gap-ms G] [--no-failures]
 *   rpc_fault call-many HOST:PORT,HOST:PORT,... [the same options]
 *       Keep K calls of N bytes in flight for S seconds, each with a
 *       deadline of D ms and a payload that is a function of its id.
 *       SIGUSR1 says "the fault is gone": from then on, a call started
 *       after the signal must be answered OK within R ms of it.  Prints one
 *       JSON summary and exits 0 only if: no answer was corrupted or
 *       delivered twice, every call ended exactly once and no later than
 *       its deadline plus SLACK_MS, RSS stayed under M MiB, and service came
 *       back after SIGUSR1 (when it was sent).  --max-gap-ms: no more than
 *       G ms between two OK answers; --no-failures: every call OK.
 *       call-many spreads the calls over several servers with a balancer
 *       (round robin) and also prints how many sends each endpoint took in
 *       all and since SIGUSR1.
 *
 * Both print the reason of a failure on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#define HOLD_ECHO ZC_RPC_METHOD_USER
/* How late past its deadline a call may end: timer and scheduling slack. */
#define SLACK_MS 1000
#define MAX_CALLS (4u << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int parse_addr(const char *host, const char *port,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	long p = strtol(port, NULL, 10);

	memset(ss, 0, sizeof(*ss));
	if (p < 0 || p > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* Blocked before any thread starts (threads inherit the mask): the main
 * loop takes them synchronously. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* =========================================================================
 * Server
 */
struct held {
	struct held *next;
	struct zc_rpc_call *call;
	struct zc_chain req;
};

static struct {
	pthread_mutex_t lock;
	bool holding;
	struct held *list;
	unsigned n;
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void hold_echo(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	struct held *h;

	(void)arg;
	pthread_mutex_lock(&H.lock);
	if (H.holding && (h = malloc(sizeof(*h)))) {
		h->call = call;
		h->req = *req;
		zc_chain_init(req);
		h->next = H.list;
		H.list = h;
		H.n++;
		pthread_mutex_unlock(&H.lock);
		return;
	}
	pthread_mutex_unlock(&H.lock);
	if (zc_rpc_reply(call, req))
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "reply failed");
}

/* Answer every held call (any thread may reply). */
static unsigned release_held(void)
{
	struct held *h, *next;
	unsigned n;

	pthread_mutex_lock(&H.lock);
	H.holding = false;
	h = H.list;
	n = H.n;
	H.list = NULL;
	H.n = 0;
	pthread_mutex_unlock(&H.lock);
	for (; h; h = next) {
		next = h->next;
		if (zc_rpc_reply(h->call, &h->req))
			zc_rpc_reply_error(h->call, ZC_RPC_INTERNAL, "reply");
		zc_chain_release(&h->req);
		free(h);
	}
	return n;
}

static int serve(int argc, char **argv)
{
	struct zc_reactor_config rc = { .rx_budget = (4u << 20) + 64 };
	struct zc_rpc_server_config sc = { 0 };
	struct zc_rpc_server *srv;
	struct zc_reactor *r;
	struct sockaddr_storage ss;
	socklen_t sl;
	sigset_t set;
	int ret;

	if (argc < 2 || parse_addr(argv[0], argv[1], &ss, &sl)) {
		fprintf(stderr, "serve: ADDR PORT\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--zc"))
			rc.send_mode = ZC_SEND_ZC;
		else if (!strcmp(argv[i], "--inflight-bytes") && i + 1 < argc) {
			/* The one message that always gets through must fit. */
			sc.max_inflight_bytes = strtoull(argv[++i], NULL, 10);
			sc.max_message = (uint32_t)sc.max_inflight_bytes;
		}
		else {
			fprintf(stderr, "serve: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	block_signals(&set);
	if (zc_reactor_spawn(&rc, &r))
		return 1;
	sc.reactors = &r;
	sc.nreactors = 1;
	ret = zc_rpc_server_create(&sc, &srv);
	if (!ret)
		ret = zc_rpc_server_register(srv, HOLD_ECHO, "hold_echo",
					     ZC_RPC_INLINE, 0, hold_echo, NULL);
	if (!ret)
		ret = zc_rpc_server_listen(srv, (struct sockaddr *)&ss, sl);
	if (ret) {
		fprintf(stderr, "serve: %s\n", strerror(-ret));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int sig;

		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGUSR1) {
			pthread_mutex_lock(&H.lock);
			H.holding = true;
			pthread_mutex_unlock(&H.lock);
			fprintf(stderr, "serve: holding requests\n");
		} else if (sig == SIGUSR2) {
			fprintf(stderr, "serve: answered %u held calls\n",
				release_held());
		} else {
			break;
		}
	}
	release_held();
	zc_rpc_server_drain(srv, 2000);
	zc_rpc_server_destroy(srv);
	for (int i = 0; (ret = zc_reactor_destroy(r)) == -EBUSY && i < 100; i++)
		usleep(20000);
	if (ret) {
		fprintf(stderr, "serve: reactor destroy: %s\n", strerror(-ret));
		return 3;
	}
	return 0;
}

/* =========================================================================
 * Client
 */
struct rec {
	uint64_t start;       /* ns */
	atomic_uint ends;     /* completions seen: must end at 1 */
};

static struct {
	struct rec *recs;
	uint32_t size;
	uint64_t deadline_ns;
	atomic_uint inflight;
	atomic_ulong ok, corrupted, twice, late;
	atomic_ulong by_status[ZC_RPC_NSTATUS];
	atomic_ulong max_late_ns;
	atomic_ulong clear_ns;         /* SIGUSR1 time, 0 before */
	atomic_ulong first_ok_ns;      /* first OK of a call started after */
	atomic_ulong last_ok_ns, max_gap_ns; /* between OK answers */
	struct zc_rpc_client *cli;     /* one server, or */
	struct zc_rpc_balancer *bal;   /* several */
} C;

/* The payload of call @id: its id, then bytes of a generator seeded by it. */
static void fill(uint64_t id, uint8_t *p, uint32_t len)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;

	for (uint32_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	memcpy(p, &id, len < 8 ? len : 8);
}

static bool answer_ok(uint64_t id, const struct zc_chain *resp)
{
	uint8_t *want = malloc(C.size), *got = malloc(C.size);
	bool ok = want && got && zc_chain_len(resp) == C.size &&
		  zc_chain_copyout(resp, 0, got, C.size) == C.size;

	if (ok) {
		fill(id, want, C.size);
		ok = !memcmp(want, got, C.size);
	}
	free(want);
	free(got);
	return ok;
}

static void on_done(void *arg, int status, struct zc_chain *resp)
{
	uint64_t id = (uintptr_t)arg, t = now_ns(), end, clear;
	struct rec *rc = &C.recs[id];

	if (atomic_fetch_add(&rc->ends, 1)) {
		atomic_fetch_add(&C.twice, 1);
		zc_chain_release(resp);
		return;
	}
	if (status >= 0 && status < ZC_RPC_NSTATUS)
		atomic_fetch_add(&C.by_status[status], 1);
	if (status == ZC_RPC_OK) {
		if (answer_ok(id, resp)) {
			uint64_t last = atomic_exchange(&C.last_ok_ns, t);

			if (last && t - last > atomic_load(&C.max_gap_ns))
				atomic_store(&C.max_gap_ns, t - last);
			atomic_fetch_add(&C.ok, 1);
			clear = atomic_load(&C.clear_ns);
			if (clear && rc->start > clear &&
			    !atomic_load(&C.first_ok_ns))
				atomic_store(&C.first_ok_ns, t);
		} else {
			atomic_fetch_add(&C.corrupted, 1);
		}
	}
	end = rc->start + C.deadline_ns;
	if (t > end) {
		uint64_t late = t - end, max = atomic_load(&C.max_late_ns);

		while (late > max &&
		       !atomic_compare_exchange_weak(&C.max_late_ns, &max, late))
			;
		if (late > (uint64_t)SLACK_MS * 1000000u)
			atomic_fetch_add(&C.late, 1);
	}
	zc_chain_release(resp);
	atomic_fetch_sub(&C.inflight, 1);
}

static void free_payload(void *arg, void *data)
{
	(void)arg;
	free(data);
}

/* 0, -EAGAIN (back-pressure: try later) or a fatal -errno. */
static int start_call(struct zc_pool *pool, uint64_t id)
{
	struct zc_rpc_call_opts opts = { .timeout_us = C.deadline_ns / 1000 };
	uint8_t *p = malloc(C.size);
	struct zc_chain req;
	struct zc_buf *b;
	struct zc_view v;
	int ret;

	if (!p)
		return -ENOMEM;
	fill(id, p, C.size);
	zc_chain_init(&req);
	if (zc_buf_wrap(pool, p, C.size, free_payload, NULL, &b)) {
		free(p);
		return -ENOMEM;
	}
	if (zc_view_adopt(&v, b, 0, C.size) || zc_chain_append(&req, &v)) {
		zc_buf_put(b);
		return -ENOMEM;
	}
	C.recs[id].start = now_ns();
	atomic_fetch_add(&C.inflight, 1);
	ret = C.bal ? zc_rpc_balancer_call(C.bal, HOLD_ECHO, &req, &opts,
					   on_done, (void *)(uintptr_t)id) :
		      zc_rpc_call(C.cli, HOLD_ECHO, &req, &opts, on_done,
				  (void *)(uintptr_t)id, NULL);
	if (ret) {
		atomic_fetch_sub(&C.inflight, 1);
		zc_chain_release(&req);
	}
	return ret;
}

/* Sends per endpoint of the balancer, into @out (ZC_RPC_BALANCER_MAX). */
static unsigned endpoint_sends(uint64_t *out)
{
	struct zc_rpc_balancer_stats st;

	zc_rpc_balancer_stats(C.bal, &st);
	for (unsigned i = 0; i < st.nendpoints; i++)
		out[i] = st.endpoint[i].sent;
	return st.nendpoints;
}

/* @many: argv[0] is a list of "host:port" targets; else ADDR PORT. */
static int call(int argc, char **argv, bool many)
{
	struct zc_rpc_client_config cc = { 0 };
	struct zc_reactor *r;
	struct sockaddr_storage ss;
	socklen_t sl;
	double seconds = 5;
	unsigned inflight = 16, recover_ms = 0, rss_max_mb = 256, max_gap_ms = 0;
	uint64_t next = 1, refused = 0, end, stop_wait;
	uint64_t sends_clear[ZC_RPC_BALANCER_MAX] = { 0 };
	uint64_t sends_end[ZC_RPC_BALANCER_MAX] = { 0 };
	const char *targets[ZC_RPC_BALANCER_MAX];
	unsigned ntargets = 0, nep = 0;
	long rss, rss_max = 0;
	bool ok = true, no_failures = false;
	char *list = NULL;
	sigset_t set;
	int first;

	C.size = 4096;
	C.deadline_ns = 2000ull * 1000000;
	if (many && argc >= 1) {
		list = strdup(argv[0]);
		for (char *t = strtok(list, ","); t && ntargets <
		     ZC_RPC_BALANCER_MAX; t = strtok(NULL, ","))
			targets[ntargets++] = t;
		first = 1;
	} else if (!many && argc >= 2 &&
		   !parse_addr(argv[0], argv[1], &ss, &sl)) {
		first = 2;
	} else {
		fprintf(stderr, "call: ADDR PORT [options] | "
				"call-many TARGETS [options]\n");
		return 2;
	}
	for (int i = first; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(o, "--no-failures")) {
			no_failures = true;
			continue;
		}
		i++;
		if (!strcmp(o, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(o, "--deadline-ms"))
			C.deadline_ns = strtoull(v, NULL, 10) * 1000000;
		else if (!strcmp(o, "--size"))
			C.size = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--inflight"))
			inflight = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--recover-ms"))
			recover_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--rss-max-mb"))
			rss_max_mb = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(o, "--max-gap-ms"))
			max_gap_ms = (unsigned)strtoul(v, NULL, 10);
		else {
			fprintf(stderr, "call: unknown option %s\n", o);
			return 2;
		}
	}
	if (C.size < 8 || !inflight || !C.deadline_ns)
		return 2;
	C.recs = calloc(MAX_CALLS, sizeof(*C.recs));
	block_signals(&set);
	if (!C.recs || zc_reactor_spawn(NULL, &r))
		return 1;
	if (many) {
		struct zc_rpc_balancer_config bc = {
			.reactor = r, .targets = targets, .ntargets = ntargets,
		};

		if (zc_rpc_balancer_create(&bc, &C.bal))
			return 1;
	} else {
		cc.reactor = r;
		cc.addr = (struct sockaddr *)&ss;
		cc.addrlen = sl;
		if (zc_rpc_client_create(&cc, &C.cli))
			return 1;
	}

	end = now_ns() + (uint64_t)(seconds * 1e9);
	while (now_ns() < end && next < MAX_CALLS) {
		/* Paces the loop: at most a millisecond between refills. */
		struct timespec tick = { 0, 1000000 };
		int ret = 0, sig;

		while (atomic_load(&C.inflight) < inflight && next < MAX_CALLS &&
		       !(ret = start_call(zc_reactor_pool(r), next)))
			next++;
		if (ret == -EAGAIN)
			refused++;
		else if (ret) {
			fprintf(stderr, "call: zc_rpc_call: %s\n", strerror(-ret));
			return 1;
		}
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGUSR1 && !atomic_load(&C.clear_ns)) {
			atomic_store(&C.clear_ns, now_ns());
			if (C.bal)
				endpoint_sends(sends_clear);
		}
		else if (sig == SIGTERM || sig == SIGINT)
			break;
		rss = rss_kb();
		if (rss > rss_max)
			rss_max = rss;
	}
	/* Every call must end, by its deadline plus the slack. */
	stop_wait = now_ns() + C.deadline_ns + 2ull * SLACK_MS * 1000000;
	while (atomic_load(&C.inflight) && now_ns() < stop_wait)
		usleep(1000);

	if (C.bal)
		nep = endpoint_sends(sends_end);
	printf("{\"calls\": %lu, \"ok\": %lu, \"refused_eagain\": %lu, "
	       "\"corrupted\": %lu, \"twice\": %lu, \"late\": %lu, "
	       "\"max_late_ms\": %.1f, \"unfinished\": %u, \"rss_max_kb\": %ld, "
	       "\"recovered_ms\": %.1f, \"max_ok_gap_ms\": %.1f, "
	       "\"status\": {",
	       (unsigned long)(next - 1), atomic_load(&C.ok),
	       (unsigned long)refused, atomic_load(&C.corrupted),
	       atomic_load(&C.twice), atomic_load(&C.late),
	       atomic_load(&C.max_late_ns) / 1e6, atomic_load(&C.inflight),
	       rss_max,
	       atomic_load(&C.first_ok_ns) ?
		       (atomic_load(&C.first_ok_ns) - atomic_load(&C.clear_ns)) /
			       1e6 : -1.0,
	       atomic_load(&C.max_gap_ns) / 1e6);
	for (int s = 0; s < ZC_RPC_NSTATUS; s++)
		printf("%s\"%s\": %lu", s ? ", " : "", zc_rpc_status_name(s),
		       atomic_load(&C.by_status[s]));
	printf("}");
	if (nep) {
		printf(", \"endpoint_sends\": [");
		for (unsigned i = 0; i < nep; i++)
			printf("%s%lu", i ? ", " : "", (unsigned long)sends_end[i]);
		printf("], \"endpoint_sends_since_signal\": [");
		for (unsigned i = 0; i < nep; i++)
			printf("%s%lu", i ? ", " : "", (unsigned long)
			       (atomic_load(&C.clear_ns) ?
					sends_end[i] - sends_clear[i] : 0));
		printf("]");
	}
	printf("}\n");
	fflush(stdout);

#define CHECK(cond, ...) \
	do { if (!(cond)) { fprintf(stderr, "call: FAIL: " __VA_ARGS__); \
			    fputc('\n', stderr); ok = false; } } while (0)
	CHECK(!atomic_load(&C.corrupted), "%lu corrupted answers",
	      atomic_load(&C.corrupted));
	CHECK(!atomic_load(&C.twice), "%lu calls ended twice",
	      atomic_load(&C.twice));
	CHECK(!atomic_load(&C.late), "%lu calls ended over %d ms late",
	      atomic_load(&C.late), SLACK_MS);
	CHECK(!atomic_load(&C.inflight), "%u calls never ended",
	      atomic_load(&C.inflight));
	CHECK(rss_max <= (long)rss_max_mb * 1024, "RSS %ld kB over %u MiB",
	      rss_max, rss_max_mb);
	if (atomic_load(&C.clear_ns) && recover_ms) {
		uint64_t f = atomic_load(&C.first_ok_ns);

		CHECK(f && f - atomic_load(&C.clear_ns) <=
				   (uint64_t)recover_ms * 1000000,
		      "service not back within %u ms of the fault's end",
		      recover_ms);
	}
	CHECK(!max_gap_ms ||
	      atomic_load(&C.max_gap_ns) <= (uint64_t)max_gap_ms * 1000000,
	      "%.0f ms without an OK answer (bound %u ms)",
	      atomic_load(&C.max_gap_ns) / 1e6, max_gap_ms);
	CHECK(!no_failures || atomic_load(&C.ok) == next - 1,
	      "%lu of %lu calls did not end OK",
	      (unsigned long)(next - 1 - atomic_load(&C.ok)),
	      (unsigned long)(next - 1));
	if (C.bal)
		zc_rpc_balancer_destroy(C.bal);
	else
		zc_rpc_client_destroy(C.cli);
	CHECK(zc_reactor_destroy(r) == 0, "reactor destroy");
	free(C.recs);
	free(list);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "call"))
		return call(argc - 2, argv + 2, false);
	if (argc >= 2 && !strcmp(argv[1], "call-many"))
		return call(argc - 2, argv + 2, true);
	fprintf(stderr, "usage: rpc_fault serve ADDR PORT [--zc] "
			"[--inflight-bytes N] | "
			"call ADDR PORT [options] | call-many TARGETS [options]\n");
	return 2;
}
