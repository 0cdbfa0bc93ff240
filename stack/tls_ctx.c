/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_ctx.c - TLS contexts: one SSL_CTX per configuration, shared
 * (reference counted) by the listeners and connections that use it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tls_internal.h"

#define HS_TIMEOUT_MS_DEFAULT 10000u
#define MAX_HS_DEFAULT 256u

/* Servers: pick our protocol if the client offers it; a client offering
 * ALPN without it is refused (no_application_protocol alert). */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned inlen, void *arg)
{
	struct zc_tls_ctx *ctx = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, ctx->alpn, ctx->alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* -errno for a file OpenSSL could not load. */
static int file_err(const char *path)
{
	if (access(path, R_OK))
		return -errno;
	return -EKEYREJECTED;
}

static int load(struct zc_tls_ctx *ctx, const struct zc_tls_config *cfg)
{
	SSL_CTX *s = ctx->ssl;

	if (cfg->cert_file &&
	    SSL_CTX_use_certificate_chain_file(s, cfg->cert_file) != 1)
		return file_err(cfg->cert_file);
	if (cfg->key_file &&
	    SSL_CTX_use_PrivateKey_file(s, cfg->key_file, SSL_FILETYPE_PEM) != 1)
		return file_err(cfg->key_file);
	if (cfg->cert_file && SSL_CTX_check_private_key(s) != 1)
		return -EKEYREJECTED;
	if (cfg->ca_file &&
	    SSL_CTX_load_verify_locations(s, cfg->ca_file, NULL) != 1)
		return file_err(cfg->ca_file);
	return 0;
}

static int verify_flags(const struct zc_tls_ctx *ctx)
{
	switch (ctx->verify) {
	case ZC_TLS_VERIFY_NONE:
	case ZC_TLS_VERIFY_DEFAULT:
		return SSL_VERIFY_NONE;
	case ZC_TLS_VERIFY_PEER:
		return SSL_VERIFY_PEER;
	case ZC_TLS_VERIFY_REQUIRE:
		return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	}
	return SSL_VERIFY_PEER;
}

static int set_alpn(struct zc_tls_ctx *ctx, const char *alpn)
{
	size_t n = strlen(alpn);

	if (!n || n > 255)
		return -EINVAL;
	ctx->alpn[0] = (unsigned char)n;
	memcpy(ctx->alpn + 1, alpn, n);
	ctx->alpn_len = (unsigned)n + 1;
	return 0;
}

int zc_tls_ctx_new(const struct zc_tls_config *cfg, struct zc_tls_ctx **out)
{
	struct zc_tls_ctx *ctx;
	bool server;
	int ret;

	if (!cfg || !out || cfg->verify > ZC_TLS_VERIFY_REQUIRE ||
	    (cfg->role != ZC_TLS_SERVER && cfg->role != ZC_TLS_CLIENT) ||
	    !cfg->cert_file != !cfg->key_file)
		return -EINVAL;
	server = cfg->role == ZC_TLS_SERVER;
	if (server && !cfg->cert_file)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	atomic_init(&ctx->refs, 1);
	ctx->role = cfg->role;
	ctx->verify = cfg->verify;
	if (ctx->verify == ZC_TLS_VERIFY_DEFAULT)
		ctx->verify = server ? ZC_TLS_VERIFY_NONE : ZC_TLS_VERIFY_REQUIRE;
	ctx->hs_timeout_ms = cfg->handshake_timeout_ms ?
			     cfg->handshake_timeout_ms : HS_TIMEOUT_MS_DEFAULT;
	ctx->max_hs = cfg->max_handshakes ? cfg->max_handshakes :
					    MAX_HS_DEFAULT;
	ctx->ku_records = cfg->key_update_records;
	ret = set_alpn(ctx, cfg->alpn ? cfg->alpn : ZC_TLS_ALPN);
	if (ret)
		goto err;
	ret = -ENOMEM;
	if (cfg->server_name &&
	    !(ctx->server_name = strdup(cfg->server_name)))
		goto err;
	ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl)
		goto err;
	SSL_CTX_set_min_proto_version(ctx->ssl, cfg->allow_tls12 ?
					  TLS1_2_VERSION : TLS1_3_VERSION);
	/*
	 * RELEASE_BUFFERS: an idle session gives its record buffers back
	 * (docs/BENCHMARKS.md has the bytes per idle connection).
	 * No AUTO_RETRY: SSL_read must come back to the reactor when the
	 * BIO runs dry rather than loop.
	 */
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_clear_mode(ctx->ssl, SSL_MODE_AUTO_RETRY);
	/* No renegotiation (1.2), no tickets we would have to keep keys
	 * for across restarts; compression is off in OpenSSL 3 anyway. */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	if (server)
		SSL_CTX_set_num_tickets(ctx->ssl, 0);
	/* AES-128-GCM first (the fastest with AES-NI, and what
	 * docs/BENCHMARKS.md compares with), the server's order wins. */
	if (!SSL_CTX_set_ciphersuites(ctx->ssl, "TLS_AES_128_GCM_SHA256:"
				      "TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256"))
		goto err;
	SSL_CTX_set_options(ctx->ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_verify(ctx->ssl, verify_flags(ctx), NULL);
	/* The traffic secrets for our record layer (tls_keys.c). */
	zc__tls_keylog_install(ctx->ssl);
	if (server)
		SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
	else if (SSL_CTX_set_alpn_protos(ctx->ssl, ctx->alpn, ctx->alpn_len))
		goto err;
	ret = load(ctx, cfg);
	if (ret)
		goto err;
	*out = ctx;
	return 0;
err:
	ERR_clear_error();
	zc_tls_ctx_put(ctx);
	return ret;
}

const char *zc_tls_ctx_cipher(const struct zc_tls_ctx *ctx)
{
	return atomic_load_explicit(&ctx->last_cipher, memory_order_relaxed);
}

void zc_tls_ctx_get(struct zc_tls_ctx *ctx)
{
	atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void zc_tls_ctx_put(struct zc_tls_ctx *ctx)
{
	if (!ctx ||
	    atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx->server_name);
	free(ctx);
}

int zc_listener_set_tls(struct zc_listener *l, struct zc_tls_ctx *ctx)
{
	if (!l || (ctx && ctx->role != ZC_TLS_SERVER))
		return -EINVAL;
	if (ctx)
		zc_tls_ctx_get(ctx);
	zc_tls_ctx_put(l->tls);
	l->tls = ctx;
	return 0;
}
