/* SPDX-License-Identifier: MIT */
/*
 * side.h - the two ends of a run over the control connection (ctl.h):
 * the server loop (netserver) and the client's run of one test.
 */
#ifndef ZCPERF_SIDE_H
#define ZCPERF_SIDE_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "ctl.h"
#include "opts.h"
#include "result.h"

struct zp_server {
	int lfd;               /* control listener, owned */
	cpu_set_t cpus;        /* default reactor CPUs (-C) */
	bool pinned;
	bool verbose;
	int accept;            /* --accept: enum zp_accept, every test's */
	atomic_bool stop;
};

/*
 * Serve control connections one after the other until
 * zp_server_shutdown().  Returns 0, or -errno if accept() failed for
 * another reason.
 */
int zp_server_serve(struct zp_server *s);
/* Any thread: make zp_server_serve() return within about a second. */
void zp_server_shutdown(struct zp_server *s);

struct zp_client_args {
	const struct sockaddr *peer;   /* control peer: data goes there too */
	socklen_t peerlen;
	const char *peer_name;         /* for the report */
	const char *label;             /* tour row name, or NULL */
	cpu_set_t cpus;                /* client reactors */
	bool pinned;
	const cpu_set_t *server_cpus;  /* asked of the server, or NULL */
	bool verbose;
	/* Several servers (-H a,b,c): control peer and name of each, in the
	 * order of the ctl array; the balancer's policy.  NULL: one server,
	 * peer above. */
	const struct sockaddr_storage *peers;
	const socklen_t *peerlens;
	char (*names)[80];
	int lb;
};

/*
 * Run @cfg over @ctl[0..@nctl) (one test; the control connections stay
 * usable for the next one only on success).  With several, every server
 * runs the test and the client's calls spread over them (a->peers).
 * Fills @r and returns 0; or returns -errno after printing why, including
 * a run refused as too short or broken by connection errors.
 */
int zp_client_run(struct zp_ctl *ctl, unsigned nctl,
		  const struct zp_client_args *a,
		  const struct zp_test_cfg *cfg, struct zp_result *r);

#endif /* ZCPERF_SIDE_H */
