/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_off.c - the TLS API of a build without OpenSSL
 * (ZC_WITH_TLS=OFF): every call that could start TLS answers -EOPNOTSUPP,
 * so no connection ever has a session and the zc__tls_* hooks of conn.c
 * are never reached (they exist only to link).
 */
#include <errno.h>

#include "internal.h"

int zc_tls_ctx_new(const struct zc_tls_config *cfg, struct zc_tls_ctx **out)
{
	return -EOPNOTSUPP;
}

void zc_tls_ctx_get(struct zc_tls_ctx *ctx) {}
void zc_tls_ctx_put(struct zc_tls_ctx *ctx) {}

int zc_listener_set_tls(struct zc_listener *l, struct zc_tls_ctx *ctx)
{
	return ctx ? -EOPNOTSUPP : 0;
}

int zc_conn_start_tls(struct zc_conn *c, struct zc_tls_ctx *ctx,
		      const char *host)
{
	return -EOPNOTSUPP;
}

struct zc_tls_peer *zc_conn_tls_peer(const struct zc_conn *c)
{
	return NULL;
}

void zc_tls_peer_put(struct zc_tls_peer *p) {}

bool zc_conn_tls_info(const struct zc_conn *c, const char **cipher,
		      const char **version)
{
	return false;
}

const char *zc_tls_ctx_cipher(const struct zc_tls_ctx *ctx)
{
	return NULL;
}

bool zc_tls_ktls_available(void)
{
	return false;
}

int zc__tls_accept(struct zc_conn *c, struct zc_tls_ctx *ctx)
{
	return -EOPNOTSUPP;
}

void zc__tls_connected(struct zc_conn *c) {}
void zc__tls_rx_retry(struct zc_conn *c) {}

void zc__tls_rx(struct zc_conn *c, struct zc_buf *b, uint32_t off,
		unsigned len)
{
	zc_buf_put(b);
}

int zc__tls_send(struct zc_conn *c, struct zc_chain *data,
		 void (*done)(void *arg, int err), void *arg)
{
	return -EOPNOTSUPP;
}

bool zc__tls_eof(struct zc_conn *c)
{
	return false;
}

void zc__tls_close_notify(struct zc_conn *c) {}
void zc__tls_idle(struct zc_conn *c) {}
void zc__tls_dead(struct zc_conn *c) {}
void zc__tls_free(struct zc_conn *c) {}

void zc__tls_handle_timer(struct zc_reactor *r,
			  const struct io_uring_cqe *cqe) {}
