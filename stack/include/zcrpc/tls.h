/* SPDX-License-Identifier: MIT */
/*
 * zcrpc/tls.h - TLS 1.3 (and, when asked, 1.2) per connection, inside the
 * stack: callers above it (rpc/, applications) keep seeing plaintext
 * chains through on_data() and zc_conn_send().
 *
 * DOC: Shape
 *
 *   A TLS context (zc_tls_ctx_new()) holds what every connection of one
 *   side shares: certificate chain, key, CA bundle, verify mode, ALPN,
 *   minimum version, handshake bounds.  A listener given a context
 *   (zc_listener_set_tls()) runs a server handshake on every accepted
 *   connection; an outgoing connection given one (zc_conn_start_tls(),
 *   right after zc_connect()) runs a client handshake once TCP connects.
 *
 *   OpenSSL runs the handshake.  Once a TLS 1.3 handshake is done, the
 *   stack takes the keys and runs the records itself (docs/SECURITY.md,
 *   "The record layer after the handshake"): ciphertext lands in the
 *   receive ring as for any connection, and each record is decrypted
 *   straight from the ring's views into buffers of the reactor's pool,
 *   handed to on_data() as views like any other received bytes.  Send:
 *   zc_conn_send() seals the chain's views at once into records in pool
 *   buffers, which are queued and sent as chains (zero-copy above the
 *   threshold, as for plaintext).  The plaintext views are released as
 *   soon as they are encrypted; done() runs when the ciphertext carrying
 *   their last byte is released.  Where the hand-over cannot be proven
 *   safe (TLS 1.2, ...), OpenSSL keeps the records of that session, read
 *   and written through a BIO over the same buffers (the counters
 *   tls_rec_zcrpc and tls_rec_openssl say which sessions took which).
 *
 *   Handshakes run on the reactor, never blocking it, bounded by a
 *   timeout and by a cap of concurrent handshakes per reactor.  A peer
 *   that fails its handshake (garbage, plaintext, wrong CA, no
 *   certificate when one is required, old version, ALPN mismatch,
 *   timeout) gets its connection closed with a line on stderr naming the
 *   reason and a counter in zc_reactor_stats; others go on.
 *
 * DOC: Errors of a failed handshake (on_close's err)
 *
 *   -EKEYREJECTED  the peer's certificate failed verification (CA, expiry,
 *                  host name) or is missing when required;
 *   -EPROTO        not TLS, a protocol version or ALPN we do not accept,
 *                  any other handshake alert;
 *   -ETIMEDOUT     the handshake took longer than handshake_timeout_ms;
 *   -EBUSY         refused at accept: the reactor had max_handshakes
 *                  handshakes running (the connection is closed before
 *                  on_accept, so only the counter sees it).
 *
 * Without OpenSSL (ZC_WITH_TLS=OFF) every function below that can fail
 * answers -EOPNOTSUPP.
 */
#ifndef ZCRPC_TLS_H
#define ZCRPC_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include <zcrpc/stack.h>

#ifdef __cplusplus
extern "C" {
#endif

struct zc_tls_ctx;

/* The ALPN protocol zcrpc speaks (PROTOCOL.md, "TLS"). */
#define ZC_TLS_ALPN "zcrpc/1"

/*
 * Whether to ask for and check the peer's certificate.
 * DEFAULT  - servers: NONE; clients: REQUIRE.
 * NONE     - do not check (a client still gets the server's certificate,
 *            unverified: zc_conn_tls_peer() then answers NULL).
 * PEER     - servers: ask for a client certificate and verify it if sent;
 *            clients: as REQUIRE.
 * REQUIRE  - the peer must present a certificate that verifies against
 *            ca_file (and, on clients, matches the expected host name).
 */
enum zc_tls_verify {
	ZC_TLS_VERIFY_DEFAULT = 0,
	ZC_TLS_VERIFY_NONE,
	ZC_TLS_VERIFY_PEER,
	ZC_TLS_VERIFY_REQUIRE,
};

/* Which side a context serves. */
enum zc_tls_role {
	ZC_TLS_SERVER = 0,
	ZC_TLS_CLIENT,
};

/* A zeroed field takes the default in brackets.  Strings are copied. */
struct zc_tls_config {
	enum zc_tls_role role;
	/* PEM files: certificate chain (leaf first) and its private key.
	 * Servers: required.  Clients: for mutual TLS. [none] */
	const char *cert_file;
	const char *key_file;
	/* PEM bundle of the CAs that sign peers' certificates. [none: then
	 * verification other than NONE fails every peer] */
	const char *ca_file;
	enum zc_tls_verify verify;
	/* ALPN protocol offered (clients) or required when the peer offers
	 * ALPN at all (servers). [ZC_TLS_ALPN] */
	const char *alpn;
	/* Clients: SNI and the host name the server's certificate must
	 * match (DNS name, or an IP address literal).  zc_conn_start_tls()
	 * may override it per connection. [none: no SNI, no name check] */
	const char *server_name;
	/* Accept TLS 1.2 too. [false: TLS 1.3 only] */
	bool allow_tls12;
	/* Handshake deadline from accept / TCP connect. [10000 ms] */
	unsigned handshake_timeout_ms;
	/* Servers: handshakes running at once per reactor; connections
	 * accepted beyond it are closed at once. [256] */
	unsigned max_handshakes;
	/* TLS 1.3 sessions whose records zcrpc runs: records we seal under
	 * one write key.  Before the next record we send a KeyUpdate
	 * (update_not_requested) and move to the next key (RFC 8446 4.6.3),
	 * so no key seals more than this.  The default keeps AES-GCM inside
	 * the usage limit of RFC 8446 5.5 (2^24.5 full-size records per key)
	 * with margin; ChaCha20-Poly1305 needs no limit.  Sessions left on
	 * OpenSSL's records (TLS 1.2) are not covered.
	 * [0: ZC_TLS_KEY_UPDATE_RECORDS_DEFAULT with AES-GCM, none with
	 * ChaCha20-Poly1305] */
	uint64_t key_update_records;
};

/* Records per write key by default with AES-GCM (key_update_records). */
#define ZC_TLS_KEY_UPDATE_RECORDS_DEFAULT (1ull << 24)

/*
 * Any thread.  Load the files and build a context.  Returns 0 and *@out
 * (one reference, the caller's), or -EINVAL (bad config, server without
 * certificate), -ENOENT / -EACCES (a file), -EKEYREJECTED (certificate
 * and key do not match, or unreadable PEM), -ENOMEM, -EOPNOTSUPP (built
 * without TLS).
 */
ZC_API ZC_MUST_CHECK int zc_tls_ctx_new(const struct zc_tls_config *cfg,
					struct zc_tls_ctx **out);

/* Any thread.  Take / drop a reference.  Listeners and connections hold
 * their own, so the caller may drop its reference once it has handed the
 * context to them. */
ZC_API void zc_tls_ctx_get(struct zc_tls_ctx *ctx);
ZC_API void zc_tls_ctx_put(struct zc_tls_ctx *ctx);

/*
 * Reactor thread only.  Every connection @l accepts from now on runs a
 * server handshake with @ctx (one reference taken; NULL turns TLS off for
 * later connections).  on_accept() still runs at accept; on_data() sees
 * only decrypted bytes, after the handshake.  Returns 0, -EINVAL (a
 * client context), -EOPNOTSUPP.
 */
ZC_API ZC_MUST_CHECK int zc_listener_set_tls(struct zc_listener *l,
					     struct zc_tls_ctx *ctx);

/*
 * Reactor thread only, on a connection made by zc_connect() before it
 * has connected (call it right after zc_connect()).  Run a client
 * handshake once TCP connects; on_connect() then runs after the
 * handshake, and a failed handshake ends in on_close() with the errors
 * above.  @host, if not NULL, overrides the context's server_name for
 * this connection (copied).  Sends queued before the handshake ends are
 * encrypted after it.  One reference on @ctx is taken.
 * Returns 0, -EINVAL (a server context, or @c already connected or
 * already TLS), -ENOMEM, -EOPNOTSUPP.
 */
ZC_API ZC_MUST_CHECK int zc_conn_start_tls(struct zc_conn *c,
					   struct zc_tls_ctx *ctx,
					   const char *host);

/*
 * A peer's verified identity.  Immutable once made; reference counted so
 * that it may outlive the connection (rpc calls answered on workers).
 */
struct zc_tls_peer {
	/* Subject of the peer's certificate, RFC 2253 ("CN=a,O=b"). */
	const char *subject;
	/* Subject alternative names, "DNS:name", "IP:addr", "URI:uri",
	 * "email:addr", in certificate order. */
	const char *const *san;
	unsigned nsan;
};

/*
 * Reactor thread only.  The identity of @c's peer: its certificate
 * verified against the CA bundle during a completed handshake.  Returns
 * a new reference (drop it with zc_tls_peer_put(), any thread), or NULL:
 * not TLS, handshake not complete, no certificate sent, or verification
 * off (VERIFY_NONE).
 */
ZC_API struct zc_tls_peer *zc_conn_tls_peer(const struct zc_conn *c);
ZC_API void zc_tls_peer_put(struct zc_tls_peer *p);

/* Reactor thread only.  True when @c runs TLS and its handshake is done;
 * then *@cipher / *@version (if not NULL) name the negotiated cipher and
 * protocol ("TLS_AES_128_GCM_SHA256", "TLSv1.3"), static strings. */
ZC_API bool zc_conn_tls_info(const struct zc_conn *c, const char **cipher,
			     const char **version);

/* Any thread.  The cipher of the last handshake completed with @ctx
 * ("TLS_AES_128_GCM_SHA256"), a static string, or NULL before any. */
ZC_API const char *zc_tls_ctx_cipher(const struct zc_tls_ctx *ctx);

/*
 * Any thread.  Whether the kernel offers kTLS (setsockopt TCP_ULP "tls"
 * on a loopback socket, probed once per process).  Connections do not
 * hand their keys to the kernel yet (stats: tls_ktls stays 0); the probe
 * says whether they could.
 */
ZC_API bool zc_tls_ktls_available(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCRPC_TLS_H */
