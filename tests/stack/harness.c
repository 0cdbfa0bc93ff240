/* SPDX-License-Identifier: MIT */
/*
 * tests/stack/harness.c - see harness.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t word_at(uint64_t seed, uint64_t w)
{
	return mix64(seed * 0x100000001b3ull ^ w);
}

void hs_fill(uint64_t seed, uint64_t pos, void *dst, size_t len)
{
	unsigned char *d = dst;
	uint64_t w = word_at(seed, pos >> 3);

	for (size_t i = 0; i < len; i++, pos++) {
		if (!(pos & 7))
			w = word_at(seed, pos >> 3);
		d[i] = (unsigned char)(w >> ((pos & 7) * 8));
	}
}

size_t hs_count_bad(uint64_t seed, uint64_t pos, const void *src, size_t len)
{
	const unsigned char *s = src;
	uint64_t w = word_at(seed, pos >> 3);
	size_t bad = 0;

	for (size_t i = 0; i < len; i++, pos++) {
		if (!(pos & 7))
			w = word_at(seed, pos >> 3);
		bad += s[i] != (unsigned char)(w >> ((pos & 7) * 8));
	}
	return bad;
}

void hs_addr(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*sin);
}

unsigned long hs_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

/* -------------------------------------------------------------------------
 * Peers
 */

struct hs_ctx;

struct hs_peer {
	struct hs_ctx *x;
	struct zc_conn *c;
	struct zc_reactor *r;
	struct hs_peer *next;      /* ctx list, under ctx lock */
	uint64_t tx_seed, rx_seed;
	uint64_t tx_total, rx_total;
	uint64_t tx_queued, rx_got;
	uint64_t rx_checked;       /* consumer side */
	uint64_t sends, dones;
	uint64_t rng;
	struct zc_chain stash;     /* refused by a full queue */
	bool closing;
};

struct hs_item {
	struct hs_item *next;
	struct hs_peer *p;
	struct zc_chain ch;
};

struct hs_ctx {
	struct hs_cfg cfg;
	struct zc_reactor *srv, *cli;
	struct zc_listener *l;
	uint16_t port;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned closed, close_errs;
	struct hs_peer *peers;
	struct hs_item *q_head, **q_tail;
	bool q_stop;
	pthread_t consumer;
	atomic_uint_fast64_t bytes_rx, bytes_bad, done_errs;
};

static uint64_t rnd(struct hs_peer *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

/* Log-uniform in [1, max]: plenty of tiny and of huge messages. */
static size_t msg_size(struct hs_peer *p, size_t max)
{
	unsigned bits = 0;
	size_t n;

	while (((size_t)1 << bits) < max)
		bits++;
	n = 1 + rnd(p) % ((size_t)1 << (rnd(p) % (bits + 1)));
	return n > max ? max : n;
}

static void check(struct hs_peer *p, struct zc_chain *ch)
{
	size_t len = zc_chain_len(ch), bad = 0;

	for (unsigned i = 0; i < zc_chain_nviews(ch); i++) {
		const struct zc_view *v = zc_chain_view(ch, i);

		bad += hs_count_bad(p->rx_seed, p->rx_checked, zc_view_data(v),
				    v->len);
		p->rx_checked += v->len;
	}
	atomic_fetch_add(&p->x->bytes_rx, len);
	atomic_fetch_add(&p->x->bytes_bad, bad);
}

static void consume(struct hs_peer *p, struct zc_chain *ch)
{
	size_t len = zc_chain_len(ch);

	check(p, ch);
	zc_chain_release(ch);
	if (p->x->cfg.consumer_delay_us)
		usleep(p->x->cfg.consumer_delay_us);
	zc_conn_recv_done(p->c, len);
}

static void *consumer_main(void *arg)
{
	struct hs_ctx *x = arg;
	struct hs_item *it;

	pthread_mutex_lock(&x->lock);
	for (;;) {
		while (!x->q_head && !x->q_stop)
			pthread_cond_wait(&x->cond, &x->lock);
		it = x->q_head;
		if (!it)
			break;
		x->q_head = it->next;
		if (!x->q_head)
			x->q_tail = &x->q_head;
		pthread_mutex_unlock(&x->lock);
		consume(it->p, &it->ch);
		free(it);
		pthread_mutex_lock(&x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

/* Wrapped memory: a length header before the payload, so the release
 * callback can scribble over exactly the bytes it gets back. */
static void wrap_release(void *arg, void *data)
{
	char *base = (char *)data - 16;

	if (arg)
		memset(data, 0xee, *(size_t *)base);
	free(base);
}

static int build(struct hs_peer *p, size_t len, struct zc_chain *ch)
{
	struct zc_pool *pool = zc_reactor_pool(p->r);
	size_t off = 0, bsz = zc_pool_buf_size(pool);
	struct zc_buf *b;
	struct zc_view v;
	int ret;

	zc_chain_init(ch);
	if (p->x->cfg.wrap) {
		char *base = malloc(len + 16);

		if (!base)
			return -ENOMEM;
		*(size_t *)base = len;
		hs_fill(p->tx_seed, p->tx_queued, base + 16, len);
		ret = zc_buf_wrap(pool, base + 16, len, wrap_release,
				  p->x->cfg.scribble ? p : NULL, &b);
		if (ret) {
			free(base);
			return ret;
		}
		if (zc_view_adopt(&v, b, 0, len) || zc_chain_append(ch, &v))
			abort();
		return 0;
	}
	while (off < len) {
		size_t n = len - off < bsz ? len - off : bsz;

		ret = zc_buf_alloc(pool, &b);
		if (ret) {
			zc_chain_release(ch);
			return ret;
		}
		hs_fill(p->tx_seed, p->tx_queued + off, zc_buf_data(b), n);
		if (zc_view_adopt(&v, b, 0, n))
			abort();
		ret = zc_chain_append(ch, &v);
		if (ret) {
			zc_view_release(&v);
			zc_chain_release(ch);
			return ret;
		}
		off += n;
	}
	return 0;
}

static void on_done(void *arg, int err);

static void maybe_close(struct hs_peer *p)
{
	if (p->closing || p->tx_queued < p->tx_total || p->dones < p->sends ||
	    p->rx_got < p->rx_total)
		return;
	p->closing = true;
	zc_conn_close(p->c, ZC_CLOSE_GRACEFUL);
}

static void pump(struct hs_peer *p)
{
	size_t max = p->x->cfg.max_msg;

	while (!p->closing && p->tx_queued < p->tx_total) {
		size_t len;
		int ret;

		if (!zc_chain_len(&p->stash)) {
			len = msg_size(p, max);
			if (len > p->tx_total - p->tx_queued)
				len = p->tx_total - p->tx_queued;
			if (build(p, len, &p->stash))
				return; /* pool busy: retried on the next event */
		}
		len = zc_chain_len(&p->stash);
		ret = zc_conn_send(p->c, &p->stash, on_done, p);
		if (ret == -EAGAIN)
			return; /* on_writable */
		if (ret) {
			zc_chain_release(&p->stash);
			zc_conn_close(p->c, ZC_CLOSE_ABORT);
			return;
		}
		p->tx_queued += len;
		p->sends++;
	}
	maybe_close(p);
}

static void on_done(void *arg, int err)
{
	struct hs_peer *p = arg;

	p->dones++;
	if (err)
		atomic_fetch_add(&p->x->done_errs, 1);
	pump(p);
}

static void on_data(struct zc_conn *c, struct zc_chain *data, void *ud)
{
	struct hs_peer *p = ud;
	struct hs_ctx *x = p->x;

	p->rx_got += zc_chain_len(data);
	if (x->cfg.consumer_thread) {
		struct hs_item *it = malloc(sizeof(*it));

		if (!it)
			abort();
		it->next = NULL;
		it->p = p;
		it->ch = *data; /* moved: the consumer thread releases it */
		pthread_mutex_lock(&x->lock);
		*x->q_tail = it;
		x->q_tail = &it->next;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
	} else {
		consume(p, data);
	}
	pump(p);
}

static void on_writable(struct zc_conn *c, void *ud)
{
	pump(ud);
}

static void on_close(struct zc_conn *c, int err, void *ud)
{
	struct hs_peer *p = ud;
	struct hs_ctx *x = p->x;

	zc_chain_release(&p->stash);
	pthread_mutex_lock(&x->lock);
	x->closed++;
	if (err) {
		x->close_errs++;
		fprintf(stderr, "harness: conn closed: %s\n", strerror(-err));
	}
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static uint16_t sock_port(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss, &sl))
		return 0;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Seeds tie each stream to its connection (the client's port), so bytes
 * crossing connections are caught too. */
static void peer_start(struct hs_peer *p, bool server)
{
	const struct hs_cfg *cfg = &p->x->cfg;
	uint64_t port = sock_port(zc_conn_fd(p->c), server);
	uint64_t c2s = port * 2 + 1, s2c = port * 2 + 2;

	p->tx_seed = server ? s2c : c2s;
	p->rx_seed = server ? c2s : s2c;
	p->tx_total = server ? (cfg->server_sends ? cfg->total : 0) : cfg->total;
	p->rx_total = server ? cfg->total : (cfg->server_sends ? cfg->total : 0);
	p->rng = 0x2545f4914f6cdd1dull ^ p->tx_seed;
	pump(p);
}

static const struct zc_conn_ops hs_ops = {
	.on_data = on_data,
	.on_writable = on_writable,
	.on_close = on_close,
};

static struct hs_peer *peer_new(struct hs_ctx *x, struct zc_reactor *r)
{
	struct hs_peer *p = calloc(1, sizeof(*p));

	if (!p)
		abort();
	p->x = x;
	p->r = r;
	zc_chain_init(&p->stash);
	pthread_mutex_lock(&x->lock);
	p->next = x->peers;
	x->peers = p;
	pthread_mutex_unlock(&x->lock);
	return p;
}

static void on_accept(struct zc_listener *l, struct zc_conn *c, void *ud)
{
	struct hs_ctx *x = ud;
	struct hs_peer *p = peer_new(x, x->srv);

	p->c = c;
	zc_conn_get(c);
	zc_conn_set_ops(c, &hs_ops, p);
	peer_start(p, true);
}

static void on_connect(struct zc_conn *c, void *ud)
{
	peer_start(ud, false);
}

static const struct zc_conn_ops hs_cli_ops = {
	.on_connect = on_connect,
	.on_data = on_data,
	.on_writable = on_writable,
	.on_close = on_close,
};

static int listen_fn(void *arg)
{
	struct hs_ctx *x = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int ret;

	hs_addr(&ss, &sl, 0);
	ret = zc_listen(x->srv, (struct sockaddr *)&ss, sl, 0, on_accept, x,
			&x->l);
	if (!ret && x->cfg.tls_server)
		ret = zc_listener_set_tls(x->l, x->cfg.tls_server);
	if (!ret)
		x->port = zc_listener_port(x->l);
	return ret;
}

static int connect_fn(void *arg)
{
	struct hs_ctx *x = arg;
	struct sockaddr_storage ss;
	socklen_t sl;

	hs_addr(&ss, &sl, x->port);
	for (unsigned i = 0; i < x->cfg.conns; i++) {
		struct hs_peer *p = peer_new(x, x->cli);
		int ret = zc_connect(x->cli, (struct sockaddr *)&ss, sl, 5000,
				     &hs_cli_ops, p, &p->c);

		if (!ret && x->cfg.tls_client)
			ret = zc_conn_start_tls(p->c, x->cfg.tls_client, NULL);
		if (ret)
			return ret;
		zc_conn_get(p->c);
	}
	return 0;
}

static int close_listener_fn(void *arg)
{
	struct hs_ctx *x = arg;

	zc_listener_close(x->l);
	return 0;
}

void hs_run(const struct hs_cfg *cfg, struct hs_result *res)
{
	struct hs_ctx *x = calloc(1, sizeof(*x));
	struct timespec dl;
	struct hs_peer *p, *next;

	memset(res, 0, sizeof(*res));
	if (!x) {
		res->failed = "calloc";
		return;
	}
	x->cfg = *cfg;
	x->q_tail = &x->q_head;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	if (cfg->consumer_thread &&
	    pthread_create(&x->consumer, NULL, consumer_main, x))
		abort();
	if (zc_reactor_spawn(&cfg->rc, &x->srv) ||
	    zc_reactor_spawn(&cfg->rc, &x->cli))
		abort();
	if (zc_reactor_call(x->srv, listen_fn, x))
		res->failed = "listen";
	else if (zc_reactor_call(x->cli, connect_fn, x))
		res->failed = "connect";

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += cfg->timeout_s ? cfg->timeout_s : 40;
	pthread_mutex_lock(&x->lock);
	while (!res->failed && x->closed < 2 * cfg->conns) {
		if (pthread_cond_timedwait(&x->cond, &x->lock, &dl) == ETIMEDOUT) {
			res->timed_out = true;
			break;
		}
	}
	pthread_mutex_unlock(&x->lock);
	zc_reactor_call(x->srv, close_listener_fn, x);

	if (cfg->consumer_thread) {
		pthread_mutex_lock(&x->lock);
		x->q_stop = true;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->consumer, NULL);
	}
	zc_reactor_stats(x->srv, &res->st[0]);
	zc_reactor_stats(x->cli, &res->st[1]);
	for (p = x->peers; p; p = p->next) {
		res->sends += p->sends;
		res->dones += p->dones;
	}
	res->bytes_rx = atomic_load(&x->bytes_rx);
	res->bytes_bad = atomic_load(&x->bytes_bad);
	res->done_errs = atomic_load(&x->done_errs);
	pthread_mutex_lock(&x->lock);
	res->closed = x->closed;
	res->close_errs = x->close_errs;
	pthread_mutex_unlock(&x->lock);

	/* Teardown aborts what is left (after a timeout) and must find every
	 * buffer back home: 0, never -EBUSY. */
	if (zc_reactor_destroy(x->cli) || zc_reactor_destroy(x->srv))
		res->failed = "zc_reactor_destroy";
	for (p = x->peers; p; p = next) {
		next = p->next;
		if (p->c)
			zc_conn_put(p->c);
		free(p);
	}
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}
