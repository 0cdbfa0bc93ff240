/* SPDX-License-Identifier: MIT */
/*
 * bench/zcperf/tls.h - the TLS contexts of --tls: the files of --cert,
 * --key, --ca, or a throwaway self-signed certificate made with the
 * openssl command on first use (deleted by zp_tls_fini()).
 */
#ifndef ZCPERF_TLS_H
#define ZCPERF_TLS_H

#include <stdbool.h>

#include <zcrpc/tls.h>

#include "opts.h"

/* Remember the options (main thread, before any test). */
void zp_tls_configure(const struct zp_opts *o);
/* Main thread.  The contexts, made on first use; NULL on failure (the
 * reason is on stderr).  The client checks the server's certificate when
 * it can: against --ca, or the throwaway certificate in a local run. */
struct zc_tls_ctx *zp_tls_server(void);
struct zc_tls_ctx *zp_tls_client(void);
/* Negotiated cipher of the last handshake of this process, or "-". */
const char *zp_tls_cipher(void);
void zp_tls_fini(void);

#endif
