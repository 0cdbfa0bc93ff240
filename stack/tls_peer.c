/* SPDX-License-Identifier: MIT */
/*
 * stack/tls_peer.c - a peer's verified identity (subject and SANs of its
 * certificate), made once when the handshake ends and shared, immutable
 * and reference counted, by everyone who asks (rpc calls on workers too).
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls_internal.h"

/* One allocation: the struct, the san pointer array, then the strings. */
struct peer_box {
	atomic_uint refs;
	struct zc_tls_peer pub;
};

static char *name_rfc2253(X509_NAME *n)
{
	BIO *m = BIO_new(BIO_s_mem());
	char *s = NULL, *p;
	long len;

	if (!m)
		return NULL;
	if (X509_NAME_print_ex(m, n, 0, XN_FLAG_RFC2253) >= 0) {
		len = BIO_get_mem_data(m, &p);
		s = malloc((size_t)len + 1);
		if (s) {
			memcpy(s, p, (size_t)len);
			s[len] = 0;
		}
	}
	BIO_free(m);
	return s;
}

/* "DNS:x", "IP:a.b.c.d", ... or NULL for kinds we do not name. */
static char *san_string(const GENERAL_NAME *g)
{
	const char *kind;
	char ip[INET6_ADDRSTRLEN], *s;
	const unsigned char *d;
	int len;

	switch (g->type) {
	case GEN_DNS:
		kind = "DNS:";
		d = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		break;
	case GEN_URI:
		kind = "URI:";
		d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		break;
	case GEN_EMAIL:
		kind = "email:";
		d = ASN1_STRING_get0_data(g->d.rfc822Name);
		len = ASN1_STRING_length(g->d.rfc822Name);
		break;
	case GEN_IPADD:
		len = ASN1_STRING_length(g->d.iPAddress);
		if (!inet_ntop(len == 4 ? AF_INET : AF_INET6,
			       ASN1_STRING_get0_data(g->d.iPAddress), ip,
			       sizeof(ip)) || (len != 4 && len != 16))
			return NULL;
		kind = "IP:";
		d = (const unsigned char *)ip;
		len = (int)strlen(ip);
		break;
	default:
		return NULL;
	}
	/* Names with NUL bytes inside are not names: skip them. */
	if (len < 0 || memchr(d, 0, (size_t)len))
		return NULL;
	s = malloc(strlen(kind) + (size_t)len + 1);
	if (!s)
		return NULL;
	strcpy(s, kind);
	memcpy(s + strlen(kind), d, (size_t)len);
	s[strlen(kind) + (size_t)len] = 0;
	return s;
}

static void peer_free(struct peer_box *b)
{
	for (unsigned i = 0; i < b->pub.nsan; i++)
		free((char *)b->pub.san[i]);
	free((void *)b->pub.san);
	free((char *)b->pub.subject);
	free(b);
}

struct zc_tls_peer *zc__tls_peer_make(SSL *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	GENERAL_NAMES *gens;
	struct peer_box *b;
	const char **san;
	int n;

	if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->pub.subject = name_rfc2253(X509_get_subject_name(x));
	if (!b->pub.subject)
		goto err;
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = gens ? sk_GENERAL_NAME_num(gens) : 0;
	san = calloc((size_t)n + 1, sizeof(*san));
	if (!san) {
		GENERAL_NAMES_free(gens);
		goto err;
	}
	b->pub.san = san;
	for (int i = 0; i < n; i++) {
		char *s = san_string(sk_GENERAL_NAME_value(gens, i));

		if (s)
			san[b->pub.nsan++] = s;
	}
	GENERAL_NAMES_free(gens);
	return &b->pub;
err:
	peer_free(b);
	return NULL;
}

struct zc_tls_peer *zc_conn_tls_peer(const struct zc_conn *c)
{
	struct peer_box *b;

	if (!c->tls || !c->tls->peer)
		return NULL;
	b = zc__container_of(c->tls->peer, struct peer_box, pub);
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return c->tls->peer;
}

void zc_tls_peer_put(struct zc_tls_peer *p)
{
	struct peer_box *b;

	if (!p)
		return;
	b = zc__container_of(p, struct peer_box, pub);
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		peer_free(b);
}
