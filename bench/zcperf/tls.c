/* SPDX-License-Identifier: MIT */
/*
 * bench/zcperf/tls.c - TLS contexts for --tls (see tls.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

static const struct zp_opts *opts;
static struct zc_tls_ctx *srv, *cli;
/* The throwaway certificate, kept loaded in @srv; the client of a
 * local run trusts it. */
static char gen_dir[64];

void zp_tls_configure(const struct zp_opts *o)
{
	opts = o;
}

static int gen_cert(void)
{
	char cmd[512];

	if (gen_dir[0])
		return 0;
	strcpy(gen_dir, "/tmp/zcperf_tls_XXXXXX");
	if (!mkdtemp(gen_dir)) {
		gen_dir[0] = 0;
		return -errno;
	}
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout %s/key.pem -out %s/cert.pem -days 1 "
		 "-subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1 "
		 ">/dev/null 2>&1", gen_dir, gen_dir);
	if (system(cmd)) {
		fprintf(stderr, "zcperf: tls: could not make a certificate "
			"with the openssl command\n");
		return -ENOENT;
	}
	return 0;
}

struct zc_tls_ctx *zp_tls_server(void)
{
	char cert[128], key[128];
	struct zc_tls_config cfg = { .role = ZC_TLS_SERVER,
				     .cert_file = opts->tls_cert,
				     .key_file = opts->tls_key };
	int ret;

	if (srv)
		return srv;
	if (!cfg.cert_file) {
		if (gen_cert())
			return NULL;
		snprintf(cert, sizeof(cert), "%s/cert.pem", gen_dir);
		snprintf(key, sizeof(key), "%s/key.pem", gen_dir);
		cfg.cert_file = cert;
		cfg.key_file = key;
	}
	/* Benchmarks open many connections at once. */
	cfg.max_handshakes = 4096;
	ret = zc_tls_ctx_new(&cfg, &srv);
	if (ret)
		fprintf(stderr, "zcperf: tls server: %s\n", strerror(-ret));
	return srv;
}

struct zc_tls_ctx *zp_tls_client(void)
{
	char ca[128];
	struct zc_tls_config cfg = { .role = ZC_TLS_CLIENT,
				     .cert_file = opts->tls_cert,
				     .key_file = opts->tls_key,
				     .ca_file = opts->tls_ca };
	int ret;

	if (cli)
		return cli;
	if (!cfg.ca_file && opts->role == ZP_ROLE_LOCAL) {
		/* Local run: trust our own throwaway certificate. */
		if (!zp_tls_server())
			return NULL;
		snprintf(ca, sizeof(ca), "%s/cert.pem", gen_dir);
		cfg.ca_file = opts->tls_cert ? opts->tls_cert : ca;
	}
	if (cfg.ca_file)
		cfg.server_name = opts->host ? opts->host : "127.0.0.1";
	else
		cfg.verify = ZC_TLS_VERIFY_NONE; /* encryption only */
	if (opts->role == ZP_ROLE_LOCAL && !opts->tls_ca) {
		/* Our certificate is the server's, not a client's. */
		cfg.cert_file = NULL;
		cfg.key_file = NULL;
	}
	ret = zc_tls_ctx_new(&cfg, &cli);
	if (ret)
		fprintf(stderr, "zcperf: tls client: %s\n", strerror(-ret));
	return cli;
}

const char *zp_tls_cipher(void)
{
	const char *c = cli ? zc_tls_ctx_cipher(cli) : NULL;

	if (!c && srv)
		c = zc_tls_ctx_cipher(srv);
	return c ? c : "-";
}

void zp_tls_fini(void)
{
	char cmd[96];

	zc_tls_ctx_put(srv);
	zc_tls_ctx_put(cli);
	srv = cli = NULL;
	if (gen_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", gen_dir);
		if (system(cmd))
			fprintf(stderr, "zcperf: could not remove %s\n", gen_dir);
		gen_dir[0] = 0;
	}
}
