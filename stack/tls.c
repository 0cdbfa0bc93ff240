/* SPDX-License-Identifier: MIT */
/*
 * stack/tls.c - the TLS session of one connection: handshake on the
 * reactor with a deadline, decrypt on receive, encrypt on send.  conn.c,
 * send.c and listen.c call the zc__tls_* hooks only for connections that
 * have a session (c->tls); everything else is unchanged by TLS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_internal.h"

/* -------------------------------------------------------------------------
 * Session lifetime
 */

/*
 * The name a client expects: a DNS name goes in SNI and must match a
 * DNS SAN; an address literal (RFC 6066 keeps it out of SNI) must match
 * an IP SAN.  Returns 0 or -1.
 */
static int set_host(SSL *ssl, const char *host, enum zc_tls_verify verify)
{
	unsigned char addr[16];
	bool ip = inet_pton(AF_INET, host, addr) == 1 ||
		  inet_pton(AF_INET6, host, addr) == 1;

	if (!ip && !SSL_set_tlsext_host_name(ssl, host))
		return -1;
	if (verify == ZC_TLS_VERIFY_NONE)
		return 0;
	if (ip)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						     host) == 1 ? 0 : -1;
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

static int session_new(struct zc_conn *c, struct zc_tls_ctx *ctx,
		       const char *host)
{
	struct zc__tls *t = calloc(1, sizeof(*t));
	BIO *bio;

	if (!t)
		return -ENOMEM;
	t->ssl = SSL_new(ctx->ssl);
	bio = zc__tls_bio_new(c);
	if (!t->ssl || !bio)
		goto err;
	SSL_set_bio(t->ssl, bio, bio); /* the SSL owns the BIO from here */
	SSL_set_app_data(t->ssl, t);   /* for the keylog callback */
	bio = NULL;
	if (ctx->role == ZC_TLS_CLIENT) {
		SSL_set_connect_state(t->ssl);
		host = host ? host : ctx->server_name;
		if (host && set_host(t->ssl, host, ctx->verify))
			goto err;
	} else {
		SSL_set_accept_state(t->ssl);
	}
	zc_tls_ctx_get(ctx);
	t->ctx = ctx;
	c->tls = t;
	return 0;
err:
	BIO_free(bio);
	SSL_free(t->ssl);
	free(t);
	ERR_clear_error();
	return -ENOMEM;
}

static void pend_fail(struct zc__tls *t, int err)
{
	while (t->ph) {
		struct zc__tls_pend *p = t->ph;

		t->ph = p->next;
		zc_chain_release(&p->chain);
		if (p->done)
			p->done(p->arg, err);
		free(p);
	}
	t->pt = NULL;
	t->pend_bytes = 0;
	t->npend = 0;
}

static void hs_uncount(struct zc_conn *c)
{
	if (!c->tls->counted)
		return;
	c->tls->counted = false;
	c->r->tls_hs--;
	ZC__STAT_ADD(c->r, tls_running, (uint64_t)-1);
}

/* Its completion (-ECANCELED) still comes, to zc__tls_handle_timer(). */
static void cancel_timer(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	struct io_uring_sqe *sqe;

	if (!t->timer_armed || t->timer_cancelling)
		return;
	t->timer_cancelling = true;
	sqe = zc__sqe(c->r);
	io_uring_prep_timeout_remove(sqe, zc__ud(c, ZC__OP_TLS_TIMER), 0);
	io_uring_sqe_set_data64(sqe, zc__ud(NULL, ZC__OP_IGNORE));
}

/*
 * An opening found the pool empty (and the connection has no receive
 * budget, so nothing bounds memory of its own): the ciphertext not yet
 * opened waits in tls->rx, the connection reads no more, and its service
 * retries (zc__tls_rx_retry()) until the consumers give buffers back;
 * the ring is not refilled meanwhile, so that they come to the opening
 * first (rxring.c).  The same back-pressure a plaintext connection gets
 * from an empty ring.
 */
static void rx_wait(struct zc_conn *c)
{
	if (!c->tls_rx_wait) {
		if (!c->tls->rx_retrying)
			ZC__STAT_INC(c->r, tls_rx_stalls);
		c->r->tls_rx_waiting++;
	}
	c->tls_rx_wait = true;
	zc__conn_dirty(c);
}

static void rx_wait_end(struct zc_conn *c)
{
	if (!c->tls_rx_wait)
		return;
	c->tls_rx_wait = false;
	c->r->tls_rx_waiting--;
}

void zc__tls_dead(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;

	hs_uncount(c);
	rx_wait_end(c);
	cancel_timer(c);
	pend_fail(t, c->err ? c->err : -ECANCELED);
}

void zc__tls_free(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;

	c->tls = NULL;
	pend_fail(t, -ECANCELED);
	zc__tls_rec_free(t->rec);
	zc__tls_secrets_wipe(t);
	SSL_free(t->ssl);
	zc_chain_release(&t->rx);
	zc_chain_release(&t->tx);
	if (t->txb)
		zc_buf_put(t->txb);
	zc_tls_peer_put(t->peer);
	zc_tls_ctx_put(t->ctx);
	free(t);
}

/* -------------------------------------------------------------------------
 * Failure: one log line (the peer, a stable reason, OpenSSL's detail), a
 * counter, the close
 */

/*
 * A handshake that fails has just queued our alert in tls->tx: write it
 * straight to the socket (best effort, never blocking), since the dying
 * connection's queue is dropped, not sent.  The peer then learns why.
 * Only when nothing else is queued, so nothing gets out of order.
 */
static void send_alert(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;

	zc__tls_bio_seal(t);
	if (c->sq_head || c->send_inflight || c->fd_closed)
		return;
	for (unsigned i = 0; i < zc_chain_nviews(&t->tx); i++) {
		const struct zc_view *v = zc_chain_view(&t->tx, i);

		if (send(c->fd, zc_view_data(v), v->len,
			 MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)v->len)
			break;
	}
	zc_chain_release(&t->tx);
}

static void fail(struct zc_conn *c, int err, const char *why)
{
	struct zc__tls *t = c->tls;

	if (t->st == ZC__TLS_FAILED)
		return;
	if (t->st != ZC__TLS_UP) {
		ZC__STAT_INC(c->r, tls_failed);
		if (err == -ETIMEDOUT)
			ZC__STAT_INC(c->r, tls_timeouts);
	}
	zc__logc(ZC_LOG_WARN, c,
		 t->st == ZC__TLS_UP ? "tls session failed"
				     : "tls handshake failed",
		 "%s (%s)", why, strerror(-err));
	t->st = ZC__TLS_FAILED;
	ERR_clear_error();
	zc__conn_fail(c, err);
}

/* The reason OpenSSL gives, and our errno for it. */
static int ssl_err(struct zc_conn *c, const char **why)
{
	unsigned long e = ERR_peek_error();
	long vr = SSL_get_verify_result(c->tls->ssl);
	int reason = ERR_GET_REASON(e);

	*why = e ? ERR_reason_error_string(e) : NULL;
	if (!*why)
		*why = c->tls->bio_err ? "out of memory for records" : "protocol error";
	if (c->tls->bio_err)
		return c->tls->bio_err;
	if (vr != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		*why = X509_verify_cert_error_string(vr);
		return -EKEYREJECTED;
	}
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return -EKEYREJECTED;
	}
	return -EPROTO;
}

/* -------------------------------------------------------------------------
 * Ciphertext out: what OpenSSL wrote goes to the send queue
 */

/* Queue tls->tx (with @done for its last byte).  0 or -errno. */
static int flush_tx(struct zc_conn *c, void (*done)(void *arg, int err),
		    void *arg)
{
	struct zc__tls *t = c->tls;
	/* The buffer being filled stays ours: the next records go on after
	 * these, so small messages share a buffer (zc__tls_idle() lets it go
	 * once everything is sent). */
	int ret = zc__tls_bio_seal(t);

	if (ret)
		return ret;
	if (!zc_chain_len(&t->tx)) {
		if (done)
			done(arg, 0);
		return 0;
	}
	return zc__sendq_push(c, &t->tx, done, arg);
}

/* Views below this are gathered into one record with their neighbours
 * (an rpc frame header and a small payload: one record, not two). */
#define GATHER_MAX 4096u

/* Our BIO never asks for a retry: SSL_write takes it all or the session
 * is broken.  0 or -errno. */
static int write_all(struct zc__tls *t, const void *p, size_t len)
{
	ERR_clear_error();
	if (len && SSL_write(t->ssl, p, (int)len) <= 0)
		return t->bio_err ? t->bio_err : -EPROTO;
	return 0;
}

/* Pieces of plaintext one record of ours gathers at most. */
#define REC_IOV_MAX 64

/*
 * Our record layer: records filled to 2^14 bytes from consecutive views,
 * sealed straight from the views into pool buffers (no gather copy).
 */
static int seal_chain(struct zc_conn *c, const struct zc_chain *data)
{
	struct iovec iov[REC_IOV_MAX];
	unsigned n = 0;
	size_t len = 0;
	int ret = 0;

	for (unsigned i = 0; i < zc_chain_nviews(data) && !ret; i++) {
		const struct zc_view *v = zc_chain_view(data, i);
		char *p = zc_view_data(v);
		size_t left = v->len;

		while (left && !ret) {
			size_t m = ZC__TLS_PT_MAX - len < left ?
					   ZC__TLS_PT_MAX - len : left;

			iov[n++] = (struct iovec){ p, m };
			len += m;
			p += m;
			left -= m;
			if (len == ZC__TLS_PT_MAX || n == REC_IOV_MAX) {
				ret = zc__tls_rec_seal(c, ZC__TLS_CT_APPDATA,
						       iov, n);
				n = 0;
				len = 0;
			}
		}
	}
	if (!ret && n)
		ret = zc__tls_rec_seal(c, ZC__TLS_CT_APPDATA, iov, n);
	return ret;
}

/* OpenSSL's record layer.  Each record costs a fixed overhead (22 bytes
 * on the wire, a cipher setup), so runs of small views are gathered into
 * one record. */
static int ssl_chain(struct zc__tls *t, const struct zc_chain *data)
{
	unsigned char gather[GATHER_MAX];
	size_t g = 0;
	int ret = 0;

	for (unsigned i = 0; i < zc_chain_nviews(data) && !ret; i++) {
		const struct zc_view *v = zc_chain_view(data, i);

		if (v->len < GATHER_MAX && g + v->len <= GATHER_MAX) {
			memcpy(gather + g, zc_view_data(v), v->len);
			g += v->len;
			continue;
		}
		ret = write_all(t, gather, g);
		g = 0;
		if (!ret && v->len < GATHER_MAX) {
			memcpy(gather, zc_view_data(v), v->len);
			g = v->len;
		} else if (!ret) {
			ret = write_all(t, zc_view_data(v), v->len);
		}
	}
	if (!ret)
		ret = write_all(t, gather, g);
	return ret;
}

/* An alert record of ours (@level 1 warning, 2 fatal) into tls->tx. */
static int seal_alert(struct zc_conn *c, uint8_t level, uint8_t desc)
{
	unsigned char al[2] = { level, desc };

	return zc__tls_rec_seal(c, ZC__TLS_CT_ALERT,
				&(struct iovec){ al, sizeof(al) }, 1);
}

/* Encrypt @data (released here) into tls->tx and queue it with @done. */
static int encrypt(struct zc_conn *c, struct zc_chain *data,
		   void (*done)(void *arg, int err), void *arg)
{
	int ret = c->tls->rec ? seal_chain(c, data) : ssl_chain(c->tls, data);

	if (ret)
		return ret;
	zc_chain_release(data);
	return flush_tx(c, done, arg);
}

static void pend_flush(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	int ret;

	while (t->ph && t->st == ZC__TLS_UP) {
		struct zc__tls_pend *p = t->ph;

		t->ph = p->next;
		if (!t->ph)
			t->pt = NULL;
		t->pend_bytes -= zc_chain_len(&p->chain);
		t->npend--;
		ret = encrypt(c, &p->chain, p->done, p->arg);
		if (ret) {
			zc_chain_release(&p->chain);
			if (p->done)
				p->done(p->arg, ret);
			free(p);
			fail(c, ret, "encrypting queued data");
			return;
		}
		free(p);
	}
	/* Sends refused while waiting may go now. */
	if (c->want_writable && !t->ph) {
		c->want_writable = false;
		c->writable_due = true;
		zc__conn_dirty(c);
	}
}

int zc__tls_send(struct zc_conn *c, struct zc_chain *data,
		 void (*done)(void *arg, int err), void *arg)
{
	struct zc__tls *t = c->tls;
	struct zc__tls_pend *p;
	int ret;

	if (t->st == ZC__TLS_FAILED)
		return -EPIPE;
	if (t->st == ZC__TLS_UP && !t->ph) {
		ret = encrypt(c, data, done, arg);
		if (ret)
			/* The session cannot go on after a half-written
			 * record; the caller keeps @data as promised. */
			fail(c, ret, "encrypting");
		return ret;
	}
	/* Before the handshake ends, sends wait as plaintext: few, since
	 * each may pin pool buffers the handshake itself needs. */
	if (t->pend_bytes >= c->r->cfg.sndq_max || t->npend >= ZC__TLS_PEND_MAX) {
		c->want_writable = true;
		ZC__STAT_INC(c->r, tx_refused);
		return -EAGAIN;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->chain = *data;
	zc_chain_init(data);
	p->done = done;
	p->arg = arg;
	if (t->pt)
		t->pt->next = p;
	else
		t->ph = p;
	t->pt = p;
	t->pend_bytes += zc_chain_len(&p->chain);
	t->npend++;
	return 0;
}

void zc__tls_idle(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;

	if (t->txb && t->txoff == t->txstart) {
		zc_buf_put(t->txb);
		t->txb = NULL;
	}
}

void zc__tls_close_notify(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	int ret = 0;

	if (t->st != ZC__TLS_UP)
		return;
	if (t->rec) {
		ret = seal_alert(c, 1, 0);
	} else {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	}
	if (ret || flush_tx(c, NULL, NULL))
		fail(c, -ENOMEM, "sending close_notify");
}

/* -------------------------------------------------------------------------
 * Handshake
 */

static void arm_timer(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	struct io_uring_sqe *sqe = zc__sqe(c->r);

	t->ts.tv_sec = t->ctx->hs_timeout_ms / 1000;
	t->ts.tv_nsec = (long long)(t->ctx->hs_timeout_ms % 1000) * 1000000;
	io_uring_prep_timeout(sqe, &t->ts, 0, 0);
	io_uring_sqe_set_data64(sqe, zc__ud(c, ZC__OP_TLS_TIMER));
	t->timer_armed = true;
	c->ops_inflight++;
}

void zc__tls_handle_timer(struct zc_reactor *r, const struct io_uring_cqe *cqe)
{
	struct zc_conn *c = zc__ud_obj(cqe->user_data);

	(void)r;
	c->ops_inflight--;
	if (c->tls) {
		c->tls->timer_armed = false;
		if (cqe->res == -ETIME && c->tls->st == ZC__TLS_HANDSHAKE &&
		    c->state < ZC__DEAD)
			fail(c, -ETIMEDOUT, "handshake deadline passed");
	}
	zc__conn_dirty(c);
}

/*
 * The records of the session from now on: ours when the hand-over is
 * safe (tls_keys.c says when), else OpenSSL's.  Where kTLS comes, it takes
 * the same keys here.
 */
static void handover(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	struct zc__tls_keys k;
	const char *why;
	int ret = zc__tls_keys_take(t, &k, &why);

	if (!ret && (ret = zc__tls_rec_new(&k, t->ctx->ku_records, &t->rec)))
		why = "record layer setup failed";
	OPENSSL_cleanse(&k, sizeof(k));
	if (!ret) {
		ZC__STAT_INC(c->r, tls_rec_zcrpc);
		return;
	}
	ZC__STAT_INC(c->r, tls_rec_openssl);
	zc__logc(ZC_LOG_DEBUG, c, "tls records by openssl", "%s", why);
}

static void established(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	const unsigned char *alpn;
	unsigned alpn_len;

	SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
	/* A server that picked another protocol does not speak ours; one
	 * that ignores ALPN is accepted (it may predate it). */
	if (alpn_len && (alpn_len != t->ctx->alpn[0] ||
			 memcmp(alpn, t->ctx->alpn + 1, alpn_len))) {
		fail(c, -EPROTO, "peer chose another ALPN protocol");
		return;
	}
	t->st = ZC__TLS_UP;
	hs_uncount(c);
	ZC__STAT_INC(c->r, tls_handshakes);
	atomic_store_explicit(&t->ctx->last_cipher,
			      SSL_get_cipher_name(t->ssl), memory_order_relaxed);
	if (t->ctx->verify != ZC_TLS_VERIFY_NONE)
		t->peer = zc__tls_peer_make(t->ssl);
	handover(c);
	cancel_timer(c);
	if (t->ctx->role == ZC_TLS_CLIENT && c->ops && c->ops->on_connect)
		c->ops->on_connect(c, c->ud);
	pend_flush(c);
}

/* Run the handshake as far as the ciphertext we hold allows. */
static void handshake(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	const char *why;
	int ret, e;

	ERR_clear_error();
	ret = SSL_do_handshake(t->ssl);
	e = ret == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, ret);
	if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
		ret = ssl_err(c, &why);
		send_alert(c);
		fail(c, ret, why);
		return;
	}
	if (flush_tx(c, NULL, NULL)) {
		fail(c, -ENOMEM, "queueing handshake records");
		return;
	}
	if (e == SSL_ERROR_NONE)
		established(c);
}

/* The handshake begins: counted against the cap, under its deadline. */
static void start(struct zc_conn *c)
{
	c->tls->st = ZC__TLS_HANDSHAKE;
	c->tls->counted = true;
	c->r->tls_hs++;
	ZC__STAT_INC(c->r, tls_running);
	arm_timer(c);
}

int zc__tls_accept(struct zc_conn *c, struct zc_tls_ctx *ctx)
{
	struct zc_reactor *r = c->r;
	int ret;

	if (r->tls_hs >= ctx->max_hs) {
		/* One line per power of two refused: a flood is visible in
		 * the log without filling it. */
		uint64_t n = r->st.tls_refused + 1;

		ZC__STAT_INC(r, tls_refused);
		if (!(n & (n - 1)))
			zc__logc(ZC_LOG_WARN, c, "tls handshake refused",
				 "%u handshakes running (%llu refused so far)",
				 r->tls_hs, (unsigned long long)n);
		return -EBUSY;
	}
	ret = session_new(c, ctx, NULL);
	if (ret)
		return ret;
	start(c);
	return 0;
}

int zc_conn_start_tls(struct zc_conn *c, struct zc_tls_ctx *ctx,
		      const char *host)
{
	int ret;

	if (!c || !ctx || ctx->role != ZC_TLS_CLIENT || c->tls ||
	    c->state != ZC__CONNECTING)
		return -EINVAL;
	ret = session_new(c, ctx, host);
	if (ret)
		return ret;
	c->tls->st = ZC__TLS_WAIT_TCP;
	return 0;
}

void zc__tls_connected(struct zc_conn *c)
{
	start(c);
	handshake(c);
}

bool zc__tls_eof(struct zc_conn *c)
{
	if (c->tls->st == ZC__TLS_UP)
		return false;
	fail(c, -EPROTO, "peer closed during the handshake");
	return true;
}

/* -------------------------------------------------------------------------
 * Ciphertext in: decrypt into pool buffers, deliver as views
 */

/* SSL_read into fresh pool buffers until OpenSSL wants more ciphertext. */
static void decrypt(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	struct zc_chain out = ZC_CHAIN_INIT;
	struct zc_buf *b = NULL;
	uint32_t start = 0, off = 0;
	const char *why;
	int n, e = SSL_ERROR_NONE, ret = 0;

	for (;;) {
		struct zc_view v;

		if (!b) {
			ret = zc__tls_buf(c->r->pool,
					  zc_conn_rx_budget(c) != 0, &b);
			if (ret)
				break;
			start = off = 0;
		}
		ERR_clear_error();
		n = SSL_read(t->ssl, (char *)zc_buf_data(b) + off,
			     (int)(zc_buf_capacity(b) - off));
		if (n > 0)
			off += (uint32_t)n;
		if (off > start && (n <= 0 || off == zc_buf_capacity(b))) {
			ret = zc_view_init(&v, b, start, off - start);
			if (!ret && (ret = zc_chain_append(&out, &v)))
				zc_view_release(&v);
			if (ret)
				break;
			start = off;
		}
		if (off == zc_buf_capacity(b)) {
			zc_buf_put(b);
			b = NULL;
		}
		if (n <= 0) {
			e = SSL_get_error(t->ssl, n);
			break;
		}
	}
	if (b)
		zc_buf_put(b);
	/* What decrypted before any error still reaches the user, in
	 * order; the error then closes. */
	if (zc_chain_len(&out) && c->state == ZC__OPEN)
		zc__conn_deliver(c, &out); /* moved: @out is forgotten */
	else
		zc_chain_release(&out);
	/* SSL_read may have written (key update answers, alerts). */
	if (c->tls && t->st == ZC__TLS_UP && flush_tx(c, NULL, NULL))
		ret = -ENOMEM;
	if (ret == -ENOBUFS && c->tls && t->st == ZC__TLS_UP) {
		/* No SSL_read was given the buffer that failed: nothing is
		 * lost, OpenSSL still holds what it has not returned. */
		rx_wait(c);
	} else if (ret) {
		fail(c, ret, "out of memory decrypting");
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		/* close_notify: the same as EOF for the user. */
		c->eof = true;
		zc__conn_dirty(c);
	} else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_NONE) {
		ret = ssl_err(c, &why);
		send_alert(c);
		fail(c, ret, why);
	}
}

/* Our record layer: open what is complete, deliver, act on the end. */
static void open_records(struct zc_conn *c)
{
	struct zc__tls *t = c->tls;
	struct zc_chain out = ZC_CHAIN_INIT;
	const char *why = NULL;
	uint8_t alert = 0;
	int ret = zc__tls_rec_open(c, &out, &why, &alert);

	if (zc_chain_len(&out) && c->state == ZC__OPEN)
		zc__conn_deliver(c, &out); /* moved: @out is forgotten */
	else
		zc_chain_release(&out);
	if (!c->tls || t->st != ZC__TLS_UP)
		return;
	/* A KeyUpdate answered is in tls->tx. */
	if ((ret >= 0 || ret == -ENOBUFS) && flush_tx(c, NULL, NULL)) {
		ret = -ENOMEM;
		why = "out of memory sending";
	}
	if (ret == -ENOBUFS) {
		/* The record that found the pool empty is still in tls->rx. */
		rx_wait(c);
		return;
	}
	if (ret == 1) {
		c->eof = true;
		zc__conn_dirty(c);
		return;
	}
	if (!ret)
		return;
	if (alert && !seal_alert(c, 2, alert))
		send_alert(c);
	fail(c, ret, why);
}

/* Open what tls->rx holds, by whichever record layer runs the session. */
static void rx_open(struct zc_conn *c)
{
	if (c->tls->st == ZC__TLS_UP && c->tls->rec)
		open_records(c);
	else if (c->tls->st == ZC__TLS_UP)
		decrypt(c);
}

void zc__tls_rx(struct zc_conn *c, struct zc_buf *b, uint32_t off,
		unsigned len)
{
	struct zc__tls *t = c->tls;
	struct zc_view v;

	if (t->st == ZC__TLS_FAILED || t->st == ZC__TLS_WAIT_TCP) {
		zc_buf_put(b);
		return;
	}
	if (zc_view_adopt(&v, b, off, len))
		assert(0);
	if (zc_chain_append(&t->rx, &v)) {
		zc_view_release(&v);
		fail(c, -ENOMEM, "out of memory receiving");
		return;
	}
	if (t->st == ZC__TLS_HANDSHAKE)
		handshake(c);
	/* Waiting for buffers: opened by the retry, in order. */
	if (!c->tls_rx_wait)
		rx_open(c);
}

void zc__tls_rx_retry(struct zc_conn *c)
{
	rx_wait_end(c);
	/* A connection closing drops what it receives, this too. */
	if (c->state != ZC__OPEN)
		return;
	c->tls->rx_retrying = true;
	rx_open(c);
	if (c->tls)
		c->tls->rx_retrying = false;
}

/* -------------------------------------------------------------------------
 * Queries
 */

bool zc_conn_tls_info(const struct zc_conn *c, const char **cipher,
		      const char **version)
{
	if (!c->tls || c->tls->st != ZC__TLS_UP)
		return false;
	if (cipher)
		*cipher = SSL_get_cipher_name(c->tls->ssl);
	if (version)
		*version = SSL_get_version(c->tls->ssl);
	return true;
}
