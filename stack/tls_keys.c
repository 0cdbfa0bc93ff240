/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_keys.c - the keys of a TLS 1.3 session, taken from OpenSSL at
 * the end of the handshake: the one place a record layer outside OpenSSL
 * (tls_rec.c today, a kTLS setsockopt(TLS_TX / TLS_RX) where the kernel
 * has it) gets them from.
 *
 * OpenSSL 3.0 has no call that exports traffic secrets; its keylog
 * callback hands them over as text while the handshake runs.  We keep
 * the two application traffic secrets (CLIENT_ / SERVER_TRAFFIC_SECRET_0)
 * in the session only until the handshake ends, derive key and iv with
 * HKDF-Expand-Label (RFC 8446 7.1, 7.3), and wipe them.  Only the record
 * layer keeps the current secret of each direction, as OpenSSL does, for
 * KeyUpdate (7.2).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/tls1.h>

#include "tls_internal.h"

struct suite {
	unsigned long id; /* SSL_CIPHER_get_id() */
	enum zc__tls_suite s;
	const char *md;   /* its HKDF hash */
	unsigned hash_len, key_len;
};

static const struct suite suites[] = {
	{ TLS1_3_CK_AES_128_GCM_SHA256, ZC__TLS_AES_128_GCM, "SHA256", 32, 16 },
	{ TLS1_3_CK_AES_256_GCM_SHA384, ZC__TLS_AES_256_GCM, "SHA384", 48, 32 },
	{ TLS1_3_CK_CHACHA20_POLY1305_SHA256, ZC__TLS_CHACHA20_POLY1305,
	  "SHA256", 32, 32 },
};

static const struct suite *suite_by_id(unsigned long id)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == id)
			return &suites[i];
	return NULL;
}

static const struct suite *suite_of(enum zc__tls_suite s)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].s == s)
			return &suites[i];
	return NULL;
}

/* -------------------------------------------------------------------------
 * Capture: the keylog callback of every SSL_CTX we make
 */

static int hexval(char h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	if (h >= 'A' && h <= 'F')
		return h - 'A' + 10;
	return -1;
}

/* "LABEL <client random> <secret>", both hex.  The session is the SSL's
 * app data (tls.c sets it); lines of other labels are ignored. */
static void keylog(const SSL *ssl, const char *line)
{
	static const char *const labels[2] = { "CLIENT_TRAFFIC_SECRET_0 ",
					       "SERVER_TRAFFIC_SECRET_0 " };
	struct zc__tls *t = SSL_get_app_data(ssl);
	const char *hex;
	size_t n;

	for (int dir = 0; dir < 2 && t; dir++) {
		if (strncmp(line, labels[dir], strlen(labels[dir])))
			continue;
		hex = strrchr(line, ' ') + 1;
		n = strlen(hex);
		if (n % 2 || n / 2 > ZC__TLS_SECRET_MAX)
			return;
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				t->secret_len[dir] = 0;
				return;
			}
			t->secret[dir][i] = (unsigned char)(hi << 4 | lo);
		}
		t->secret_len[dir] = (unsigned)n / 2;
	}
}

void zc__tls_keylog_install(SSL_CTX *ssl)
{
	SSL_CTX_set_keylog_callback(ssl, keylog);
}

void zc__tls_secrets_wipe(struct zc__tls *t)
{
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	t->secret_len[0] = t->secret_len[1] = 0;
}

/* -------------------------------------------------------------------------
 * Derivation
 */

static EVP_KDF *hkdf;
static pthread_once_t hkdf_once = PTHREAD_ONCE_INIT;

static void hkdf_fetch(void)
{
	hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
}

/* HKDF-Expand-Label(@secret, @label, "", @olen) into @out.  0 or -EIO. */
static int expand_label(const struct suite *s, const unsigned char *secret,
			const char *label, unsigned char *out, unsigned olen)
{
	unsigned char info[2 + 1 + 6 + 16 + 1];
	size_t ll = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ret = -EIO;
	OSSL_PARAM p[5];
	EVP_KDF_CTX *kc;

	pthread_once(&hkdf_once, hkdf_fetch);
	if (!hkdf || ll > 16)
		return -EIO;
	/* struct HkdfLabel: uint16 length, opaque label<7..255> ("tls13 "
	 * + label), opaque context<0..255> (empty). */
	info[n++] = (unsigned char)(olen >> 8);
	info[n++] = (unsigned char)olen;
	info[n++] = (unsigned char)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)s->md, 0);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)secret, s->hash_len);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	p[4] = OSSL_PARAM_construct_end();
	kc = EVP_KDF_CTX_new(hkdf);
	if (kc && EVP_KDF_derive(kc, out, olen, p) == 1)
		ret = 0;
	EVP_KDF_CTX_free(kc);
	return ret;
}

/* Key and iv of @d from its secret; the sequence starts over. */
static int derive(const struct suite *s, struct zc__tls_dirkeys *d)
{
	d->key_len = s->key_len;
	d->seq = 0;
	if (expand_label(s, d->secret, "key", d->key, s->key_len) ||
	    expand_label(s, d->secret, "iv", d->iv, ZC__TLS_IV_LEN))
		return -EIO;
	return 0;
}

int zc__tls_keys_update(enum zc__tls_suite sid, struct zc__tls_dirkeys *d)
{
	const struct suite *s = suite_of(sid);
	unsigned char next[ZC__TLS_SECRET_MAX];

	if (!s || expand_label(s, d->secret, "traffic upd", next, s->hash_len))
		return -EIO;
	memcpy(d->secret, next, s->hash_len);
	OPENSSL_cleanse(next, sizeof(next));
	return derive(s, d);
}

/*
 * Safe only when both record sequences are provably at 0 and OpenSSL
 * holds nothing we would lose: TLS 1.3 (1.2 has other records and
 * nonces), a suite we run, both secrets seen, no byte past the handshake
 * read through the BIO (SSL_has_pending: OpenSSL reads a record at a
 * time without read-ahead, so an application record read early would be
 * there), no plaintext buffered, and no session tickets still to send
 * (our servers send none: they would be the first server record).
 * SSL_do_handshake() itself neither reads nor writes application data.
 */
int zc__tls_keys_take(struct zc__tls *t, struct zc__tls_keys *k,
		      const char **why)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(t->ssl);
	const struct suite *s = cipher ? suite_by_id(SSL_CIPHER_get_id(cipher))
				       : NULL;
	int peer = t->ctx->role == ZC_TLS_SERVER ? 0 : 1;
	int ret = -EOPNOTSUPP;

	memset(k, 0, sizeof(*k));
	if (SSL_version(t->ssl) != TLS1_3_VERSION)
		*why = "not TLS 1.3";
	else if (!s)
		*why = "cipher suite unknown to the record layer";
	else if (SSL_has_pending(t->ssl) || SSL_pending(t->ssl))
		*why = "OpenSSL holds bytes past the handshake";
	else if (t->ctx->role == ZC_TLS_SERVER && SSL_get_num_tickets(t->ssl))
		*why = "session tickets to send";
	else if (t->secret_len[0] != s->hash_len ||
		 t->secret_len[1] != s->hash_len)
		*why = "traffic secrets not seen";
	else
		ret = 0;
	if (!ret) {
		k->suite = s->s;
		memcpy(k->rx.secret, t->secret[peer], s->hash_len);
		memcpy(k->tx.secret, t->secret[!peer], s->hash_len);
		k->rx.secret_len = k->tx.secret_len = s->hash_len;
		if (derive(s, &k->rx) || derive(s, &k->tx)) {
			*why = "deriving the traffic keys failed";
			OPENSSL_cleanse(k, sizeof(*k));
			ret = -EOPNOTSUPP;
		}
	}
	zc__tls_secrets_wipe(t);
	return ret;
}
