/* SPDX-License-Identifier: MIT */
/*
 * zcperf - netperf-style benchmark of the zcrpc stack and RPC layer.
 *
 *   zcperf                                   the loopback tour (make run)
 *   zcperf -t TCP_RR -l 5                    one test, both ends here
 *   zcperf -s                                server, port 12866
 *   zcperf -s --accept oneshot               ... single-shot accepts
 *   zcperf -H 10.0.0.2 -t TCP_STREAM -m 16K -l 10 --cc cubic
 *   zcperf -H 10.0.0.2 -t TCP_MAERTS -m 256K --send zc --json
 *   zcperf -H 10.0.0.2 -t TCP_STREAM --consumer-cpu 1 --free local
 *   zcperf -H 10.0.0.2 -t TCP_RR -r 64,64 --poll 50 -C 1 --server-cpus 0
 *   zcperf -H 10.0.0.2 -t RPC_RR -r 64,64 -P 16 -d 16 --csv
 *   zcperf -H 10.0.0.2 -t RPC_STREAM -m 1M -T 2
 *   zcperf -H 10.0.0.2,10.0.0.3:12867,[fd00::4]:12866 -t RPC_RR --lb rr
 *   zcperf -H 10.0.0.2 -t RPC_RR -P 16 -d 16 --rate 50000 --arrival poisson
 *   zcperf --echo -p 7777                    the stack's raw echo server
 *
 * Files: opts.c (command line), ctl.c (control connection), server.c and
 * client.c (the two ends of a run), engine.c and engine_conn.c (reactors
 * and connections of one side), latch.c (waiting for them), test_stream.c
 * / test_rr.c / test_rpc.c (the test families),
 * consumer.c (the RFS consumer thread), openloop.c (--rate: the
 * reactors' schedules), hist.c (latency histogram), cpu.c
 * (utilisation and service demand), report.c (output), tour.c (loopback
 * runs), echo.c (--echo).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "report.h"
#include "roles.h"
#include "side.h"
#include "tls.h"

/* -H a,b,c: one control connection per server, one run over them all. */
static int client_hosts(const struct zp_opts *o)
{
	static struct sockaddr_storage peers[ZP_HOSTS_MAX];
	static socklen_t plens[ZP_HOSTS_MAX];
	static char names[ZP_HOSTS_MAX][80];
	struct zp_ctl ctl[ZP_HOSTS_MAX];
	struct zp_client_args a;
	struct zp_result r;
	unsigned n;
	int ret = 0;

	for (n = 0; n < o->nhosts; n++) {
		ret = zp_ctl_connect(&ctl[n], o->hosts[n], o->host_ports[n],
				     &peers[n], &plens[n]);
		if (ret) {
			fprintf(stderr, "zcperf: cannot reach %s port %u: %s\n",
				o->hosts[n], o->host_ports[n], strerror(-ret));
			break;
		}
		snprintf(names[n], sizeof(names[n]),
			 strchr(o->hosts[n], ':') ? "[%s]:%u" : "%s:%u",
			 o->hosts[n], o->host_ports[n]);
	}
	if (!ret) {
		memset(&a, 0, sizeof(a));
		a.peer_name = o->host;
		a.cpus = o->cpus;
		a.pinned = o->cpus_given;
		a.server_cpus = o->server_cpus_given ? &o->server_cpus : NULL;
		a.verbose = o->verbose;
		a.peers = peers;
		a.peerlens = plens;
		a.names = names;
		a.lb = o->lb;
		ret = zp_client_run(ctl, n, &a, &o->cfg, &r);
	}
	while (n--)
		zp_ctl_close(&ctl[n]);
	if (ret)
		return 1;
	zp_report(stdout, o->out, &r, true);
	return 0;
}

int zp_client_main(const struct zp_opts *o)
{
	struct sockaddr_storage peer;
	struct zp_client_args a;
	struct zp_result r;
	struct zp_ctl ctl;
	char name[96];
	socklen_t plen;
	int ret;

	if (o->nhosts)
		return client_hosts(o);
	ret = zp_ctl_connect(&ctl, o->host, o->port, &peer, &plen);
	if (ret) {
		fprintf(stderr, "zcperf: cannot reach %s port %u: %s\n",
			o->host, o->port, strerror(-ret));
		return 1;
	}
	snprintf(name, sizeof(name), "%s:%u", o->host, o->port);
	memset(&a, 0, sizeof(a));
	a.peer = (struct sockaddr *)&peer;
	a.peerlen = plen;
	a.peer_name = name;
	a.cpus = o->cpus;
	a.pinned = o->cpus_given;
	a.server_cpus = o->server_cpus_given ? &o->server_cpus : NULL;
	a.verbose = o->verbose;
	ret = zp_client_run(&ctl, 1, &a, &o->cfg, &r);
	zp_ctl_close(&ctl);
	if (ret)
		return 1;
	zp_report(stdout, o->out, &r, true);
	return 0;
}

struct sig_arg {
	struct zp_server *srv;
	sigset_t sigs;
};

static void *signal_main(void *arg)
{
	struct sig_arg *sa = arg;
	int sig;

	sigwait(&sa->sigs, &sig);
	fprintf(stderr, "zcperf: %s, stopping\n", strsignal(sig));
	zp_server_shutdown(sa->srv);
	return NULL;
}

int zp_server_main(const struct zp_opts *o)
{
	static struct zp_server srv;
	struct sig_arg sa;
	pthread_t thread;
	int ret;

	/* Every thread made from here on inherits the blocked mask, so the
	 * signal thread alone receives SIGINT/SIGTERM. */
	sigemptyset(&sa.sigs);
	sigaddset(&sa.sigs, SIGINT);
	sigaddset(&sa.sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sa.sigs, NULL);
	sa.srv = &srv;

	srv.lfd = zp_ctl_listen(NULL, o->port);
	if (srv.lfd < 0) {
		fprintf(stderr, "zcperf: server port %u: %s\n", o->port,
			strerror(-srv.lfd));
		return 1;
	}
	srv.cpus = o->cpus;
	srv.pinned = o->cpus_given;
	srv.verbose = o->verbose;
	srv.accept = o->cfg.accept;
	if (pthread_create(&thread, NULL, signal_main, &sa)) {
		close(srv.lfd);
		return 1;
	}
	pthread_detach(thread);
	fprintf(stderr, "zcperf: server on port %u\n", zp_ctl_port(srv.lfd));
	ret = zp_server_serve(&srv);
	close(srv.lfd);
	if (ret) {
		fprintf(stderr, "zcperf: server: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}

/*
 * Every connection is a descriptor on each side (both here on loopback):
 * take the hard limit of open files, and say so when even that is short
 * of what -P and --idle need (the run then fails at connect or accept).
 */
static void raise_nofile(const struct zp_opts *o)
{
	rlim_t need = 64 + (rlim_t)(o->cfg.conns + o->cfg.idle) *
				   (o->role == ZP_ROLE_LOCAL ? 2 : 1);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (o->role != ZP_ROLE_SERVER && o->role != ZP_ROLE_ECHO &&
	    rl.rlim_cur < need)
		fprintf(stderr, "zcperf: open files limited to %llu, %llu "
				"needed for -P %u --idle %u%s: raise ulimit -Hn\n",
			(unsigned long long)rl.rlim_cur,
			(unsigned long long)need, o->cfg.conns, o->cfg.idle,
			o->role == ZP_ROLE_LOCAL ? " (both ends in this process)"
						 : "");
}

int main(int argc, char **argv)
{
	struct zp_opts o;
	int ret;

	/* The control socket uses MSG_NOSIGNAL; this covers everything else
	 * a broken peer could make us write to. */
	signal(SIGPIPE, SIG_IGN);
	ret = zp_opts_parse(argc, argv, &o);
	if (ret)
		return ret > 0 ? 0 : 2;
	zp_tls_configure(&o);
	raise_nofile(&o);
	switch (o.role) {
	case ZP_ROLE_SERVER:
		ret = zp_server_main(&o);
		break;
	case ZP_ROLE_ECHO:
		ret = zp_echo_run(&o);
		break;
	case ZP_ROLE_CLIENT:
		ret = zp_client_main(&o);
		break;
	default:
		ret = zp_local_run(&o);
		break;
	}
	zp_tls_fini();
	return ret;
}
