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
	uint64_t ku_records; /* key_update_records as configured (0: default) */
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

/*
 * DOC: Record-layer hand-over
 *
 * After a TLS 1.3 handshake, the keys of both directions leave OpenSSL in
 * one place (zc__tls_keys_take(), tls_keys.c): what a kTLS
 * setsockopt(TLS_TX / TLS_RX) would take (key, iv, record sequence), and
 * the traffic secret a KeyUpdate derives the next keys from.  Today the
 * record layer of tls_rec.c takes them, in user space.
 */
#define ZC__TLS_SECRET_MAX 48 /* SHA-384 */
#define ZC__TLS_KEY_MAX 32
#define ZC__TLS_IV_LEN 12
#define ZC__TLS_TAG_LEN 16
#define ZC__TLS_HDR_LEN 5
#define ZC__TLS_PT_MAX 16384u                   /* RFC 8446 5.1: 2^14 */
#define ZC__TLS_CT_MAX (ZC__TLS_PT_MAX + 256u)  /* RFC 8446 5.2 */

/* Inner content types we send (RFC 8446 B.1). */
#define ZC__TLS_CT_ALERT 21
#define ZC__TLS_CT_HANDSHAKE 22
#define ZC__TLS_CT_APPDATA 23

/* The TLS 1.3 AEADs OpenSSL negotiates by default (RFC 8446 B.4). */
enum zc__tls_suite {
	ZC__TLS_AES_128_GCM = 1,
	ZC__TLS_AES_256_GCM,
	ZC__TLS_CHACHA20_POLY1305,
};

/* One direction's traffic keys. */
struct zc__tls_dirkeys {
	unsigned char secret[ZC__TLS_SECRET_MAX];
	unsigned secret_len;
	unsigned char key[ZC__TLS_KEY_MAX];
	unsigned key_len;
	unsigned char iv[ZC__TLS_IV_LEN];
	uint64_t seq; /* of the next record */
};

struct zc__tls_keys {
	enum zc__tls_suite suite;
	struct zc__tls_dirkeys rx, tx;
};

/* Our record layer's state (tls_rec.c); opaque to the rest. */
struct zc__tls_rec;

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
	bool rx_retrying;         /* in zc__tls_rx_retry(): a wait goes on */
	bool counted;             /* counts in r->tls_hs */
	bool timer_armed;
	bool timer_cancelling;
	struct __kernel_timespec ts;
	struct zc__tls_pend *ph, *pt;
	size_t pend_bytes;
	unsigned npend;
	struct zc_tls_peer *peer; /* verified identity, or NULL */
	/* Traffic secrets from the keylog callback, [0] client, [1] server:
	 * kept only until the hand-over, then wiped (tls_keys.c). */
	unsigned char secret[2][ZC__TLS_SECRET_MAX];
	unsigned secret_len[2];
	/* After a hand-over: our record layer, else NULL (OpenSSL's). */
	struct zc__tls_rec *rec;
};

/* tls_bio.c: the BIO over c->tls's chains, one per session. */
BIO *zc__tls_bio_new(struct zc_conn *c);
/* Close the buffer being filled into a view at the tail of tls->tx. */
int zc__tls_bio_seal(struct zc__tls *t);

/*
 * The write side of the buffers tls->tx is made of, shared by the BIO
 * and the record layer: room in the buffer being filled (a fresh one
 * from the pool when it is full) at *@dst, returned (> 0), or -errno;
 * then commit the @n bytes written there (a full buffer becomes a view
 * of tls->tx).  0 or -errno.
 */
long zc__tls_tx_room(struct zc__tls *t, struct zc_pool *pool,
		     unsigned char **dst);
/*
 * A buffer for records, sealed or opened: from @pool, or, when the pool is
 * empty and @heap_ok, one of the pool's size from memory of its own
 * (zc_buf_alloc_large()), so that the session does not fail for buffers
 * that consumers hold.  Only where something bounds it: sealed records sit
 * in the send queue (sndq_max), and opened ones count against the
 * connection's receive budget; without a budget, an opening that finds
 * the pool empty gets -ENOBUFS and waits for buffers (c->tls_rx_wait),
 * since the ring, refilled by the ciphertext buffers each opening gives
 * back, would never stop.  One reference for the caller, exclusive.  0,
 * -ENOBUFS, -ENOMEM.
 */
int zc__tls_buf(struct zc_pool *pool, bool heap_ok, struct zc_buf **out);
int zc__tls_tx_commit(struct zc__tls *t, size_t n);

/* tls_keys.c: capture of the traffic secrets during the handshake. */
void zc__tls_keylog_install(SSL_CTX *ssl);
/* Wipe what the keylog callback left in @t. */
void zc__tls_secrets_wipe(struct zc__tls *t);
/*
 * At the end of a handshake: may our record layer take over, and with
 * which keys?  0 and *@k (wipe it with OPENSSL_cleanse after use), or
 * -EOPNOTSUPP and *@why when the hand-over cannot be proven safe (then
 * OpenSSL keeps the records).  The secrets in @t are wiped either way.
 */
int zc__tls_keys_take(struct zc__tls *t, struct zc__tls_keys *k,
		      const char **why);
/* HKDF-Expand-Label(@secret, "traffic upd", "", len) into @d, and @d's
 * key and iv from it (RFC 8446 7.2).  0 or -EIO. */
int zc__tls_keys_update(enum zc__tls_suite s, struct zc__tls_dirkeys *d);

/* tls_rec.c: the TLS 1.3 record layer after the hand-over; a KeyUpdate
 * of ours every @ku_records records sealed (0: the suite's default, see
 * key_update_records in zcrpc/tls.h). */
int zc__tls_rec_new(const struct zc__tls_keys *k, uint64_t ku_records,
		    struct zc__tls_rec **out);
void zc__tls_rec_free(struct zc__tls_rec *rec);
/*
 * Seal the @n pieces as one record of content @type (their total at most
 * ZC__TLS_PT_MAX) into c->tls->tx, from the reactor pool's buffers; a
 * KeyUpdate of ours first when the write key has sealed its share.  0 or
 * -errno (-ENOMEM, -EOVERFLOW: the sequence would wrap, -EIO: the cipher).
 */
int zc__tls_rec_seal(struct zc_conn *c, uint8_t type, const struct iovec *iov,
		     unsigned n);
/*
 * Open every complete record at the front of c->tls->rx (consumed), append
 * application data to @out as views of the reactor pool's buffers, act on alerts and
 * post-handshake messages (a KeyUpdate answered is sealed into tls->tx).
 * Returns 0 (wants more ciphertext), 1 (close_notify: end of stream), or
 * -errno with *@why (static) and *@alert (the alert to send, 0: none):
 * -EBADMSG a record failed its tag, -EPROTO / -EMSGSIZE malformed or
 * oversized, -EOVERFLOW the sequence would wrap (these count in
 * tls_bad_records), -ECONNABORTED / -EKEYREJECTED the peer's fatal alert
 * (tls_peer_alerts), -ENOMEM / -EIO; -ENOBUFS: the pool is empty, the
 * record that found it so stays in tls->rx to be opened again (not an
 * error of the session).  @out holds what was opened before.
 */
int zc__tls_rec_open(struct zc_conn *c, struct zc_chain *out,
		     const char **why, uint8_t *alert);

/* tls_peer.c: the identity of a verified certificate, or NULL. */
struct zc_tls_peer *zc__tls_peer_make(SSL *ssl);

#endif /* ZCRPC_STACK_TLS_INTERNAL_H */
