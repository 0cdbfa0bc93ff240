/* SPDX-License-Identifier: MIT */
/*
 * kv_server - a key-value store served with zcrpc.
 *
 *   kv_server [-p PORT] [--bulk-reactor]
 *                             (PORT 0, the default, picks a free port)
 *
 * Prints "listening on PORT", serves until SIGINT/SIGTERM, then drains.
 * --bulk-reactor adds a second reactor that accepts nothing and takes the
 * connections that send requests of 1 MiB or more (bulk_reactors in
 * zcrpc/rpc.h), so that small calls on the first stay prompt; its thread
 * runs at niceness +10, so that it yields the CPU to the first.
 *
 * What it shows: handlers running inline on the reactor (with a bulk
 * reactor two threads run them, so the table has a mutex: held for a
 * lookup and a reference, never while copying a value or answering),
 * keeping only a copy of what must outlive the request
 * (receive buffers go back to the pool at once), and answering GET
 * without copying: each value lives in a zc_buf_wrap()ed block, every
 * answer is one more reference on it, and a PUT that replaces a value
 * drops the table's reference only, so an answer still being sent keeps
 * its bytes until the kernel is done with them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"

#define NBUCKETS 1024

struct entry {
	struct entry *next;
	char *key;
	struct zc_buf *val;	/* '+' and the value; the table's reference */
};

static struct entry *table[NBUCKETS];
/* The handlers of both reactors (--bulk-reactor) share the table. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned hash(const char *k, size_t n)
{
	unsigned h = 2166136261u;

	while (n--)
		h = (h ^ (uint8_t)*k++) * 16777619u;
	return h % NBUCKETS;
}

static struct entry **lookup(const char *key, size_t n)
{
	struct entry **e = &table[hash(key, n)];

	while (*e && (strlen((*e)->key) != n || memcmp((*e)->key, key, n)))
		e = &(*e)->next;
	return e;
}

static void free_value(void *arg, void *data)
{
	free(data);
}

static void static_value(void *arg, void *data)
{
}

/* PUT: copy key and value out of the request, then let the request go. */
static void put(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	struct zc_pool *pool = zc_reactor_pool(zc_rpc_call_reactor(call));
	size_t len = zc_chain_len(req), vlen;
	char *key = NULL, *val = NULL;
	struct zc_chain empty;
	struct zc_buf *b, *old = NULL;
	struct entry **e;
	uint8_t hdr[2];
	uint16_t klen;

	if (zc_chain_copyout(req, 0, hdr, 2) != 2)
		goto bad;
	klen = (uint16_t)(hdr[0] | hdr[1] << 8);
	if (!klen || 2u + klen > len)
		goto bad;
	vlen = len - 2 - klen;
	key = calloc(1, klen + 1u);
	val = malloc(vlen + 1);
	if (!key || !val ||
	    zc_buf_wrap(pool, val, vlen + 1, free_value, NULL, &b))
		goto oom;
	zc_chain_copyout(req, 2, key, klen);
	val[0] = '+';
	zc_chain_copyout(req, 2u + klen, val + 1, vlen);
	zc_chain_release(req);

	pthread_mutex_lock(&table_lock);
	e = lookup(key, klen);
	if (*e) {
		old = (*e)->val;	/* answers in flight keep theirs */
		free(key);
	} else if ((*e = calloc(1, sizeof(**e)))) {
		(*e)->key = key;
	} else {
		pthread_mutex_unlock(&table_lock);
		free(key);
		zc_buf_put(b);		/* frees val */
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "out of memory");
		return;
	}
	(*e)->val = b;
	pthread_mutex_unlock(&table_lock);
	if (old)
		zc_buf_put(old);
	zc_chain_init(&empty);
	(void)zc_rpc_reply(call, &empty);
	return;
oom:
	free(key);
	free(val);
	zc_chain_release(req);
	zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "out of memory");
	return;
bad:
	zc_chain_release(req);
	zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "bad put request");
}

/* GET: answer with a view of the stored block, no copy. */
static void get(struct zc_rpc_call *call, struct zc_chain *req, void *arg)
{
	static char miss = '-';
	struct zc_pool *pool = zc_reactor_pool(zc_rpc_call_reactor(call));
	char key[256];
	size_t n = zc_chain_copyout(req, 0, key, sizeof(key));
	struct zc_buf *b, *val = NULL;
	struct zc_chain resp;
	struct zc_view v;
	struct entry *e;
	int ret;

	zc_chain_release(req);
	zc_chain_init(&resp);
	/* Our own reference, taken under the lock: a PUT may replace the
	 * value (and drop the table's) the moment we let go. */
	pthread_mutex_lock(&table_lock);
	e = *lookup(key, n);
	if (e) {
		val = e->val;
		zc_buf_get(val);
	}
	pthread_mutex_unlock(&table_lock);
	if (val) {
		ret = zc_view_adopt(&v, val, 0, zc_buf_capacity(val));
		if (ret)
			zc_buf_put(val);
	} else {
		ret = zc_buf_wrap(pool, &miss, 1, static_value, NULL, &b);
		if (!ret)
			ret = zc_view_adopt(&v, b, 0, 1);
	}
	if (!ret && zc_chain_append(&resp, &v)) {
		zc_view_release(&v);
		ret = -ENOMEM;
	}
	if (ret)
		zc_rpc_reply_error(call, ZC_RPC_INTERNAL, "out of memory");
	else
		(void)zc_rpc_reply(call, &resp);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_ANY) };
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "bulk-reactor", no_argument, NULL, 'b' },
		{ 0 }
	};
	/* TLS with --cert/--key; with --ca too, clients must show a
	 * certificate signed by it (mutual TLS). */
	struct zc_tls_config tc = { .role = ZC_TLS_SERVER };
	struct zc_tls_ctx *tls = NULL;
	struct zc_reactor_config rc = { 0 }, brc;
	struct zc_rpc_server *srv;
	struct zc_reactor *r, *bulk = NULL;
	bool want_bulk = false;
	sigset_t sigs;
	int opt, sig, ret;

	while ((opt = getopt_long(argc, argv, "p:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': sin.sin_port = htons((uint16_t)atoi(optarg)); break;
		case 'c': tc.cert_file = optarg; break;
		case 'k': tc.key_file = optarg; break;
		case 'a': tc.ca_file = optarg; break;
		case 'b': want_bulk = true; break;
		default:
			fprintf(stderr, "usage: kv_server [-p PORT] [--bulk-reactor] "
				"[--cert FILE --key FILE [--ca FILE]]\n");
			return 2;
		}
	}
	if (tc.ca_file)
		tc.verify = ZC_TLS_VERIFY_REQUIRE;
	if (tc.cert_file && (ret = zc_tls_ctx_new(&tc, &tls))) {
		fprintf(stderr, "tls: %s\n", strerror(-ret));
		return 1;
	}
	/* Block the signals before any thread starts, then wait for them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* The bulk reactor's thread yields the CPU to the first one's. */
	brc = rc;
	brc.nice = 10;
	ret = zc_reactor_spawn(&rc, &r);
	if (!ret && want_bulk)
		ret = zc_reactor_spawn(&brc, &bulk);
	if (ret) {
		fprintf(stderr, "reactor: %s\n", strerror(-ret));
		return 1;
	}
	ret = zc_rpc_server_create(&(struct zc_rpc_server_config){
		.reactors = &r, .nreactors = 1, .tls = tls,
		.bulk_reactors = &bulk, .nbulk = bulk ? 1 : 0 }, &srv);
	if (!ret)
		ret = zc_rpc_server_register(srv, KV_PUT, "put", ZC_RPC_INLINE,
					     0, put, NULL);
	if (!ret)
		ret = zc_rpc_server_register(srv, KV_GET, "get", ZC_RPC_INLINE,
					     0, get, NULL);
	if (!ret)
		ret = zc_rpc_server_listen(srv, (struct sockaddr *)&sin,
					   sizeof(sin));
	if (ret) {
		fprintf(stderr, "server: %s\n", strerror(-ret));
		return 1;
	}
	printf("listening on %u\n", zc_rpc_server_port(srv));
	fflush(stdout);

	sigwait(&sigs, &sig);
	zc_rpc_server_drain(srv, 1000);
	zc_rpc_server_destroy(srv);
	for (unsigned i = 0; i < NBUCKETS; i++) {
		while (table[i]) {
			struct entry *e = table[i];

			table[i] = e->next;
			zc_buf_put(e->val);	/* deferred to the reactor */
			free(e->key);
			free(e);
		}
	}
	while ((ret = zc_reactor_destroy(r)) == -EBUSY)
		usleep(1000);
	/* Values PUT on the bulk reactor came from its pool: freed above,
	 * they go home through its deferred list. */
	while (!ret && bulk && (ret = zc_reactor_destroy(bulk)) == -EBUSY)
		usleep(1000);
	zc_tls_ctx_put(tls);
	return ret ? 1 : 0;
}
