/* SPDX-License-Identifier: MIT */
/*
 * tests/common/tls_certs.h - throwaway certificates for the TLS tests:
 * tls_certs.sh run into a fresh temp directory, removed by tc_drop().
 * ZC_TLS_CERTS_SH is the script's path (set by CMake).
 */
#ifndef ZC_TESTS_TLS_CERTS_H
#define ZC_TESTS_TLS_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zcrpc/tls.h>

struct tc {
	char dir[64];
	char path[8][128]; /* scratch for tc_file() */
	unsigned next;
};

/* 0, or -1 when the directory or the certificates could not be made. */
static inline int tc_make(struct tc *t)
{
	char cmd[256];

	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/zc_tls_XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(cmd, sizeof(cmd), "sh %s %s", ZC_TLS_CERTS_SH, t->dir);
	if (system(cmd) == 0)
		return 0;
	/* Leave nothing behind: the caller's fini may not run. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", t->dir);
	t->dir[0] = 0;
	return -1;
}

/* "<dir>/<name>", valid for the next 7 calls. */
static inline const char *tc_file(struct tc *t, const char *name)
{
	char *p = t->path[t->next++ % 8], tmp[sizeof(t->path[0])];

	snprintf(tmp, sizeof(tmp), "%s/%s", t->dir, name);
	memcpy(p, tmp, sizeof(tmp));
	return p;
}

/*
 * A context over the certificates of @t: @leaf ("server", "client", ...)
 * is our certificate and key, or NULL; @ca ("ca", "ca2") the bundle we
 * trust.  @cfg gives role, verify, names and bounds; its file fields are
 * filled here.  Returns zc_tls_ctx_new()'s result.
 */
static inline int tc_ctx(struct tc *t, struct zc_tls_config cfg,
			 const char *leaf, const char *ca,
			 struct zc_tls_ctx **out)
{
	char cert[160], key[160], cafile[160];

	snprintf(cert, sizeof(cert), "%s/%s.pem", t->dir, leaf ? leaf : "");
	snprintf(key, sizeof(key), "%s/%s.key", t->dir, leaf ? leaf : "");
	snprintf(cafile, sizeof(cafile), "%s/%s.pem", t->dir, ca);
	cfg.cert_file = leaf ? cert : NULL;
	cfg.key_file = leaf ? key : NULL;
	cfg.ca_file = cafile;
	return zc_tls_ctx_new(&cfg, out);
}

static inline void tc_drop(struct tc *t)
{
	char cmd[128];

	if (!t->dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", t->dir);
	t->dir[0] = 0;
}

#endif
