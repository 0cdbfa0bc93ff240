/* SPDX-License-Identifier: MIT */
/*
 * roles.h - what main() runs for each role of the command line.  Each
 * returns the process exit status.
 */
#ifndef ZCPERF_ROLES_H
#define ZCPERF_ROLES_H

#include "opts.h"

int zp_local_run(const struct zp_opts *o);  /* tour.c: no -H */
int zp_client_main(const struct zp_opts *o); /* main.c: -H */
int zp_server_main(const struct zp_opts *o); /* main.c: -s */
int zp_echo_run(const struct zp_opts *o);   /* echo.c: --echo */

#endif /* ZCPERF_ROLES_H */
