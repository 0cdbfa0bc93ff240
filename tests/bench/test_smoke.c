/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/test_smoke.c - bench-smoke: every zcperf test for about a
 * second over loopback, through the real programs (a `zcperf -s` process
 * and `zcperf -H` clients), checking that the JSON is complete and that
 * the byte counts of both sides add up.  No timing is judged: only what
 * the counts must be whatever the speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../common/sanitized.h"
#include "json.h"

#ifndef ZCPERF_PATH
#error "ZCPERF_PATH must name the zcperf binary"
#endif

#define OUT_MAX (64 * 1024)
/* A client runs -l 1 plus set-up: anything near this is a hang, reported
 * as one instead of stalling the whole suite (zcperf's own watchdog,
 * watch.h, fires first and says where it was stuck). */
#define RUN_TIMEOUT_MS 90000

/*
 * Start @argv with stdout (and stderr if @err_fd) on pipes.  The child
 * keeps no other descriptor of ours (the test runner's pipes among them,
 * whose EOF it waits for) and dies with us, so a failed assertion never
 * leaves a server behind.
 */
static pid_t spawn(char *const argv[], int *out_fd, int *err_fd)
{
	int out[2], err[2] = { -1, -1 };
	pid_t pid;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	if (err_fd)
		cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], 1);
		if (err_fd)
			dup2(err[1], 2);
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	*out_fd = out[0];
	if (err_fd) {
		close(err[1]);
		*err_fd = err[0];
	}
	return pid;
}

/* Read until EOF (or @len - 1 bytes); false when @timeout_ms passed. */
static bool slurp(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	ssize_t r;

	buf[0] = 0;
	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms) == 0)
			return false;
		r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = 0;
	}
	return true;
}

/* Run zcperf with @args (NULL-terminated); stdout into @out; exit code. */
static int run_program(const char *path, const char *const *args,
		       char *out, size_t len)
{
	char *argv[40];
	int fd, status, i;
	pid_t pid;

	argv[0] = (char *)path;
	for (i = 0; args[i]; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	pid = spawn(argv, &fd, NULL);
	if (!slurp(fd, out, len, RUN_TIMEOUT_MS)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert(false, "%s %s %s ... hung for %d s", path, args[0],
			  args[1] ? args[1] : "", RUN_TIMEOUT_MS / 1000);
	}
	close(fd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run(const char *const *args, char *out, size_t len)
{
	return run_program(ZCPERF_PATH, args, out, len);
}

struct server {
	pid_t pid;
	int out, err;
	char port[8];
};

/* The server of the running test, killed by the suite's .fini when an
 * assertion ends the test before server_stop(). */
static pid_t live_server;

static void kill_live_server(void)
{
	if (live_server > 0) {
		kill(live_server, SIGKILL);
		waitpid(live_server, NULL, 0);
		live_server = 0;
	}
}

/* Start `zcperf @mode -p 0` and learn its port from "... on port N". */
static void server_start(struct server *s, const char *mode)
{
	char *argv[] = { (char *)ZCPERF_PATH, (char *)mode, "-p", "0", NULL };
	char buf[512];
	size_t n = 0;

	s->pid = spawn(argv, &s->out, &s->err);
	live_server = s->pid;
	for (;;) {
		struct pollfd p = { .fd = s->err, .events = POLLIN };
		const char *at;
		ssize_t r;

		cr_assert_gt(poll(&p, 1, 10000), 0, "server never said its port");
		r = read(s->err, buf + n, sizeof(buf) - 1 - n);
		cr_assert_gt(r, 0, "server exited before listening");
		n += (size_t)r;
		buf[n] = 0;
		at = strstr(buf, "on port ");
		if (at && strchr(at, ' ' ) && strpbrk(at + 8, " \n,")) {
			snprintf(s->port, sizeof(s->port), "%d", atoi(at + 8));
			return;
		}
	}
}

static void server_stop(struct server *s)
{
	int status, i;

	live_server = 0;
	kill(s->pid, SIGTERM);
	for (i = 0; i < 1000 && waitpid(s->pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 1000) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
		cr_assert(false, "server ignored SIGTERM for 10 s");
	}
	close(s->out);
	close(s->err);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "server did not exit cleanly on SIGTERM (status 0x%x)",
		  status);
}

static const char *const required[] = {
	"test", "seconds", "bytes", "throughput_gbps", "transactions_per_s",
	"latency_us.p50", "latency_us.p90", "latency_us.p99",
	"latency_us.p999", "latency_us.max", "cpu_util.client",
	"cpu_util.server", "counters.zc_sends", "counters.notifications",
	"counters.copied_notifications", "counters.deferred_frees",
	"counters.drains", "counters.kicks", "counters.rx_enobufs",
	"counters.tcp_busy_us", "counters.tcp_rwnd_limited_us",
	"counters.tcp_sndbuf_limited_us", "counters.tcp_retrans",
	"client.bytes_sent",
	"client.bytes_received", "server.bytes_sent", "server.bytes_received",
	"transactions", "client.rss_end_kb", "server.rss_end_kb",
	"client.rss_warm_kb", "server.rss_warm_kb",
	"open_loop.rate", "open_loop.offered_per_s", "open_loop.achieved_per_s",
	"open_loop.scheduled", "open_loop.sent", "open_loop.late",
	"open_loop.failed", "open_loop.unsent", "open_loop.max_send_lag_us",
	"open_loop.send_lag_us.p99", "open_loop.issued_to_answer_us.p99",
	"receive_cpu.seconds", "receive_cpu.s_per_gib", "receive_cpu.us_per_call",
	"client.threads_cpu_s", "server.threads_cpu_s",
	"counters.rpc_spanning", "counters.rpc_shared_buf",
	"server.thread_cpu_s.reactor0", "client.thread_cpu_s.reactor0",
};

static double num(const struct json_doc *d, const char *path)
{
	double v = json_num(d, path);

	cr_assert(!isnan(v), "JSON field %s missing or not a number", path);
	return v;
}

/* Checks every test's JSON must pass; returns the parsed document. */
static void check_json(const char *out, const char *test,
		       struct json_doc *d)
{
	const struct json_leaf *t;
	unsigned i;

	cr_assert_eq(json_parse(out, d), 0, "not one JSON object: %s", out);
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		cr_assert_not_null(json_get(d, required[i]),
				   "JSON lacks %s: %s", required[i], out);
	t = json_get(d, "test");
	cr_assert_str_eq(t->val, test);
	cr_assert_geq(num(d, "seconds"), 1.0);
	cr_assert_gt(num(d, "bytes"), 0);
	/* Both ends counted the same bytes. */
	cr_assert_eq(num(d, "client.bytes_sent"), num(d, "server.bytes_received"),
		     "client sent != server received: %s", out);
	cr_assert_eq(num(d, "server.bytes_sent"), num(d, "client.bytes_received"),
		     "server sent != client received: %s", out);
	cr_assert_eq(num(d, "bytes"),
		     num(d, "client.bytes_sent") + num(d, "client.bytes_received"));
	/* Percentiles from one histogram are ordered. */
	cr_assert_leq(num(d, "latency_us.p50"), num(d, "latency_us.p90"));
	cr_assert_leq(num(d, "latency_us.p90"), num(d, "latency_us.p99"));
	cr_assert_leq(num(d, "latency_us.p99"), num(d, "latency_us.p999"));
	cr_assert_leq(num(d, "latency_us.p999"), num(d, "latency_us.max"));
	/* Counter relations the stack guarantees. */
	cr_assert_leq(num(d, "counters.copied_notifications"),
		      num(d, "counters.notifications"));
	cr_assert_leq(num(d, "counters.notifications"),
		      num(d, "counters.zc_sends"));
	cr_assert_leq(num(d, "counters.drains"), num(d, "counters.deferred_frees"));
	cr_assert_gt(num(d, "server.rss_end_kb"), 0);
	cr_assert_gt(num(d, "server.rss_warm_kb"), 0);
	cr_assert_gt(num(d, "client.rss_warm_kb"), 0);
	cr_assert_geq(num(d, "cpu_util.client"), 0);
	cr_assert_leq(num(d, "cpu_util.client"), 100.0);
}

/* Request/response tests: every transaction moved REQ + RESP bytes. */
static void check_rr(const struct json_doc *d, double req, double resp)
{
	double tr = num(d, "transactions");

	cr_assert_geq(tr, 1000);
	cr_assert_eq(num(d, "bytes"), tr * (req + resp));
	cr_assert_eq(num(d, "client.bytes_sent"), tr * req);
	cr_assert_eq(num(d, "server.transactions"), tr);
	cr_assert_eq(num(d, "latency_us.samples"), tr);
	cr_assert_gt(num(d, "latency_us.p50"), 0);
}

/*
 * The receiving side's thread clocks: @who (the consumer thread or the
 * RPC worker) worked, and the side's total is the sum of its threads.
 */
static void check_thread_cpu(const struct json_doc *d, const char *who)
{
	char path[64];
	double total = num(d, "server.threads_cpu_s");

	snprintf(path, sizeof(path), "server.thread_cpu_s.%s", who);
	cr_assert_gt(num(d, path), 0, "%s did not run", who);
	cr_assert_geq(total, num(d, path) + num(d, "server.thread_cpu_s.reactor0") -
				     1e-5);
	cr_assert_eq(num(d, "receive_cpu.seconds"), total);
}

/* --consumer-cpu: in owner mode the consumer's releases go home through the
 * deferred list; the other modes never defer. */
static void check_deferred(const struct json_doc *d, const char *free_mode)
{
	if (!strcmp(free_mode, "owner"))
		cr_assert_gt(num(d, "counters.deferred_frees"), 0);
	else
		cr_assert_eq(num(d, "counters.deferred_frees"), 0);
}

static void client(struct server *s, const char *test, const char *const *extra,
		   struct json_doc *d)
{
	const char *args[40] = { "-H", "127.0.0.1", "-p", s->port, "-t", test,
				 "-l", "1", "--json" };
	static char out[OUT_MAX];
	unsigned n = 9, i;
	int code;

	for (i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	code = run(args, out, sizeof(out));
	cr_assert_eq(code, 0, "zcperf -t %s exited %d", test, code);
	check_json(out, test, d);
}

/* The second server of a multi-server run (its own process and port). */
static pid_t live_server2;

static void kill_live_servers(void)
{
	kill_live_server();
	if (live_server2 > 0) {
		kill(live_server2, SIGKILL);
		waitpid(live_server2, NULL, 0);
		live_server2 = 0;
	}
}

TestSuite(bench, .timeout = 120, .fini = kill_live_servers);

Test(bench, tcp_stream_each_send_mode)
{
	static const char *const modes[] = { "copy", "zc", "auto" };
	struct server s;
	struct json_doc d;
	unsigned i;

	server_start(&s, "-s");
	for (i = 0; i < 3; i++) {
		const char *extra[] = { "--send", modes[i], "-m", "64K", NULL };

		client(&s, "TCP_STREAM", extra, &d);
		cr_assert_eq(num(&d, "client.bytes_received"), 0);
		cr_assert_eq(num(&d, "server.bytes_sent"), 0);
		/* Whole messages only. */
		cr_assert_eq(fmod(num(&d, "client.bytes_sent"), 65536), 0);
		/* The sender's TCP_INFO: data was in flight, and the limited
		 * times are parts of that time. */
		cr_assert_gt(num(&d, "client.counters.tcp_busy_us"), 0);
		cr_assert_leq(num(&d, "client.counters.tcp_rwnd_limited_us"),
			      num(&d, "client.counters.tcp_busy_us"));
		if (!strcmp(modes[i], "copy"))
			cr_assert_eq(num(&d, "counters.zc_sends"), 0);
		else
			cr_assert_gt(num(&d, "counters.zc_sends"), 0,
				     "--send %s made no zero-copy send",
				     modes[i]);
	}
	server_stop(&s);
}

Test(bench, tcp_maerts)
{
	const char *extra[] = { "-m", "16K", "-P", "2", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "TCP_MAERTS", extra, &d);
	cr_assert_eq(num(&d, "client.bytes_sent"), 0);
	cr_assert_eq(fmod(num(&d, "server.bytes_sent"), 16384), 0);
	server_stop(&s);
}

Test(bench, tcp_stream_consumer_each_free_mode)
{
	static const char *const modes[] = { "owner", "local", "locked" };
	struct server s;
	struct json_doc d;
	unsigned i;

	server_start(&s, "-s");
	for (i = 0; i < 3; i++) {
		const char *extra[] = { "--free", modes[i], "--consumer-cpu", "0",
					NULL };

		client(&s, "TCP_STREAM", extra, &d);
		check_deferred(&d, modes[i]);
		check_thread_cpu(&d, "consumer");
		cr_assert_gt(num(&d, "receive_cpu.s_per_gib"), 0);
	}
	server_stop(&s);
}

Test(bench, tcp_rr)
{
	/* Eight connections: 1000 transactions in 1 s even if a loaded
	 * machine makes each take several ms. */
	const char *extra[] = { "-r", "64,1K", "-P", "8", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "TCP_RR", extra, &d);
	check_rr(&d, 64, 1024);
	server_stop(&s);
}

Test(bench, rpc_rr)
{
	const char *echo[] = { "-r", "64,64", "-P", "4", "-d", "8", NULL };
	const char *sized[] = { "-r", "100,300", "-P", "2", "-d", "8", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "RPC_RR", echo, &d);
	check_rr(&d, 64, 64);
	client(&s, "RPC_RR", sized, &d);
	check_rr(&d, 100, 300);
	server_stop(&s);
}

/* 100 calls of 1 MiB in flight on one connection: 100 MiB of partial
 * requests, more than the server's 64 MiB pool.  Before issue 15's fix
 * the ring ran dry and this run never ended ("did not end within 30 s");
 * now requests past the connection's budget wait or come back OVERLOADED
 * (zcperf retries them), and the run ends with every byte accounted. */
Test(bench, rpc_rr_deep_large)
{
	/* zcperf wants 1000 transactions for its p99.9, and a sanitized
	 * build makes well under 100 a second of these: there the same
	 * 100 MiB in flight go as 400 x 256 KiB, for longer.  5 s, not 3:
	 * on two CPUs shared with a parallel `make test` and other load, a
	 * 3 s run once made fewer than 1000 and zcperf refused it. */
	const char *extra[] = { "-r", ZC_TEST_SANITIZED ? "256K,64" : "1M,64",
				"-d", ZC_TEST_SANITIZED ? "400" : "100",
				"-l", ZC_TEST_SANITIZED ? "10" : "5", NULL };
	double req = ZC_TEST_SANITIZED ? 256 << 10 : 1 << 20;
	struct server s;
	struct json_doc d;
	double tr;

	server_start(&s, "-s");
	client(&s, "RPC_RR", extra, &d);
	tr = num(&d, "transactions");
	cr_assert_gt(tr, 0);
	cr_assert_eq(num(&d, "bytes"), tr * (req + 64));
	cr_assert_eq(num(&d, "server.transactions"), tr);
	server_stop(&s);
}

/* --consumer-cpu: the server's handler reads and releases each request on
 * a worker thread; in owner mode those releases go home deferred. */
Test(bench, rpc_rr_consumer_each_free_mode)
{
	static const char *const modes[] = { "owner", "local" };
	struct server s;
	struct json_doc d;
	unsigned i;

	server_start(&s, "-s");
	for (i = 0; i < 2; i++) {
		const char *extra[] = { "-r", "64,64", "-P", "2", "-d", "8",
					"--free", modes[i], "--consumer-cpu",
					"0", NULL };

		client(&s, "RPC_RR", extra, &d);
		check_rr(&d, 64, 64);
		check_deferred(&d, modes[i]);
		check_thread_cpu(&d, "worker");
		cr_assert_gt(num(&d, "receive_cpu.us_per_call"), 0);
	}
	server_stop(&s);
}

Test(bench, rpc_stream)
{
	const char *extra[] = { "-m", "256K", NULL };
	struct server s;
	struct json_doc d;
	double tr;

	server_start(&s, "-s");
	client(&s, "RPC_STREAM", extra, &d);
	tr = num(&d, "transactions");
	cr_assert_gt(tr, 0);
	cr_assert_eq(num(&d, "bytes"), tr * 2 * 262144);
	/* 256 KiB and a frame header never fit one receive buffer (256 KiB
	 * at most): every request the server echoed spanned buffers, and
	 * one that began where another ended is counted at most once. */
	cr_assert_eq(num(&d, "server.counters.rpc_spanning"),
		     num(&d, "server.transactions"));
	cr_assert_leq(num(&d, "server.counters.rpc_shared_buf"),
		      num(&d, "server.transactions"));
	server_stop(&s);
}

/*
 * --rate: every intended time of the schedule ends as exactly one of sent,
 * late or failed, and the answered ones are the transactions and the
 * latency samples.  A constant schedule of R/s over L s holds R * L times,
 * however fast the machine is.
 */
static void check_open_loop(const struct json_doc *d, double rate,
			    double seconds, bool constant)
{
	double sched = num(d, "open_loop.scheduled");

	cr_assert_eq(sched, num(d, "open_loop.sent") + num(d, "open_loop.late") +
				    num(d, "open_loop.failed"),
		     "scheduled != sent + late + failed");
	cr_assert_leq(num(d, "open_loop.unsent"), num(d, "open_loop.failed"));
	cr_assert_eq(num(d, "transactions"),
		     num(d, "open_loop.sent") + num(d, "open_loop.late"));
	cr_assert_eq(num(d, "open_loop.rate"), rate);
	if (constant) {
		cr_assert_geq(sched, rate * seconds - 1);
		cr_assert_leq(sched, rate * seconds + 1);
	} else {
		cr_assert_gt(sched, 0);
	}
}

Test(bench, open_loop_counts_add_up)
{
	const char *rr[] = { "-r", "64,1K", "-P", "4", "-d", "4", "--rate",
			     "3000", NULL };
	const char *rpc[] = { "-r", "64,64", "-P", "2", "-d", "8", "--rate",
			      "3000", "--arrival", "poisson", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "TCP_RR", rr, &d);
	check_open_loop(&d, 3000, 1, true);
	check_rr(&d, 64, 1024);
	client(&s, "RPC_RR", rpc, &d);
	check_open_loop(&d, 3000, 1, false);
	check_rr(&d, 64, 64);
	server_stop(&s);
}

/*
 * --stall 100: the server's reactor sleeps 100 ms once, half-way.  Open
 * loop keeps sending on schedule, so the requests intended in the first
 * 50 ms of the stall (100 of 2000, 5 %) each wait at least 50 ms, measured
 * from their intended time: p99 cannot be below 50 ms, and the request
 * that met the stall waited all of it.  8 slots cannot hold the 200
 * requests of the stall, so some went out late, and the report says so.
 * These are lower bounds set by the stall, true at any speed.  Measured
 * from the real send time instead (coordinated omission) only the 8 calls
 * in flight (0.4 %) would have waited, and p99 would not show the stall.
 */
Test(bench, open_loop_stall_shows_in_percentiles)
{
	const char *rpc[] = { "-r", "64,64", "-P", "2", "-d", "4", "--rate",
			      "2000", "--stall", "100", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "RPC_RR", rpc, &d);
	check_open_loop(&d, 2000, 1, true);
	cr_assert_geq(num(&d, "latency_us.p99"), 50000,
		      "the stall is missing from p99");
	cr_assert_geq(num(&d, "latency_us.max"), 100000);
	cr_assert_gt(num(&d, "open_loop.late"), 0,
		     "requests held back by the stall were not reported late");
	server_stop(&s);
}

/*
 * --idle: the idle connections are opened (HELLO done) and accepted beside
 * the active ones, the calls still add up, and the server says how long
 * accepting all of them took and what its RSS was before them.
 */
Test(bench, rpc_rr_idle_connections)
{
	const char *extra[] = { "-r", "64,64", "-P", "2", "-d", "8", "--idle",
				"50", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "RPC_RR", extra, &d);
	check_rr(&d, 64, 64);
	cr_assert_eq(num(&d, "connections.active"), 2);
	cr_assert_eq(num(&d, "connections.idle"), 50);
	cr_assert_gt(num(&d, "connections.accept_s"), 0);
	cr_assert_gt(num(&d, "connections.server_rss_listen_kb"), 0);
	server_stop(&s);
}

/*
 * Large messages need a deep receive ring (docs/BENCHMARKS.md): with
 * --rxring 1024 of 64 KiB the pool must hold 4x the ring, as the stack's
 * default does.  zcperf sized it for the default ring only, and the run
 * never ended.
 */
Test(bench, rpc_stream_deep_ring)
{
	const char *extra[] = { "-m", "1M", "--rxring", "1024", "-P", "2", "-d",
				"2", NULL };
	struct server s;
	struct json_doc d;

	server_start(&s, "-s");
	client(&s, "RPC_STREAM", extra, &d);
	cr_assert_gt(num(&d, "transactions"), 0);
	cr_assert_eq(num(&d, "bytes"), num(&d, "transactions") * 2 * 1048576);
	server_stop(&s);
}

/* No -H: both ends in one process, through the same control protocol. */
Test(bench, loopback_in_process)
{
	const char *args[] = { "-t", "TCP_RR", "-l", "1", "-P", "8", "--json",
			       NULL };
	static char out[OUT_MAX];
	struct json_doc d;

	cr_assert_eq(run(args, out, sizeof(out)), 0);
	check_json(out, "TCP_RR", &d);
	check_rr(&d, 64, 64);
}

Test(bench, csv_has_header_and_row)
{
	const char *args[] = { "-t", "TCP_STREAM", "-l", "1", "--csv", NULL };
	static char out[OUT_MAX];
	char *nl;
	unsigned cols_h = 0, cols_r = 0;
	const char *p;

	cr_assert_eq(run(args, out, sizeof(out)), 0);
	nl = strchr(out, '\n');
	cr_assert_not_null(nl);
	cr_assert_eq(strncmp(out, "test,", 5), 0);
	for (p = out; p < nl; p++)
		cols_h += *p == ',';
	for (p = nl + 1; *p && *p != '\n'; p++)
		cols_r += *p == ',';
	cr_assert_eq(cols_h, cols_r, "header and row differ: %s", out);
	cr_assert_eq(strncmp(nl + 1, "TCP_STREAM,", 11), 0);
}

Test(bench, too_short_is_refused)
{
	const char *args[] = { "-t", "TCP_RR", "-l", "0.2", NULL };
	static char out[OUT_MAX];

	cr_assert_eq(run(args, out, sizeof(out)), 2);
	cr_assert_eq(out[0], 0, "a refused run printed a result");
}

Test(bench, echo_server_echoes)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char msg[3000], back[3000];
	struct server s;
	size_t got = 0;
	int fd, i;

	server_start(&s, "--echo");
	for (i = 0; i < (int)sizeof(msg); i++)
		msg[i] = (char)(i * 7);
	sin.sin_port = htons((uint16_t)atoi(s.port));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(write(fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	while (got < sizeof(back)) {
		ssize_t r = read(fd, back + got, sizeof(back) - got);

		cr_assert_gt(r, 0);
		got += (size_t)r;
	}
	cr_assert_eq(memcmp(msg, back, sizeof(msg)), 0);
	close(fd);
	server_stop(&s);
}

/* rr_floor: one JSON line per way of sleeping, each with round trips done
 * (it counts only those whose echo came back right) and both legs timed. */
Test(bench, rr_floor_runs_each_wait)
{
	static const char *const waits[] = { "blocking", "epoll", "io_uring" };
	const char *args[] = { "--runs", "1", "--secs", "0.3", "--size", "200",
			       "--json", NULL };
	static char out[OUT_MAX];
	char *line, *save = NULL;
	unsigned n = 0;

	cr_assert_eq(run_program(RR_FLOOR_PATH, args, out, sizeof(out)), 0,
		     "rr_floor failed: %s", out);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		struct json_doc d;
		const struct json_leaf *w;

		cr_assert_lt(n, 3, "more than three lines");
		cr_assert_eq(json_parse(line, &d), 0, "not JSON: %s", line);
		w = json_get(&d, "wait");
		cr_assert_not_null(w);
		cr_assert_str_eq(w->val, waits[n]);
		cr_assert_eq(num(&d, "size"), 200);
		cr_assert_eq(num(&d, "runs"), 1);
		cr_assert_gt(num(&d, "transactions_per_s"), 0);
		cr_assert_eq(num(&d, "min"), num(&d, "transactions_per_s"));
		/* 200 B carry the echo thread's times: both legs timed. */
		cr_assert_gt(num(&d, "request_leg_p50_us"), 0);
		cr_assert_gt(num(&d, "response_leg_p50_us"), 0);
	}
	cr_assert_eq(n, 3);
}

/* stall_floor, as a table on every CPU this test may run on: it ran, and
 * printed one row per CPU, in order.  No gap is judged: they are the
 * machine's. */
Test(bench, stall_floor_row_per_cpu)
{
	const char *args[] = { "--secs", "0.2", NULL };
	static char out[OUT_MAX];
	char *line, *save = NULL;
	cpu_set_t mask;
	int cpu = -1, rows = 0;

	cr_assert_eq(sched_getaffinity(0, sizeof(mask), &mask), 0);
	cr_assert_eq(run_program(STALL_FLOOR_PATH, args, out, sizeof(out)), 0,
		     "stall_floor failed: %s", out);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int row_cpu;

		if (sscanf(line, "%d", &row_cpu) != 1)
			continue;
		while (++cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &mask))
			;
		cr_assert_eq(row_cpu, cpu, "row for CPU %d, want %d: %s",
			     row_cpu, cpu, line);
		rows++;
	}
	cr_assert_eq(rows, CPU_COUNT(&mask));
}

/* stall_floor --json on (at most) two CPUs: per CPU a share of time per
 * threshold, each within 0-100% and no larger than the one below it (a gap
 * over 1 ms is also one over 500 us), counts likewise; "any CPU" within
 * 0-100%, covering at least each CPU's own time away over 1 ms and at most
 * their sum. */
Test(bench, stall_floor_json_shares)
{
	static const char *const thr[] = { "50us", "100us", "500us", "1ms",
					   "2ms", "5ms" };
	const char *args[] = { "--secs", "0.2", "--cpus", NULL, "--json",
			       NULL };
	static char out[OUT_MAX];
	char list[32], path[64];
	int cpus[2], n = 0, c, i;
	struct json_doc d;
	cpu_set_t mask;
	double any, wall, away_sum = 0;

	cr_assert_eq(sched_getaffinity(0, sizeof(mask), &mask), 0);
	for (c = 0; c < CPU_SETSIZE && n < 2; c++) {
		if (CPU_ISSET(c, &mask))
			cpus[n++] = c;
	}
	if (n == 1)
		snprintf(list, sizeof(list), "%d", cpus[0]);
	else
		snprintf(list, sizeof(list), "%d,%d", cpus[0], cpus[1]);
	args[3] = list;
	cr_assert_eq(run_program(STALL_FLOOR_PATH, args, out, sizeof(out)), 0,
		     "stall_floor failed: %s", out);
	cr_assert_eq(json_parse(out, &d), 0, "not JSON: %s", out);
	cr_assert_str_eq(json_get(&d, "cpus")->val, list);
	any = num(&d, "any_cpu.over_1ms_pct");
	cr_assert(any >= 0 && any <= 100, "any CPU %f%%", any);
	wall = num(&d, "any_cpu.wall_s");
	cr_assert_eq(num(&d, "any_cpu.gaps_not_merged"), 0);
	for (i = 0; i < n; i++) {
		double prev_pct = 100, prev_count = INFINITY, span;

		snprintf(path, sizeof(path), "per_cpu.%d.reads", cpus[i]);
		cr_assert_gt(num(&d, path), 0);
		snprintf(path, sizeof(path), "per_cpu.%d.span_s", cpus[i]);
		span = num(&d, path);
		cr_assert(span > 0 && span <= wall, "span %f, wall %f", span,
			  wall);
		for (unsigned t = 0; t < sizeof(thr) / sizeof(thr[0]); t++) {
			double pct, count;

			snprintf(path, sizeof(path), "per_cpu.%d.over_%s.pct",
				 cpus[i], thr[t]);
			pct = num(&d, path);
			cr_assert(pct >= 0 && pct <= prev_pct, "%s = %f", path,
				  pct);
			snprintf(path, sizeof(path), "per_cpu.%d.over_%s.count",
				 cpus[i], thr[t]);
			count = num(&d, path);
			cr_assert(count >= 0 && count <= prev_count, "%s", path);
			/* Seconds, not shares: the wall time may be a
			 * little longer than each CPU's span. */
			if (!strcmp(thr[t], "1ms")) {
				away_sum += pct * span;
				cr_assert_geq(any * wall + 1e-3, pct * span,
					      "any CPU %f%% of %f s < CPU %d's "
					      "%f%% of %f s", any, wall,
					      cpus[i], pct, span);
			}
			prev_pct = pct;
			prev_count = count;
		}
	}
	/* The union of the CPUs' gaps is no longer than their sum. */
	cr_assert_leq(any * wall, away_sum + 1e-3, "any CPU %f%% of %f s > "
		      "the sum of each CPU's, %f%% s", any, wall, away_sum);
	snprintf(path, sizeof(path), "per_cpu.%d.reads", cpus[n - 1] + 1);
	cr_assert_null(json_get(&d, path), "a CPU not asked for");
}

/* stall_floor refuses what it cannot measure, with exit status 2 and no
 * table: a CPU outside its affinity mask, a malformed list, no time. */
Test(bench, stall_floor_refuses_bad_input)
{
	static const char *const bad[][4] = {
		{ "--cpus", "99999", NULL },
		{ "--cpus", "1-0", NULL },
		{ "--cpus", "0,,1", NULL },
		{ "--secs", "0", NULL },
		{ "--secs", "1x", NULL },
		{ "extra", NULL },
	};
	static char out[OUT_MAX];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(run_program(STALL_FLOOR_PATH, bad[i], out,
					 sizeof(out)), 2, "%s %s", bad[i][0],
			     bad[i][1] ? bad[i][1] : "");
		cr_assert_str_eq(out, "", "%s", out);
	}
}

/* accept_rate: every queued connection accepted in each mode, the
 * single-shot listener arming one accept per connection (and one at
 * the start), the multishot one far fewer; then a summary per mode. */
Test(bench, accept_rate_runs_each_mode)
{
	const char *args[] = { "--conns", "64", "--runs", "1", NULL };
	static char out[OUT_MAX];
	char *line, *save = NULL, mode[16];
	unsigned run, conns, summaries = 0, seen = 0;
	unsigned long long arms;
	double per_s, cpu;

	cr_assert_eq(run_program(ACCEPT_RATE_PATH, args, out, sizeof(out)), 0,
		     "accept_rate failed: %s", out);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "run=%u mode=%15s conns=%u accepts_per_s=%lf "
				 "cpu_us_per_accept=%lf accept_arms=%llu",
			   &run, mode, &conns, &per_s, &cpu, &arms) == 6) {
			cr_assert_eq(run, 1);
			cr_assert_eq(conns, 64);
			cr_assert_gt(per_s, 0);
			if (!strcmp(mode, "oneshot")) {
				cr_assert_eq(arms, 64 + 1);
				seen |= 2;
			} else {
				cr_assert_str_eq(mode, "multishot");
				cr_assert_lt(arms, 32);
				seen |= 1;
			}
		} else if (!strncmp(line, "mode=", 5)) {
			cr_assert_not_null(strstr(line, " median_accepts_per_s="),
					   "%s", line);
			summaries++;
		} else {
			cr_assert_eq(strncmp(line, "ratio oneshot/multishot=", 24),
				     0, "unexpected line: %s", line);
		}
	}
	cr_assert_eq(seen, 3);
	cr_assert_eq(summaries, 2);
}

/* conns_floor with @tables: one JSON line per run, shape and way of
 * sleeping, in the interleaved order, each with calls done and every
 * request answered and echoed exactly once (the client drains its last
 * answers). */
static void conns_floor_check(const char *tables)
{
	static const char *const waits[] = { "io_uring", "epoll" };
	static const unsigned actives[] = { 8, 8 }, opens[] = { 8, 64 };
	const char *args[] = { "--open", "64", "--active", "8", "--runs", "1",
			       "--secs", "0.3", "--tables", tables, "--json",
			       NULL };
	static char out[OUT_MAX];
	char *line, *save = NULL;
	unsigned n = 0;

	cr_assert_eq(run_program(CONNS_FLOOR_PATH, args, out, sizeof(out)), 0,
		     "conns_floor failed: %s", out);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		struct json_doc d;
		const struct json_leaf *w;

		cr_assert_lt(n, 4, "more than four lines");
		cr_assert_eq(json_parse(line, &d), 0, "not JSON: %s", line);
		w = json_get(&d, "wait");
		cr_assert_not_null(w);
		cr_assert_str_eq(w->val, waits[n % 2]);
		w = json_get(&d, "tables");
		cr_assert(w && !strcmp(w->val, tables), "%s", line);
		cr_assert_eq(num(&d, "active"), actives[n / 2]);
		cr_assert_eq(num(&d, "open"), opens[n / 2]);
		cr_assert_eq(num(&d, "size"), 64);
		cr_assert_gt(num(&d, "requests_total"), 0);
		cr_assert_eq(num(&d, "answers_total"),
			     num(&d, "requests_total"), "%s", line);
		cr_assert_eq(num(&d, "echoes_total"),
			     num(&d, "requests_total"), "%s", line);
		cr_assert_leq(num(&d, "calls"), num(&d, "answers_total"));
		cr_assert_geq(num(&d, "client_cpu_s"), 0);
		cr_assert_geq(num(&d, "server_cpu_s"), 0);
	}
	cr_assert_eq(n, 4);
}

Test(bench, conns_floor_counts_add_up)
{
	conns_floor_check("shared");
}

#ifndef __SANITIZE_THREAD__
/* A descriptor table per thread, as 10,000 connections need.  Not under
 * TSan: it models one table per process, and reads the same descriptor
 * number in two tables as a race (bench/conns_floor/main.c says so). */
Test(bench, conns_floor_own_tables)
{
	conns_floor_check("own");
}
#endif

#ifdef ZC_WITH_TLS
/* --tls: the stream, RR and RPC families run over TLS with a throwaway
 * certificate; the JSON config says TLS was on, names the negotiated
 * cipher, and whether kTLS carried it. */
Test(bench, tls_each_family)
{
	static const char *const tests[] = { "TCP_STREAM", "RPC_RR",
					     "RPC_STREAM" };
	const char *extra[] = { "--tls", "-m", "64K", NULL };
	const struct json_leaf *l;
	struct server s;
	struct json_doc d;
	unsigned i;

	server_start(&s, "-s");
	for (i = 0; i < 3; i++) {
		client(&s, tests[i], extra, &d);
		l = json_get(&d, "config.tls");
		cr_assert(l && !strcmp(l->val, "true"), "config.tls");
		l = json_get(&d, "config.cipher");
		cr_assert(l && !strncmp(l->val, "TLS_", 4), "config.cipher %s",
			  l ? l->val : "(none)");
		cr_assert_not_null(json_get(&d, "config.ktls"));
	}
	server_stop(&s);
}
#endif /* ZC_WITH_TLS: without it zcperf --tls fails with -EOPNOTSUPP */

/* -H a,b: two servers on different ports, RPC_RR and RPC_STREAM through
 * the balancer, each policy: both servers got calls, the answers per
 * server add up to the run's transactions, and both sides' bytes agree. */
Test(bench, rpc_two_servers_through_the_balancer)
{
	static const char *const tests[] = { "RPC_RR", "RPC_STREAM" };
	static const char *const lbs[] = { "rr", "least" };
	static char out[OUT_MAX];
	struct server s1, s2;
	struct json_doc d;
	char hosts[64];

	server_start(&s2, "-s");
	live_server2 = s2.pid;
	server_start(&s1, "-s");
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%s,[::1]:%s", s1.port,
		 s2.port);
	for (unsigned i = 0; i < 2; i++) {
		const char *args[] = { "-H", hosts, "-t", tests[i], "-l", "1",
				       "-P", "2", "-d", "4", "-m", "16K",
				       "--lb", lbs[i], "--json", NULL };
		double ok0, ok1;
		int code = run(args, out, sizeof(out));

		cr_assert_eq(code, 0, "zcperf -H %s -t %s exited %d", hosts,
			     tests[i], code);
		check_json(out, tests[i], &d);
		ok0 = num(&d, "endpoints.0.ok");
		ok1 = num(&d, "endpoints.1.ok");
		cr_assert_gt(ok0, 0, "server 1 got no call: %s", out);
		cr_assert_gt(ok1, 0, "server 2 got no call: %s", out);
		cr_assert_eq(ok0 + ok1, num(&d, "transactions"), "%s", out);
		cr_assert_eq(num(&d, "server.transactions"),
			     num(&d, "transactions"), "%s", out);
		cr_assert_geq(num(&d, "endpoints.0.sent"), ok0);
		cr_assert_geq(num(&d, "endpoints.1.sent"), ok1);
		cr_assert_null(json_get(&d, "endpoints.2.ok"));
	}
	live_server2 = 0;
	server_stop(&s1);
	server_stop(&s2);
}
