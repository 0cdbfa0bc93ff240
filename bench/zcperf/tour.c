/* SPDX-License-Identifier: MIT */
/*
 * tour.c - zcperf without -H: both ends in this process over loopback.
 *
 * The server side is the real one (server.c) on a thread of its own,
 * reached through the real control protocol on 127.0.0.1, so a loopback
 * run measures exactly what a two-process run would.  Its reactors go on
 * CPU 0 and the client's on CPU 1 unless -C / --server-cpus say otherwise.
 *
 * With -t, one test runs and prints as a client would.  With no test, the
 * tour runs: TCP_STREAM in each send mode, TCP_STREAM with the consumer on
 * the client's CPU in each free mode, TCP_RR and RPC_RR, -l seconds each
 * (3 by default: about 30 s in all), with a progress line on stderr and
 * one comparison table at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zcrpc/zcrpc.h>

#include "report.h"
#include "roles.h"
#include "side.h"

#define TOUR_MAX 16

struct tour_step {
	char label[48];
	struct zp_test_cfg cfg;
};

static void *server_main(void *arg)
{
	struct zp_server *s = arg;
	int ret = zp_server_serve(s);

	if (ret)
		fprintf(stderr, "zcperf: loopback server: %s\n", strerror(-ret));
	return NULL;
}

static unsigned tour_steps(const struct zp_opts *o, int consumer_cpu,
			   struct tour_step *st)
{
	static const enum zp_send sends[] = { ZP_SEND_COPY, ZP_SEND_ZC,
					      ZP_SEND_AUTO };
	static const enum zc_free_mode frees[] = { ZC_FREE_OWNER, ZC_FREE_LOCAL,
						   ZC_FREE_LOCKED };
	unsigned n = 0, i;

	for (i = 0; i < 3; i++) {
		st[n].cfg = o->cfg;
		st[n].cfg.test = ZP_TCP_STREAM;
		st[n].cfg.send = sends[i];
		snprintf(st[n].label, sizeof(st[n].label), "send %s",
			 zp_send_name(sends[i]));
		n++;
	}
	for (i = 0; i < 3; i++) {
		st[n].cfg = o->cfg;
		st[n].cfg.test = ZP_TCP_STREAM;
		st[n].cfg.consumer_cpu = consumer_cpu;
		st[n].cfg.free_mode = (int)frees[i];
		snprintf(st[n].label, sizeof(st[n].label),
			 "consumer cpu %d, free %s", consumer_cpu,
			 zc_free_mode_name(frees[i]));
		n++;
	}
	st[n].cfg = o->cfg;
	st[n].cfg.test = ZP_TCP_RR;
	snprintf(st[n].label, sizeof(st[n].label), "%u,%u", o->cfg.req_size,
		 o->cfg.resp_size);
	n++;
	st[n].cfg = o->cfg;
	st[n].cfg.test = ZP_RPC_RR;
	/* The RPC_RR target shape of the issue: 16 connections x depth 16,
	 * unless the command line chose others. */
	if (st[n].cfg.conns == 1 && st[n].cfg.depth == 1) {
		st[n].cfg.conns = 16;
		st[n].cfg.depth = 16;
	}
	snprintf(st[n].label, sizeof(st[n].label), "%u,%u %ux%u",
		 o->cfg.req_size, o->cfg.resp_size, st[n].cfg.conns,
		 st[n].cfg.depth);
	n++;
	return n;
}

static int run_one(const struct zp_client_args *a, const char *host,
		   uint16_t port, const struct zp_test_cfg *cfg,
		   struct zp_result *r)
{
	struct sockaddr_storage peer;
	struct zp_client_args args = *a;
	struct zp_ctl ctl;
	socklen_t plen;
	int ret;

	ret = zp_ctl_connect(&ctl, host, port, &peer, &plen);
	if (ret) {
		fprintf(stderr, "zcperf: loopback control: %s\n",
			strerror(-ret));
		return ret;
	}
	args.peer = (struct sockaddr *)&peer;
	args.peerlen = plen;
	ret = zp_client_run(&ctl, 1, &args, cfg, r);
	zp_ctl_close(&ctl);
	return ret;
}

int zp_local_run(const struct zp_opts *o)
{
	static struct zp_server srv;
	struct tour_step steps[TOUR_MAX];
	struct zp_result res[TOUR_MAX];
	struct zp_client_args a;
	cpu_set_t server_cpus;
	unsigned n, i, ok = 0;
	pthread_t thread;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int ret, failed = 0, consumer_cpu;
	uint16_t port;

	memset(&srv, 0, sizeof(srv));
	memset(&a, 0, sizeof(a));
	/* Default placement: server on CPU 0, client on CPU 1. */
	CPU_ZERO(&server_cpus);
	CPU_SET(0, &server_cpus);
	if (o->server_cpus_given)
		server_cpus = o->server_cpus;
	else if (o->cpus_given)
		server_cpus = o->cpus;
	CPU_ZERO(&a.cpus);
	CPU_SET(ncpu > 1 ? 1 : 0, &a.cpus);
	if (o->cpus_given)
		a.cpus = o->cpus;
	a.pinned = true;
	a.server_cpus = &server_cpus;
	a.verbose = o->verbose;
	a.peer_name = "loopback";
	/* The tour's consumer runs beside the client: another CPU than the
	 * server's receiving reactor, the RFS case. */
	consumer_cpu = 0;
	for (i = 0; i < (unsigned)CPU_SETSIZE; i++) {
		if (CPU_ISSET(i, &a.cpus)) {
			consumer_cpu = (int)i;
			break;
		}
	}

	srv.lfd = zp_ctl_listen("127.0.0.1", 0);
	if (srv.lfd < 0) {
		fprintf(stderr, "zcperf: loopback control: %s\n",
			strerror(-srv.lfd));
		return 1;
	}
	srv.cpus = server_cpus;
	srv.pinned = true;
	srv.verbose = o->verbose;
	srv.accept = o->cfg.accept;
	port = zp_ctl_port(srv.lfd);
	ret = pthread_create(&thread, NULL, server_main, &srv);
	if (ret) {
		close(srv.lfd);
		return 1;
	}

	if (o->test_given) {
		steps[0].cfg = o->cfg;
		steps[0].label[0] = 0;
		n = 1;
	} else {
		n = tour_steps(o, consumer_cpu, steps);
	}
	for (i = 0; i < n; i++) {
		a.label = steps[i].label;
		if (n > 1)
			fprintf(stderr, "\rzcperf tour [%u/%u] %-10s %-28s %4.1f s ",
				i + 1, n, zp_test_name(steps[i].cfg.test),
				steps[i].label, steps[i].cfg.seconds);
		ret = run_one(&a, "127.0.0.1", port, &steps[i].cfg, &res[ok]);
		if (ret) {
			failed++;
			if (n > 1)
				fprintf(stderr, "\n");
			continue;
		}
		if (n > 1 && res[ok].transactions)
			fprintf(stderr, "%12.0f trans/s", res[ok].transactions_per_s);
		else if (n > 1)
			fprintf(stderr, "%9.2f Gbit/s", res[ok].throughput_gbps);
		if (n == 1 || o->out != ZP_OUT_HUMAN)
			zp_report(stdout, o->out, &res[ok], ok == 0);
		ok++;
	}
	if (n > 1) {
		char sc[64], cc[64];

		fprintf(stderr, "\rzcperf tour: %u of %u runs done%60s\n", ok, n,
			"");
		zp_format_cpulist(&server_cpus, sc, sizeof(sc));
		zp_format_cpulist(&a.cpus, cc, sizeof(cc));
		if (o->out == ZP_OUT_HUMAN && ok) {
			printf("zcperf loopback tour: server reactors on CPU %s, "
			       "client on CPU %s, %.1f s per test, cc %s\n",
			       sc, cc, o->cfg.seconds,
			       o->cfg.cc[0] ? o->cfg.cc : "default");
			zp_report_table(stdout, res, ok);
		}
	}

	zp_server_shutdown(&srv);
	pthread_join(thread, NULL);
	close(srv.lfd);
	return failed ? 1 : 0;
}
