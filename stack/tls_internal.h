/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_internal.h - the TLS session of a connection, shared by
 * tls.c, tls_bio.c and tls_peer.c only (OpenSSL types stay here).
 */
#ifndef ZCRPC_STACK_TLS_INTERNAL_H
#define ZCRPC_STACK_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include "internal.h"

struct zc_tls_ctx {
	atomic_uint refs;
	SSL_CTX *ssl;
	enum zc_tls_role role;
	enum zc_tls_verify verify; /* DEFAULT resolved */
	unsigned char alpn[256];   /* wire format: length-prefixed */
	unsigned alpn_len;
	char *server_name;
	unsigned hs_timeout_ms;
	unsigned max_hs;
	/* Cipher of the latest handshake (OpenSSL's static name). */
	_Atomic(const char *) last_cipher;
};

/* Sends that may wait for the handshake (more: -EAGAIN). */
#define ZC__TLS_PEND_MAX 64u

/* Plaintext handed to zc_conn_send() before the handshake ended. */
struct zc__tls_pend {
	struct zc__tls_pend *next;
	struct zc_chain chain;
	void (*done)(void *arg, int err);
	void *arg;
};

enum zc__tls_state {
	ZC__TLS_WAIT_TCP,   /* client: TCP not connected yet */
	ZC__TLS_HANDSHAKE,
	ZC__TLS_UP,
	ZC__TLS_FAILED,
};

struct zc__tls {
	struct zc_tls_ctx *ctx;   /* one reference */
	SSL *ssl;
	enum zc__tls_state st;
	/* Ciphertext views received and not yet read by OpenSSL (the read
	 * BIO consumes from the front). */
	struct zc_chain rx;
	/* Ciphertext OpenSSL wrote, not yet queued: pool buffers filled by
	 * the write BIO.  @txb is the buffer being filled (our reference),
	 * bytes [@txstart, @txoff) not yet in @tx. */
	struct zc_chain tx;
	struct zc_buf *txb;
	uint32_t txstart, txoff;
	int bio_err;              /* -errno a BIO callback hit (-ENOBUFS) */
	bool counted;             /* counts in r->tls_hs */
	bool timer_armed;
	bool timer_cancelling;
	struct __kernel_timespec ts;
	struct zc__tls_pend *ph, *pt;
	size_t pend_bytes;
	unsigned npend;
	struct zc_tls_peer *peer; /* verified identity, or NULL */
};

/* tls_bio.c: the BIO over c->tls's chains, one per session. */
BIO *zc__tls_bio_new(struct zc_conn *c);
/* Close the buffer being filled into a view at the tail of tls->tx. */
int zc__tls_bio_seal(struct zc__tls *t);

/* tls_peer.c: the identity of a verified certificate, or NULL. */
struct zc_tls_peer *zc__tls_peer_make(SSL *ssl);

#endif /* ZCRPC_STACK_TLS_INTERNAL_H */
