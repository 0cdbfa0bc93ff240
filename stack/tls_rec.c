/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_rec.c - the TLS 1.3 record layer (RFC 8446 section 5) that
 * runs a session after the hand-over (tls_keys.c), in place of OpenSSL's.
 *
 * Why: OpenSSL's record layer copies each received byte twice beyond the
 * cipher (our ring view -> its record buffer -> our pool buffer) and each
 * sent byte once (its record buffer -> our pool buffer).  Here the AEAD
 * reads ciphertext straight from the receive ring's views and writes
 * plaintext straight into pool buffers (a record may span views and
 * buffers: GCM and ChaCha20-Poly1305 update in pieces), and seals
 * plaintext views straight into the pool buffers that are sent.  The only
 * copy is the cipher's.
 *
 * Checks on receive: outer type application_data; length at most
 * 2^14 + 256 and enough for a tag; the tag; plaintext (after the padding)
 * at most 2^14 and a content type present.  Then alert (close_notify:
 * end of stream; any other: the peer's fatal alert), handshake
 * (NewSessionTicket ignored, KeyUpdate acted on, anything else refused)
 * or application data.  Any failure is fatal for the session only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tls_internal.h"

/* RFC 8446 B.1-B.3 values we use. */
enum {
	CT_ALERT = ZC__TLS_CT_ALERT,
	CT_HANDSHAKE = ZC__TLS_CT_HANDSHAKE,
	CT_APPDATA = ZC__TLS_CT_APPDATA,
	HS_NEW_SESSION_TICKET = 4,
	HS_KEY_UPDATE = 24,
	AL_CLOSE_NOTIFY = 0,
	AL_UNEXPECTED_MESSAGE = 10,
	AL_BAD_RECORD_MAC = 20,
	AL_RECORD_OVERFLOW = 22,
	AL_ILLEGAL_PARAMETER = 47,
	AL_DECODE_ERROR = 50,
	AL_INTERNAL_ERROR = 80,
};

struct dir {
	EVP_CIPHER_CTX *cc; /* keyed; the nonce is set per record */
	struct zc__tls_dirkeys k;
};

struct zc__tls_rec {
	enum zc__tls_suite suite;
	struct dir rd, wr;
	uint64_t wr_limit; /* records per write key, 0: none */
	bool eof; /* close_notify received: nothing more is read */
	/* Receive output, during one zc__tls_rec_open(): @rxb (our
	 * reference) holds opened plaintext [@rxstart, @rxend) not yet cut
	 * into a view; the record being opened is written from @rxend (over
	 * the previous record's content type byte, which no view covers). */
	struct zc_buf *rxb;
	uint32_t rxstart, rxend, rxw;
	/* The connection has a receive budget: opened records may go to
	 * memory of their own when the pool is empty (zc__tls_buf()). */
	bool rx_heap_ok;
	/* Post-handshake messages, parsed as they stream by: header bytes
	 * seen, body bytes left, and the KeyUpdate byte. */
	unsigned char hs_hdr[4];
	unsigned hs_have;
	uint32_t hs_left;
	int key_update; /* -1 none; else request_update of one received */
};

/* -------------------------------------------------------------------------
 * Ciphers and keys
 */

static EVP_CIPHER *ciphers[3];
static pthread_once_t ciphers_once = PTHREAD_ONCE_INIT;

/* Fetched once: an implicit fetch per EVP_CipherInit_ex would cost a
 * lookup each record. */
static void ciphers_fetch(void)
{
	ciphers[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	ciphers[1] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	ciphers[2] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static int dir_key(struct dir *d, enum zc__tls_suite s, int enc)
{
	const EVP_CIPHER *cipher;

	pthread_once(&ciphers_once, ciphers_fetch);
	cipher = ciphers[s - ZC__TLS_AES_128_GCM];
	if (!cipher || (!d->cc && !(d->cc = EVP_CIPHER_CTX_new())))
		return -ENOMEM;
	if (EVP_CipherInit_ex(d->cc, cipher, NULL, d->k.key, NULL, enc) != 1)
		return -EIO;
	return 0;
}

/* Start the record of sequence d->k.seq: nonce = iv XOR seq (5.3). */
static int dir_nonce(struct dir *d, const unsigned char hdr[ZC__TLS_HDR_LEN])
{
	unsigned char nonce[ZC__TLS_IV_LEN];
	int outl;

	if (d->k.seq == UINT64_MAX)
		return -EOVERFLOW;
	memcpy(nonce, d->k.iv, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (unsigned char)(d->k.seq >> (56 - 8 * i));
	if (EVP_CipherInit_ex(d->cc, NULL, NULL, NULL, nonce, -1) != 1 ||
	    EVP_CipherUpdate(d->cc, NULL, &outl, hdr, ZC__TLS_HDR_LEN) != 1)
		return -EIO;
	return 0;
}

static void dir_free(struct dir *d)
{
	EVP_CIPHER_CTX_free(d->cc);
	OPENSSL_cleanse(&d->k, sizeof(d->k));
}

int zc__tls_rec_new(const struct zc__tls_keys *k, uint64_t ku_records,
		    struct zc__tls_rec **out)
{
	struct zc__tls_rec *rec = calloc(1, sizeof(*rec));
	int ret;

	if (!rec)
		return -ENOMEM;
	rec->suite = k->suite;
	rec->rd.k = k->rx;
	rec->wr.k = k->tx;
	rec->key_update = -1;
	/* RFC 8446 5.5: AES-GCM's usage limit; ChaCha20-Poly1305's
	 * sequence would wrap first (dir_nonce refuses that). */
	rec->wr_limit = ku_records ? ku_records :
			k->suite == ZC__TLS_CHACHA20_POLY1305 ?
					 0 : ZC_TLS_KEY_UPDATE_RECORDS_DEFAULT;
	ret = dir_key(&rec->rd, k->suite, 0);
	if (!ret)
		ret = dir_key(&rec->wr, k->suite, 1);
	if (ret) {
		zc__tls_rec_free(rec);
		return ret;
	}
	*out = rec;
	return 0;
}

void zc__tls_rec_free(struct zc__tls_rec *rec)
{
	if (!rec)
		return;
	dir_free(&rec->rd);
	dir_free(&rec->wr);
	if (rec->rxb)
		zc_buf_put(rec->rxb);
	free(rec);
}

/* -------------------------------------------------------------------------
 * Send: seal plaintext pieces into tls->tx
 */

/* Put @n bytes of @src into tls->tx, through @cc (encrypting) or as they
 * are (@cc NULL: header, tag), across buffers.  0 or -errno. */
static int tx_put(struct zc__tls *t, struct zc_pool *pool, EVP_CIPHER_CTX *cc,
		  const unsigned char *src, size_t n)
{
	while (n) {
		unsigned char *dst = NULL;
		long room = zc__tls_tx_room(t, pool, &dst);
		size_t m;
		int outl, ret;

		if (room < 0)
			return (int)room;
		m = n < (size_t)room ? n : (size_t)room;
		if (!cc)
			memcpy(dst, src, m);
		else if (EVP_EncryptUpdate(cc, dst, &outl, src, (int)m) != 1 ||
			 outl != (int)m)
			return -EIO;
		ret = zc__tls_tx_commit(t, m);
		if (ret)
			return ret;
		src += m;
		n -= m;
	}
	return 0;
}

/* One record of @type under the current write key. */
static int seal(struct zc__tls *t, struct zc_pool *pool, uint8_t type,
		const struct iovec *iov, unsigned n)
{
	struct dir *d = &t->rec->wr;
	unsigned char hdr[ZC__TLS_HDR_LEN], tag[ZC__TLS_TAG_LEN];
	size_t len = 0, clen;
	int outl, ret;

	for (unsigned i = 0; i < n; i++)
		len += iov[i].iov_len;
	assert(len <= ZC__TLS_PT_MAX);
	clen = len + 1 + ZC__TLS_TAG_LEN; /* content type, no padding */
	hdr[0] = CT_APPDATA;
	hdr[1] = 3;
	hdr[2] = 3;
	hdr[3] = (unsigned char)(clen >> 8);
	hdr[4] = (unsigned char)clen;
	ret = dir_nonce(d, hdr);
	if (!ret)
		ret = tx_put(t, pool, NULL, hdr, sizeof(hdr));
	for (unsigned i = 0; i < n && !ret; i++)
		ret = tx_put(t, pool, d->cc, iov[i].iov_base, iov[i].iov_len);
	if (!ret)
		ret = tx_put(t, pool, d->cc, &type, 1);
	if (ret)
		return ret;
	if (EVP_EncryptFinal_ex(d->cc, tag, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->cc, EVP_CTRL_AEAD_GET_TAG, sizeof(tag),
				tag) != 1)
		return -EIO;
	d->k.seq++;
	return tx_put(t, pool, NULL, tag, sizeof(tag));
}

/* A KeyUpdate of ours, update_not_requested, under the current write
 * key, then the next write key (RFC 8446 4.6.3, 7.2). */
static int send_key_update(struct zc_conn *c)
{
	static const unsigned char ku[5] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	struct zc__tls_rec *rec = c->tls->rec;
	int ret = seal(c->tls, c->r->pool, CT_HANDSHAKE,
		       &(struct iovec){ (void *)ku, sizeof(ku) }, 1);

	if (ret)
		return ret;
	if (zc__tls_keys_update(rec->suite, &rec->wr.k) ||
	    dir_key(&rec->wr, rec->suite, 1))
		return -EIO;
	return 0;
}

int zc__tls_rec_seal(struct zc_conn *c, uint8_t type, const struct iovec *iov,
		     unsigned n)
{
	struct zc__tls_rec *rec = c->tls->rec;
	int ret;

	if (rec->wr_limit && rec->wr.k.seq >= rec->wr_limit) {
		ret = send_key_update(c);
		if (ret)
			return ret;
		ZC__STAT_INC(c->r, tls_key_updates_sent);
	}
	return seal(c->tls, c->r->pool, type, iov, n);
}

/* -------------------------------------------------------------------------
 * Receive: open records from tls->rx into pool buffers
 */

/* Plaintext [@rxstart, @rxend) becomes a view at the tail of @out. */
static int rx_cut(struct zc__tls_rec *rec, struct zc_chain *out)
{
	struct zc_view v;
	int ret;

	if (!rec->rxb || rec->rxend == rec->rxstart)
		return 0;
	ret = zc_view_init(&v, rec->rxb, rec->rxstart,
			   rec->rxend - rec->rxstart);
	if (!ret && (ret = zc_chain_append(out, &v)))
		zc_view_release(&v);
	if (!ret)
		rec->rxstart = rec->rxend;
	return ret;
}

/* One buffer's part of the record being opened (a reference each). */
struct seg {
	struct zc_buf *b;
	uint32_t off, len;
};

/* A record of 2^14 + 256 bytes over buffers of at least 4 KiB. */
#define SEG_MAX (ZC__TLS_CT_MAX / ZC_BUF_SIZE_MIN + 2)

struct opening {
	struct seg seg[SEG_MAX];
	unsigned nseg;
};

static void opening_drop(struct opening *o)
{
	for (unsigned i = 0; i < o->nseg; i++)
		zc_buf_put(o->seg[i].b);
	o->nseg = 0;
}

/* Room to write plaintext at *@dst (> 0), moving to a fresh buffer when
 * the current one is full, or -errno. */
static long rx_room(struct zc__tls_rec *rec, struct zc_pool *pool,
		    struct zc_chain *out, unsigned char **dst)
{
	int ret;

	if (!rec->rxb || rec->rxw == zc_buf_capacity(rec->rxb)) {
		/* What was opened before this record goes first, in order;
		 * this record's part of the old buffer is held by its seg. */
		ret = rx_cut(rec, out);
		if (ret)
			return ret;
		if (rec->rxb)
			zc_buf_put(rec->rxb);
		rec->rxb = NULL;
		ret = zc__tls_buf(pool, rec->rx_heap_ok, &rec->rxb);
		if (ret)
			return ret;
		rec->rxstart = rec->rxend = rec->rxw = 0;
	}
	*dst = (unsigned char *)zc_buf_data(rec->rxb) + rec->rxw;
	return (long)(zc_buf_capacity(rec->rxb) - rec->rxw);
}

/* Decrypt @n bytes at @src into the receive buffers. */
static int rx_decrypt(struct zc__tls_rec *rec, struct zc_pool *pool,
		      struct zc_chain *out, struct opening *o,
		      const unsigned char *src, size_t n)
{
	while (n) {
		unsigned char *dst = NULL;
		long room = rx_room(rec, pool, out, &dst);
		size_t m;
		int outl;
		struct seg *s = o->nseg ? &o->seg[o->nseg - 1] : NULL;

		if (room < 0)
			return (int)room;
		m = n < (size_t)room ? n : (size_t)room;
		if (EVP_DecryptUpdate(rec->rd.cc, dst, &outl, src, (int)m) != 1 ||
		    outl != (int)m)
			return -EIO;
		if (!s || s->b != rec->rxb) {
			assert(o->nseg < SEG_MAX);
			s = &o->seg[o->nseg++];
			zc_buf_get(rec->rxb);
			*s = (struct seg){ rec->rxb, rec->rxw, 0 };
		}
		s->len += (uint32_t)m;
		rec->rxw += (uint32_t)m;
		src += m;
		n -= m;
	}
	return 0;
}

/* Decrypt and authenticate the record at the front of tls->rx (header
 * @hdr, @len bytes after it) into o's segments.  0 or -errno. */
static int open_one(struct zc__tls *t, struct zc_pool *pool,
		    struct zc_chain *out, struct opening *o,
		    const unsigned char *hdr, size_t len)
{
	struct zc__tls_rec *rec = t->rec;
	unsigned char tag[ZC__TLS_TAG_LEN];
	size_t clen = len - ZC__TLS_TAG_LEN, off = ZC__TLS_HDR_LEN, done = 0;
	int outl, ret = dir_nonce(&rec->rd, hdr);

	rec->rxw = rec->rxend;
	for (unsigned i = 0; i < zc_chain_nviews(&t->rx) && done < clen && !ret;
	     i++) {
		const struct zc_view *v = zc_chain_view(&t->rx, i);
		size_t m;

		if (off >= v->len) {
			off -= v->len;
			continue;
		}
		m = v->len - off < clen - done ? v->len - off : clen - done;
		ret = rx_decrypt(rec, pool, out, o,
				 (const unsigned char *)zc_view_data(v) + off, m);
		done += m;
		off = 0;
	}
	if (ret)
		return ret;
	zc_chain_copyout(&t->rx, ZC__TLS_HDR_LEN + clen, tag, sizeof(tag));
	if (EVP_CIPHER_CTX_ctrl(rec->rd.cc, EVP_CTRL_AEAD_SET_TAG, sizeof(tag),
				tag) != 1 ||
	    EVP_DecryptFinal_ex(rec->rd.cc, tag, &outl) != 1)
		return -EBADMSG;
	rec->rd.k.seq++;
	return 0;
}

/* The inner content type: the last non-zero byte (5.4); *@ptlen the
 * plaintext before it.  -1 when the record is all padding. */
static int inner_type(const struct opening *o, size_t *ptlen)
{
	size_t before = 0;

	for (unsigned i = 0; i < o->nseg; i++)
		before += o->seg[i].len;
	for (unsigned i = o->nseg; i-- > 0;) {
		const unsigned char *p =
			(const unsigned char *)zc_buf_data(o->seg[i].b) +
			o->seg[i].off;

		before -= o->seg[i].len;
		for (uint32_t j = o->seg[i].len; j-- > 0;)
			if (p[j]) {
				*ptlen = before + j;
				return p[j];
			}
	}
	return -1;
}

/* Application data: the first @ptlen bytes of the segments reach @out
 * (the last buffer's part stays pending in rxb, cut later). */
static int emit(struct zc__tls_rec *rec, struct zc_chain *out,
		const struct opening *o, size_t ptlen)
{
	for (unsigned i = 0; i < o->nseg && ptlen; i++) {
		const struct seg *s = &o->seg[i];
		uint32_t take = s->len < ptlen ? s->len : (uint32_t)ptlen;
		struct zc_view v;
		int ret;

		ptlen -= take;
		if (s->b == rec->rxb) {
			/* Contiguous with what rxb holds pending. */
			rec->rxend = s->off + take;
			continue;
		}
		ret = zc_view_init(&v, s->b, s->off, take);
		if (!ret && (ret = zc_chain_append(out, &v)))
			zc_view_release(&v);
		if (ret)
			return ret;
	}
	return 0;
}

struct verdict {
	const char *why;
	uint8_t alert; /* ours to send, 0: none */
	bool peer;     /* the peer's alert ended the session */
};

static int refuse(struct verdict *vd, int err, const char *why, uint8_t alert)
{
	vd->why = why;
	vd->alert = alert;
	return err;
}

/* Post-handshake handshake bytes, message by message.  0 or -errno. */
static int hs_feed(struct zc__tls_rec *rec, const unsigned char *p, size_t n,
		   struct verdict *vd)
{
	while (n) {
		uint32_t m;

		if (rec->key_update >= 0)
			/* 4.6.3: a KeyUpdate ends its record. */
			return refuse(vd, -EPROTO, "data after a KeyUpdate",
				      AL_UNEXPECTED_MESSAGE);
		if (rec->hs_have < 4) {
			rec->hs_hdr[rec->hs_have++] = *p++;
			n--;
			if (rec->hs_have < 4)
				continue;
			rec->hs_left = (uint32_t)rec->hs_hdr[1] << 16 |
				       (uint32_t)rec->hs_hdr[2] << 8 |
				       rec->hs_hdr[3];
			if (rec->hs_hdr[0] == HS_KEY_UPDATE && rec->hs_left != 1)
				return refuse(vd, -EPROTO, "bad KeyUpdate length",
					      AL_DECODE_ERROR);
			if (rec->hs_hdr[0] != HS_KEY_UPDATE &&
			    rec->hs_hdr[0] != HS_NEW_SESSION_TICKET)
				return refuse(vd, -EPROTO,
					      "unexpected post-handshake message",
					      AL_UNEXPECTED_MESSAGE);
		} else {
			m = n < rec->hs_left ? (uint32_t)n : rec->hs_left;
			if (rec->hs_hdr[0] == HS_KEY_UPDATE) {
				if (*p > 1)
					return refuse(vd, -EPROTO,
						      "bad KeyUpdate request",
						      AL_ILLEGAL_PARAMETER);
				rec->key_update = *p;
			}
			/* A NewSessionTicket's body is skipped: we resume no
			 * sessions. */
			rec->hs_left -= m;
			p += m;
			n -= m;
		}
		if (rec->hs_have == 4 && !rec->hs_left)
			rec->hs_have = 0;
	}
	return 0;
}

/* A KeyUpdate received: the read key moves on; when the peer asked,
 * ours too, after a KeyUpdate of ours under the old key (4.6.3). */
static int key_update(struct zc_conn *c, struct verdict *vd)
{
	struct zc__tls_rec *rec = c->tls->rec;
	bool requested = rec->key_update == 1;
	int ret;

	rec->key_update = -1;
	ZC__STAT_INC(c->r, tls_key_updates);
	if (zc__tls_keys_update(rec->suite, &rec->rd.k) ||
	    dir_key(&rec->rd, rec->suite, 0))
		return refuse(vd, -EIO, "updating the read key",
			      AL_INTERNAL_ERROR);
	if (!requested)
		return 0;
	/* Our answer does not ask back (4.6.3). */
	ret = send_key_update(c);
	if (ret)
		return refuse(vd, ret, "answering a KeyUpdate",
			      AL_INTERNAL_ERROR);
	return 0;
}

/* A peer's fatal alert as the error of the session: its certificate
 * refused by the peer (a TLS 1.3 client learns it only after its own
 * Finished) is -EKEYREJECTED as during the handshake, anything else
 * -ECONNABORTED. */
static int alert_err(uint8_t desc)
{
	switch (desc) {
	case 42: /* bad_certificate */
	case 43: /* unsupported_certificate */
	case 44: /* certificate_revoked */
	case 45: /* certificate_expired */
	case 46: /* certificate_unknown */
	case 48: /* unknown_ca */
	case 116: /* certificate_required */
		return -EKEYREJECTED;
	}
	return -ECONNABORTED;
}

/* OpenSSL 3.0 names only the alerts TLS 1.2 had. */
static const char *alert_name(uint8_t desc)
{
	switch (desc) {
	case 109:
		return "peer alert: missing extension";
	case 116:
		return "peer alert: certificate required";
	case 120:
		return "peer alert: no application protocol";
	}
	return SSL_alert_desc_string_long(desc);
}

/* What the opened record says, by its inner content type. */
static int dispatch(struct zc_conn *c, struct zc_chain *out,
		    const struct opening *o, struct verdict *vd)
{
	struct zc__tls_rec *rec = c->tls->rec;
	unsigned char al[2];
	size_t ptlen = 0, left;
	int type = inner_type(o, &ptlen), ret = 0;

	if (type < 0)
		return refuse(vd, -EPROTO, "record without a content type",
			      AL_UNEXPECTED_MESSAGE);
	if (ptlen > ZC__TLS_PT_MAX)
		return refuse(vd, -EMSGSIZE, "record plaintext over 2^14",
			      AL_RECORD_OVERFLOW);
	if (type == CT_APPDATA) {
		if (rec->hs_have)
			/* 5.1: handshake messages are not interleaved. */
			return refuse(vd, -EPROTO,
				      "application data inside a handshake message",
				      AL_UNEXPECTED_MESSAGE);
		return emit(rec, out, o, ptlen);
	}
	if (type == CT_ALERT) {
		if (ptlen != 2)
			return refuse(vd, -EPROTO, "malformed alert",
				      AL_DECODE_ERROR);
		left = 0;
		for (unsigned i = 0; i < o->nseg && left < 2; i++)
			for (uint32_t j = 0; j < o->seg[i].len && left < 2; j++)
				al[left++] = ((const unsigned char *)zc_buf_data(
					o->seg[i].b))[o->seg[i].off + j];
		if (al[1] == AL_CLOSE_NOTIFY) {
			rec->eof = true;
			return 0;
		}
		vd->peer = true;
		return refuse(vd, alert_err(al[1]), alert_name(al[1]), 0);
	}
	if (type != CT_HANDSHAKE || !ptlen)
		return refuse(vd, -EPROTO, "unexpected record content type",
			      AL_UNEXPECTED_MESSAGE);
	left = ptlen;
	for (unsigned i = 0; i < o->nseg && left && !ret; i++) {
		uint32_t take = o->seg[i].len < left ? o->seg[i].len
						     : (uint32_t)left;

		ret = hs_feed(rec, (const unsigned char *)zc_buf_data(o->seg[i].b) +
				   o->seg[i].off, take, vd);
		left -= take;
	}
	if (!ret && rec->key_update >= 0)
		ret = key_update(c, vd);
	return ret;
}

/* One record at the front of tls->rx, if complete: 1 when it was (and is
 * consumed), 0 when more ciphertext is needed, or -errno. */
static int next_record(struct zc_conn *c, struct zc_chain *out,
		       struct verdict *vd)
{
	struct zc__tls *t = c->tls;
	unsigned char hdr[ZC__TLS_HDR_LEN];
	struct opening o = { .nseg = 0 };
	size_t len;
	int ret;

	if (zc_chain_len(&t->rx) < sizeof(hdr))
		return 0;
	zc_chain_copyout(&t->rx, 0, hdr, sizeof(hdr));
	len = (size_t)hdr[3] << 8 | hdr[4];
	/* 5.1: legacy_record_version is ignored; after the handshake every
	 * record is protected, and change_cipher_spec is refused. */
	if (hdr[0] != CT_APPDATA)
		return refuse(vd, -EPROTO, "record type not application_data",
			      AL_UNEXPECTED_MESSAGE);
	if (len > ZC__TLS_CT_MAX)
		return refuse(vd, -EMSGSIZE, "record over 2^14 + 256 bytes",
			      AL_RECORD_OVERFLOW);
	if (len <= ZC__TLS_TAG_LEN)
		return refuse(vd, -EBADMSG, "record too short for its tag",
			      AL_BAD_RECORD_MAC);
	if (zc_chain_len(&t->rx) < sizeof(hdr) + len)
		return 0;
	ret = open_one(t, c->r->pool, out, &o, hdr, len);
	if (ret == -ENOBUFS) {
		/* The pool is empty: the record stays in tls->rx to be opened
		 * again (its sequence did not move, and the next nonce
		 * restarts the cipher); tls.c waits for buffers. */
		opening_drop(&o);
		return refuse(vd, ret, "pool empty", 0);
	}
	if (ret == -EBADMSG)
		refuse(vd, ret, "record failed authentication",
		       AL_BAD_RECORD_MAC);
	else if (ret == -EOVERFLOW)
		refuse(vd, ret, "record sequence number would wrap", 0);
	else if (ret)
		refuse(vd, ret, "out of memory opening a record",
		       AL_INTERNAL_ERROR);
	if (!ret)
		ret = dispatch(c, out, &o, vd);
	opening_drop(&o);
	zc_chain_consume(&t->rx, sizeof(hdr) + len);
	return ret ? ret : 1;
}

int zc__tls_rec_open(struct zc_conn *c, struct zc_chain *out,
		     const char **why, uint8_t *alert)
{
	struct zc__tls *t = c->tls;
	struct zc__tls_rec *rec = t->rec;
	struct verdict vd = { NULL, 0, false };
	int ret = 1, cut;

	rec->rx_heap_ok = zc_conn_rx_budget(c) != 0;
	while (ret == 1 && !rec->eof)
		ret = next_record(c, out, &vd);
	/* What was opened before any error still goes up, in order. */
	cut = rx_cut(rec, out);
	if (rec->rxb) {
		/* Views keep the buffer; an idle session holds none. */
		zc_buf_put(rec->rxb);
		rec->rxb = NULL;
	}
	if ((ret >= 0 || ret == -ENOBUFS) && cut)
		ret = refuse(&vd, cut, "out of memory opening a record", 0);
	if (vd.peer)
		ZC__STAT_INC(c->r, tls_peer_alerts);
	else if (ret < 0 && ret != -ENOMEM && ret != -ENOBUFS && ret != -EIO)
		ZC__STAT_INC(c->r, tls_bad_records);
	*why = vd.why;
	*alert = vd.alert;
	if (ret < 0)
		return ret;
	if (rec->eof) {
		/* Whatever follows close_notify is not read (6.1). */
		zc_chain_release(&t->rx);
		return 1;
	}
	return 0;
}
