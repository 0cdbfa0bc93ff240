/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/test_units.c - zcperf's pure parts: the latency histogram,
 * size and CPU-list parsing, the command line, the control lines that
 * carry a configuration to the server and its counts back, and what an
 * open-loop call's status counts as.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <zcrpc/zcrpc.h>

#include "ctl.h"
#include "hist.h"
#include "openloop.h"
#include "opts.h"

static struct zp_hist h1, h2;

static void near(double got, double want, double rel)
{
	cr_assert(fabs(got - want) <= want * rel, "got %.1f, want %.1f +- %.2f%%",
		  got, want, rel * 100);
}

Test(hist, quantiles_within_precision)
{
	uint64_t v;

	zp_hist_reset(&h1);
	for (v = 1; v <= 100000; v++)
		zp_hist_record(&h1, v);
	cr_assert_eq(h1.count, 100000);
	cr_assert_eq(h1.min_ns, 1);
	cr_assert_eq(h1.max_ns, 100000);
	near((double)zp_hist_quantile(&h1, 0.50), 50000, 0.01);
	near((double)zp_hist_quantile(&h1, 0.90), 90000, 0.01);
	near((double)zp_hist_quantile(&h1, 0.99), 99000, 0.01);
	near((double)zp_hist_quantile(&h1, 0.999), 99900, 0.01);
	cr_assert_eq(zp_hist_quantile(&h1, 1.0), 100000);
}

Test(hist, small_values_exact_and_clamp)
{
	struct zp_lat l;

	zp_hist_reset(&h1);
	zp_hist_record(&h1, 5);
	cr_assert_eq(zp_hist_quantile(&h1, 0.5), 5);
	cr_assert_eq(zp_hist_quantile(&h1, 0.999), 5);
	zp_hist_record(&h1, 1ull << 50);
	cr_assert_eq(h1.clamped, 1);
	cr_assert_eq(zp_hist_quantile(&h1, 1.0), 1ull << 50);
	zp_hist_summary(&h1, &l);
	cr_assert_eq(l.samples, 2);
	cr_assert_eq(l.min, 0.005);
	zp_hist_reset(&h1);
	zp_hist_summary(&h1, &l);
	cr_assert_eq(l.samples, 0);
	cr_assert_eq(l.p99, 0);
}

Test(hist, merge_equals_recording_together)
{
	uint64_t v;

	zp_hist_reset(&h1);
	zp_hist_reset(&h2);
	for (v = 1; v < 5000; v++)
		zp_hist_record(v % 2 ? &h1 : &h2, v * 37);
	zp_hist_merge(&h1, &h2);
	cr_assert_eq(h1.count, 4999);
	cr_assert_eq(h1.min_ns, 37);
	cr_assert_eq(h1.max_ns, 4999 * 37);
	near((double)zp_hist_quantile(&h1, 0.5), 2500 * 37, 0.01);
}

Test(opts, sizes)
{
	uint64_t v;

	cr_assert_eq(zp_parse_size("64K", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 65536);
	cr_assert_eq(zp_parse_size("1M", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 1 << 20);
	cr_assert_eq(zp_parse_size("2KB", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 2048);
	cr_assert_eq(zp_parse_size("1MiB", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 1 << 20);
	cr_assert_eq(zp_parse_size("4096", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(zp_parse_size("", 100, &v), -EINVAL);
	cr_assert_eq(zp_parse_size("K", 100, &v), -EINVAL);
	cr_assert_eq(zp_parse_size("-1", 100, &v), -EINVAL);
	cr_assert_eq(zp_parse_size("12X", 100, &v), -EINVAL);
	cr_assert_eq(zp_parse_size("1K", 1000, &v), -ERANGE);
}

Test(opts, cpulists)
{
	cpu_set_t s;
	char buf[64];

	cr_assert_eq(zp_parse_cpulist("0-3,6", &s), 0);
	cr_assert_eq(CPU_COUNT(&s), 5);
	zp_format_cpulist(&s, buf, sizeof(buf));
	cr_assert_str_eq(buf, "0-3,6");
	cr_assert_eq(zp_parse_cpulist("3-1", &s), -EINVAL);
	cr_assert_eq(zp_parse_cpulist("1,", &s), 0);
	cr_assert_eq(zp_parse_cpulist("a", &s), -EINVAL);
	cr_assert_eq(zp_parse_cpulist("", &s), -EINVAL);
}

static int parse(struct zp_opts *o, int argc, const char **argv)
{
	return zp_opts_parse(argc, (char **)argv, o);
}

Test(opts, command_line)
{
	const char *good[] = { "zcperf", "-H", "h", "-t", "tcp_rr", "-r",
			       "1K,4K", "-l", "2", "--send", "zc", "--free",
			       "local", "--consumer-cpu", "1", "--rxbuf",
			       "128K", "--rxring", "16", "--sockbuf", "1M",
			       "-P", "3", "--cc", "cubic", "--json" };
	const char *short_run[] = { "zcperf", "-t", "TCP_RR", "-l", "0.5" };
	const char *rxbuf[] = { "zcperf", "--rxbuf", "5000" };
	const char *rxring[] = { "zcperf", "--rxring", "24" };
	const char *rpc_cons[] = { "zcperf", "-t", "RPC_RR", "--consumer-cpu",
				   "1" };
	const char *tour[] = { "zcperf" };
	const char *open_rr[] = { "zcperf", "-t", "RPC_RR", "--rate", "2500",
				  "--arrival", "poisson", "--stall", "20" };
	const char *open_stream[] = { "zcperf", "-t", "TCP_STREAM", "--rate",
				      "10" };
	const char *arrival[] = { "zcperf", "-t", "TCP_RR", "--arrival", "x" };
	const char *idle_rpc[] = { "zcperf", "-t", "RPC_RR", "--idle", "9000" };
	const char *idle_rr[] = { "zcperf", "-t", "TCP_RR", "--idle", "10" };
	struct zp_opts o;

	cr_assert_eq(parse(&o, 26, good), 0);
	cr_assert_eq(o.role, ZP_ROLE_CLIENT);
	cr_assert_eq(o.cfg.test, ZP_TCP_RR);
	cr_assert_eq(o.cfg.req_size, 1024);
	cr_assert_eq(o.cfg.resp_size, 4096);
	cr_assert_eq(o.cfg.seconds, 2.0);
	cr_assert_eq(o.cfg.send, ZP_SEND_ZC);
	cr_assert_eq(o.cfg.free_mode, ZC_FREE_LOCAL);
	cr_assert_eq(o.cfg.consumer_cpu, 1);
	cr_assert_eq(o.cfg.rxbuf, 128 * 1024);
	cr_assert_eq(o.cfg.rxring, 16);
	cr_assert_eq(o.cfg.sockbuf, 1 << 20);
	cr_assert_eq(o.cfg.conns, 3);
	cr_assert_str_eq(o.cfg.cc, "cubic");
	cr_assert_eq(o.out, ZP_OUT_JSON);
	cr_assert_eq(parse(&o, 5, short_run), -EINVAL);
	cr_assert_eq(parse(&o, 3, rxbuf), -EINVAL);
	cr_assert_eq(parse(&o, 3, rxring), -EINVAL);
	cr_assert_eq(parse(&o, 5, rpc_cons), 0);
	cr_assert_eq(o.cfg.consumer_cpu, 1);
	cr_assert_eq(parse(&o, 9, open_rr), 0);
	cr_assert_eq(o.cfg.rate, 2500.0);
	cr_assert_eq(o.cfg.arrival, ZP_ARRIVAL_POISSON);
	cr_assert_eq(o.cfg.stall_ms, 20);
	/* Open loop needs requests: not for streams. */
	cr_assert_eq(parse(&o, 5, open_stream), -EINVAL);
	cr_assert_eq(parse(&o, 5, arrival), -EINVAL);
	cr_assert_eq(parse(&o, 5, idle_rpc), 0);
	cr_assert_eq(o.cfg.idle, 9000);
	/* Idle connections are RPC connections (HELLO done). */
	cr_assert_eq(parse(&o, 5, idle_rr), -EINVAL);
	cr_assert_eq(parse(&o, 1, tour), 0);
	cr_assert_eq(o.role, ZP_ROLE_LOCAL);
	cr_assert_eq(o.test_given, false);
	cr_assert_eq(o.cfg.seconds, 3.0);
}

/* -H a,b,c: host[:port] and [v6]:port items, -p for the rest. */
Test(opts, host_lists)
{
	const char *one[] = { "zcperf", "-H", "10.0.0.2", "-t", "RPC_RR" };
	const char *many[] = { "zcperf", "-H",
			       "10.0.0.2,h3:12867,[fd00::4]:7,fd00::5,[::1]",
			       "-p", "9", "-t", "RPC_STREAM", "--lb", "rr" };
	const char *stream[] = { "zcperf", "-H", "a,b", "-t", "TCP_STREAM" };
	const char *badport[] = { "zcperf", "-H", "a:0,b", "-t", "RPC_RR" };
	const char *empty[] = { "zcperf", "-H", "a,,b", "-t", "RPC_RR" };
	const char *badlb[] = { "zcperf", "-H", "a,b", "-t", "RPC_RR", "--lb",
				"random" };
	struct zp_opts o;

	/* One host: exactly as before, no list. */
	cr_assert_eq(parse(&o, 5, one), 0);
	cr_assert_str_eq(o.host, "10.0.0.2");
	cr_assert_eq(o.nhosts, 0);
	cr_assert_eq(o.lb, ZC_RPC_BALANCE_LEAST_OUTSTANDING);
	cr_assert_eq(parse(&o, 9, many), 0);
	cr_assert_eq(o.nhosts, 5);
	cr_assert_str_eq(o.hosts[0], "10.0.0.2");
	cr_assert_eq(o.host_ports[0], 9);
	cr_assert_str_eq(o.hosts[1], "h3");
	cr_assert_eq(o.host_ports[1], 12867);
	cr_assert_str_eq(o.hosts[2], "fd00::4");
	cr_assert_eq(o.host_ports[2], 7);
	cr_assert_str_eq(o.hosts[3], "fd00::5");
	cr_assert_eq(o.host_ports[3], 9);
	cr_assert_str_eq(o.hosts[4], "::1");
	cr_assert_eq(o.lb, ZC_RPC_BALANCE_ROUND_ROBIN);
	cr_assert_eq(parse(&o, 5, stream), -EINVAL);
	cr_assert_eq(parse(&o, 5, badport), -EINVAL);
	cr_assert_eq(parse(&o, 5, empty), -EINVAL);
	cr_assert_eq(parse(&o, 7, badlb), -EINVAL);
}

/* --accept: a server's option (-s, --echo, loopback), multishot by
 * default; a client is refused it (the server's READY says which). */
Test(opts, accept_mode)
{
	const char *server[] = { "zcperf", "-s", "--accept", "oneshot" };
	const char *echo[] = { "zcperf", "--echo", "--accept", "multishot" };
	const char *local[] = { "zcperf", "-t", "RPC_RR", "--accept",
				"oneshot" };
	const char *dflt[] = { "zcperf", "-s" };
	const char *bad[] = { "zcperf", "-s", "--accept", "single" };
	const char *client[] = { "zcperf", "-H", "h", "--accept", "oneshot" };
	enum zp_accept a;
	struct zp_opts o;

	cr_assert_eq(parse(&o, 2, dflt), 0);
	cr_assert_eq(o.cfg.accept, ZP_ACCEPT_MULTISHOT);
	cr_assert_eq(parse(&o, 4, server), 0);
	cr_assert_eq(o.role, ZP_ROLE_SERVER);
	cr_assert_eq(o.cfg.accept, ZP_ACCEPT_ONESHOT);
	cr_assert_eq(parse(&o, 4, echo), 0);
	cr_assert_eq(o.cfg.accept, ZP_ACCEPT_MULTISHOT);
	cr_assert_eq(parse(&o, 5, local), 0);
	cr_assert_eq(o.role, ZP_ROLE_LOCAL);
	cr_assert_eq(o.cfg.accept, ZP_ACCEPT_ONESHOT);
	cr_assert_eq(parse(&o, 4, bad), -EINVAL);
	cr_assert_eq(parse(&o, 5, client), -EINVAL);
	cr_assert_str_eq(zp_accept_name(ZP_ACCEPT_ONESHOT), "oneshot");
	cr_assert_str_eq(zp_accept_name((enum zp_accept)7), "?");
	cr_assert_eq(zp_accept_parse("multishot", &a), 0);
	cr_assert_eq(a, ZP_ACCEPT_MULTISHOT);
	cr_assert_eq(zp_accept_parse("Oneshot", &a), -EINVAL);
}

/* Under taskset, the affinity is the side's -C; an explicit -C wins, and
 * the in-process run keeps its own placement. */
Test(opts, taskset_affinity_is_the_default_cpu_list)
{
	const char *client[] = { "zcperf", "-H", "h" };
	const char *given[] = { "zcperf", "-H", "h", "-C", "0-1" };
	const char *local[] = { "zcperf", "-t", "TCP_RR" };
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t all, one;
	struct zp_opts o;
	int first;

	cr_assert_eq(sched_getaffinity(0, sizeof(all), &all), 0);
	for (first = 0; !CPU_ISSET(first, &all); first++)
		;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);

	cr_assert_eq(parse(&o, 3, client), 0);
	/* One CPU narrows the mask unless the machine has only one. */
	cr_assert_eq(o.cpus_given, online > 1);
	if (online > 1)
		cr_assert(CPU_EQUAL(&o.cpus, &one));
	cr_assert_eq(parse(&o, 5, given), 0);
	cr_assert(o.cpus_given);
	cr_assert_eq(CPU_COUNT(&o.cpus), 2);
	cr_assert_eq(parse(&o, 3, local), 0);
	cr_assert_not(o.cpus_given);
}

Test(ctl, configuration_round_trip)
{
	struct zp_test_cfg a, b;
	cpu_set_t cpus, back;
	char line[ZP_CTL_LINE_MAX];
	const char *why;
	bool given;

	zp_cfg_defaults(&a);
	a.test = ZP_RPC_STREAM;
	a.seconds = 2.5;
	a.msg_size = 1 << 20;
	a.conns = 16;
	a.depth = 8;
	a.reactors = 2;
	a.send = ZP_SEND_COPY;
	a.free_mode = ZC_FREE_LOCKED;
	a.rxbuf = 256 * 1024;
	a.rxring = 4;
	a.sockbuf = 3 << 20;
	a.poll_us = 50;
	a.rate = 12345.5;
	a.arrival = ZP_ARRIVAL_POISSON;
	a.stall_ms = 7;
	a.idle = 123;
	strcpy(a.cc, "cubic");
	zp_parse_cpulist("0-1", &cpus);
	zp_ctl_fmt_cfg(&a, &cpus, line, sizeof(line));
	cr_assert_eq(zp_ctl_parse_cfg(line, &b, &back, &given, &why), 0, "%s",
		     line);
	cr_assert(given);
	cr_assert(CPU_EQUAL(&cpus, &back));
	cr_assert_eq(b.test, a.test);
	cr_assert_eq(b.seconds, a.seconds);
	cr_assert_eq(b.msg_size, a.msg_size);
	cr_assert_eq(b.conns, a.conns);
	cr_assert_eq(b.depth, a.depth);
	cr_assert_eq(b.reactors, a.reactors);
	cr_assert_eq(b.send, a.send);
	cr_assert_eq(b.free_mode, a.free_mode);
	cr_assert_eq(b.consumer_cpu, -1);
	cr_assert_eq(b.rxbuf, a.rxbuf);
	cr_assert_eq(b.rxring, a.rxring);
	cr_assert_eq(b.sockbuf, a.sockbuf);
	cr_assert_eq(b.poll_us, a.poll_us);
	cr_assert_str_eq(b.cc, "cubic");
	cr_assert_eq(b.rate, a.rate);
	cr_assert_eq(b.arrival, ZP_ARRIVAL_POISSON);
	cr_assert_eq(b.stall_ms, 7);
	cr_assert_eq(b.idle, 123);
	/* How the server accepts is the server's own: never sent. */
	a.accept = ZP_ACCEPT_ONESHOT;
	zp_ctl_fmt_cfg(&a, &cpus, line, sizeof(line));
	cr_assert_null(strstr(line, "accept"), "%s", line);
	cr_assert_eq(zp_ctl_parse_cfg(line, &b, &back, &given, &why), 0);
	cr_assert_eq(b.accept, ZP_ACCEPT_MULTISHOT);

	cr_assert_eq(zp_ctl_parse_cfg("ZCPERF 2 test=TCP_RR", &b, &back,
				      &given, &why), -EINVAL);
	cr_assert_eq(zp_ctl_parse_cfg("ZCPERF 1 test=TCP_RR", &b, &back,
				      &given, &why), -EINVAL);
}

Test(ctl, result_round_trip)
{
	struct zp_side a, b;
	char line[ZP_CTL_LINE_MAX];
	unsigned errors;

	memset(&a, 0, sizeof(a));
	a.cpu.util = 42.5;
	a.cpu.busy_s = 1.25;
	a.cpu.ncpus = 2;
	strcpy(a.cpus, "0-1");
	a.bytes_sent = 1ull << 40;
	a.bytes_received = 12345;
	a.transactions = 99;
	a.ctr.zc_sends = 1;
	a.ctr.notifications = 2;
	a.ctr.copied_notifications = 3;
	a.ctr.deferred_frees = 4;
	a.ctr.drains = 5;
	a.ctr.kicks = 6;
	a.ctr.tcp_rwnd_limited_us = 8;
	a.ctr.tcp_retrans = 9;
	a.rss_start_kb = 1000;
	a.rss_warm_kb = 1020;
	a.rss_end_kb = 1024;
	a.rss_listen_kb = 777;
	a.accept_s = 0.5;
	a.threads.n = 2;
	strcpy(a.threads.name[0], "reactor0");
	a.threads.cpu_s[0] = 0.5;
	strcpy(a.threads.name[1], "consumer");
	a.threads.cpu_s[1] = 0.25;
	zp_ctl_fmt_side(&a, 7, line, sizeof(line));
	cr_assert_eq(zp_ctl_parse_side(line, &b, &errors), 0, "%s", line);
	cr_assert_eq(errors, 7);
	cr_assert_eq(b.rss_listen_kb, 777);
	cr_assert_eq(b.accept_s, 0.5);
	cr_assert_eq(b.threads.n, 2);
	cr_assert_str_eq(b.threads.name[1], "consumer");
	cr_assert_eq(b.threads.cpu_s[0], 0.5);
	cr_assert_eq(b.threads.total_s, 0.75);
	cr_assert_eq(b.cpu.util, 42.5);
	cr_assert_eq(b.cpu.busy_s, 1.25);
	cr_assert_str_eq(b.cpus, "0-1");
	cr_assert_eq(b.bytes_sent, 1ull << 40);
	cr_assert_eq(b.bytes_received, 12345);
	cr_assert_eq(b.transactions, 99);
	cr_assert_eq(b.ctr.kicks, 6);
	cr_assert_eq(b.ctr.tcp_rwnd_limited_us, 8);
	cr_assert_eq(b.ctr.tcp_retrans, 9);
	cr_assert_eq(b.ctr.copied_notifications, 3);
	cr_assert_eq(b.rss_start_kb, 1000);
	cr_assert_eq(b.rss_warm_kb, 1020);
	cr_assert_eq(b.rss_end_kb, 1024);
	cr_assert_eq(zp_ctl_parse_side("RESULT util=1", &b, &errors), -EINVAL);
}

/*
 * An open-loop call refused with a retryable status (the server's drain
 * refusing what it had not read when the run ended) is a failed call of
 * the schedule, not a broken connection: before, it refused the whole
 * run ("connections failed during the run") on a loaded machine, where
 * the closed loop, which takes it as no failure, went through.
 */
Test(openloop, retryable_status_is_a_failed_call_not_a_broken_connection)
{
	cr_assert_eq(zp_ol_outcome(ZC_RPC_OK), ZP_OL_ANSWERED);
	cr_assert_eq(zp_ol_outcome(ZC_RPC_UNAVAILABLE), ZP_OL_REFUSED);
	cr_assert_eq(zp_ol_outcome(ZC_RPC_OVERLOADED), ZP_OL_REFUSED);
	cr_assert_eq(zp_ol_outcome(ZC_RPC_INTERNAL), ZP_OL_BROKEN);
	cr_assert_eq(zp_ol_outcome(ZC_RPC_DEADLINE_EXCEEDED), ZP_OL_BROKEN);
}
