/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_bio.c - the BIO between OpenSSL and a connection's buffers.
 *
 * Reads hand OpenSSL ciphertext straight from the receive ring's views
 * (tls->rx), consuming them as it goes: no memory BIO holds a second copy.
 * Writes put OpenSSL's records into pool buffers of the reactor
 * (tls->txb), which become views of tls->tx and are sent like any chain.
 * Both run on the reactor thread, inside SSL_* calls of tls.c.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "tls_internal.h"

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *out, int len)
{
	struct zc_conn *c = BIO_get_data(b);
	struct zc__tls *t = c->tls;
	size_t n;

	BIO_clear_retry_flags(b);
	if (!zc_chain_len(&t->rx)) {
		BIO_set_retry_read(b);
		return -1;
	}
	n = zc_chain_copyout(&t->rx, 0, out, (size_t)len);
	zc_chain_consume(&t->rx, n);
	return (int)n;
}

int zc__tls_bio_seal(struct zc__tls *t)
{
	struct zc_view v;
	int ret;

	if (!t->txb || t->txoff == t->txstart)
		return 0;
	ret = zc_view_init(&v, t->txb, t->txstart, t->txoff - t->txstart);
	if (ret)
		return ret;
	ret = zc_chain_append(&t->tx, &v);
	if (ret) {
		zc_view_release(&v);
		return ret;
	}
	t->txstart = t->txoff;
	return 0;
}

int zc__tls_buf(struct zc_pool *pool, bool heap_ok, struct zc_buf **out)
{
	int ret = zc_buf_alloc(pool, out);

	if (ret == -ENOBUFS && heap_ok)
		ret = zc_buf_alloc_large(pool, zc_pool_buf_size(pool), out);
	return ret;
}

long zc__tls_tx_room(struct zc__tls *t, struct zc_pool *pool,
		     unsigned char **dst)
{
	size_t bs = zc_pool_buf_size(pool);
	int ret;

	if (!t->txb) {
		/* Below the openings' reserve, into memory of its own:
		 * ciphertext waiting to be sent (to a peer that may itself
		 * wait for our records to be read) must not hold the last
		 * buffers an opening needs. */
		ret = zc_pool_headroom(pool) < ZC__TLS_OPEN_RESERVE * bs ?
			      zc_buf_alloc_large(pool, bs, &t->txb) :
			      zc__tls_buf(pool, true, &t->txb);
		if (ret)
			return ret;
		t->txstart = t->txoff = 0;
	}
	*dst = (unsigned char *)zc_buf_data(t->txb) + t->txoff;
	return (long)(zc_buf_capacity(t->txb) - t->txoff);
}

int zc__tls_tx_commit(struct zc__tls *t, size_t n)
{
	int ret;

	t->txoff += (uint32_t)n;
	if (t->txoff < zc_buf_capacity(t->txb))
		return 0;
	ret = zc__tls_bio_seal(t);
	if (ret)
		return ret;
	/* Our reference on the full buffer goes; its views stay. */
	zc_buf_put(t->txb);
	t->txb = NULL;
	return 0;
}

static int bio_write(BIO *b, const char *in, int len)
{
	struct zc_conn *c = BIO_get_data(b);
	struct zc__tls *t = c->tls;
	size_t done = 0;

	BIO_clear_retry_flags(b);
	while (done < (size_t)len) {
		unsigned char *dst = NULL;
		long room = zc__tls_tx_room(t, c->r->pool, &dst);
		size_t n;
		int ret = (int)room;

		if (room > 0) {
			n = (size_t)len - done < (size_t)room ?
				    (size_t)len - done : (size_t)room;
			memcpy(dst, in + done, n);
			done += n;
			ret = zc__tls_tx_commit(t, n);
		}
		if (ret < 0) {
			/* Fatal for the session: OpenSSL would retry a write
			 * we can never finish in order. */
			t->bio_err = ret;
			return -1;
		}
	}
	return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* FLUSH succeeds (tls.c queues what was written after each call);
	 * everything else is not supported. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "zcrpc chain");

	if (!m)
		return;
	if (!BIO_meth_set_write(m, bio_write) ||
	    !BIO_meth_set_read(m, bio_read) ||
	    !BIO_meth_set_ctrl(m, bio_ctrl) ||
	    !BIO_meth_set_create(m, bio_create)) {
		BIO_meth_free(m);
		return;
	}
	method = m;
}

BIO *zc__tls_bio_new(struct zc_conn *c)
{
	BIO *b;

	pthread_once(&method_once, method_init);
	if (!method)
		return NULL;
	b = BIO_new(method);
	if (b)
		BIO_set_data(b, c);
	return b;
}
