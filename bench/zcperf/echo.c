/* SPDX-License-Identifier: MIT */
/*
 * echo.c - zcperf --echo: the stack's raw echo server on -p, -T reactors
 * sharing the port, until SIGINT or SIGTERM.  Any client that sends bytes
 * and wants them back (sockperf, a netcat, bench/compare) can use it;
 * with --tls, a TLS client (openssl s_client, tests/stack/run_keyupdate.sh).
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zcrpc/zcrpc.h>

#include "engine.h"
#include "roles.h"
#include "tls.h"

struct echo_arg {
	struct sockaddr_storage ss;
	socklen_t len;
	struct zc_listener *lis;
	struct zc_tls_ctx *tls; /* --tls: the server context, else NULL */
	unsigned flags;         /* zp_listen_flags() */
};

static int listen_fn(void *arg)
{
	struct echo_arg *ea = arg;

	int ret = zc_echo_listen(zc_reactor_current(), (struct sockaddr *)&ea->ss,
				 ea->len, ea->flags, &ea->lis);

	return ret || !ea->tls ? ret : zc_listener_set_tls(ea->lis, ea->tls);
}

/* Dual-stack [::] when the kernel has IPv6, else 0.0.0.0. */
static void any_addr(struct echo_arg *ea, uint16_t port, bool v6)
{
	memset(&ea->ss, 0, sizeof(ea->ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ea->ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_any;
		a->sin6_port = htons(port);
		ea->len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ea->ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_ANY);
		a->sin_port = htons(port);
		ea->len = sizeof(*a);
	}
}

/* With --tls, at exit: whose record layer the sessions ran, and what
 * ended them (tests/stack/run_keyupdate.sh reads it). */
static void tls_summary(struct zc_reactor **rs, unsigned n)
{
	struct zc_reactor_stats st;
	unsigned long long z = 0, o = 0, ku = 0, bad = 0, al = 0;

	for (unsigned i = 0; i < n; i++) {
		zc_reactor_stats(rs[i], &st);
		z += st.tls_rec_zcrpc;
		o += st.tls_rec_openssl;
		ku += st.tls_key_updates;
		bad += st.tls_bad_records;
		al += st.tls_peer_alerts;
	}
	fprintf(stderr, "zcperf: tls sessions: zcrpc records %llu, openssl "
			"records %llu; key updates %llu, bad records %llu, "
			"peer alerts %llu\n", z, o, ku, bad, al);
}

int zp_echo_run(const struct zp_opts *o)
{
	const struct zp_test_cfg *cfg = &o->cfg;
	struct zc_reactor_config rc;
	struct zc_reactor **rs;
	struct echo_arg ea;
	sigset_t sigs;
	unsigned i, n = 0;
	uint16_t port = o->port;
	int ret = 0, sig;

	/* Reactor threads inherit the mask: only sigwait() sees signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	rs = calloc(cfg->reactors, sizeof(*rs));
	if (!rs)
		return 1;
	ea.tls = NULL;
	ea.flags = zp_listen_flags(cfg);
	if (cfg->tls && !(ea.tls = zp_tls_server())) {
		free(rs);
		return 1;
	}
	zp_reactor_config(cfg, &rc);
	for (i = 0; i < cfg->reactors; i++) {
		rc.pin = o->cpus_given;
		rc.cpu = o->cpus_given ? zp_nth_cpu(&o->cpus, i) : 0;
		ret = zc_reactor_spawn(&rc, &rs[i]);
		if (ret) {
			fprintf(stderr, "zcperf: reactor: %s\n", strerror(-ret));
			goto out;
		}
		n++;
		/* Port 0: the first listener picks, the others share it. */
		if (i)
			port = zc_listener_port(ea.lis);
		any_addr(&ea, port, true);
		ret = zc_reactor_call(rs[i], listen_fn, &ea);
		if (ret == -EAFNOSUPPORT) {
			any_addr(&ea, port, false);
			ret = zc_reactor_call(rs[i], listen_fn, &ea);
		}
		if (ret) {
			fprintf(stderr, "zcperf: echo listen on port %u: %s\n",
				o->port, strerror(-ret));
			goto out;
		}
	}
	fprintf(stderr, "zcperf: %secho server on port %u, %u reactor%s "
			"(SIGINT to stop)\n", ea.tls ? "TLS " : "",
		zc_listener_port(ea.lis), n, n == 1 ? "" : "s");
	sigwait(&sigs, &sig);
	if (ea.tls)
		tls_summary(rs, n);
out:
	for (i = 0; i < n; i++) {
		int r = zc_reactor_destroy(rs[i]);

		if (r)
			fprintf(stderr, "zcperf: reactor teardown: %s\n",
				strerror(-r));
	}
	free(rs);
	return ret ? 1 : 0;
}
